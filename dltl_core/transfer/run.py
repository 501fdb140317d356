"""Running transfer learning: one mode (``run_transfer``), the job runner's jobs, the feature
extraction a page starts first, and a side-by-side comparison of modes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

from dltl_core.backbones import Backbone, create_backbone
from dltl_core.birds import load_birds
from dltl_core.device import DevicePolicy, get_policy
from dltl_core.features import FeatureSet, extract_activations, extract_features, store_features, uncached_photos
from dltl_core.transfer.cached import _run_cached, pretrained_tail_features
from dltl_core.transfer.config import DEFAULT_UNFREEZE, MODES, TransferConfig
from dltl_core.transfer.images import _run_images
from dltl_core.transfer.linear import _run_linear
from dltl_core.transfer.progress import _REPORT, ProgressFn
from dltl_core.transfer.result import TransferResult
from dltl_core.transfer.split import load_split
from dltl_core.transfer.surgery import cut_index, frozen_part


def ensure_features(config: TransferConfig, backbone: Backbone, *, policy: DevicePolicy | None = None,
                    progress: Callable[[int, int, str], None] | None = None) -> FeatureSet:
    """Extract (or read from the disk cache) the features a linear run of ``config`` needs.

    A page calls this first, with a progress bar, so the run itself only hits the cache.
    Where the architecture allows (``feature_stages``), missing features come from one pass
    that also caches the frozen stages' activations of the default fine-tuning: the pooled
    features are the pretrained last stages run on them, and a later fine-tuning click then
    pays only for its epochs.
    """
    birds = load_birds(config.data, config.species, config.max_per_species)
    cut = cut_index(backbone, DEFAULT_UNFREEZE)
    if cut is not None and uncached_photos(backbone, birds.files, birds.labels):
        policy = policy or get_policy()
        acts = extract_activations(backbone, birds.files, birds.labels, frozen_part(backbone, cut),
                                   f"stages<{cut}", policy=policy, progress=progress, what="extracting features")
        store_features(backbone, birds.files, birds.labels, acts,
                       pretrained_tail_features(backbone, cut, acts.features, policy))
    return extract_features(backbone, birds.files, birds.labels, policy=policy, progress=progress)


def run_transfer(config: TransferConfig, *, backbone: Backbone | None = None,
                 test_data: str | Path | None = None, policy: DevicePolicy | None = None,
                 progress: ProgressFn | None = None, on_epoch: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 report: Callable[..., None] | None = None) -> TransferResult:
    """Run one mode on the chosen species and report everything the page shows.

    Args:
        config: the run.
        backbone: a loaded backbone (shared, read-only); loaded if None.
        test_data: optional folder with the same species for ``test_accuracy``.
        policy: the device policy (default ``get_policy()``).
        progress: called with (fraction, message) during extraction and training.
        on_epoch: called with each epoch's row (live learning curves).
        should_stop: polled after every step; True stops the training (Stop button).
        report: a job runner's ``report(phase, done, total, payload=None)``: phase counts,
            and each finished epoch's row as a payload.

    Raises:
        ValueError, FileNotFoundError, RuntimeError: bad data folder, species or backbone.
    """
    t0 = time.perf_counter()
    policy = policy or get_policy()
    birds, tr_pos, va_pos = load_split(config)
    backbone = backbone or create_backbone(config.backbone, policy)
    if backbone.name != config.backbone:
        raise ValueError(f"the loaded backbone is {backbone.name}, the config asks for {config.backbone}")
    if config.mode == "linear":
        run = _run_linear
    elif config.uses_cached_activations and cut_index(backbone, config.unfreeze_blocks) is not None:
        run = _run_cached
    else:
        run = _run_images
    token = _REPORT.set(report)
    try:
        return run(config, birds, tr_pos, va_pos, backbone, policy, t0, test_data, progress, on_epoch,
                   should_stop)
    finally:
        _REPORT.reset(token)


def transfer_job(config: TransferConfig, report: Callable[..., None]) -> TransferResult:
    """One run as a job of ``dltl_core.job_runner`` (its own process): ``fn(config, report)``.

    The process loads its own backbone (the server's shared one never leaves the
    server process); ``report`` gets each phase's counts and every finished epoch's
    row as a payload, so a stopped job still leaves its learning curve behind.
    """
    report("loading the pretrained backbone", 0, 0)
    backbone = create_backbone(config.backbone)
    return run_transfer(config, backbone=backbone, report=report)


def features_job(config: TransferConfig, report: Callable[..., None]) -> int:
    """Feature extraction of ``config``'s photos as a job (fills the disk cache); returns
    the number of photos extracted now (0 when another visitor's run had done it)."""
    report("loading the pretrained backbone", 0, 0)
    backbone = create_backbone(config.backbone)
    fs = ensure_features(config, backbone, progress=lambda d, t, m: report(m.split(":")[0], d, t))
    return fs.extracted


def compare_modes(base: TransferConfig, modes: Sequence[str] = MODES, **kwargs: Any) -> dict[str, TransferResult]:
    """Run several modes on the same split (same seed) for a side-by-side comparison."""
    from dataclasses import replace
    return {m: run_transfer(replace(base, mode=m), **kwargs) for m in modes}
