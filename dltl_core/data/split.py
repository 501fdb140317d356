"""The seeded train/validation split (default 80/20)."""

from __future__ import annotations

import torch

from dltl_core.settings import Setting, problem

# The validation share: 1 would leave no training sample (read by the split and train --val-fraction).
VAL_FRACTION = Setting("validation fraction", lo=0.0, hi=1.0, below=True)


def train_val_split(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a seeded random split of ``n`` samples.

    Args:
        n: number of samples (>= 1).
        val_fraction: share of samples held out for validation, in [0, 1).
            ``round(n * val_fraction)`` samples go to validation (possibly 0).
        seed: the permutation's seed; the same seed gives the same split.

    Returns:
        ``(train_idx, val_idx)``: int64 index tensors, disjoint, covering ``range(n)``.

    Raises:
        ValueError: ``n < 1`` or ``val_fraction`` outside [0, 1), or no training sample left.
    """
    if n < 1:
        raise ValueError("there is no data to split (0 samples)")
    msg = problem("val_fraction", VAL_FRACTION, val_fraction, float)
    if msg:
        raise ValueError(msg)
    n_val = int(round(n * val_fraction))
    if n_val >= n:
        raise ValueError(f"a validation fraction of {val_fraction:.0%} leaves no training sample out of {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:], perm[:n_val]


def split_tensors(
    x: torch.Tensor, y: torch.Tensor, val_fraction: float = 0.2, seed: int = 0
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Split ``(x, y)`` into ``(train, val)`` pairs with ``train_val_split``.

    The validation pair may be empty (0 rows) when ``val_fraction`` is 0 or tiny;
    ``dltl_core.train.fit`` treats an empty validation set as none.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
    tr, va = train_val_split(len(x), val_fraction, seed)
    return (x[tr], y[tr]), (x[va], y[va])
