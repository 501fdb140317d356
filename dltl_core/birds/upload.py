"""An uploaded zip of species folders, unpacked safely into the cache.

Limits on the archive size, the number of files and the unpacked size; members
whose path would escape the target folder (absolute, ``..``: "zip slip"),
symlinks and non-image files are refused or skipped and counted. Nothing is
written outside ``<cache>/uploads/<hash of the zip>``.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from dltl_core.cache import cache_dir
from dltl_core.images import is_image_name

MAX_ZIP_BYTES = 200 * 1024 * 1024
MAX_FILES = 5_000
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class UnpackedZip:
    """Result of unpacking: the species-folder root and the members left out (name, reason)."""

    root: Path
    skipped: tuple[tuple[str, str], ...]


def _safe_parts(name: str) -> tuple[str, ...] | None:
    """Path components of a member, or None if it is absolute or climbs out with ``..``."""
    name = name.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return None
    parts = tuple(p for p in path.parts if p not in ("", "."))
    if any(p == ".." for p in parts):
        return None
    return parts


def unpack_species_zip(data: bytes | BinaryIO | str | Path, *, dest_root: Path | None = None,
                       max_bytes: int = MAX_ZIP_BYTES, max_files: int = MAX_FILES,
                       max_unpacked: int = MAX_UNPACKED_BYTES) -> UnpackedZip:
    """Unpack a zip of species folders into the cache and return the species root.

    A single top folder wrapping the species folders (``birds/Species/x.jpg``) is
    looked through. Images lying directly at the root (no species folder) are skipped.

    Raises:
        ValueError: not a zip, too large, too many files, or no usable images.
    """
    if isinstance(data, (str, Path)):
        blob = Path(data).read_bytes() if Path(data).stat().st_size <= max_bytes else None
    elif isinstance(data, bytes):
        blob = data
    else:
        blob = data.read(max_bytes + 1)
    if blob is None or len(blob) > max_bytes:
        raise ValueError(f"the zip is larger than the limit of {max_bytes // 2**20} MB")
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile as err:
        raise ValueError("the upload is not a valid zip file") from err
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > max_files:
        raise ValueError(f"the zip holds {len(infos):,} files; the limit is {max_files:,}")
    if sum(i.file_size for i in infos) > max_unpacked:
        raise ValueError(f"the zip unpacks to more than {max_unpacked // 2**20} MB")

    skipped: list[tuple[str, str]] = []
    members: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    for info in infos:
        parts = _safe_parts(info.filename)
        mode = info.external_attr >> 16
        if parts is None:
            skipped.append((info.filename, "path escapes the folder (zip slip), refused"))
        elif stat.S_ISLNK(mode):
            skipped.append((info.filename, "symbolic link, refused"))
        elif any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue  # macOS resource forks and hidden files: not photos, not worth a message
        elif not is_image_name(parts[-1]):
            skipped.append((info.filename, "not an image file name"))
        elif len(parts) < 2:
            skipped.append((info.filename, "image outside a species folder"))
        else:
            members.append((info, parts))
    # Look through one wrapping folder when every image sits two levels deep under it.
    tops = {parts[0] for _, parts in members}
    if len(tops) == 1 and all(len(parts) >= 3 for _, parts in members):
        members = [(i, parts[1:]) for i, parts in members]
    members = [(i, parts) for i, parts in members if len(parts) == 2] + \
              [(i, (parts[0], "_".join(parts[1:]))) for i, parts in members if len(parts) > 2]
    if not members:
        raise ValueError("the zip has no images inside species folders (expected "
                         "Species_A/photo.jpg, Species_B/photo.jpg, ...)")

    digest = hashlib.sha256(blob).hexdigest()[:20]
    base = (dest_root or cache_dir() / "uploads").resolve()
    target = base / digest
    if target.is_dir():
        return UnpackedZip(target, tuple(skipped))
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=".unzip-"))
    try:
        for info, parts in members:
            out = (tmp / Path(*parts)).resolve()
            if tmp.resolve() not in out.parents:  # belt and braces after _safe_parts
                skipped.append((info.filename, "path escapes the folder (zip slip), refused"))
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return UnpackedZip(target, tuple(skipped))
