"""A link's query string read against the settings' declarations (no Streamlit).

The page (through ``dltl_ui.urlstate``/``dltl_ui.binder``) and the code export
(``python -m dltl_core code PAGE --query ...``) read a link with these same rules, so
a shared link and the code exported for it always agree:

    values, problems = read_query(GdView, {"steps": "40", "lr": "abc"})
    # values["steps"] == 40; problems == ["`lr=abc` is not a number; using 0.1."]

Values are parsed and clamped into the widget range; anything malformed falls back
to its default and gives one message per parameter (never an exception).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from dltl_core.settings import Setting, defaults_of, field_kind, settings_of

_BIG = 1e15  # range used for URL clamping where a field declares no bound
_MAX_RAW = 200  # a longer query value is quoted cut in messages


class QueryReader:
    """Typed, clamped values from a mapping of query parameters; ``problems`` collects messages.

    Args:
        params: parameter -> text (a link's query string, parsed); None reads nothing.
    """

    def __init__(self, params: Mapping[str, str] | None = None) -> None:
        self.problems: list[str] = []
        self._params = dict(params or {})

    def raw(self, name: str) -> str | None:
        """The parameter's text as the link has it, or None."""
        return self._raw(name)

    def _raw(self, name: str) -> str | None:
        value = self._params.get(name)
        if isinstance(value, (list, tuple)):  # parse_qs gives lists: the last one wins, as in a browser
            value = value[-1] if value else None
        return value

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



def nearest(options: list[Any], value: float) -> Any:
    """The offered value closest to ``value`` (on a log scale for positive ticks)."""
    if all(isinstance(o, (int, float)) and o > 0 for o in options) and value > 0:
        return min(options, key=lambda o: abs(math.log(o) - math.log(value)))
    return min(options, key=lambda o: abs(o - value))


class _SingleParam(QueryReader):
    """A reader over one already-read raw value (so messages quote it once, cut if long)."""

    def __init__(self, param: str, raw: str) -> None:
        super().__init__()
        self._param, self._value = param, raw
        self._shown = raw if len(raw) <= _MAX_RAW else raw[:40] + "…"

    def _raw(self, name: str) -> str | None:
        return self._value

    def get_float(self, default: float, lo: float, hi: float) -> float:
        return self._fix(self.float(self._param, default, lo, hi))

    def get_int(self, default: int, lo: int, hi: int) -> int:
        return self._fix(self.int(self._param, default, lo, hi))

    def get_bool(self, default: bool) -> bool:
        return self._fix(self.bool(self._param, default))

    def get_choice(self, default: str, options: list[str]) -> str:
        return self._fix(self.choice(self._param, default, options))

    def get_choices(self, default: list[str], options: list[str]) -> list[str]:
        return self._fix(self.choices(self._param, default, options))

    def _fix(self, value: Any) -> Any:
        if self._shown != self._value:
            self.problems = [p.replace(self._value, self._shown) for p in self.problems]
        return value


def parse_value(s: Setting, kind: type, default: Any, param: str, raw: str | None) -> tuple[Any, list[str]]:
    """One field's value from its URL text: parsed, clamped into the widget range or defaulted.

    Args:
        s: the field's declaration.
        kind: its scalar type (``field_kind``).
        default: the value when ``raw`` is None or unusable.
        param: the URL parameter name (quoted in messages).
        raw: the parameter's text, or None when the link does not have it.

    Returns:
        (value, problems): at most one message.
    """
    if raw is None:
        return default, []
    single = _SingleParam(param, raw)
    shown = single._shown
    lo, hi = s.widget_range
    if kind is bool:
        value = single.get_bool(default)
    elif kind is int:
        value = single.get_int(default, int(lo if lo is not None else -_BIG), int(hi if hi is not None else _BIG))
    elif kind is float:
        value = single.get_float(default, lo if lo is not None else -_BIG, hi if hi is not None else _BIG)
    elif kind is tuple:
        options = s.options()
        by_text = {str(o): o for o in options}
        if raw == "":  # an empty selection is a valid one
            return (), []
        picked = single.get_choices([str(v) for v in default], list(by_text)) if options else raw.split(",")
        value = tuple(by_text.get(v, v) for v in picked)
    else:
        options = [str(o) for o in s.options()]
        value = single.get_choice(default, options) if options else raw[:_MAX_RAW]
    if s.positive and kind in (int, float) and value <= (s.lo or 0) and single.problems:
        # Clamped onto an excluded bound (lr=-5 -> 0): use the default, so the link gives one message.
        single.problems[0] = single.problems[0].rsplit("; using", 1)[0] + f"; using {default:g}."
        value = default
    offered = list(s.ticks or s.options()) if kind in (int, float) else []
    if offered and value not in offered:
        snapped = nearest(offered, float(value))
        single.problems.append(f"`{param}={shown}` is not one of the offered values; using {snapped:g}.")
        value = snapped
    return value, single.problems[:1]  # one message per parameter


def read_query(cls: type, params: Mapping[str, str], *, suffix: str = "", fields: Iterable[str] | None = None,
               defaults: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Every declared field of ``cls`` read from a link's parameters, as the page reads them.

    Args:
        cls: a config class declared with ``setting``.
        params: parameter -> text.
        suffix: added to each URL name (a repeated group: ``lr_2``).
        fields: the fields to read (default: all declared).
        defaults: the page's overrides of the class defaults.

    Returns:
        (values by field name, the link's problems in order).
    """
    reader = QueryReader(params)
    declared = settings_of(cls)
    merged = {**defaults_of(cls), **(defaults or {})}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name in fields or declared:
        s = declared[name]
        raw = reader.raw((s.url or name) + suffix) if s.url_state else None
        values[name], found = parse_value(s, field_kind(cls, name), merged[name], (s.url or name) + suffix, raw)
        problems += found
    return values, problems


def encode_query(cls: type, values: Mapping[str, Any], *, suffix: str = "", omit_default: bool = False) -> dict[str, str]:
    """URL parameters for ``values`` of ``cls``'s declared fields (the inverse of ``read_query``)."""
    declared = settings_of(cls)
    defaults = defaults_of(cls)
    out = {}
    for name, v in values.items():
        s = declared.get(name)
        if s is None or not s.url_state or (omit_default and v == defaults.get(name)):
            continue
        out[(s.url or name) + suffix] = QueryReader.encode(v)
    return out


__all__ = ["QueryReader", "encode_query", "nearest", "parse_value", "read_query"]
