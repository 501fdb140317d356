"""Backbone features of photos, cached on disk.

Transfer learning's trick is that the frozen backbone's features need to be
computed only once: every head trained afterwards (another learning rate,
another seed, another visitor) reads them from the cache in milliseconds.

The cache is split per species: one file per (backbone, weights, transform,
that species' file list with mtimes and sizes). Picking 12 species after 10
re-uses the 10 already extracted; touching a photo invalidates only its species.
Files that fail to decode are remembered in the cache entry with their reason.

The same machinery caches the *activations of the frozen early stages* for
fine-tuning (``extract_activations``): the late stages then train on them
without pushing a photo through the frozen part ever again.

The photos are decoded and batched by ``dltl_core.photos``, in parallel with the
forward pass. One computation per cache entry: ``cache.single_flight`` makes a second
visitor wait for the first one's extraction (and then read its result) instead of
repeating it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from dltl_core.backbones import Backbone
from dltl_core.cache import cache_dir, config_key, load_tensors, save_tensors, single_flight
from dltl_core.device import DevicePolicy, get_policy
from dltl_core.photos import (ProgressFn, decode_workers, device_normalize, file_fingerprint, photo_batches,
                              split_transform)
from dltl_core.progress import eta_text

_FEATURES_VERSION = 1
_ACTIVATIONS_VERSION = 1
# A wait for another visitor's extraction of the same photos: generous, since that
# extraction is itself bounded (a page's job has a time limit), but never forever.
_WAIT_SECONDS = 3600.0
# Photos/s of the last extraction in this process, per device type (decode + forward): the
# pages' time estimates come from what this machine really did, not from a guess.
_RATES: dict[str, float] = {}


def measured_rate(policy: DevicePolicy | None = None) -> float | None:
    """Extraction throughput (photos/s) last measured in this process on the policy's device."""
    return _RATES.get((policy or get_policy()).device.type)


@dataclass
class FeatureSet:
    """Pooled backbone features (or cached activations) of the photos that decoded.

    Attributes:
        features: (N, D) float32 on the CPU (activations: (N, C, H, W)).
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


def feature_cache_key(backbone: Backbone, files: Sequence[str]) -> str:
    """The disk-cache key of one chunk of features."""
    return config_key("features", _FEATURES_VERSION, backbone.name, backbone.weights_id,
                      backbone.transform_id, file_fingerprint(files))


def pooled_features(model: nn.Module, x: Tensor) -> Tensor:
    """timm's pooled, pre-classifier features: (B, 3, H, W) -> (B, D)."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


# --------------------------------------------------------------------------- one cached pass

