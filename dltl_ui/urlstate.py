"""Page configuration kept in the URL, so a teacher can share a link that
reopens exactly the same view.

Values read from the URL are parsed and clamped; anything malformed falls back
to its default and is reported once in the page (never a traceback).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import streamlit as st


class UrlState:
    """Read typed, clamped values from ``st.query_params`` and write them back.

    Typical use in a page::

        url = UrlState()
        lr = st.slider("η", 1e-4, 1.0, url.float("lr", 0.1, 1e-4, 1.0), key="lr")
        url.sync(lr=lr)
        url.report()
    """

    def __init__(self) -> None:
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        """The parameter's text as the link has it, or None."""
        return self._raw(name)

    def _raw(self, name: str) -> str | None:
        try:
            return st.query_params.get(name)
        except Exception:  # a malformed query string must not break the page
            return None

    def float(self, name: str, default: float, lo: float, hi: float) -> float:
        """A float in [lo, hi]; out-of-range values are clamped, junk falls back to default."""
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
        except ValueError:
            self.problems.append(f"`{name}={raw}` is not a number; using {default}.")
            return default
        if not lo <= value <= hi:
            clamped = min(max(value, lo), hi)
            self.problems.append(f"`{name}={raw}` is outside [{lo}, {hi}]; using {clamped}.")
            return clamped
        return value

    def int(self, name: str, default: int, lo: int, hi: int) -> int:
        """An int in [lo, hi] (clamped); junk falls back to default."""
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(float(raw))
        except (ValueError, OverflowError):
            self.problems.append(f"`{name}={raw}` is not an integer; using {default}.")
            return default
        if not lo <= value <= hi:
            clamped = min(max(value, lo), hi)
            self.problems.append(f"`{name}={raw}` is outside [{lo}, {hi}]; using {clamped}.")
            return clamped
        return value

    def choice(self, name: str, default: str, options: Sequence[str]) -> str:
        """One of ``options``; anything else falls back to default."""
        raw = self._raw(name)
        if raw is None:
            return default
        if raw not in options:
            self.problems.append(f"`{name}={raw}` is not one of {', '.join(options)}; using {default}.")
            return default
        return raw

    def choices(self, name: str, default: Sequence[str], options: Sequence[str]) -> list[str]:
        """A comma-separated subset of ``options``; unknown items are dropped."""
        raw = self._raw(name)
        if raw is None:
            return list(default)
        items = [s for s in raw.split(",") if s]
        good = [s for s in items if s in options]
        if len(good) != len(items):
            self.problems.append(f"`{name}={raw}` has unknown entries; kept {', '.join(good) or 'none'}.")
        return good or list(default)

    def bool(self, name: str, default: bool) -> bool:
        """A boolean from ``1/0/true/false``."""
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"`{name}={raw}` is not true/false; using {default}.")
        return default

    @staticmethod
    def encode(value: Any) -> str:
        """A value as the URL carries it (booleans 1/0, lists comma-separated, floats 6 digits)."""
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        if isinstance(value, float):
            return f"{value:.6g}"
        return str(value)

    @staticmethod
    def sync(**values: Any) -> None:
        """Write the page's current configuration into the URL (only if it changed)."""
        encoded = {key: UrlState.encode(value) for key, value in values.items()}
        try:
            current = {k: st.query_params.get(k) for k in encoded}
            if current != encoded:
                st.query_params.update(encoded)
        except Exception:
            pass

    @staticmethod
    def drop(*names: str) -> None:
        """Remove parameters from the URL (those left at a default that is not shown)."""
        try:
            for name in names:
                if name in st.query_params:
                    del st.query_params[name]
        except Exception:
            pass

    def report(self) -> None:
        """Show what was wrong with the URL: one warning per bad parameter, once."""
        for problem in dict.fromkeys(self.problems):  # each message once, in order
            st.warning(f"Setting ignored in the link: {problem}", icon="⚠️")
        self.problems = []
