"""Download CUB-200-2011 (Caltech-UCSD Birds) into the cache: streamed, checked, atomic.

The archive is 1.15 GB: it is streamed to a temporary file in the cache folder
with a running md5, checked against the published size and md5, renamed into
place, then extracted with tarfile's ``data`` filter (no absolute paths, no
``..``, no links out of the folder) into a temporary folder that is renamed
when complete. The result is an ImageFolder root (``images/NNN.Species_Name``)
for the same species picker as any other bird folder.

Several visitors clicking *Download* at once start one download: the others wait on
a per-folder lock (``cache.single_flight``) and then find the extracted folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from dltl_core.cache import cache_dir, config_key, single_flight

CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1"
CUB_SIZE = 1_150_585_339
CUB_MD5 = "97eceeb196236b17998738112f37df78"
_CHUNK = 1 << 20

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)

OFFLINE_HINT = ("Point the page at a folder of bird photos instead (one sub-folder per species), "
                "or set DLTL_BIRDS_DIR, or upload a zip of species folders.")


def cub_root(root: Path | None = None) -> Path:
    """Where the extracted images end up: ``<cache>/cub/CUB_200_2011/images``."""
    return (root or cache_dir() / "cub") / "CUB_200_2011" / "images"


def is_downloaded(root: Path | None = None) -> bool:
    """Whether CUB-200-2011 is already extracted in the cache."""
    return cub_root(root).is_dir()


def _download(url: str, target: Path, size: int, md5: str, timeout: float,
              progress: ProgressFn | None) -> None:
    digest = hashlib.md5()
    done = 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or size)
            if total != size:
                raise RuntimeError(f"the server offers {total:,} bytes, expected {size:,}: not the "
                                   "official CUB-200-2011 archive")
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, size)
        if done != size:
            raise RuntimeError(f"download incomplete: {done:,} of {size:,} bytes; try again")
        if digest.hexdigest() != md5:
            raise RuntimeError(f"md5 mismatch ({digest.hexdigest()} != {md5}): the archive is damaged")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _extract(archive: Path, dest: Path) -> None:
    """Extract into a temp folder beside ``dest`` with tarfile's safe ``data`` filter, then rename."""
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".extract-"))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")  # refuses absolute paths, '..', links out of tmp
        inner = tmp / "CUB_200_2011"
        if not (inner / "images").is_dir():
            raise RuntimeError("the archive has no CUB_200_2011/images folder")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(inner, dest)
    except tarfile.TarError as err:
        raise RuntimeError(f"could not extract {archive.name}: {err}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download_cub(root: Path | None = None, *, url: str = CUB_URL, size: int = CUB_SIZE,
                 md5: str = CUB_MD5, timeout: float = 10.0,
                 progress: ProgressFn | None = None,
                 on_wait: Callable[[float], None] | None = None, wait_timeout: float = 3600.0) -> Path:
    """Download and extract CUB-200-2011 into the cache (once); return its species-folder root.

    Args:
        root: folder to hold the archive and the extracted data (default ``<cache>/cub``).
        url, size, md5: the archive and its published checks.
        timeout: seconds to wait for the server to answer (a short one: offline fails fast).
        progress: called with (bytes done, bytes total) while downloading.
        on_wait: called with the seconds waited while another caller downloads the same
            archive (this caller then uses that download).
        wait_timeout: seconds to wait for that other caller.

    Raises:
        RuntimeError: offline, server error, wrong size or md5, or a bad archive; the
            message names the folder option.
    """
    root = Path(root or cache_dir() / "cub")
    root.mkdir(parents=True, exist_ok=True)
    if is_downloaded(root):
        return cub_root(root)
    try:
        with single_flight(f"cub-{config_key(os.path.realpath(root))}", wait_timeout, on_wait):
            if not is_downloaded(root):  # another caller may have finished while we waited
                _fetch_and_extract(root, url, size, md5, timeout, progress)
    except TimeoutError as err:
        raise RuntimeError(f"another download of CUB-200-2011 is still running ({err})") from err
    return cub_root(root)


def _fetch_and_extract(root: Path, url: str, size: int, md5: str, timeout: float,
                       progress: ProgressFn | None) -> None:
    archive = root / "CUB_200_2011.tgz"
    if not (archive.is_file() and archive.stat().st_size == size):
        try:
            _download(url, archive, size, md5, timeout, progress)
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise RuntimeError(f"cannot download CUB-200-2011 ({reason}). {OFFLINE_HINT}") from err
    _extract(archive, root / "CUB_200_2011")
