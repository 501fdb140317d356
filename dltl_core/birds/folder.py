"""Bird species folders (ImageFolder layout): species picker, image cap, seeded split.

A bird data set here is any folder with one sub-folder per species and photos
inside. Files that cannot be photos are skipped and counted with a reason,
never fatal; decoding problems found later (truncated, bombs...) are added by
the feature extractor, which is the first to decode the pixels.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from dltl_core.images import is_image_name

DEFAULT_SPECIES = 10
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BirdSet:
    """The chosen species and their photos.

    Attributes:
        root: the species folder root.
        species: chosen species folder names, in label order.
        files: photo paths (absolute strings), grouped by species.
        labels: species index of each file.
        skipped: (path, reason) for files and folders left out.
    """

    root: Path
    species: tuple[str, ...]
    files: tuple[str, ...]
    labels: tuple[int, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())

    def __len__(self) -> int:
        return len(self.files)

    def counts(self) -> list[int]:
        """Photos per species, in label order."""
        out = [0] * len(self.species)
        for y in self.labels:
            out[y] += 1
        return out


def default_birds_dir() -> Path | None:
    """``$DLTL_BIRDS_DIR`` if set, else the development copy ``../shared/birds/cub100`` if present."""
    env = os.environ.get("DLTL_BIRDS_DIR")
    if env:
        return Path(env).expanduser()
    dev = _PROJECT_ROOT.parent / "shared" / "birds" / "cub100"
    return dev if dev.is_dir() else None


def pretty_name(folder: str) -> str:
    """``"001.Black_footed_Albatross"`` -> ``"Black footed Albatross"``."""
    return re.sub(r"^\d+\.", "", folder).replace("_", " ")


def _species_folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


_LISTED_MAX = 1024  # species folders whose listing is kept (a few KB each)
_listed: "OrderedDict[tuple[str, int], tuple[tuple[str, ...], tuple[tuple[str, str], ...]]]" = OrderedDict()
_listed_lock = threading.Lock()


def _photos(folder: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Candidate photos of one species folder (sorted) and the files skipped by name or size.

    A page lists every species folder on each rerun, so a listing is kept per folder and
    modification time (adding, removing or renaming a file changes the folder's): /transfer
    with 100 species read 5,000 files' metadata three times per rerun before.
    """
    try:
        mtime = folder.stat().st_mtime_ns
        # A folder changed in the last seconds may change again within the same clock tick
        # (coarse file-system timestamps): list it afresh until its time is safely past.
        key = (str(folder), mtime) if time.time_ns() - mtime > 2_000_000_000 else None
    except OSError:
        key = None
    if key is not None:
        with _listed_lock:
            hit = _listed.get(key)
            if hit is not None:
                _listed.move_to_end(key)
                return list(hit[0]), list(hit[1])
    good, skipped = _scan(folder)
    if key is not None:
        with _listed_lock:
            _listed[key] = (tuple(good), tuple(skipped))
            while len(_listed) > _LISTED_MAX:
                _listed.popitem(last=False)
    return good, skipped


def _scan(folder: Path) -> tuple[list[str], list[tuple[str, str]]]:
    good, skipped = [], []
    with os.scandir(folder) as it:  # DirEntry knows its type: one stat per file, not three
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        if e.name.startswith(".") or e.is_dir():
            continue
        p = Path(e.path)
        if e.is_symlink() and not p.resolve().is_file():
            skipped.append((str(p), "broken link"))
        elif not is_image_name(p):
            skipped.append((str(p), "not an image file name"))
        elif e.stat().st_size == 0:
            skipped.append((str(p), "empty file (0 bytes)"))
        else:
            good.append(str(p.resolve()) if e.is_symlink() else str(p.absolute()))
    return good, skipped


def list_species(root: str | Path) -> list[str]:
    """All species sub-folder names of ``root``, alphabetically (empty ones included).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"bird folder not found: {root}")
    return [p.name for p in _species_folders(root)]


def species_with_photos(root: str | Path) -> tuple[list[str], list[str]]:
    """(species folders holding at least one photo, empty species folders), alphabetically.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    root = Path(root).expanduser()
    names = list_species(root)
    full, empty = [], []
    for name in names:
        has = any(is_image_name(p) for p in (root / name).iterdir() if p.is_file())
        (full if has else empty).append(name)
    return full, empty


