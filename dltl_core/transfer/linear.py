"""The ``linear`` mode: the frozen backbone's cached features and a linear head trained on them."""

from __future__ import annotations

import time

import torch

from dltl_core.features import extract_features
from dltl_core.separation import separation as separation_score
from dltl_core.train import fit, predict
from dltl_core.transfer.metrics import _mistakes, confusion_matrix, feature_map, per_species_accuracy
from dltl_core.transfer.progress import _callbacks, _Curve, _scaled
from dltl_core.transfer.result import TransferResult
from dltl_core.transfer.split import _test_set
from dltl_core.transfer.surgery import _linear_head


def _run_linear(config, birds, tr_pos, va_pos, backbone, policy, t0, test_data, progress, on_epoch,
                should_stop) -> TransferResult:
    k = len(birds.species)
    fs = extract_features(backbone, birds.files, birds.labels, policy=policy,
                          progress=_scaled(progress, 0.0, 0.85))
    feature_seconds = time.perf_counter() - t0
    row_of = {f: i for i, f in enumerate(fs.files)}  # files that decoded
    tr = [row_of[birds.files[p]] for p in tr_pos if birds.files[p] in row_of]
    va = [row_of[birds.files[p]] for p in va_pos if birds.files[p] in row_of]
    if not tr:
        raise ValueError("no photo could be decoded for training")
    x, y = fs.features, fs.labels
    cfg = config.train_config(len(tr))
    head = _linear_head(x.shape[1], k, config.seed)
    curve = _Curve(t0, "linear", cfg.epochs, progress, on_epoch, 0.85, 0.15)
    t1 = time.perf_counter()
    res = fit(head, (x[tr], y[tr]), (x[va], y[va]) if va else None, cfg, policy=policy,
              callbacks=_callbacks(curve, should_stop))
    train_seconds = time.perf_counter() - t1
    head = res.model
    probs = predict(head, x[va], policy=policy) if va else torch.zeros(0, k)
    yv = y[va]
    pred = probs.argmax(1) if va else torch.zeros(0, dtype=torch.long)
    val_acc = float((pred == yv).float().mean()) if va else float("nan")
    test_acc = None
    skipped = list(birds.skipped) + fs.skipped
    if test_data is not None:
        test = _test_set(config, birds.species, test_data)
        tfs = extract_features(backbone, test.files, test.labels, policy=policy)
        tp = predict(head, tfs.features, policy=policy).argmax(1)
        test_acc = float((tp == tfs.labels).float().mean()) if len(tp) else float("nan")
    conf = confusion_matrix(yv.tolist(), pred.tolist(), k)
    head = head.cpu().eval()
    return TransferResult(
        mode="linear", backbone=backbone.name, species=list(birds.species), history=curve.rows,
        val_accuracy=val_acc, test_accuracy=test_acc, seconds=time.perf_counter() - t0,
        images_per_second=fs.images_per_second, skipped=skipped, confusion=conf,
        per_species=per_species_accuracy(conf, birds.species),
        mistakes=_mistakes(probs, yv, [fs.files[i] for i in va], birds.species),
        feature_map=feature_map(x, y.tolist(), birds.species, fs.files, config.feature_map, "before",
                                config.seed),
        n_train=len(tr), n_val=len(va), feature_seconds=feature_seconds, train_seconds=train_seconds,
        features_cached=fs.extracted == 0, extraction_cost_seconds=fs.cost_seconds,
        interrupted=res.interrupted,
        separation={"before": separation_score(x, y, tr, va) if config.feature_map != "none" else None},
        head={"weight": head.weight.detach().numpy().copy(), "bias": head.bias.detach().numpy().copy()},
        data_config=dict(backbone.data_config))
