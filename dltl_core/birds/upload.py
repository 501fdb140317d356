"""An uploaded zip of species folders, unpacked safely into the visitor's own upload area.

Every visitor session gets its own area ``<cache>/uploads/<token>`` (``session_area``);
nothing is written outside it, other sessions' areas are never listed, and areas of
sessions that ended (or idle past a TTL) are removed by ``sweep_uploads``.

The zip is judged by its central directory **before anything is extracted**: its size,
the number of files, the total unpacked size, the expansion ratio of each image (a 1 MB
zip of zeros declares 1 GiB and is refused without writing a byte) and the session's
quota. Extraction then counts the bytes it writes and stops at the declared sizes.
Members whose path would escape the folder (absolute, ``..``: "zip slip"), symlinks,
encrypted or damaged members and non-image files are refused or skipped and counted.
Each upload is unpacked into a temporary folder renamed into place (atomic); when the
same zip is unpacked twice at once, the second finds the first's folder and uses it.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable

from dltl_core.cache import cache_dir
from dltl_core.images import is_image_name

MAX_ZIP_BYTES = 50 * 1024 * 1024  # Streamlit's server.maxUploadSize in .streamlit/config.toml
MAX_FILES = 5_000
MAX_UNPACKED_BYTES = 300 * 1024 * 1024
MAX_RATIO = 50.0  # photos barely compress (JPEG/PNG ~1x, BMP/TIFF a few x); zeros compress ~1000x
SESSION_QUOTA_BYTES = 500 * 1024 * 1024
UPLOAD_TTL_SECONDS = 3600.0
_ALIVE = ".alive"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _env_mb(name: str, default: int) -> int:
    try:
        return int(float(os.environ[name]) * 2**20)
    except (KeyError, ValueError):
        return default


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


def _read_blob(data: bytes | BinaryIO | str | Path, max_bytes: int) -> bytes:
    if isinstance(data, (str, Path)):
        blob = Path(data).read_bytes() if Path(data).stat().st_size <= max_bytes else None
    elif isinstance(data, bytes):
        blob = data
    else:
        blob = data.read(max_bytes + 1)
    if blob is None or len(blob) > max_bytes:
        raise ValueError(f"the zip is larger than the limit of {max_bytes / 2**20:g} MB")
    return blob


def _classify(infos: list[zipfile.ZipInfo]) -> tuple[list, list[tuple[str, str]]]:
    """Members to extract as (info, (species, file name)) and those skipped (name, reason)."""
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
        elif info.flag_bits & 0x1:
            skipped.append((info.filename, "encrypted, skipped"))
        else:
            members.append((info, parts))
    # Look through one wrapping folder when every image sits two levels deep under it.
    tops = {parts[0] for _, parts in members}
    if len(tops) == 1 and all(len(parts) >= 3 for _, parts in members):
        members = [(i, parts[1:]) for i, parts in members]
    members = [(i, parts) for i, parts in members if len(parts) == 2] + \
              [(i, (parts[0], "_".join(parts[1:]))) for i, parts in members if len(parts) > 2]
    return members, skipped


def _check_sizes(infos: list[zipfile.ZipInfo], members: list, max_files: int, max_unpacked: int,
                 max_ratio: float, room: int | None) -> None:
    """Refuse the zip from its central directory alone, before a byte is written."""
    if len(infos) > max_files:
        raise ValueError(f"the zip holds {len(infos):,} files; the limit is {max_files:,}")
    declared = sum(i.file_size for i in infos)
    if declared > max_unpacked:
        raise ValueError(f"the zip unpacks to more than {max_unpacked / 2**20:g} MB "
                         f"({declared / 2**20:,.0f} MB declared)")
    for info, _ in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 2**20 and ratio > max_ratio:
            raise ValueError(f"{info.filename} expands {ratio:,.0f}x (limit {max_ratio:g}x): refused as a "
                             "zip bomb; photos barely compress")
    planned = sum(i.file_size for i, _ in members)
    if room is not None and planned > room:
        raise ValueError(f"this upload needs {planned / 2**20:,.0f} MB but only {max(room, 0) / 2**20:,.0f} MB "
                         "of this session's upload space is left; remove earlier uploads or reload the page")


def _extract(zf: zipfile.ZipFile, members: list, tmp: Path, skipped: list[tuple[str, str]]) -> None:
    """Copy members into ``tmp``, never more bytes than each declares; damaged ones are skipped."""
    base = tmp.resolve()
    for info, parts in members:
        out = (base / Path(*parts)).resolve()
        if base not in out.parents:  # belt and braces after _safe_parts
            skipped.append((info.filename, "path escapes the folder (zip slip), refused"))
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zf.open(info) as src, open(out, "wb") as dst:
                left = info.file_size
                while chunk := src.read(min(1 << 20, left + 1)):
                    left -= len(chunk)
                    if left < 0:
                        raise zipfile.BadZipFile("larger than declared")
                    dst.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
            out.unlink(missing_ok=True)
            skipped.append((info.filename, f"damaged in the zip, skipped ({err})"))


def _place(tmp: Path, target: Path) -> None:
    """Rename the finished folder into place; if the same zip got there first, use that one."""
    try:
        os.replace(tmp, target)
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not target.is_dir():
            raise


def unpack_species_zip(data: bytes | BinaryIO | str | Path, *, dest_root: Path | None = None,
                       max_bytes: int = MAX_ZIP_BYTES, max_files: int = MAX_FILES,
                       max_unpacked: int = MAX_UNPACKED_BYTES, max_ratio: float = MAX_RATIO,
                       quota: int | None = None) -> UnpackedZip:
    """Unpack a zip of species folders into ``dest_root/<hash of the zip>``; return it.

    A single top folder wrapping the species folders (``birds/Species/x.jpg``) is
    looked through. Images lying directly at the root (no species folder) are skipped.

    Args:
        data: the zip's bytes, a binary file or a path.
        dest_root: the visitor's upload area (``session_area(token)``); default
            ``<cache>/uploads/local`` (command line and tests).
        max_bytes: largest zip accepted.
        max_files, max_unpacked, max_ratio: limits read from the central directory.
        quota: bytes the whole of ``dest_root`` may hold after this upload (None: no quota).

    Raises:
        ValueError: not a zip, too large, too many files, a zip bomb, over quota, or
            no usable images. Nothing is written in these cases.
    """
    blob = _read_blob(data, max_bytes)
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, zlib.error, ValueError) as err:
        raise ValueError("the upload is not a valid zip file") from err
    infos = [i for i in zf.infolist() if not i.is_dir()]
    members, skipped = _classify(infos)
    base = (dest_root or cache_dir() / "uploads" / "local").resolve()
    target = base / hashlib.sha256(blob).hexdigest()[:20]
    if target.is_dir():  # the same zip again in this area
        return UnpackedZip(target, tuple(skipped))
    room = None if quota is None else quota - area_bytes(base)
    _check_sizes(infos, members, max_files, max_unpacked, max_ratio, room)
    if not members:
        raise ValueError("the zip has no images inside species folders (expected "
                         "Species_A/photo.jpg, Species_B/photo.jpg, ...)")
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=".unzip-"))
    try:
        _extract(zf, members, tmp, skipped)
        _place(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return UnpackedZip(target, tuple(skipped))


# ----------------------------------------------------------------------------- per-session areas

def uploads_base() -> Path:
    """``<cache>/uploads``: holds one area per visitor session (never shown to a visitor)."""
    return cache_dir() / "uploads"


def session_area(token: str) -> Path:
    """The upload area of one visitor session, created and marked alive (see ``sweep_uploads``).

    Args:
        token: a random per-session token (``secrets.token_urlsafe(16)``), never typed by a visitor.

    Raises:
        ValueError: a malformed token (it becomes a folder name).
    """
    if not _TOKEN.match(token or ""):
        raise ValueError("malformed upload session token")
    area = uploads_base() / token
    area.mkdir(parents=True, exist_ok=True)
    (area / _ALIVE).touch()
    return area


def area_bytes(area: Path) -> int:
    """Bytes of the files under ``area`` (0 if it does not exist)."""
    total = 0
    for dirpath, _, files in os.walk(area):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass  # removed meanwhile
    return total


def sweep_uploads(ttl: float | None = None, ended: Callable[[str], bool | None] | None = None) -> list[str]:
    """Remove the areas of sessions that ended, or of unknown ones idle longer than ``ttl`` seconds.

    Args:
        ttl: seconds since an area was last marked alive (``DLTL_UPLOAD_TTL``, default 3600).
        ended: ``ended(token)``: True for a session known to be over (the UI asks Streamlit),
            False for one known to be connected (kept however idle), None when unknown
            (e.g. from an earlier server run: the TTL decides).

    Returns:
        The tokens whose areas were removed.
    """
    ttl = ttl if ttl is not None else float(os.environ.get("DLTL_UPLOAD_TTL") or UPLOAD_TTL_SECONDS)
    base, now, removed = uploads_base(), time.time(), []
    if not base.is_dir():
        return removed
    for area in base.iterdir():
        if not area.is_dir() or not _TOKEN.match(area.name):
            continue
        try:
            idle = now - (area / _ALIVE).stat().st_mtime
        except OSError:
            idle = now - area.stat().st_mtime
        state = ended(area.name) if ended is not None else None
        if state is True or (state is None and idle > ttl):
            shutil.rmtree(area, ignore_errors=True)
            removed.append(area.name)
    return removed


def session_quota() -> int:
    """Bytes one session's area may hold (``DLTL_UPLOAD_SESSION_MB``, default 500 MB)."""
    return _env_mb("DLTL_UPLOAD_SESSION_MB", SESSION_QUOTA_BYTES)