@contextlib.contextmanager
def _locked(paths: Sequence[Path], on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold ``cache.single_flight`` for each cache entry (taken in sorted order, so never a deadlock).

    ``on_wait`` is called once, when another caller holds one of the entries.
    """
    told = False

    def waiting(_seconds: float) -> None:
        nonlocal told
        if on_wait is not None and not told:
            told = True
            on_wait()

    with contextlib.ExitStack() as stack:
        for p in sorted({Path(p) for p in paths}):
            stack.enter_context(single_flight(f"{p.parent.name}-{p.stem}", timeout=_WAIT_SECONDS, on_wait=waiting))
        yield


@torch.inference_mode()
def _extract_chunk(backbone: Backbone, files: Sequence[str], batch_size: int, policy: DevicePolicy,
                   on_batch: Callable[[int], None], fn: Callable[[Tensor], Tensor] | None = None,
                   transform: Callable | None = None, workers: int = 0) -> dict:
    """Run ``fn`` (default: pooled features) on the decoded ``files``: ``{"features", "ok", "reasons"}``."""
    fn = fn or (lambda x: pooled_features(backbone.model, x))
    u8, mean, std = split_transform(transform or backbone.transform)
    device = next(backbone.model.parameters()).device
    out: Tensor | None = None
    ok = torch.zeros(len(files), dtype=torch.bool)
    reasons = [""] * len(files)
    for idx, x, bad in photo_batches(files, u8, batch_size, workers, policy.pin_memory):
        for i, why in bad:
            reasons[i] = why
        if x is not None:
            x = device_normalize(x.to(device, non_blocking=policy.pin_memory), mean, std)
            if policy.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with policy.autocast():
                f = fn(x).float().cpu()
            if out is None:
                out = torch.zeros(len(files), *f.shape[1:])
            out[idx] = f
            ok[idx] = True
        on_batch(len(idx) + len(bad))
    feats = out[ok] if out is not None else torch.zeros(0)
    return {"features": feats.contiguous(), "ok": ok, "reasons": reasons}


def _valid(entry: dict | None, n: int) -> bool:
    return entry is not None and entry.get("ok") is not None and len(entry["ok"]) == n


def _extract_missing(backbone: Backbone, files: Sequence[str], chunks: dict[int, list[int]],
                     missing: list[int], run: Callable[..., dict]) -> dict[int, dict]:
    """One extraction over the photos of every missing chunk (one worker pool), split per chunk."""
    order = [(y, p) for y in missing for p in chunks[y]]
    t0 = time.perf_counter()
    entry = run([str(files[p]) for _, p in order])
    seconds = time.perf_counter() - t0
    ok = entry["ok"]
    rows = torch.cumsum(ok.long(), 0) - ok.long()  # row of each ok file in entry["features"]
    out, at = {}, 0
    for y in missing:
        n = len(chunks[y])
        sel = ok[at:at + n]
        first = int(rows[at]) if n else 0
        out[y] = {"features": entry["features"][first:first + int(sel.sum())].clone(), "ok": sel.clone(),
                  "reasons": entry["reasons"][at:at + n], "seconds": seconds * n / max(len(order), 1)}
        at += n
    return out


def _cached_pass(backbone: Backbone, files: Sequence[str], labels: Sequence[int], *, key_of: Callable,
                 subdir: str, what: str, fn: Callable[[Tensor], Tensor] | None = None,
                 transform: Callable | None = None, batch_size: int | None = None,
                 policy: DevicePolicy | None = None, progress: ProgressFn | None = None,
                 use_cache: bool = True, workers: int | None = None) -> FeatureSet:
    """Per-species cached results of ``fn`` on the photos (see ``extract_features``)."""
    if len(files) != len(labels):
        raise ValueError(f"{len(files)} files but {len(labels)} labels")
    policy = policy or get_policy()
    batch_size = batch_size or (16 if policy.device.type == "cpu" else 64)
    workers = decode_workers(policy) if workers is None else workers
    start, total = time.perf_counter(), len(files)
    chunks: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        chunks.setdefault(int(y), []).append(i)
    paths = {y: cache_dir() / subdir / f"{key_of([str(files[i]) for i in pos])}.pt" for y, pos in chunks.items()}
    entries = {y: (load_tensors(paths[y]) if use_cache else None) for y in chunks}
    missing = sorted(y for y in chunks if not _valid(entries[y], len(chunks[y])))
    extracted, extract_seconds = 0, 0.0
    if missing:
        say = progress or (lambda d, t, m: None)
        lock = _locked([paths[y] for y in missing], lambda: say(
            0, total, f"{what}: another visitor is computing the same photos; waiting for them")) \
            if use_cache else contextlib.nullcontext()
        with lock:
            if use_cache:  # what the visitor we waited for computed
                entries.update({y: load_tensors(paths[y]) for y in missing})
                missing = [y for y in missing if not _valid(entries[y], len(chunks[y]))]
            base = total - sum(len(chunks[y]) for y in missing)
            done, t0 = base, time.perf_counter()

            def on_batch(n: int) -> None:
                nonlocal done
                done += n
                say(done, total, f"{what}: {done}/{total} photos{eta_text(done - base, total - base, t0)}")

            def run(fs: list[str]) -> dict:
                return _extract_chunk(backbone, fs, batch_size, policy, on_batch, fn, transform, workers)

            if missing:
                new = _extract_missing(backbone, files, chunks, missing, run)
                extract_seconds = time.perf_counter() - t0
                extracted = sum(len(chunks[y]) for y in missing)
                if extracted >= 2 * batch_size:  # enough photos for a rate worth remembering
                    _RATES[policy.device.type] = extracted / max(extract_seconds, 1e-9)
                for y, e in new.items():
                    entries[y] = e
                    if use_cache:
                        save_tensors(paths[y], e)
    return _assemble(files, labels, chunks, entries, start, extracted, extract_seconds, progress, what)


def _assemble(files, labels, chunks, entries, start, extracted, extract_seconds, progress, what) -> FeatureSet:
    pos_parts, feat_parts, skipped, cost = [], [], [], 0.0
    for y in sorted(chunks):
        pos, e = chunks[y], entries[y]
        ok = e["ok"].tolist()
        cost += float(e.get("seconds", 0.0))
        good = [p for p, k in zip(pos, ok) if k]
        if good:
            pos_parts.append(torch.tensor(good))
            feat_parts.append(e["features"])
        skipped += [(str(files[p]), why) for p, k, why in zip(pos, ok, e["reasons"]) if not k]
    if pos_parts:
        positions = torch.cat(pos_parts)
        order = positions.argsort()
        feats, positions = torch.cat(feat_parts)[order], positions[order].tolist()
    else:
        feats, positions = torch.zeros(0), []
    total = len(files)
    if progress:
        progress(total, total, f"{what}: ready ({total} photos)")
    return FeatureSet(features=feats, labels=torch.tensor([int(labels[p]) for p in positions], dtype=torch.long),
                      files=[str(files[p]) for p in positions], skipped=skipped,
                      seconds=time.perf_counter() - start, extracted=extracted,
                      cached=total - extracted, extract_seconds=extract_seconds, cost_seconds=cost)


def extract_features(backbone: Backbone, files: Sequence[str], labels: Sequence[int], *,
                     batch_size: int | None = None, policy: DevicePolicy | None = None,
                     progress: ProgressFn | None = None, use_cache: bool = True,
                     workers: int | None = None) -> FeatureSet:
    """Pooled features of ``files`` (grouped by label for caching), from the disk cache when possible.

    Args:
        backbone: a loaded backbone (read-only; its model is only run in inference mode).
        files: photo paths.
        labels: species index of each photo.
        batch_size: photos per forward pass (default 16 on the CPU, which bounds the
            activation memory of a shared server, 64 on an accelerator).
        policy: device policy (default ``get_policy()``); the model must already be on its device.
        progress: called with (done, total, message) after each batch, the message with an ETA.
        use_cache: read and write the disk cache.
        workers: decode worker processes (default ``decode_workers()``; 0 = one thread).
    """
    fs = _cached_pass(backbone, files, labels, key_of=lambda fl: feature_cache_key(backbone, fl),
                      subdir="features", what="extracting features", batch_size=batch_size,
                      policy=policy, progress=progress, use_cache=use_cache, workers=workers)
    if fs.features.numel() == 0:
        fs.features = torch.zeros(0, backbone.num_features)
    return fs


def uncached_photos(backbone: Backbone, files: Sequence[str], labels: Sequence[int]) -> int:
    """How many of these photos have no features in the disk cache yet (nothing is read or decoded:
    a page uses it to decide whether extraction is light enough to start without a click)."""
    chunks: dict[int, list[str]] = {}
    for f, y in zip(files, labels):
        chunks.setdefault(int(y), []).append(str(f))
    root = cache_dir() / "features"
    return sum(len(fl) for fl in chunks.values() if not (root / f"{feature_cache_key(backbone, fl)}.pt").is_file())


def store_features(backbone: Backbone, files: Sequence[str], labels: Sequence[int], done: FeatureSet,
                   features: Tensor) -> None:
    """Write the feature-cache entries still missing, from another pass over the same photos.

    Args:
        done: that pass's result (its ``files``, ``skipped`` and ``extract_seconds``).
        features: (len(done.files), D) pooled features of ``done.files``, in that order.
    """
    row = {f: i for i, f in enumerate(done.files)}
    reasons = dict(done.skipped)
    chunks: dict[int, list[str]] = {}
    for f, y in zip(files, labels):
        chunks.setdefault(int(y), []).append(str(f))
    per_photo = done.cost_seconds / max(len(files), 1)  # what the pass cost when first run
    for fl in chunks.values():
        path = cache_dir() / "features" / f"{feature_cache_key(backbone, fl)}.pt"
        if path.is_file() or any(f not in row and f not in reasons for f in fl):
            continue  # already cached, or photos this pass did not see
        ok = torch.tensor([f in row for f in fl], dtype=torch.bool)
        rows = [row[f] for f in fl if f in row]
        with _locked([path]):
            if path.is_file():  # written by another visitor meanwhile
                continue
            save_tensors(path, {"features": features[rows].float().contiguous(), "ok": ok,
                                "reasons": [reasons.get(f, "") for f in fl], "seconds": per_photo * len(fl)})


def extract_activations(backbone: Backbone, files: Sequence[str], labels: Sequence[int],
                        frozen: nn.Module, tag: str, *, transform: Callable | None = None,
                        transform_id: str | None = None, what: str = "computing the frozen stages",
                        **kwargs: Any) -> FeatureSet:
    """Outputs of the frozen early stages (``frozen``, built from the shared backbone's own
    modules, eval mode) for every photo, cached on disk like the features.

    Args:
        frozen: maps a normalised image batch to the activations the trainable stages take.
        tag: names the cut (e.g. ``"stages<7"``): part of the cache key.
        what: the progress messages' phase name.
        transform: PIL -> tensor preprocessing (default: the backbone's eval transform).
        transform_id: its identity for the key (default ``repr(transform)``).
        **kwargs: ``batch_size``, ``policy``, ``progress``, ``use_cache``, ``workers``.
    """
    transform = transform or backbone.transform
    tid = transform_id or repr(transform)

    def key_of(fl: list[str]) -> str:
        return config_key("activations", _ACTIVATIONS_VERSION, backbone.name, backbone.weights_id,
                          tid, tag, file_fingerprint(fl))

    return _cached_pass(backbone, files, labels, key_of=key_of, subdir="activations",
                        what=what, fn=frozen, transform=transform, **kwargs)


@torch.inference_mode()
def embed_images(model: nn.Module, x: Tensor, batch_transform: Callable[[Tensor, bool], Tensor],
                 batch_size: int = 64, policy: DevicePolicy | None = None) -> Tensor:
    """Pooled features of a (possibly fine-tuned) timm model that this run owns, on uint8 images:
    (N, D) on the CPU. Runs on the model's own device."""
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
