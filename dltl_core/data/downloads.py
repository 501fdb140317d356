"""torchvision's MNIST, Fashion-MNIST and CIFAR-10, as uint8 tensors, when online.

The files are downloaded once into ``<cache>/torchvision`` (or ``root``). Offline,
the loader says so clearly instead of hanging or dumping a traceback; the
course's offline defaults are the bundled digits and local image folders.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.parse
from pathlib import Path

import torch

from dltl_core import cache
from dltl_core.data.folder import ImageSet

DOWNLOADS: dict[str, str] = {
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
}


def _dataset_class(name: str):
    from torchvision import datasets

    return {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST,
            "cifar10": datasets.CIFAR10}[name]


def _first_host(cls) -> str:
    urls = list(getattr(cls, "mirrors", [])) + [getattr(cls, "url", "")]
    return urllib.parse.urlparse(next(u for u in urls if u)).hostname or ""


def _reachable(host: str, timeout: float) -> str | None:
    """None if ``host:443`` answers, else the reason."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return None
    except OSError as err:
        return str(err) or type(err).__name__


def load_download(name: str, train: bool = True, root: str | Path | None = None,
                  download: bool = True, timeout: float = 5.0) -> ImageSet:
    """Load a torchvision data set as tensors, downloading it if needed and possible.

    Args:
        name: a key of ``DOWNLOADS`` (``mnist``, ``fashion_mnist``, ``cifar10``).
        train: the training split (else the test split).
        root: where the files live (default ``<dltl cache>/torchvision``).
        download: allow downloading when the files are missing.
        timeout: seconds to wait for the download server before giving up.

    Returns:
        an ``ImageSet`` with ``x`` uint8 (N, C, H, W) (C = 1 for MNIST-likes, 3 for CIFAR),
        ``y`` int64 labels and the class names (``files`` is empty).

    Raises:
        ValueError: unknown name.
        RuntimeError: the files are missing and cannot be downloaded (offline), with
            what to do instead.
    """
    if name not in DOWNLOADS:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DOWNLOADS)}")
    label = DOWNLOADS[name]
    root = Path(root) if root is not None else cache.cache_dir() / "torchvision"
    cls = _dataset_class(name)
    try:
        ds = cls(str(root), train=train, download=False)  # already there: no network at all
    except RuntimeError:
        offline_help = (f"Offline, use the bundled 8x8 digits or an image folder, or copy the "
                        f"{label} files into {root}.")
        if not download:
            raise RuntimeError(f"{label} is not in {root} and downloading is off. {offline_help}") from None
        host = _first_host(cls)
        why = _reachable(host, timeout)
        if why is not None:
            raise RuntimeError(f"cannot download {label}: the internet is not reachable "
                               f"({host}: {why}). {offline_help}") from None
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(max(timeout, 30.0))
        try:
            ds = cls(str(root), train=train, download=True)
        except (OSError, RuntimeError, urllib.error.URLError) as err:
            raise RuntimeError(f"downloading {label} failed ({err}). {offline_help}") from None
        finally:
            socket.setdefaulttimeout(old)
    data = ds.data
    if isinstance(data, torch.Tensor):  # MNIST-likes: (N, 28, 28) uint8
        x = data.unsqueeze(1).contiguous()
    else:  # CIFAR-10: numpy (N, 32, 32, 3)
        x = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()
    y = torch.as_tensor(ds.targets, dtype=torch.int64)
    return ImageSet(x, y, list(ds.classes), [], [])
