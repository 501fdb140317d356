"""The on-disk cache: one directory, keyed files, atomic writes.

Writes go to a temporary file in the same directory and are then renamed over
the target (``os.replace`` is atomic on POSIX and Windows), so a reader never
sees half a file even when several visitors share one server.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch


def cache_dir() -> Path:
    """The cache root: ``$DLTL_CACHE_DIR``, else ``~/.cache/dltl``; created on demand."""
    root = Path(os.environ.get("DLTL_CACHE_DIR") or Path.home() / ".cache" / "dltl")
    root.mkdir(parents=True, exist_ok=True)
    return root


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
    return atomic_write(path, lambda tmp: torch.save(tensors, tmp))


def load_tensors(path: Path) -> dict[str, Any] | None:
    """Load what ``save_tensors`` wrote (``weights_only=True``), or None if absent/corrupt."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, RuntimeError, EOFError, OSError, ValueError):
        return None
