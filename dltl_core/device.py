"""The one device policy of the core: CUDA, else Apple MPS, else CPU; seeded runs.

On CUDA the core trains with autocast (bf16 where the card supports it, else
fp16 with a grad scaler) and channels_last for convolutional models; elsewhere
it runs in fp32. ``DLTL_DEVICE`` overrides the choice (e.g. ``cpu`` on a GPU
box to reproduce a laptop run).
"""

from __future__ import annotations

import os
import random
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch


@dataclass(frozen=True)
class DevicePolicy:
    """How the core runs on one device.

    Attributes:
        device: the torch device.
        amp_dtype: dtype for ``torch.autocast``, or None for full fp32.
        channels_last: whether 4-D activations use the channels_last layout.
        pin_memory: whether host tensors are pinned for non-blocking copies.
    """

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    pin_memory: bool

    @property
    def name(self) -> str:
        """Human-readable device name (e.g. ``cuda (NVIDIA H100)`` or ``cpu``)."""
        if self.device.type == "cuda":
            return f"cuda ({torch.cuda.get_device_name(self.device)})"
        return self.device.type

    def autocast(self) -> torch.autocast:
        """An autocast context for this device (a no-op context when AMP is off)."""
        return torch.autocast(
            device_type=self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )


def get_policy(prefer: str | None = None) -> DevicePolicy:
    """Pick the device policy.

    Args:
        prefer: ``"cuda"``, ``"mps"`` or ``"cpu"`` to force a device; defaults to
            the ``DLTL_DEVICE`` environment variable, then auto-detection.
    """
    choice = (prefer or os.environ.get("DLTL_DEVICE") or "auto").lower()
    if choice in ("auto", "cuda") and torch.cuda.is_available():
        dev = torch.device("cuda")
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return DevicePolicy(dev, amp, channels_last=True, pin_memory=True)
    mps = getattr(torch.backends, "mps", None)
    if choice in ("auto", "mps") and mps is not None and mps.is_available():
        return DevicePolicy(torch.device("mps"), None, channels_last=False, pin_memory=False)
    return DevicePolicy(torch.device("cpu"), None, channels_last=False, pin_memory=False)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same.

    Passing the returned generator to samplers and initialisers keeps a run
    reproducible even when other code draws random numbers in between.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# One lock per process: torch's, NumPy's and Python's global generators are shared by
# every thread (every visitor session of a Streamlit server), so seeded work must take
# turns or two runs change each other's results. Re-entrant: fit may call seeded()
# inside a caller's seeded() block.
_SEED_LOCK = threading.RLock()


@contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Run a block alone in this process with every global generator seeded by ``seed``.

    Threads that enter ``seeded`` take turns (a module ``RLock``), so a run started
    beside another one draws exactly the random numbers it would draw alone. Work
    that must run in parallel belongs in separate processes (``dltl_core.job_runner``).

    Args:
        seed: the seed for Python's ``random``, NumPy and torch (all devices).

    Yields:
        A CPU ``torch.Generator`` seeded the same (see ``seed_everything``).

    Example:
        >>> with seeded(0) as gen:
        ...     x = torch.randn(3)
    """
    with _SEED_LOCK:
        yield seed_everything(seed)
