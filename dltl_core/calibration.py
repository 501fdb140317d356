"""Time estimates that come true: a model's prediction corrected by what this machine took.

A page announces "about N s" before heavy work. The prediction (FLOPs, steps, a short
probe) is only a model; after every finished run the page records ``actual / predicted``
for that kind of work, and later estimates are the prediction times the median of the
last ratios. The ratios live in one small JSON file in the cache folder, so every process
of a server (and its job workers) shares them, and a restart keeps them.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
from pathlib import Path

from dltl_core import cache

KEEP = 8  # ratios kept per kind: recent enough to follow the machine's load, enough for a median
RATIO_BOUNDS = (0.05, 50.0)  # a ratio outside this is a measurement accident (a suspended laptop)
_lock = threading.Lock()


def _path() -> Path:
    return cache.cache_dir() / "calibration.json"


def _read(path: Path) -> dict[str, list[float]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # missing or damaged: start afresh rather than fail a page
    if not isinstance(data, dict):
        return {}
    return {k: [float(r) for r in v if isinstance(r, (int, float)) and math.isfinite(r)]
            for k, v in data.items() if isinstance(k, str) and isinstance(v, list)}


def record(kind: str, predicted_s: float, actual_s: float, path: Path | None = None) -> None:
    """Remember that work of ``kind`` predicted to take ``predicted_s`` took ``actual_s``.

    Non-positive, non-finite or absurd pairs are ignored.
    """
    if not (predicted_s > 0 and actual_s > 0 and math.isfinite(predicted_s) and math.isfinite(actual_s)):
        return
    ratio = actual_s / predicted_s
    if not RATIO_BOUNDS[0] <= ratio <= RATIO_BOUNDS[1]:
        return
    path = path or _path()
    with _lock:
        data = _read(path)
        data[kind] = (data.get(kind, []) + [ratio])[-KEEP:]
        path.parent.mkdir(parents=True, exist_ok=True)
        cache.atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data)))


def factor(kind: str, path: Path | None = None, fallback: str | None = None) -> float:
    """Median ``actual / predicted`` of the last runs of ``kind``; before any, that of
    ``fallback`` (a broader kind), else 1."""
    data = _read(path or _path())
    ratios = data.get(kind) or (data.get(fallback, []) if fallback else [])
    return statistics.median(ratios) if ratios else 1.0


def estimate(kind: str, predicted_s: float, path: Path | None = None, fallback: str | None = None) -> float:
    """``predicted_s`` corrected by this machine's record for ``kind`` (or ``fallback``'s)."""
    return predicted_s * factor(kind, path, fallback)


__all__ = ["KEEP", "estimate", "factor", "record"]
