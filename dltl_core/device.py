"""The one device policy of the core: CUDA, else Apple MPS, else CPU; seeded runs.

On CUDA the core trains with autocast (bf16 where the card supports it, else
fp16 with a grad scaler) and channels_last for convolutional models; elsewhere
it runs in fp32. ``DLTL_DEVICE`` overrides the choice (e.g. ``cpu`` on a GPU
box to reproduce a laptop run).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

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
