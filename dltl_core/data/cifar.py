"""CIFAR-10 as uint8 tensors, and its on-device batch transforms.

Two sources, tried in order:

1. a local folder in ImageFolder layout, ``<data_dir>/train/<class>/*.jpg`` (the
   course's copy, ``../shared/cifar10``), decoded once by ``load_image_folder``
   and cached;
2. torchvision's ``CIFAR10`` (the official pickles in ``<data_dir>``), downloaded
   when missing and the machine is online.

Augmentation runs on the device, on whole batches: ``CifarAugment`` pads by 4,
takes a random 32x32 crop and a random horizontal flip per image, then
normalises. (torchvision's batched ``RandomCrop`` would crop every image of a
batch at the same place, hence the few lines below.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from dltl_core import cache
from dltl_core.data.folder import ImageSet, load_image_folder
from dltl_core.data.split import train_val_split

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MEAN = (0.4914, 0.4822, 0.4465)  # per-channel statistics of the CIFAR-10 training set
STD = (0.2470, 0.2435, 0.2616)


def default_data_dir() -> Path:
    """``$DLTL_CIFAR_DIR``, else ``<cache>/cifar10`` (where torchvision downloads to)."""
    env = os.environ.get("DLTL_CIFAR_DIR")
    return Path(env).expanduser() if env else cache.cache_dir() / "cifar10"


def _subset_per_class(x: torch.Tensor, y: torch.Tensor, k: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if k is None:
        return x, y
    keep = torch.cat([torch.nonzero(y == c).flatten()[:k] for c in torch.unique(y)]).sort().values
    return x[keep], y[keep]


def load_cifar10(data_dir: str | Path | None = None, *, split: str = "train",
                 max_per_class: int | None = None, download: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> ImageSet:
    """CIFAR-10 images as uint8 (N, 3, 32, 32) with labels.

    Args:
        data_dir: a folder holding ``<split>/<class>/*.jpg``, or torchvision's
            ``cifar-10-batches-py`` (default ``default_data_dir()``).
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
        max_per_class: keep the first this many images of each class (CPU demos).
        download: let torchvision download the official archive when it is missing.
        progress: ``progress(done, total)`` while a folder is first decoded.

    Raises:
        ValueError: bad split or subset size.
        RuntimeError: no local copy and the download failed (offline), with what to do.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if max_per_class is not None and max_per_class < 1:
        raise ValueError(f"max_per_class must be at least 1, got {max_per_class}")
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if (root / split).is_dir():
        return load_image_folder(root / split, max_per_class=max_per_class, progress=progress)
    from torchvision.datasets import CIFAR10

    try:
        ds = CIFAR10(str(root), train=split == "train", download=download)
    except Exception as err:  # URLError, OSError, RuntimeError ("not found") — all mean "no data"
        where = f"{root}/{split}/<class>/*.jpg"
        raise RuntimeError(
            f"CIFAR-10 is not in {root} and {'could not be downloaded' if download else 'downloading is off'} "
            f"({type(err).__name__}: {err}). Are you offline? Put the images in {where} "
            "(e.g. ../shared/cifar10) and pass that folder as the data directory."
        ) from err
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N,32,32,3) -> (N,3,32,32)
    y = torch.tensor(ds.targets, dtype=torch.int64)
    x, y = _subset_per_class(x, y, max_per_class)
    return ImageSet(x, y, list(ds.classes), [f"{root}/cifar-10-batches-py#{i}" for i in range(len(y))])


def cifar_splits(data_dir: str | Path | None = None, *, max_per_class: int | None = None,
                 val_fraction: float = 0.1, seed: int = 0
                 ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], list[str]]:
    """The seeded train/validation split of CIFAR-10's training images (45,000/5,000 by default).

    The official test images are kept for the final judgement; validation comes
    out of ``train``. Returns ``(train, val, classes)`` with uint8 images.
    """
    data = load_cifar10(data_dir, max_per_class=max_per_class)
    tr, va = train_val_split(len(data.y), val_fraction, seed)
    return (data.x[tr], data.y[tr]), (data.x[va], data.y[va]), data.classes


def normalize_batch(x: torch.Tensor, training: bool = False) -> torch.Tensor:
    """uint8 (N,3,H,W) -> float, scaled to [0,1] and standardised per channel (no augmentation)."""
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x.float() / 255.0 - mean) / std


class CifarAugment:
    """Batch transform for ``fit``: random crop (padding 4) and flip when training, then normalise.

    Runs on the batch's device with its own seeded generator, so a run's
    augmentations depend only on ``seed`` (and the device).

    Args:
        seed: seed of the augmentation generator.
        padding: zero padding before the random crop.
        flip: random horizontal flips.
    """

    def __init__(self, seed: int = 0, padding: int = 4, flip: bool = True) -> None:
        self.seed, self.padding, self.flip = seed, padding, flip
        self._gens: dict[str, torch.Generator] = {}

    def _gen(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._gens[key]

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        if training:
            x = self.augment(x)
        return normalize_batch(x)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """Random crop and flip of a uint8 batch (N,C,H,W), one draw per image."""
        n, c, h, w = x.shape
        gen, p = self._gen(x.device), self.padding
        if p > 0:
            xp = F.pad(x, (p, p, p, p))  # (N, C, H+2p, W+2p), zeros
            dy = torch.randint(0, 2 * p + 1, (n,), device=x.device, generator=gen)
            dx = torch.randint(0, 2 * p + 1, (n,), device=x.device, generator=gen)
            rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N,1,H,1)
            cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N,1,1,W)
            x = xp[torch.arange(n, device=x.device)[:, None, None, None],
                   torch.arange(c, device=x.device)[None, :, None, None], rows, cols]  # (N,C,H,W)
        if self.flip:
            flip = torch.rand(n, device=x.device, generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x
