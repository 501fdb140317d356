"""Will a model fit in this machine's memory? Estimates made before anything is allocated.

A model's size is the product of in-bound settings (depth x width², channels²...), so
values that are each fine alone can ask for tens of GB together; the kernel's OOM
killer then ends the process with no message. ``check_fits`` refuses such a request up
front with one sentence naming the need and what the machine has.

The free memory is the smaller of the container's limit (cgroup v2 ``memory.max`` minus
``memory.current``) and the kernel's ``MemAvailable``; ``DLTL_MEMORY_MB`` caps it (an
operator's setting, e.g. on a shared machine).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

FLOAT_BYTES = 4  # float32 weights and activations
# Training keeps per weight: the weight, its gradient and Adam's two moments.
TRAIN_COPIES = 4
# Autograd keeps about one copy of each layer's output for backward; the gradients flowing
# back live one layer at a time.
ACTIVATION_COPIES = 1
USABLE_SHARE = 0.8  # leave room for the interpreter, the data and the allocator's slack
MEMORY_ENV = "DLTL_MEMORY_MB"
_CGROUP = Path("/sys/fs/cgroup")


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_bytes() -> int:
    """Memory this process may still take: container limit, kernel estimate, operator cap."""
    found: list[int] = []
    limit, used = _read_int(_CGROUP / "memory.max"), _read_int(_CGROUP / "memory.current")
    if limit is not None and used is not None:
        found.append(max(0, limit - used))
    avail = _meminfo_available()
    if avail is not None:
        found.append(avail)
    cap = os.environ.get(MEMORY_ENV, "").strip()
    try:
        if cap and float(cap) > 0:
            found.append(int(float(cap) * 1e6))  # MB as gigabytes() prints them
    except ValueError:
        pass  # a malformed cap is ignored rather than refusing every model
    return min(found) if found else 2**62


def free_bytes_on(device: torch.device | str) -> int:
    """Free memory where a model will train: the GPU's own memory for CUDA, else the host's."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return available_bytes()


def gigabytes(n_bytes: float) -> str:
    """``1.2 GB`` / ``340 MB``: a size in words."""
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.0f} MB"


def check_fits(n_bytes: float, what: str, advice: str = "", available: int | None = None) -> None:
    """Refuse work that needs more than the usable share of the free memory.

    Args:
        n_bytes: the estimated need.
        what: what needs it, as the subject of the message ("training this MLP").
        advice: what to change, appended to the message ("use a smaller --width").
        available: the free memory (default: ``available_bytes()``).

    Raises:
        ValueError: one sentence naming the need and the free memory.
    """
    free = available_bytes() if available is None else available
    if not math.isfinite(n_bytes) or n_bytes > USABLE_SHARE * free:
        need = gigabytes(n_bytes) if math.isfinite(n_bytes) else "more memory than any machine has"
        raise ValueError(f"{what} needs about {need}; this machine has {gigabytes(free)} free"
                         + (f": {advice}" if advice else ""))


def training_bytes(params: int, activations_per_sample: int = 0, batch_size: int = 0) -> int:
    """Weights, gradients, optimizer state, and the activations of one batch kept for backward."""
    return FLOAT_BYTES * (TRAIN_COPIES * params + ACTIVATION_COPIES * activations_per_sample * batch_size)


def meta_activations(build: Callable[[], nn.Module], input_shape: Sequence[int]) -> tuple[int, int]:
    """(parameters, activation values per sample) of a model, counted on the ``meta`` device.

    Nothing is allocated or initialised: a DenseNet at width 4 is counted in milliseconds.
    Each leaf module's output counts once (what autograd keeps for the backward pass).
    """
    with torch.device("meta"):
        model = build()
        total = 0

        def hook(_m: nn.Module, _i: object, out: object) -> None:
            nonlocal total
            if isinstance(out, torch.Tensor):
                total += out[0].numel()

        hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
        try:
            with torch.no_grad():
                model(torch.empty(1, *input_shape))
        finally:
            for h in hooks:
                h.remove()
    return sum(p.numel() for p in model.parameters()), total


__all__ = ["available_bytes", "check_fits", "free_bytes_on", "gigabytes", "meta_activations", "training_bytes"]
