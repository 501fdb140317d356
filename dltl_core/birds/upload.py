"""An uploaded zip of species folders, unpacked safely into the visitor's own upload area.

Every visitor session gets its own area ``<cache>/uploads/<token>`` (``session_area``);
nothing is written outside it, other sessions' areas are never listed, and areas of
sessions that ended (or idle past a TTL) are removed by ``sweep_uploads``.

The zip is judged **before anything is extracted**: first its size and its number of
entries (directories too), read from the end-of-central-directory record and counted in
the directory's bytes before ``zipfile`` parses it (500,000 entries would cost seconds
and hundreds of MB); then from the central directory the total unpacked size, the
expansion ratio of the whole zip and of each large member (a 1 MB zip of zeros declares
1 GiB and is refused without writing a byte), this session's quota and the cap on all
sessions' uploads together (``total_quota``). Extraction then counts the bytes it writes
and stops at the declared sizes. Each member is judged by its first bytes before it is
written: not an image by content (Pillow's own signature tests), or an image whose
decode would not fit the memory budget of ``dltl_core.images`` (a 6300x6300 RGBA PNG),
is skipped, so the photos unpacked are ones the server can decode within its budget.
Members whose path would escape the folder (absolute, ``..``: "zip slip"), symlinks,
encrypted or damaged members, names too long for the disk and non-image files are
refused or skipped and counted; no message names a server path.
Each upload is unpacked into a temporary folder renamed into place (atomic); when the
same zip is unpacked twice at once, the second finds the first's folder and uses it.
Unpacks into areas under one cap take turns (a file lock), so the quotas hold when
several visitors upload at once; each is bounded (at most ``MAX_UNPACKED_BYTES``
written, memory: the zip plus a 1 MiB buffer) and takes seconds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import shutil
import stat
import struct
import tempfile
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterator

from PIL import Image

from dltl_core import images
from dltl_core.cache import cache_dir
from dltl_core.images import is_image_name

try:
    import fcntl
except ImportError:  # Windows: unpacks do not take turns across processes there
    fcntl = None  # type: ignore[assignment]

MAX_ZIP_BYTES = 50 * 1024 * 1024  # Streamlit's server.maxUploadSize in .streamlit/config.toml
MAX_FILES = 5_000
MAX_UNPACKED_BYTES = 300 * 1024 * 1024
MAX_RATIO = 50.0  # photos barely compress (JPEG/PNG ~1x, BMP/TIFF a few x); zeros compress ~1000x
SESSION_QUOTA_BYTES = 500 * 1024 * 1024
TOTAL_QUOTA_BYTES = 2 * 1024**3  # all sessions together, at most; see total_quota()
TOTAL_QUOTA_DISK_SHARE = 0.25  # ... and at most this share of the disk the uploads can use
MAX_NAME_BYTES = 255  # a file or folder name longer than this cannot be written (NAME_MAX)
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory: signature ... entries, size, offset
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # its zip64 version (more than 65,535 entries)
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
        elif any(len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts):
            skipped.append((info.filename[:120], f"a file or folder name longer than {MAX_NAME_BYTES} bytes, "
                                                 "skipped"))
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


def directory_entries(blob: bytes) -> int:
    """Entries of a zip (directories too), from its end record, before ``zipfile`` parses them.

    The larger of the count the end-of-central-directory record (or its zip64 version)
    declares and the number of entry signatures in the directory's bytes, so a record
    that under-declares is caught too. A C-level scan: milliseconds for 50 MB.

    Raises:
        ValueError: no end record (not a zip).
    """
    pos = blob.rfind(b"PK\x05\x06", max(0, len(blob) - _EOCD.size - 0xFFFF))
    if pos < 0 or len(blob) - pos < _EOCD.size:
        raise ValueError("the upload is not a valid zip file")
    _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(blob, pos)
    end = pos
    z64 = pos - 20 - _EOCD64.size  # the zip64 record sits before its 20-byte locator
    if z64 >= 0 and blob[pos - 20:pos - 16] == b"PK\x06\x07" and blob[z64:z64 + 4] == b"PK\x06\x06":
        rec = _EOCD64.unpack_from(blob, z64)
        entries, cd_size, end = max(entries, rec[7]), rec[8], z64
    return max(entries, blob.count(b"PK\x01\x02", max(0, end - cd_size), end))


def _check_sizes(infos: list[zipfile.ZipInfo], members: list, zip_bytes: int, max_files: int,
                 max_unpacked: int, max_ratio: float) -> None:
    """Refuse the zip from its central directory alone, before a byte is written."""
    if len(infos) > max_files:
        raise ValueError(f"the zip holds {len(infos):,} entries (files and folders); the limit is {max_files:,}")
    declared = sum(i.file_size for i in infos)
    if declared > max_unpacked:
        raise ValueError(f"the zip unpacks to more than {max_unpacked / 2**20:g} MB "
                         f"({declared / 2**20:,.0f} MB declared)")
    if declared > 2**20 and declared / max(zip_bytes, 1) > max_ratio:
        raise ValueError(f"the zip expands {declared / max(zip_bytes, 1):,.0f}x in all (limit {max_ratio:g}x): "
                         "refused as a zip bomb; photos barely compress")
    for info, _ in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= 2**20 and ratio > max_ratio:
            raise ValueError(f"{info.filename[:120]} expands {ratio:,.0f}x (limit {max_ratio:g}x): refused as a "
                             "zip bomb; photos barely compress")


def _check_room(planned: int, room: int | None, total_room: int | None, total: int | None) -> None:
    """Refuse an upload that does not fit this session's quota or all sessions' cap."""
    if room is not None and planned > room:
        raise ValueError(f"this upload needs {planned / 2**20:,.0f} MB but only {max(room, 0) / 2**20:,.0f} MB "
                         "of this session's upload space is left; remove earlier uploads or reload the page")
    if total_room is not None and planned > total_room:
        raise ValueError(f"this upload needs {planned / 2**20:,.0f} MB but the server's space for all visitors' "
                         f"uploads ({(total or 0) / 2**20:,.0f} MB) has only {max(total_room, 0) / 2**20:,.0f} MB "
                         "left; try again when other visitors have closed their tabs")


def _content_problem(head: bytes) -> str | None:
    """Why a member's first bytes are not a photo this server can decode, or None.

    The header is judged as ``open_rgb`` will judge it (pixels, depth, memory); a
    header that lies beyond the first bytes is left to the decoder.
    """
    if not images.is_image_content(head):
        return "not an image by its content, skipped"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            images.check_header(Image.open(io.BytesIO(head)), "image")
    except images.ImageError as err:
        return str(err).split(": ", 1)[-1] + ", skipped"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "refused as a decompression bomb"
    except Exception:  # noqa: BLE001 - e.g. a JPEG whose size comes after a large EXIF block
        return None
    return None


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path) -> str | None:
    """Write one member to ``out`` (never more bytes than it declares); why it was not, or None."""
    with zf.open(info) as src:
        left = info.file_size
        chunk = src.read(min(1 << 20, left + 1))
        problem = _content_problem(chunk)  # judged before a byte of it is written
        if problem:
            return problem
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as dst:
            while chunk:
                left -= len(chunk)
                if left < 0:
                    raise zipfile.BadZipFile("larger than declared")
                dst.write(chunk)
                chunk = src.read(min(1 << 20, left + 1))
    return None


def _extract(zf: zipfile.ZipFile, members: list, tmp: Path, skipped: list[tuple[str, str]],
             should_stop: Callable[[], bool] | None = None) -> int:
    """Copy members into ``tmp``; damaged, unwritable or non-image ones are skipped. Returns the count written.

    Raises:
        ValueError: the disk is full, or ``should_stop()`` turned true (the visitor's tab closed)
            between two members (nothing of this upload is kept).
    """
    base = tmp.resolve()
    written = 0
    for info, parts in members:
        if should_stop is not None and should_stop():
            raise ValueError(f"unpacking stopped after {written:,} of {len(members):,} images")
        out = base / Path(*parts)
        try:
            out = out.resolve()  # may itself fail on a name too long for the disk
            if base not in out.parents:  # belt and braces after _safe_parts
                skipped.append((info.filename, "path escapes the folder (zip slip), refused"))
                continue
            problem = _copy_member(zf, info, out)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
            problem = f"damaged in the zip, skipped ({err})"
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ValueError("the server's disk is full; try again later") from err
            problem = f"could not be written, skipped ({err.strerror or 'error'})"  # never the server path
        if problem:
            with contextlib.suppress(OSError):
                out.unlink(missing_ok=True)
            skipped.append((info.filename[:200], problem))
        else:
            written += 1
    return written


@contextlib.contextmanager
def _taking_turns(folder: Path) -> Iterator[None]:
    """One unpack at a time into the areas under ``folder`` (threads and processes).

    The lock is the folder itself (``flock`` on its descriptor): no lock file is left behind.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


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
                       quota: int | None = None, total_quota: int | None = None,
                       should_stop: Callable[[], bool] | None = None) -> UnpackedZip:
    """Unpack a zip of species folders into ``dest_root/<hash of the zip>``; return it.

    A single top folder wrapping the species folders (``birds/Species/x.jpg``) is
    looked through. Images lying directly at the root (no species folder) are skipped.

    Args:
        data: the zip's bytes, a binary file or a path.
        dest_root: the visitor's upload area (``session_area(token)``); default
            ``<cache>/uploads/local`` (command line and tests).
        max_bytes: largest zip accepted.
        max_files: most entries (files and folders), checked before the directory is parsed.
        max_unpacked, max_ratio: limits read from the central directory.
        quota: bytes the whole of ``dest_root`` may hold after this upload (None: no quota).
        total_quota: bytes all areas beside ``dest_root`` (its parent folder, i.e. every
            session's uploads) may hold together after this upload (None: no cap).
        should_stop: asked before each member (e.g. "has the visitor's tab closed?"); when
            it returns True the unpack ends and nothing is kept.

    Raises:
        ValueError: not a zip, too large, too many entries, a zip bomb, over a quota,
            the disk full, no usable images, or stopped. Nothing is kept in these cases.
    """
    blob = _read_blob(data, max_bytes)
    entries = directory_entries(blob)
    if entries > max_files:  # before zipfile builds one object per entry
        raise ValueError(f"the zip holds {entries:,} entries (files and folders); the limit is {max_files:,}")
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as err:
        raise ValueError("the upload is not a valid zip file") from err
    infos = zf.infolist()
    members, skipped = _classify([i for i in infos if not i.is_dir()])
    base = (dest_root or cache_dir() / "uploads" / "local").resolve()
    target = base / hashlib.sha256(blob).hexdigest()[:20]
    if target.is_dir():  # the same zip again in this area
        return UnpackedZip(target, tuple(skipped))
    _check_sizes(infos, members, len(blob), max_files, max_unpacked, max_ratio)
    if not members:
        raise ValueError("the zip has no images inside species folders (expected "
                         "Species_A/photo.jpg, Species_B/photo.jpg, ...)")
    # One lock for every session's area when they share a cap, else one for this area.
    with _taking_turns(base.parent if total_quota is not None else base):
        if target.is_dir():  # unpacked meanwhile, by another tab of this session
            return UnpackedZip(target, tuple(skipped))
        room = None if quota is None else quota - area_bytes(base)
        total_room = None if total_quota is None else total_quota - area_bytes(base.parent)
        _check_room(sum(i.file_size for i, _ in members), room, total_room, total_quota)
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=".unzip-"))
        try:
            if not _extract(zf, members, tmp, skipped, should_stop):
                first = next((f"{name}: {why.removesuffix(', skipped')}" for name, why in skipped), "")
                raise ValueError(f"none of the zip's {len(members):,} images can be used ({first[:300]})")
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


def total_quota() -> int:
    """Bytes all sessions' uploads may hold together (``DLTL_UPLOAD_TOTAL_MB``).

    Default: 2 GB, or a quarter of the disk space the uploads can use (free space plus
    what the uploads hold already) where that is less, so uploads never fill the disk.
    """
    base = uploads_base()
    base.mkdir(parents=True, exist_ok=True)
    usable = shutil.disk_usage(base).free + area_bytes(base)
    return _env_mb("DLTL_UPLOAD_TOTAL_MB", int(min(TOTAL_QUOTA_BYTES, TOTAL_QUOTA_DISK_SHARE * usable)))
