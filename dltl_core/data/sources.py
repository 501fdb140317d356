"""One entry point for every data set by name, for the command line and the lessons."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dltl_core.data.digits import DIGIT_CLASSES, load_digits
from dltl_core.data.downloads import DOWNLOADS, load_download
from dltl_core.data.folder import load_image_folder
from dltl_core.data.synthetic import SYNTHETIC, make_2d
from dltl_core.settings import Setting, problem

LABEL_NOISE = Setting("label noise", lo=0.0, hi=1.0)  # share of flipped labels (train --label-noise)

DATASETS: dict[str, str] = {"digits": "Digits (8x8, bundled)", **SYNTHETIC, **DOWNLOADS,
                            "folder": "Image folder"}


@dataclass
class Dataset:
    """A whole data set in memory.

    Attributes:
        x: inputs: float (N, 2) points, float (N, 1, 8, 8) digits, or uint8 images (N, C, H, W).
        y: int64 labels (N,).
        classes: class names.
        name: the data set's key.
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. (2,) or (1, 8, 8)."""
        return tuple(self.x.shape[1:])

    @property
    def in_features(self) -> int:
        """Number of input values once flattened (for an MLP)."""
        return int(self.x[0].numel())


def load_dataset(name: str, *, n: int = 400, noise: float = 0.2, label_noise: float = 0.0, seed: int = 0,
                 folder: str | None = None, image_size: int | None = None,
                 max_per_class: int | None = None) -> Dataset:
    """Load a data set by name.

    Args:
        name: a key of ``DATASETS``.
        n, noise, label_noise: size and noise of the 2-D sets (label noise also applies to
            the image sets: that share of labels is replaced by a random other class).
        seed: seed of the 2-D points and of the label noise.
        folder: the image folder when ``name == "folder"``.
        image_size: resize folder images to this (see ``load_image_folder``).
        max_per_class: at most this many folder images per class.

    Raises:
        ValueError: unknown name or bad arguments; RuntimeError: a download that
        cannot happen offline; FileNotFoundError: a missing folder.
    """
    if name in SYNTHETIC:
        x, y = make_2d(name, n=n, noise=noise, label_noise=label_noise, seed=seed)
        return Dataset(x, y, ["class 0", "class 1"], name)
    if name == "digits":
        x, y, classes = *load_digits(), DIGIT_CLASSES
    elif name in DOWNLOADS:
        s = load_download(name)
        x, y, classes = s.x, s.y, s.classes
    elif name == "folder":
        if not folder:
            raise ValueError("give the image folder's path (--folder)")
        s = load_image_folder(folder, size=image_size, max_per_class=max_per_class)
        x, y, classes = s.x, s.y, s.classes
    else:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    if label_noise > 0:
        y = noisy_labels(y, len(classes), label_noise, seed)
    return Dataset(x, y, list(classes), name)


def noisy_labels(y: torch.Tensor, num_classes: int, share: float, seed: int) -> torch.Tensor:
    """Replace ``share`` of the labels by a different class, chosen at random (seeded)."""
    msg = problem("label_noise", LABEL_NOISE, share, float)
    if msg:
        raise ValueError(msg)
    g = torch.Generator().manual_seed(seed)
    y = y.clone()
    idx = torch.randperm(len(y), generator=g)[: int(round(share * len(y)))]
    # Adding 1..C-1 modulo C always lands on another class.
    y[idx] = (y[idx] + torch.randint(1, num_classes, (len(idx),), generator=g)) % num_classes
    return y
