"""Photos as tensors: decoding and resizing in parallel, batching, and decoded images kept on disk.

Decoding and resizing run in parallel with the consumer (a forward pass): in
``torch.utils.data.DataLoader`` worker processes (pinned memory on CUDA) when the
machine has cores to spare, else in one background thread (PIL releases the GIL),
which is what a 2-core laptop does best. Workers return uint8 crops (4x less to copy
than floats); the scaling to [0, 1] and the normalisation run on the device, with
exactly torchvision's arithmetic (``split_transform`` + ``device_normalize``).

A file that fails to decode is not an error: it comes back as its position and the
reason, for the caller to report. ``dltl_core.features`` caches what a backbone makes
of these batches; ``load_image_tensors`` keeps the decoded photos themselves (for
fine-tuning and training from scratch, which crop them on the device per batch).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from dltl_core.cache import cache_dir, config_key, load_tensors, save_tensors
from dltl_core.images import ImageError, open_rgb
from dltl_core.progress import eta_text

ProgressFn = Callable[[int, int, str], None]  # (images done, images total, message)
Batch = tuple[list[int], "Tensor | None", list[tuple[int, str]]]  # (positions, uint8/float batch, bad)
_IMAGES_VERSION = 1
_MAX_WORKERS = 12


def file_fingerprint(files: Sequence[str]) -> list[tuple[str, int, int]]:
    """(path, mtime_ns, size) of each file; missing files get -1s (and a new key once they appear)."""
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((str(f), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(f), -1, -1))
    return out


def split_transform(transform: Callable) -> tuple[Callable, Tensor | None, Tensor | None]:
    """(PIL -> uint8 tensor transform, mean, std) when ``transform`` ends in ToTensor + Normalize.

    The resize and crop stay in the decode workers; ``device_normalize`` then
    does ToTensor's ``/ 255`` and Normalize's ``(x - mean) / std`` on the device,
    the same operations in the same order. Any other transform is returned as is
    (workers then send floats) with ``None`` for mean and std.
    """
    steps = list(getattr(transform, "transforms", []))
    if len(steps) >= 2 and isinstance(steps[-1], T.Normalize) and type(steps[-2]).__name__ in (
            "ToTensor", "MaybeToTensor"):
        norm = steps[-1]
        mean = torch.as_tensor(norm.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.as_tensor(norm.std, dtype=torch.float32).view(1, -1, 1, 1)
        return T.Compose(steps[:-2] + [T.PILToTensor()]), mean, std
    return transform, None, None


def device_normalize(x: Tensor, mean: Tensor | None, std: Tensor | None) -> Tensor:
    """uint8 (B, 3, H, W) on the device -> normalised float32 (floats pass through)."""
    if mean is None or x.dtype != torch.uint8:
        return x
    return x.float().div(255).sub_(mean.to(x.device)).div_(std.to(x.device))


def _decode(path: str, transform: Callable) -> Tensor | str:
    """A preprocessed (3, H, W) tensor, or the reason the file is unusable."""
    try:
        return transform(open_rgb(path))
    except ImageError as err:
        return str(err).split(": ", 1)[-1]
    except (OSError, ValueError) as err:  # e.g. a file deleted between listing and reading
        return f"unreadable ({err})"


class _PhotoSet(Dataset):
    """Photos by position: ``(position, tensor or reason)``; picklable for worker processes."""

    def __init__(self, files: Sequence[str], transform: Callable) -> None:
        self.files, self.transform = [str(f) for f in files], transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, Tensor | str]:
        return i, _decode(self.files[i], self.transform)


def _collate(items: list[tuple[int, Tensor | str]]) -> Batch:
    ok = [(i, t) for i, t in items if not isinstance(t, str)]
    bad = [(i, t) for i, t in items if isinstance(t, str)]
    x = torch.stack([t for _, t in ok]) if ok else None
    return [i for i, _ in ok], x, bad


def decode_workers(policy: DevicePolicy | None = None) -> int:
    """Decode worker processes for this machine (``DLTL_DECODE_WORKERS`` overrides).

    On 4+ cores: one per core but one (at most 12); on 1-2 cores none, because the
    forward pass needs them and one background thread keeps up with it there.
    """
    env = os.environ.get("DLTL_DECODE_WORKERS", "").strip()
    if env.isdigit():
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cores <= 2 else min(_MAX_WORKERS, cores - 1)


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers fork from a clean single-threaded server that imported this module
    # once, so they start fast and never inherit a lock held by a web-server thread (fork would).
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["dltl_core.photos"])
        return ctx
    return multiprocessing.get_context("spawn")


def _thread_batches(files: Sequence[str], transform: Callable, batch_size: int) -> Iterator[Batch]:
    """Decode in one background thread (PIL releases the GIL) while the caller runs the model.

    At most two batches are decoded ahead: an unbounded queue would hold every photo.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        window = 2 * batch_size
        pending: deque = deque(pool.submit(_decode, f, transform) for f in files[:window])
        nxt = len(pending)
        items: list[tuple[int, Tensor | str]] = []
        for i in range(len(files)):
            items.append((i, pending.popleft().result()))
            if nxt < len(files):
                pending.append(pool.submit(_decode, files[nxt], transform))
                nxt += 1
            if len(items) == batch_size or i == len(files) - 1:
                yield _collate(items)
                items = []


