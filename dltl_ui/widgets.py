"""Draw one declared setting as a Streamlit widget (used by ``dltl_ui.binder``)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dltl_core.query import nearest
from dltl_core.settings import Setting, field_kind


def default_widget(s: Setting, kind: type) -> str:
    """The widget a field gets when its declaration names none."""
    if s.widget:
        return s.widget
    if kind is bool:
        return "toggle"
    if kind is tuple:
        return "multiselect"
    if kind in (int, float):
        return "select_slider" if (s.ticks or s.options()) else "slider"
    return "select"


def _clamp(b: Any, name: str, kind: type, s: Setting, lo: Any = None, hi: Any = None) -> None:
    """Keep the session value inside what the widget offers (a widget must never raise)."""
    ss, key = st.session_state, b.key(name)
    value = ss.get(key, b.defaults[name])
    lo = s.widget_range[0] if lo is None else lo
    hi = s.widget_range[1] if hi is None else hi
    if kind in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        offered = list(s.ticks or s.options())
        if offered and value not in offered:
            value = nearest(offered, float(value))
        if lo is not None:
            value = max(value, kind(lo))
        if hi is not None:
            value = min(value, kind(hi))
        ss[key] = kind(value)
    elif kind is str and s.options() and value not in s.options():
        ss[key] = b.defaults[name]
    elif kind is tuple and s.options():
        ss[key] = [v for v in value if v in s.options()]


def draw(b: Any, name: str, where: Any, overrides: dict[str, Any]) -> Any:
    """Draw field ``name`` of binder ``b`` in ``where``; returns the widget's value."""
    s, kind = b.settings[name], field_kind(b.cls, name)
    _clamp(b, name, kind, s, overrides.get("lo"), overrides.get("hi"))
    kw: dict[str, Any] = {"key": b.key(name), "help": s.help}
    kw.update(overrides)
    label = kw.pop("label", s.label)
    w = kw.pop("widget", None) or default_widget(s, kind)
    lo, hi = kw.pop("lo", s.widget_range[0]), kw.pop("hi", s.widget_range[1])  # a range that depends on others
    fmt = {"format_func": s.label_of} if s.labels is not None else {}
    if w == "toggle":
        return where.toggle(label, **kw)
    if w == "checkbox":
        return where.checkbox(label, **kw)
    if w == "multiselect":
        return where.multiselect(label, s.options(), **fmt, **kw)
    if w == "select":
        return where.selectbox(label, s.options(), **fmt, **kw)
    if w == "radio":
        return where.radio(label, s.options(), **fmt, **kw)
    if w == "select_slider":
        options = list(s.ticks or s.options())
        return where.select_slider(label, options, format_func=kw.pop("format_func", lambda v: f"{v:g}"), **kw)
    step = s.step if s.step is not None else (1 if kind is int else None)
    num = {"step": kind(step) if step is not None else None, "format": s.fmt}
    num = {k: v for k, v in num.items() if v is not None}
    lo_v = kind(lo) if lo is not None else None
    hi_v = kind(hi) if hi is not None else None
    if w == "number":
        return where.number_input(label, lo_v, hi_v, **num, **kw)
    return where.slider(label, lo_v, hi_v, **num, **kw)


__all__ = ["default_widget", "draw"]
