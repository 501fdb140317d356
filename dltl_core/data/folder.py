"""Image folders in ImageFolder layout (``root/<class>/<image>``), decoded once.

Decoding thousands of JPEGs on every epoch is what makes CPU training slow, so
a folder is decoded once into a uint8 tensor (N, 3, H, W) and cached on disk
(``dltl_core.cache``), keyed by the file list, their modification times and sizes,
and the requested image size. Files that cannot be decoded are skipped and
reported with the reason, never fatal.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from dltl_core import cache
from dltl_core.images import IMAGE_EXTENSIONS, ImageError, open_rgb

_CACHE_VERSION = 1


@dataclass
class ImageSet:
    """A decoded image folder.

    Attributes:
        x: uint8 images (N, 3, H, W).
        y: int64 class indices (N,).
        classes: class names (the sub-folder names), index = label.
        files: path of each image, aligned with ``x``.
        skipped: ``(file, reason)`` for every file that was left out.
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)


def _list_files(root: Path, classes: Sequence[str] | None, max_per_class: int | None
                ) -> tuple[list[str], list[tuple[str, int]], list[tuple[str, str]]]:
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if classes is None:
        classes = found
    else:
        missing = [c for c in classes if c not in found]
        if missing:
            raise ValueError(f"no class folder {', '.join(map(repr, missing))} in {root}")
        classes = list(classes)
    if not classes:
        raise ValueError(f"{root} has no class sub-folders: expected the layout {root}/<class>/<image>")
    items: list[tuple[str, int]] = []
    skipped: list[tuple[str, str]] = []
    for label, name in enumerate(classes):
        # scandir's d_type spares one stat per file (50,000 of them for CIFAR-10).
        with os.scandir(root / name) as entries:
            files = sorted((e.name, e.path) for e in entries if e.is_file() and not e.name.startswith("."))
        images = []
        for fname, p in files:
            # Same test as dltl_core.images.is_image_name, without a Path per file.
            if fname.lower().endswith(IMAGE_EXTENSIONS):
                images.append(p)
            else:
                skipped.append((p, "not an image file name (extension)"))
        if max_per_class is not None:
            images = images[:max_per_class]
        items.extend((p, label) for p in images)
    return list(classes), items, skipped


def _decode(path: str, size: int | tuple[int, int] | None) -> np.ndarray | str:
    """Decode one file to (H, W, 3) uint8, or return the reason it failed."""
    try:
        img = open_rgb(path)
    except ImageError as err:
        return str(err).removeprefix(f"{path}: ")
    if size is not None:
        if isinstance(size, int):
            # Shorter side to `size`, then the central size x size crop (the usual eval transform).
            w, h = img.size
            scale = size / min(w, h)
            img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            w, h = img.size
            left, top = (w - size) // 2, (h - size) // 2
            img = img.crop((left, top, left + size, top + size))
        elif img.size != size:
            img = img.resize(size, Image.BILINEAR)
    return np.array(img, dtype=np.uint8)  # a writable copy, for torch.from_numpy


def load_image_folder(
    root: str | Path,
    size: int | None = None,
    classes: Sequence[str] | None = None,
    max_per_class: int | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
    workers: int | None = None,
) -> ImageSet:
    """Decode an ImageFolder-layout directory into a uint8 tensor, once.

    Args:
        root: the folder; each sub-folder is a class.
        size: resize the shorter side to ``size`` and centre-crop to ``size x size``;
            None keeps the size of the first image and resizes any image of another
            size to it (so every image fits one tensor).
        classes: the class sub-folders to use (default: all, sorted by name).
        max_per_class: at most this many images per class (the first ones by name).
        progress: called as ``progress(done, total)`` while decoding (not on a cache hit).
        use_cache: read and write the decoded tensor in ``dltl_core.cache``.
        workers: decoding threads (default: up to 4, the CPU count).

    Raises:
        FileNotFoundError: ``root`` does not exist or is not a directory.
        ValueError: no class folders, unknown classes, or no decodable image at all.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if max_per_class is not None and max_per_class < 1:
        raise ValueError(f"max_per_class must be at least 1, got {max_per_class}")
    class_names, items, skipped = _list_files(root, classes, max_per_class)
    if not items:
        raise ValueError(f"{root} contains no image files (looked for .jpg/.png/... in "
                         f"{len(class_names)} class folder(s))")

    stats = [(p, *(lambda s: (s.st_mtime_ns, s.st_size))(os.stat(p))) for p, _ in items]
    key = cache.config_key("image-folder", _CACHE_VERSION, str(root.resolve()), size, class_names, stats)
    path = cache.cache_dir() / "folders" / f"{key}.pt"
    if use_cache:
        hit = cache.load_tensors(path)
        if hit is not None:
            return ImageSet(hit["x"], hit["y"], list(hit["classes"]), list(hit["files"]),
                            [tuple(s) for s in hit["skipped"]] + skipped)

    total = len(items)
    buf, keep_files, keep_labels, bad = _decode_all(items, size, workers, progress)
    if buf is None:
        reasons = "; ".join(f"{Path(f).name}: {r}" for f, r in bad[:3])
        raise ValueError(f"none of the {total} image files in {root} could be decoded ({reasons})")
    x = buf[: len(keep_files)]
    if len(keep_files) < len(buf):
        x = x.clone()  # drop the unused tail (a view would keep and save it)
    y = torch.tensor(keep_labels, dtype=torch.int64)
    if use_cache:
        cache.save_tensors(path, {"x": x, "y": y, "classes": class_names, "files": keep_files,
                                  "skipped": [list(s) for s in bad]})
    return ImageSet(x, y, class_names, keep_files, bad + skipped)


def _decode_all(items: list[tuple[str, int]], size: int | None, workers: int | None,
                progress: Callable[[int, int], None] | None
                ) -> tuple[torch.Tensor | None, list[str], list[int], list[tuple[str, str]]]:
    """Decode ``items`` in threads into one preallocated uint8 tensor.

    Returns:
        ``(buffer or None, files kept, their labels, (file, reason) of each skipped file)``.
    """
    total = len(items)
    buf: torch.Tensor | None = None
    keep_files: list[str] = []
    keep_labels: list[int] = []
    bad: list[tuple[str, str]] = []
    target: int | tuple[int, int] | None = size
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL releases the GIL while decoding
        # The first image fixes the size when none is given, so decode it alone.
        first_ok = 0
        while target is None and first_ok < total:
            out = _decode(items[first_ok][0], None)
            if isinstance(out, str):
                bad.append((items[first_ok][0], out))
                first_ok += 1
            else:
                target = (out.shape[1], out.shape[0])  # PIL size is (W, H)
        todo = items[first_ok:] if size is None else items
        results = pool.map(lambda item: _decode(item[0], target), todo)
        for done, ((file, label), out) in enumerate(zip(todo, results), start=1):
            if isinstance(out, str):
                bad.append((file, out))
            else:
                if buf is None:  # preallocate once: no second copy of the whole set in memory
                    buf = torch.empty((len(todo), 3, out.shape[0], out.shape[1]), dtype=torch.uint8)
                buf[len(keep_files)] = torch.from_numpy(out).permute(2, 0, 1)  # HWC -> CHW
                keep_files.append(file)
                keep_labels.append(label)
            if progress is not None and (done % 256 == 0 or done == len(todo)):
                progress(done + first_ok, total)
    return buf, keep_files, keep_labels, bad
