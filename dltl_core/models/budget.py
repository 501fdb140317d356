"""Will a model fit in this machine's memory? Estimates made before anything is allocated.

A model's size is the product of in-bound settings (depth x width², channels²...), so
values that are each fine alone can ask for tens of GB together; the kernel's OOM
killer then ends the process with no message. ``check_fits`` refuses such a request up
front with one sentence naming the need and what the machine has.

The free memory is the smaller of the kernel's ``MemAvailable`` and the machine's limit as
``dltl_core.budget`` reads it (cgroup, ``MemTotal``, or the operator's ``DLTL_MEMORY_MB``).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from dltl_core import budget as machine

FLOAT_BYTES = 4  # float32 weights and activations
# Training keeps per weight: the weight, its gradient and Adam's two moments.
TRAIN_COPIES = 4
# Autograd keeps about one copy of each layer's output for backward; the gradients flowing
# back live one layer at a time.
ACTIVATION_COPIES = 1
USABLE_SHARE = 0.8  # leave room for the interpreter, the data and the allocator's slack
def available_bytes() -> int:
    """Memory this process may still take: the kernel's estimate, within the machine's limit.

    The limit is read by ``dltl_core.budget`` (the one place that reads cgroups, ``/proc/meminfo``
    and ``DLTL_MEMORY_MB``): a stated ``DLTL_MEMORY_MB`` caps the free memory outright; a cgroup
    limit counts what this process already holds privately.
    """
    found: list[float] = []
    avail = machine.meminfo_mb().get("MemAvailable")
    if avail:
        found.append(avail * machine.MB)
    limit_mb, source = machine.machine_limit()
    if math.isfinite(limit_mb) and source == machine.MEMORY_ENV:
        found.append(limit_mb * 1e6)  # as the operator typed it: messages print decimal MB
    elif math.isfinite(limit_mb):
        found.append(max(0.0, limit_mb - machine.process_memory().private) * machine.MB)
    return int(min(found)) if found else 2**62


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
