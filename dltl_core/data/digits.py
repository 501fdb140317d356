"""scikit-learn's bundled 8x8 handwritten digits: the course's default image set.

Real data that ships with scikit-learn (no download): 1,797 grey images of the
digits 0-9, 8x8 pixels with 17 grey levels (0..16).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

DIGIT_CLASSES = [str(d) for d in range(10)]
N_DIGITS = 1797  # scikit-learn's bundled set
# The lessons' split of the digits: 20 % validation, the rest (1,438 images) for training.
DIGITS_VAL_FRACTION = 0.2
DIGITS_TRAIN = N_DIGITS - int(round(N_DIGITS * DIGITS_VAL_FRACTION))  # as train_val_split rounds


@lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    # scikit-learn's own file, read the way sklearn.datasets.load_digits reads it, without
    # importing scikit-learn (seconds on a first page load; tests compare the two).
    spec = importlib.util.find_spec("sklearn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits as sk_load_digits

        bunch = sk_load_digits()
        return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)
    data = np.loadtxt(path, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0, data[:, -1].astype(np.int64)


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits as tensors.

    Returns:
        ``(x, y)``: ``x`` float32 (1797, 1, 8, 8) scaled to [0, 1]; ``y`` int64 (1797,)
        labels 0..9. Fresh copies: callers may modify them.
    """
    images, labels = _load()
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 8, 8) -> (N, 1, 8, 8)
    return x, torch.from_numpy(labels.copy())
