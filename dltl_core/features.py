"""Feature extraction with a pretrained backbone, cached on disk.

Transfer learning's trick is that the frozen backbone's features need to be
computed only once: every head trained afterwards (another learning rate,
another seed, another visitor) reads them from the cache in milliseconds.

The cache is split per species: one file per (backbone, weights, transform,
that species' file list with mtimes and sizes). Picking 12 species after 10
re-uses the 10 already extracted; touching a photo invalidates only its species.
Files that fail to decode are remembered in the cache entry with their reason.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn
from torchvision.transforms import functional as TF

from dltl_core.backbones import Backbone
from dltl_core.cache import cache_dir, config_key, load_tensors, save_tensors
from dltl_core.device import DevicePolicy, get_policy
from dltl_core.images import ImageError, open_rgb

ProgressFn = Callable[[int, int, str], None]  # (images done, images total, message)
_FEATURES_VERSION = 1


@dataclass
class FeatureSet:
    """Pooled backbone features of the photos that decoded.

    Attributes:
        features: (N, D) float32 on the CPU.
        labels: (N,) long, species index.
        files: the N photo paths, in row order.
        skipped: (path, reason) for photos that failed to decode.
        seconds: wall-clock time of this call.
        extracted: photos pushed through the backbone in this call (0 on a full cache hit).
        cached: photos whose features came from the disk cache.
        extract_seconds: time spent extracting (decode + forward), excluding cache reads.
        cost_seconds: what extracting every photo took when it was first done (from the
            cache entries): the one-off price of the linear mode.
    """

    features: Tensor
    labels: Tensor
    files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    extracted: int = 0
    cached: int = 0
    extract_seconds: float = 0.0
    cost_seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        """Extraction throughput of this call (photos/s); on a full cache hit, cache-read throughput."""
        if self.extracted:
            return self.extracted / max(self.extract_seconds, 1e-9)
        return (self.cached / self.seconds) if self.seconds > 0 else float("nan")


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


def feature_cache_key(backbone: Backbone, files: Sequence[str]) -> str:
    """The disk-cache key of one chunk of features."""
    return config_key("features", _FEATURES_VERSION, backbone.name, backbone.weights_id,
                      backbone.transform_id, file_fingerprint(files))


def _decode(path: str, transform: Callable) -> Tensor | str:
    """A preprocessed (3, H, W) tensor, or the reason the file is unusable."""
    try:
        return transform(open_rgb(path))
    except ImageError as err:
        return str(err).split(": ", 1)[-1]
    except (OSError, ValueError) as err:  # e.g. a file deleted between listing and reading
        return f"unreadable ({err})"


def _batches(files: Sequence[str], transform: Callable, batch_size: int,
             pool: ThreadPoolExecutor) -> Iterator[tuple[list[int], Tensor | None, list[tuple[int, str]]]]:
    """Decode in a background thread (PIL releases the GIL) while the caller runs the model.

    At most two batches are decoded ahead: decoding is faster than the forward pass,
    and an unbounded queue would hold every decoded photo (0.6 MB each at 224 px).
    """
    window = 2 * batch_size
    pending: deque = deque(pool.submit(_decode, f, transform) for f in files[:window])
    nxt = len(pending)

    def decoded() -> Iterator[Tensor | str]:
        nonlocal nxt
        while pending:
            item = pending.popleft().result()
            if nxt < len(files):
                pending.append(pool.submit(_decode, files[nxt], transform))
                nxt += 1
            yield item

    ok_idx: list[int] = []
    tensors: list[Tensor] = []
    bad: list[tuple[int, str]] = []
    for i, item in enumerate(decoded()):
        if isinstance(item, str):
            bad.append((i, item))
        else:
            ok_idx.append(i)
            tensors.append(item)
        if len(tensors) == batch_size or i == len(files) - 1:
            yield ok_idx, (torch.stack(tensors) if tensors else None), bad
            ok_idx, tensors, bad = [], [], []


def pooled_features(model: nn.Module, x: Tensor) -> Tensor:
    """timm's pooled, pre-classifier features: (B, 3, H, W) -> (B, D)."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


@torch.inference_mode()
def _extract_chunk(backbone: Backbone, files: Sequence[str], batch_size: int, policy: DevicePolicy,
                   pool: ThreadPoolExecutor, on_batch: Callable[[int], None]) -> dict:
    model = backbone.model
    device = next(model.parameters()).device
    feats = torch.zeros(len(files), backbone.num_features)
    ok = torch.zeros(len(files), dtype=torch.bool)
    reasons = [""] * len(files)
    for idx, x, bad in _batches(files, backbone.transform, batch_size, pool):
        for i, why in bad:
            reasons[i] = why
        if x is not None:
            x = x.to(device, non_blocking=policy.pin_memory)
            if policy.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with policy.autocast():
                f = pooled_features(model, x)  # (B, D)
            feats[idx] = f.float().cpu()
            ok[idx] = True
        on_batch(len(idx) + len(bad))
    return {"features": feats[ok], "ok": ok, "reasons": reasons}


