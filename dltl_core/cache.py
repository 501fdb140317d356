"""The on-disk cache: one directory, keyed files, atomic writes, a size cap, single flight.

Writes go to a temporary file in the same directory and are then renamed over
the target (``os.replace`` is atomic on POSIX and Windows), so a reader never
sees half a file even when several visitors share one server.

The cache is bounded: after each write, the least recently used entries (a read
counts as a use) are removed until the cache holds at most ``DLTL_CACHE_MAX_MB``
(default 2048). Downloads, converted weights and uploads are not evicted (they
have their own lifetimes). ``single_flight(key)`` makes one caller do a piece of
shared work (a download, a feature extraction) while the others wait for it,
across threads and processes (a per-key ``fcntl.flock`` on a lock file).
"""

from __future__ import annotations

import hashlib
import json
import contextlib
import functools
import math
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch


def cache_dir() -> Path:
    """The cache root: ``$DLTL_CACHE_DIR``, else ``~/.cache/dltl``; created on demand."""
    root = Path(os.environ.get("DLTL_CACHE_DIR") or Path.home() / ".cache" / "dltl")
    root.mkdir(parents=True, exist_ok=True)
    return root


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A short hash of the core's source files: part of every key of a result kept on disk.

    A pickled result names its classes by module (``dltl_core.lessons.learning_rate.SweepPoint``);
    after an upgrade that moved or changed one, an old entry would fail to load or, worse,
    load numbers the new code no longer computes. With the version in the key, a new version
    of the code never reads an old one's entries.
    """
    return tree_hash(Path(__file__).resolve().parent)


def tree_hash(root: Path) -> str:
    """A short hash of the ``.py`` files under ``root``: their paths and their bytes."""
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def config_key(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (configs, file lists, versions)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def json_safe(value: Any) -> Any:
    """Replace NaN/inf (not valid JSON) by None, recursively through dicts and lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temp file, which then replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_tensors(path: Path, tensors: dict[str, Any]) -> Path:
    """Atomically save a dict of tensors (and plain values) with ``torch.save``."""
    atomic_write(path, lambda tmp: torch.save(tensors, tmp))
    evict(keep=path)
    return path


def load_tensors(path: Path) -> dict[str, Any] | None:
    """Load what ``save_tensors`` wrote (``weights_only=True``), or None if absent/corrupt."""
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, RuntimeError, EOFError, OSError, ValueError):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # a read is a use: least recently *used* entries are evicted first
    return value


# ----------------------------------------------------------------------------- size cap

# Sub-folders with their own lifetime: downloads and converted weights are kept, uploads are
# swept per visitor session (dltl_core.birds.upload), lock files are tiny.
NOT_EVICTED = frozenset({"uploads", "cub", "cifar10", "torchvision", "weights", "locks"})
DEFAULT_MAX_MB = 2048


def max_cache_bytes() -> int:
    """``DLTL_CACHE_MAX_MB`` (default 2048) in bytes."""
    try:
        mb = float(os.environ.get("DLTL_CACHE_MAX_MB") or DEFAULT_MAX_MB)
    except ValueError:
        mb = DEFAULT_MAX_MB
    return int(max(mb, 0) * 2**20)


def _entries(root: Path) -> list[tuple[float, int, Path]]:
    """(last use, size, path) of every evictable cache file."""
    out = []
    for sub in root.iterdir() if root.is_dir() else ():
        if not sub.is_dir() or sub.name in NOT_EVICTED:
            continue
        for dirpath, _, files in os.walk(sub):
            for name in files:
                if name.startswith(".") or name.endswith(".lock"):
                    continue  # writes in progress; lock files others may hold (deleting one breaks it)
                path = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    st = path.stat()
                    out.append((st.st_mtime, st.st_size, path))
    return out


def evict(max_bytes: int | None = None, keep: Path | None = None) -> list[Path]:
    """Remove least recently used cache files until the evictable part holds ``max_bytes``.

    Args:
        max_bytes: the cap (default ``max_cache_bytes()``).
        keep: a file never removed (the one just written).

    Returns:
        The files removed. A reader that loses a file to eviction sees a cache miss.
    """
    cap = max_cache_bytes() if max_bytes is None else max_bytes
    entries = sorted(_entries(cache_dir()))
    total = sum(size for _, size, _ in entries)
    removed = []
    for _, size, path in entries:
        if total <= cap:
            break
        if keep is not None and path == Path(keep):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
        total -= size
    return removed


# ----------------------------------------------------------------------------- single flight

_KEY = re.compile(r"[^A-Za-z0-9_.-]")


@contextlib.contextmanager
def single_flight(key: str, timeout: float = 600.0,
                  on_wait: Callable[[float], None] | None = None) -> Iterator[None]:
    """Run a block for ``key`` in one caller at a time (threads and processes alike).

    The caller that gets the lock does the work; the others wait, then run the block
    themselves, and the block should begin by checking whether the work is already
    done (e.g. ``if is_downloaded(): return``). Example::

        with single_flight("cub-download", timeout=3600):
            if not is_downloaded():
                download()

    Args:
        key: names the piece of work (e.g. ``"features-" + config_key(...)``).
        timeout: seconds to wait for another caller before giving up.
        on_wait: called about every 0.2 s with the seconds waited so far (a page's
            "another visitor is downloading…" message).

    Raises:
        TimeoutError: another caller held the lock for more than ``timeout`` seconds.
    """
    path = cache_dir() / "locks" / f"{_KEY.sub('_', key)[:120]}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        _lock_file(fh, timeout, on_wait)
        try:
            yield
        finally:
            _unlock_file(fh)


_THREAD_LOCKS: dict[str, threading.Lock] = {}


def _lock_file(fh: Any, timeout: float, on_wait: Callable[[float], None] | None) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: serialise within this process only
        lock = _THREAD_LOCKS.setdefault(fh.name, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise TimeoutError(f"still busy after {timeout:.0f} s") from None
        return
    start = time.monotonic()
    while True:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            waited = time.monotonic() - start
            if waited > timeout:
                raise TimeoutError(f"another visitor's run is still busy after {timeout:.0f} s; "
                                   "try again later") from None
            if on_wait is not None:
                on_wait(waited)
            time.sleep(0.2)


def _unlock_file(fh: Any) -> None:
    try:
        import fcntl
    except ImportError:
        _THREAD_LOCKS[fh.name].release()
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