def pick_species(available: Sequence[str], choice: int | str | Sequence[str]) -> list[str]:
    """Resolve a species choice: a count k (first k alphabetically) or names.

    ``choice`` may be an int, a string holding a count (``"10"``) or comma-separated
    names (folder names, or their pretty names, case-insensitive), or a list of names.

    Raises:
        ValueError: unknown names, a count below 2, or fewer than 2 species.
    """
    if isinstance(choice, str) and choice.strip().isdigit():
        choice = int(choice.strip())
    if isinstance(choice, int):
        if choice < 2:
            raise ValueError("choose at least 2 species: a classifier needs two classes to tell apart")
        if len(available) < 2:
            raise ValueError(f"the folder has {len(available)} species with photos; at least 2 are needed")
        return list(available[:choice])
    names = [n.strip() for n in (choice.split(",") if isinstance(choice, str) else choice) if n.strip()]
    lookup = {}
    for a in available:
        lookup[a.lower()] = a
        lookup[pretty_name(a).lower()] = a
    unknown = [n for n in names if n.lower() not in lookup and n.replace(" ", "_").lower() not in lookup]
    if unknown:
        raise ValueError(f"unknown species: {', '.join(unknown)} (the folder has e.g. "
                         f"{', '.join(available[:3])})")
    picked = list(dict.fromkeys(lookup.get(n.lower()) or lookup[n.replace(' ', '_').lower()] for n in names))
    if len(picked) < 2:
        raise ValueError("choose at least 2 species: a classifier needs two classes to tell apart")
    return picked


def load_birds(root: str | Path, species: int | str | Sequence[str] = DEFAULT_SPECIES,
               max_per_species: int | None = None) -> BirdSet:
    """List the photos of the chosen species under ``root``.

    Args:
        root: folder with one sub-folder per species.
        species: a count k (first k species with photos, alphabetically) or names.
        max_per_species: keep at most this many photos per species (first by name).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: no or only one species with photos, or a bad species choice.
    """
    root = Path(root).expanduser().resolve()  # absolute, normalised: stable cache keys
    names = list_species(root)
    photos: dict[str, list[str]] = {}
    skipped: list[tuple[str, str]] = []
    for name in names:
        good, bad = _photos(root / name)
        skipped += bad
        if good:
            photos[name] = good
        else:
            skipped.append((str(root / name), "species folder with no images"))
    if not photos:
        raise ValueError(f"no species folders with photos in {root}: expected one sub-folder "
                         "per species with .jpg/.png files inside")
    if len(photos) < 2:
        raise ValueError(f"only one species with photos in {root} ({next(iter(photos))}); "
                         "at least 2 are needed to train a classifier")
    chosen = pick_species(list(photos), species)
    files, labels = [], []
    for y, name in enumerate(chosen):
        keep = photos[name][:max_per_species] if max_per_species else photos[name]
        files += keep
        labels += [y] * len(keep)
    chosen_dirs = {str(root / n) for n in chosen}
    skipped = [(f, r) for f, r in skipped if str(Path(f).parent) in chosen_dirs or f in chosen_dirs
               or r == "species folder with no images"]
    return BirdSet(root, tuple(chosen), tuple(files), tuple(labels), tuple(skipped))


def split_indices(labels: Sequence[int], val_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded, stratified train/validation split of positions into ``labels``.

    Every species with at least two photos gets at least one of each.

    Raises:
        ValueError: ``val_fraction`` outside (0, 1).
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    gen = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    train, val = [], []
    for y in sorted(by_class):
        idx = by_class[y]
        perm = [idx[int(j)] for j in torch.randperm(len(idx), generator=gen)]
        n_val = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(len(idx) * val_fraction)))
        val += perm[:n_val]
        train += perm[n_val:]
    return sorted(train), sorted(val)