def extract_features(backbone: Backbone, files: Sequence[str], labels: Sequence[int], *,
                     batch_size: int | None = None, policy: DevicePolicy | None = None,
                     progress: ProgressFn | None = None, use_cache: bool = True) -> FeatureSet:
    """Pooled features of ``files`` (grouped by label for caching), from the disk cache when possible.

    Args:
        backbone: a loaded backbone (read-only; its model is only run in inference mode).
        files: photo paths.
        labels: species index of each photo.
        batch_size: photos per forward pass (default 16 on the CPU, which bounds the
            activation memory of a shared server, 64 on an accelerator).
        policy: device policy (default ``get_policy()``); the model must already be on its device.
        progress: called with (done, total, message) after each batch.
        use_cache: read and write the disk cache.
    """
    if len(files) != len(labels):
        raise ValueError(f"{len(files)} files but {len(labels)} labels")
    policy = policy or get_policy()
    batch_size = batch_size or (16 if policy.device.type == "cpu" else 64)
    start = time.perf_counter()
    total = len(files)
    chunks: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        chunks.setdefault(int(y), []).append(i)

    done = 0
    extracted = cached = 0
    extract_seconds = cost_seconds = 0.0
    rows: list[tuple[int, Tensor]] = []  # (file position, features)
    skipped: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        for y in sorted(chunks):
            pos = chunks[y]
            chunk_files = [str(files[i]) for i in pos]
            path = cache_dir() / "features" / f"{feature_cache_key(backbone, chunk_files)}.pt"
            entry = load_tensors(path) if use_cache else None
            if entry is not None and entry.get("ok") is not None and len(entry["ok"]) == len(pos):
                cached += len(pos)
                done += len(pos)
            else:
                t0 = time.perf_counter()

                def on_batch(n: int) -> None:
                    nonlocal done
                    done += n
                    if progress:
                        progress(done, total, f"extracting features: {done}/{total} photos")

                entry = _extract_chunk(backbone, chunk_files, batch_size, policy, pool, on_batch)
                entry["seconds"] = time.perf_counter() - t0
                extract_seconds += entry["seconds"]
                extracted += len(pos)
                if use_cache:
                    save_tensors(path, entry)
            cost_seconds += float(entry.get("seconds", 0.0))
            good = [p for p, k in zip(pos, entry["ok"].tolist()) if k]
            rows += list(zip(good, entry["features"]))
            skipped += [(files[p], why) for p, k, why in zip(pos, entry["ok"].tolist(), entry["reasons"]) if not k]
            if progress:
                progress(done, total, f"features ready: {done}/{total} photos")
    rows.sort(key=lambda r: r[0])
    feats = torch.stack([r[1] for r in rows]) if rows else torch.zeros(0, backbone.num_features)
    return FeatureSet(
        features=feats,
        labels=torch.tensor([int(labels[p]) for p, _ in rows], dtype=torch.long),
        files=[str(files[p]) for p, _ in rows],
        skipped=skipped,
        seconds=time.perf_counter() - start,
        extracted=extracted,
        cached=cached,
        extract_seconds=extract_seconds,
        cost_seconds=cost_seconds,
    )


# --------------------------------------------------------------------------- images as tensors

def train_image_size(data_config: dict, image_size: int | None = None) -> tuple[int, int]:
    """(stored size, crop size) for training on images: the eval resize of the backbone's
    data config (``input / crop_pct``), or the same ratio around a smaller ``image_size``."""
    crop = int(image_size or data_config["input_size"][-1])
    stored = int(math.floor(crop / data_config.get("crop_pct", 1.0)))
    return stored, crop


def load_image_tensors(files: Sequence[str], data_config: dict, image_size: int | None = None,
                       progress: ProgressFn | None = None) -> tuple[Tensor, list[int], list[tuple[str, str]]]:
    """Decode photos once into uint8 (N, 3, S, S): shorter side resized to S, centre square.

    The model's crop (random when training, centre when evaluating) happens later,
    on the device, per batch. Cached on disk keyed by the file list and sizes.

    Returns:
        (images, positions of the files that decoded, skipped (path, reason)).
    """
    stored, _ = train_image_size(data_config, image_size)
    interp = TF.InterpolationMode(data_config.get("interpolation", "bilinear"))
    key = config_key("images", _FEATURES_VERSION, stored, interp.value, file_fingerprint(files))
    path = cache_dir() / "images" / f"{key}.pt"
    hit = load_tensors(path)
    if hit is not None:
        return hit["x"], hit["ok"], [tuple(s) for s in hit["skipped"]]
    out = torch.zeros(len(files), 3, stored, stored, dtype=torch.uint8)
    ok: list[int] = []
    skipped: list[tuple[str, str]] = []
    for i, f in enumerate(files):
        try:
            img = open_rgb(f)
        except ImageError as err:
            skipped.append((str(f), str(err).split(": ", 1)[-1]))
            continue
        img = TF.center_crop(TF.resize(img, stored, interpolation=interp), [stored, stored])
        out[i] = TF.pil_to_tensor(img)
        ok.append(i)
        if progress and (i % 16 == 0 or i == len(files) - 1):
            progress(i + 1, len(files), f"decoding photos: {i + 1}/{len(files)}")
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


@torch.inference_mode()
def embed_images(model: nn.Module, x: Tensor, batch_transform: Callable[[Tensor, bool], Tensor],
                 batch_size: int = 64, policy: DevicePolicy | None = None) -> Tensor:
    """Pooled features of a (possibly fine-tuned) timm model on uint8 images: (N, D) on the CPU."""
    policy = policy or get_policy()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        xb = batch_transform(x[i:i + batch_size].to(device), False)
        with policy.autocast():
            out.append(pooled_features(model, xb).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)
