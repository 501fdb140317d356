"""What a transfer run reports (``TransferResult``), and how an image mode's fit becomes one.

Plain data, so a page can cache it and a job can send it back from its own process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from dltl_core.transfer.metrics import _mistakes, confusion_matrix, per_species_accuracy


@dataclass
class TransferResult:
    """What a run produced (plain data, picklable for ``st.cache_data``).

    ``history`` rows hold the training core's epoch records plus ``elapsed``
    (seconds since the run started, feature extraction included) and ``mode``.
    """

    mode: str
    backbone: str
    species: list[str]
    history: list[dict[str, Any]]
    val_accuracy: float
    test_accuracy: float | None
    seconds: float
    images_per_second: float
    skipped: list[tuple[str, str]]
    confusion: list[list[int]]
    per_species: list[dict[str, Any]]
    mistakes: list[dict[str, Any]]
    feature_map: list[dict[str, Any]]
    n_train: int
    n_val: int
    feature_seconds: float
    train_seconds: float
    features_cached: bool
    extraction_cost_seconds: float = 0.0
    interrupted: bool = False
    head: dict[str, np.ndarray] | None = None     # linear mode: weight (k, D), bias (k,)
    model: nn.Module | None = field(default=None, repr=False)  # image modes: the trained copy
    data_config: dict[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    frozen_stages: list[str] = field(default_factory=list)   # fine-tuning: what stayed frozen
    trained_stages: list[str] = field(default_factory=list)  # ... and what trained
    cached_activations: bool = False
    probe_accuracy: float | None = None  # cached fine-tuning: the linear probe its head started from
    # ``dltl_core.separation`` scores of the validation photos: "before" (pretrained), "after" (trained)
    separation: dict[str, dict | None] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The command line's JSON keys."""
        return {"mode": self.mode, "species": self.species, "val_accuracy": self.val_accuracy,
                "test_accuracy": self.test_accuracy, "seconds": self.seconds,
                "images_per_second": self.images_per_second, "skipped_files": len(self.skipped)}


def _image_result(config, birds, backbone, t0, curve, res, probs, yv, tr, va, files, fmap, feature_seconds,
                  train_seconds, test_acc, bad, model, progress=None, **extra) -> TransferResult:
    """The report of an image mode (fine-tuning or scratch) from its fit and predictions."""
    k = len(birds.species)
    pred = probs.argmax(1) if len(va) else torch.zeros(0, dtype=torch.long)
    val_acc = float((pred == yv).float().mean()) if len(va) else float("nan")
    conf = confusion_matrix(yv.tolist(), pred.tolist(), k)
    sps = np.mean([r.samples_per_second for r in res.history]) if res.history else float("nan")
    if progress:
        progress(1.0, f"{config.mode}: done")
    extra.setdefault("features_cached", True)
    return TransferResult(
        mode=config.mode, backbone=backbone.name, species=list(birds.species), history=curve.rows,
        val_accuracy=val_acc, test_accuracy=test_acc, seconds=time.perf_counter() - t0,
        images_per_second=float(sps), skipped=list(birds.skipped) + list(bad), confusion=conf,
        per_species=per_species_accuracy(conf, birds.species),
        mistakes=_mistakes(probs, yv, [files[i] for i in va], birds.species),
        feature_map=fmap, n_train=len(tr), n_val=len(va), feature_seconds=feature_seconds,
        train_seconds=train_seconds, interrupted=res.interrupted,
        model=model.cpu().eval(), data_config=dict(backbone.data_config), image_size=config.image_size,
        **extra)
