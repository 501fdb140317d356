"""Size limits that several configs and commands share, declared once as ``Setting``s."""

from __future__ import annotations

from dltl_core.settings import Setting

# Images per class of a folder or CIFAR-10 data set (train --max-per-class, DataSpec.max_per_class):
# 100,000 is twice ImageNet's largest class.
PER_CLASS = Setting("images per class", lo=1, hi=100_000)

__all__ = ["PER_CLASS"]
