"""The image modes (``finetune`` end to end, ``scratch``): every photo through the whole network
every epoch, with the page's augmentation.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from dltl_core.features import embed_images, extract_features
from dltl_core.photos import load_image_tensors, make_batch_transform, train_image_size
from dltl_core.separation import separation as separation_score
from dltl_core.train import fit, predict
from dltl_core.transfer.metrics import _before_after_map
from dltl_core.transfer.progress import _callbacks, _Curve, _scaled
from dltl_core.transfer.result import TransferResult, _image_result
from dltl_core.transfer.split import _rows, _test_set
from dltl_core.transfer.surgery import finetune_model, scratch_model, stage_names


def _run_images(config, birds, tr_pos, va_pos, backbone, policy, t0, test_data, progress, on_epoch,
                should_stop) -> TransferResult:
    """Fine-tuning end to end (or scratch): every photo through the whole network every epoch."""
    k = len(birds.species)
    x_all, ok, bad = load_image_tensors(birds.files, backbone.data_config, config.image_size,
                                        progress=_scaled(progress, 0.0, 0.1))
    files = [birds.files[p] for p in ok]
    y_all = torch.tensor([birds.labels[p] for p in ok], dtype=torch.long)
    tr, va = _rows(birds, files, config)
    _, crop = train_image_size(backbone.data_config, config.image_size)
    transform = make_batch_transform(backbone.data_config, crop, config.augment, config.seed)
    cfg = config.train_config(len(tr))
    names = stage_names(backbone.model)
    if config.mode == "finetune":
        model, body, head = finetune_model(backbone, k, config.unfreeze_blocks)
        model.bn_frozen = config.bn_stats_frozen
        groups = [{"params": body, "lr": cfg.lr * config.lr_factor}, {"params": head, "lr": cfg.lr}]
        groups = [g for g in groups if g["params"]]
        net = model.net
        n_frozen = len(names) - min(config.unfreeze_blocks, len(names)) if config.unfreeze_blocks is not None else 0
        stages = {"frozen_stages": names[:n_frozen], "trained_stages": names[n_frozen:] + ["new head"]}
    else:
        model = net = scratch_model(backbone.name, k, config.seed)
        groups, stages = None, {"trained_stages": names + ["new head"]}
    feature_seconds = time.perf_counter() - t0
    curve = _Curve(t0, config.mode, cfg.epochs, progress, on_epoch, 0.1, 0.8)
    t1 = time.perf_counter()
    res = fit(model, (x_all[tr], y_all[tr]), (x_all[va], y_all[va]) if va else None, cfg,
              policy=policy, callbacks=_callbacks(curve, should_stop), batch_transform=transform,
              param_groups=groups)
    train_seconds = time.perf_counter() - t1
    model.eval()
    probs = predict(model, x_all[va], batch_size=32, policy=policy, batch_transform=transform) if va \
        else torch.zeros(0, k)
    test_acc = None
    if test_data is not None:
        test = _test_set(config, birds.species, test_data)
        xt, okt, _ = load_image_tensors(test.files, backbone.data_config, config.image_size)
        yt = torch.tensor([test.labels[p] for p in okt], dtype=torch.long)
        tp = predict(model, xt, batch_size=32, policy=policy, batch_transform=transform).argmax(1)
        test_acc = float((tp == yt).float().mean()) if len(tp) else float("nan")
    if progress:
        progress(0.92, "drawing the feature map")
    fmap: list[dict[str, Any]] = []
    sep: dict[str, dict | None] = {}
    if config.feature_map != "none":
        # Before: the pretrained features (cached); after: the trained network's features.
        fs = extract_features(backbone, files, y_all.tolist(), policy=policy)
        after = embed_images(net, x_all, transform, 32, policy)
        fmap = _before_after_map(config, birds, fs.features, after, y_all, files)
        sep = {"before": separation_score(fs.features, y_all, tr, va), "after": separation_score(after, y_all, tr, va)}
    return _image_result(config, birds, backbone, t0, curve, res, probs, y_all[va], tr, va, files, fmap,
                         feature_seconds, train_seconds, test_acc, bad, model, progress=progress, separation=sep,
                         **stages)