def photo_batches(files: Sequence[str], transform: Callable, batch_size: int, workers: int = 0,
                  pin_memory: bool = False) -> Iterator[Batch]:
    """Decoded batches ``(positions, stacked tensors or None, [(position, reason)])``, in order.

    Args:
        files: photo paths.
        transform: PIL image -> tensor (e.g. ``split_transform(...)[0]``).
        batch_size: photos per batch.
        workers: DataLoader worker processes; 0 decodes in one background thread.
        pin_memory: pin batches for non-blocking copies to a GPU.
    """
    files = [str(f) for f in files]
    if not files:
        return
    if workers <= 0:
        yield from _thread_batches(files, transform, batch_size)
        return
    loader = DataLoader(_PhotoSet(files, transform), batch_size=batch_size, num_workers=workers,
                        collate_fn=_collate, pin_memory=pin_memory, prefetch_factor=4,
                        multiprocessing_context=_mp_context())
    yield from loader


# --------------------------------------------------------------------------- images as tensors

def train_image_size(data_config: dict, image_size: int | None = None) -> tuple[int, int]:
    """(stored size, crop size) for training on images: the eval resize of the backbone's
    data config (``input / crop_pct``), or the same ratio around a smaller ``image_size``."""
    crop = int(image_size or data_config["input_size"][-1])
    stored = int(math.floor(crop / data_config.get("crop_pct", 1.0)))
    return stored, crop


def load_image_tensors(files: Sequence[str], data_config: dict, image_size: int | None = None,
                       progress: ProgressFn | None = None, workers: int | None = None,
                       ) -> tuple[Tensor, list[int], list[tuple[str, str]]]:
    """Decode photos once into uint8 (N, 3, S, S): shorter side resized to S, centre square.

    The model's crop (random when training, centre when evaluating) happens later,
    on the device, per batch. Cached on disk keyed by the file list and sizes.
    Decoding runs in parallel (see ``photo_batches``), with an ETA in the messages.

    Returns:
        (images, positions of the files that decoded, skipped (path, reason)).
    """
    stored, _ = train_image_size(data_config, image_size)
    interp = TF.InterpolationMode(data_config.get("interpolation", "bilinear"))
    key = config_key("images", _IMAGES_VERSION, stored, interp.value, file_fingerprint(files))
    path = cache_dir() / "images" / f"{key}.pt"
    hit = load_tensors(path)
    if hit is not None:
        return hit["x"], hit["ok"], [tuple(s) for s in hit["skipped"]]
    transform = T.Compose([T.Resize(stored, interpolation=interp), T.CenterCrop(stored), T.PILToTensor()])
    out = torch.zeros(len(files), 3, stored, stored, dtype=torch.uint8)
    ok: list[int] = []
    skipped: list[tuple[str, str]] = []
    done, t0 = 0, time.perf_counter()
    workers = decode_workers() if workers is None else workers
    for idx, x, bad in photo_batches(files, transform, 32, workers):
        if x is not None:
            out[idx] = x
            ok += idx
        skipped += [(str(files[i]), why) for i, why in bad]
        done += len(idx) + len(bad)
        if progress:
            progress(done, len(files), f"decoding photos: {done}/{len(files)}{eta_text(done, len(files), t0)}")
    x = out[ok]
    save_tensors(path, {"x": x, "ok": ok, "skipped": [list(s) for s in skipped]})
    return x, ok, skipped


def make_batch_transform(data_config: dict, crop: int, augment: bool,
                         seed: int = 0) -> Callable[[Tensor, bool], Tensor]:
    """uint8 (B, 3, S, S) on the device -> normalized float (B, 3, crop, crop).

    Training with ``augment``: a random crop and a random horizontal flip per
    photo; otherwise the centre crop (what the backbone's eval transform does).
    """
    gen = torch.Generator().manual_seed(seed)

    def transform(x: Tensor, training: bool) -> Tensor:
        mean = torch.tensor(data_config["mean"], device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(data_config["std"], device=x.device).view(1, 3, 1, 1)
        b, _, h, w = x.shape
        if training and augment:
            tops = torch.randint(0, h - crop + 1, (b,), generator=gen).tolist()
            lefts = torch.randint(0, w - crop + 1, (b,), generator=gen).tolist()
            flips = (torch.rand(b, generator=gen) < 0.5).tolist()
            out = []
            for img, t, l, f in zip(x, tops, lefts, flips):
                img = img[:, t:t + crop, l:l + crop]
                out.append(img.flip(-1) if f else img)
            x = torch.stack(out)
        else:
            t, l = (h - crop) // 2, (w - crop) // 2
            x = x[:, :, t:t + crop, l:l + crop]
        return (x.float() / 255 - mean) / std

    return transform
