"""Fine-tuning the last stages on the cached activations of the frozen ones (LP-FT): the fast
``finetune`` mode, and the pieces the page, the command line and ``scripts/transfer_regimes.py`` share.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import timm
import torch
from torch import Tensor, nn

from dltl_core.backbones import Backbone
from dltl_core.device import DevicePolicy
from dltl_core.features import FeatureSet, extract_activations
from dltl_core.separation import separation as separation_score
from dltl_core.train import Callback, fit, predict
from dltl_core.transfer.config import TransferConfig
from dltl_core.transfer.metrics import _before_after_map
from dltl_core.transfer.progress import _callbacks, _Curve, _scaled
from dltl_core.transfer.result import TransferResult, _image_result
from dltl_core.transfer.split import _rows, _test_set
from dltl_core.transfer.surgery import (PartlyFrozen, TailNet, _linear_head, cut_index, feature_stages,
                                        finetune_model, frozen_part, stage_names)


def eval_transform(backbone: Backbone, image_size: int | None) -> tuple[Callable, str]:
    """(the backbone's eval transform at ``image_size``, its identity for cache keys)."""
    native = backbone.data_config["input_size"][-1]
    if image_size is None or image_size == native:
        return backbone.transform, backbone.transform_id
    cfg = {**backbone.data_config, "input_size": (3, image_size, image_size)}
    t = timm.data.create_transform(**cfg, is_training=False)
    return t, repr(t)


@torch.inference_mode()
def pretrained_tail_features(backbone: Backbone, cut: int, acts: Tensor, policy: DevicePolicy,
                             batch_size: int = 64) -> Tensor:
    """The shared network's own last stages on cached activations: its pooled features (N, D).

    Equals ``pooled_features`` on the photos (the stages run in turn); inference only,
    on the model's own device.
    """
    stages = feature_stages(backbone.model)[cut:]
    device = next(backbone.model.parameters()).device
    out = []
    for i in range(0, len(acts), batch_size):
        a = acts[i:i + batch_size].to(device)
        if policy.channels_last:
            a = a.contiguous(memory_format=torch.channels_last)
        with policy.autocast():
            for stage in stages:
                a = stage(a)
            out.append(backbone.model.forward_head(a, pre_logits=True).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, backbone.num_features)


def probe_head(feats: Tensor, y: Tensor, tr: list[int], va: list[int], config: TransferConfig,
                k: int, policy: DevicePolicy) -> tuple[nn.Linear, float | None]:
    """The linear probe on the pretrained features (the page's linear mode, trained the same way);
    the fine-tuned head starts from it (LP-FT). Returns (head, last epoch's validation accuracy)."""
    from dataclasses import replace
    cfg = replace(config, mode="linear", epochs=None, lr=None, batch_size=None).train_config(len(tr))
    head = _linear_head(feats.shape[1], k, config.seed)
    res = fit(head, (feats[tr], y[tr]), (feats[va], y[va]) if va else None, cfg, policy=policy)
    acc = res.history[-1].val_acc if va and res.history else None
    return res.model.cpu(), acc


def _cached_split(config, birds, backbone, policy, cut, progress) -> tuple[FeatureSet, list[int], list[int]]:
    transform, tid = eval_transform(backbone, config.image_size)
    acts = extract_activations(backbone, birds.files, birds.labels, frozen_part(backbone, cut),
                               f"stages<{cut}", transform=transform, transform_id=tid, policy=policy,
                               progress=_scaled(progress, 0.0, 0.3))
    return acts, *_rows(birds, acts.files, config)


def finetune_tail(config: TransferConfig, backbone: Backbone, cut: int, probe: nn.Linear, x: Tensor, y: Tensor,
                  tr: Sequence[int], va: Sequence[int], policy: DevicePolicy,
                  callbacks: Sequence[Callback] = ()) -> tuple[PartlyFrozen, TailNet, Any]:
    """LP-FT on cached activations: a copy's stages from ``cut`` on and a new head (started from
    ``probe``) train on the activations ``x`` of the frozen stages (rows ``tr``; ``va`` validates).

    The page, the command line and ``scripts/transfer_regimes.py`` all fine-tune through here.

    Returns:
        (the fine-tuned copy, its ``TailNet`` view, the training core's ``FitResult``).
    """
    model, body, head = finetune_model(backbone, len(probe.bias), config.unfreeze_blocks)
    with torch.no_grad():
        model.net.get_classifier().weight.copy_(probe.weight)
        model.net.get_classifier().bias.copy_(probe.bias)
    tail = TailNet(model.net, cut, bn_frozen=config.bn_stats_frozen)
    cfg = config.train_config(len(tr))
    groups = [g for g in ({"params": body, "lr": cfg.lr * config.lr_factor},
                          {"params": head, "lr": cfg.lr}) if g["params"]]
    tr, va = list(tr), list(va)
    res = fit(tail, (x[tr], y[tr]), (x[va], y[va]) if va else None, cfg, policy=policy,
              callbacks=list(callbacks), param_groups=groups)
    return model, tail, res


def _run_cached(config, birds, tr_pos, va_pos, backbone, policy, t0, test_data, progress, on_epoch,
                should_stop) -> TransferResult:
    k, cut = len(birds.species), cut_index(backbone, config.unfreeze_blocks)
    acts, tr, va = _cached_split(config, birds, backbone, policy, cut, progress)
    x, y = acts.features, acts.labels
    if progress:
        progress(0.3, "training the linear probe that the new head starts from")
    before = pretrained_tail_features(backbone, cut, x, policy)
    probe, probe_acc = probe_head(before, y, tr, va, config, k, policy)
    feature_seconds = time.perf_counter() - t0
    curve = _Curve(t0, "finetune", config.train_config(len(tr)).epochs, progress, on_epoch, 0.35, 0.55)
    t1 = time.perf_counter()
    model, tail, res = finetune_tail(config, backbone, cut, probe, x, y, tr, va, policy,
                                     _callbacks(curve, should_stop))
    train_seconds = time.perf_counter() - t1
    tail.eval()
    probs = predict(tail, x[va], batch_size=64, policy=policy) if va else torch.zeros(0, k)
    test_acc = _cached_test_accuracy(config, birds, backbone, policy, cut, tail, test_data)
    if progress:
        progress(0.92, "drawing the feature map")
    after = _tail_features(tail, x)
    fmap = _before_after_map(config, birds, before, after, y, acts.files)
    sep = {"before": separation_score(before, y, tr, va), "after": separation_score(after, y, tr, va)}
    names = stage_names(backbone.model)
    return _image_result(config, birds, backbone, t0, curve, res, probs, y[va], tr, va, acts.files,
                         fmap, feature_seconds, train_seconds, test_acc, acts.skipped, model,
                         frozen_stages=names[:cut], trained_stages=names[cut:] + ["new head"],
                         cached_activations=True, probe_accuracy=probe_acc, separation=sep,
                         features_cached=acts.extracted == 0, progress=progress)


@torch.inference_mode()
def _tail_features(tail: TailNet, x: Tensor, batch_size: int = 64) -> Tensor:
    tail.eval()
    device = next(tail.parameters()).device
    return torch.cat([tail.features(x[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(x), batch_size)]) if len(x) else torch.zeros(0)


def _cached_test_accuracy(config, birds, backbone, policy, cut, tail, test_data) -> float | None:
    if test_data is None:
        return None
    test = _test_set(config, birds.species, test_data)
    transform, tid = eval_transform(backbone, config.image_size)
    ta = extract_activations(backbone, test.files, test.labels, frozen_part(backbone, cut), f"stages<{cut}",
                             transform=transform, transform_id=tid, policy=policy)
    tp = predict(tail, ta.features, batch_size=64, policy=policy).argmax(1) if len(ta.files) else None
    return float((tp == ta.labels).float().mean()) if tp is not None else float("nan")
