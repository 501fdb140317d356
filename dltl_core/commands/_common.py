"""Checks shared by the sub-commands: values in range and output paths that can be written.

Every check runs before any training starts and raises one ``ValueError`` naming
the option, so ``cli.main`` answers with exit status 2 and ``{"error": ...}``
instead of a traceback after minutes of work. Nothing is silently clamped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def check_range(option: str, value: Any, low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> None:
    """Refuse ``value`` outside [low, high] (``None`` values are "not given" and pass).

    Args:
        option: the option as the user typed it, e.g. ``"--batch-size"``.
        low, high: bounds; ``None`` means unbounded on that side.
        low_open, high_open: exclude the bound itself.
    """
    if value is None:
        return
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "" if low is None else f"{'above' if low_open else 'at least'} {low:g}"
        hi = "" if high is None else f"{'below' if high_open else 'at most'} {high:g}"
        raise ValueError(f"{option} must be {' and '.join(filter(None, (lo, hi)))}, got {value}")


def writable_file(option: str, path: str | None) -> Path | None:
    """Check that ``path`` can be written as a file (its folder exists and is writable).

    Returns:
        the absolute path, or None when the option was not given.
    """
    if path is None:
        return None
    p = Path(path).expanduser().absolute()
    if p.is_dir():
        raise ValueError(f"{option} {path}: is a folder, expected a file name")
    if not p.parent.is_dir():
        raise ValueError(f"{option} {path}: the folder {p.parent} does not exist")
    # The file is written next to itself and renamed (atomic), so the folder must be writable.
    if not os.access(p.parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"{option} {path}: not writable")
    return p


def writable_dir(option: str, path: str | None) -> Path | None:
    """Check that ``path`` is (or can be created as) a writable folder; nothing is created here.

    Returns:
        the absolute path, or None when the option was not given.
    """
    if path is None:
        return None
    p = Path(path).expanduser().absolute()
    if p.exists():
        if not p.is_dir():
            raise ValueError(f"{option} {path}: exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ValueError(f"{option} {path}: not writable")
        return p
    parent = p.parent
    while not parent.exists():  # created with parents=True later: the first existing one decides
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: cannot create a folder under {parent}")
    return p
