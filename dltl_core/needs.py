"""The memory each heavy visitor action needs, from measurements (kept here as data).

Every heavy action of the pages runs as a job (``dltl_core.job_runner``) and states its need
before it starts, so a server can say "Training from scratch needs about 2.6 GB; this
server has 1.1 GB free" instead of starting it and being killed (``dltl_core.budget``).

How the figures were measured: ``bench/bench_job_memory.py`` runs each action as a real
job of the job runner, samples the job's private memory (``RssAnon + RssShmem``) every
50 ms, and stops it after its first training steps (the peak comes once the data is
decoded, the model built and one full batch went forward and backward). Results, the
machine and the load are in ``bench/job_memory_results.json`` (torch 2.14.1 CUDA build on
a 2-core CPU, 2026-12-01). Each formula below is the measured peak split into the parts
that scale with a setting (photos, image size, batch, width), the coefficient fitted to
the measurements it names; a 10% margin covers what one run does not show.

All figures are MB of private memory of the job process, its imports included.
"""

from __future__ import annotations

import functools
import math

MARGIN = 1.10
# ``import torch`` in a job process (CUDA build on a CPU machine): 280 MB (``idle``).
JOB_BASE_MB = 280.0
# torch + timm + the pretrained EfficientNet-Lite0 loaded in the job: 429 MB.
BACKBONE_MB = 430.0
# Feature extraction of 388 photos: 526 MB peak, of which 14 MB are the photos' cached
# activations (37 KB each); the rest (decoding, the forward pass) does not grow with photos.
EXTRACT_FIXED_MB = 512.0
ACTIVATION_KB_224 = 36.75  # EfficientNet-Lite0's frozen stages' output per photo (192x7x7 float32)
# Scratch / end-to-end fine-tuning: the photos decoded as uint8 (twice: all, and the training
# rows), a fixed part, and the activations of one batch of 16 at 224 px, which scale with the
# image's area. Measured (388 photos, batch 16): scratch 2,220 MB at 224 px, 1,308 at 160,
# 817 at 96 (2,779 / 1,878 / 1,380 MB RSS); end-to-end fine-tuning 2,004 MB at 224 px.
IMAGE_FIXED_MB = 110.0
IMAGE_BATCH_MB_224 = {"scratch": 1640.0, "finetune": 1420.0}
# Fine-tuning the last stages on cached activations (batch 32): 620 MB measured at 224 px.
CACHED_BATCH_MB = 170.0
# /arch Measure (batch 16): a fixed part, the parameters (weights, gradients, momentum, copies)
# and the saved activations (the sum of every layer's output). Fitted to ResNet-18 (625 MB),
# VGG-16 (615), DenseNet-121 (1,177) at width 1, ResNet-34 at width 2 (1,711) and the issue's
# DenseNet-121 at width 2 (2,480 MB RSS, about 1,920 private), rounded up.
ARCH_FIXED_MB = 150.0
ARCH_PARAM_FACTOR = 3.0
ARCH_ACTIVATION_FACTOR = 1.0
# MLP lessons (AdamW: weights, gradients, two moments, the best weights kept): 5 copies of the
# weights. /overfit at depth 5, width 4,096 on the digits (67 M weights): 1,564 MB in its first
# 60 s (formula: 1,780 MB with the margin).
MLP_PARAM_FACTOR = 5.0
# The /layers comparison (four small digit models): 392 MB in the first 60 s of a 200-epoch job
# (measured under a load of 15 on 2 cores: a first figure, not the whole run's peak).
LAYERS_MB = 420.0


def _mb(nbytes: float) -> float:
    return nbytes / 2**20


def _round(mb: float) -> float:
    """The need with its margin, rounded up to 10 MB (figures are estimates, not promises)."""
    return math.ceil(mb * MARGIN / 10) * 10


def extraction(n_photos: int) -> float:
    """Feature extraction of ``n_photos`` photos (``features_job``)."""
    return _round(EXTRACT_FIXED_MB + n_photos * ACTIVATION_KB_224 / 1024)


def transfer(mode: str, n_photos: int, image_size: int = 224, batch_size: int = 16,
             cached: bool = False) -> float:
    """A transfer job: ``linear`` (a map of the features), ``finetune`` (on cached activations
    when ``cached``, else end to end on the photos) or ``scratch``.

    Args:
        mode: ``linear``, ``finetune`` or ``scratch``.
        n_photos: photos of the run (train + validation).
        image_size: the crop size (photos are kept decoded at ``size / 0.875``).
        batch_size: the training batch.
        cached: fine-tuning the last stages on cached activations.
    """
    scale = (image_size / 224) ** 2
    if mode == "linear":
        return _round(BACKBONE_MB + n_photos * 6 / 1024 + 50)  # 1280 floats per photo, t-SNE's matrices
    if mode == "finetune" and cached:
        acts = 2 * n_photos * ACTIVATION_KB_224 * scale / 1024
        return _round(BACKBONE_MB + acts + CACHED_BATCH_MB * batch_size / 32 * scale)
    stored = math.floor(image_size / 0.875)
    photos = _mb(2 * n_photos * 3 * stored * stored)
    batch = IMAGE_BATCH_MB_224.get(mode, IMAGE_BATCH_MB_224["scratch"]) * batch_size / 16 * scale
    return _round(BACKBONE_MB + IMAGE_FIXED_MB + photos + batch)


@functools.lru_cache(maxsize=256)
def _arch_sizes(name: str, width: float) -> tuple[float, float]:
    """(parameters in MB, every layer's output for one 32x32 image in MB), from shapes only."""
    import torch

    from dltl_core.profile import INPUT_SHAPE, count_params, meta_arch

    model = meta_arch(name, width)
    total = [0]

    def count(_mod, _inp, out) -> None:
        if isinstance(out, torch.Tensor):
            total[0] += out.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty(1, *INPUT_SHAPE, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return _mb(count_params(model) * 4), _mb(total[0] * 4)


def arch_measure(name: str, width: float, batch_size: int = 16) -> float:
    """/arch Measure of one architecture at ``width`` (``measure_job``: a few training batches)."""
    params, acts = _arch_sizes(name, float(width))
    return _round(JOB_BASE_MB + ARCH_FIXED_MB + ARCH_PARAM_FACTOR * params
                  + ARCH_ACTIVATION_FACTOR * acts * batch_size)


def mlp(in_features: int, depth: int, width: int, classes: int, n_train: int, batch_size: int = 32) -> float:
    """An MLP lesson run (/overfit): parameters and one batch's activations."""
    widths = [in_features] + [width] * depth + [classes]
    weights = sum(a * b + b for a, b in zip(widths, widths[1:]))
    acts = 3 * batch_size * sum(widths) + n_train * (in_features + classes)
    return _round(JOB_BASE_MB + _mb(MLP_PARAM_FACTOR * 4 * weights + 4 * acts))


def layers() -> float:
    """The /layers comparison (four digit models), whatever the epochs."""
    return _round(LAYERS_MB)


__all__ = ["arch_measure", "extraction", "layers", "mlp", "transfer"]
