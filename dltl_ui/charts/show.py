"""Showing a chart: Altair with the page theme, or a compiled spec kept for reuse, and its caption."""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Hashable

import altair as alt
import pandas as pd
import streamlit as st

from dltl_ui.charts.compiled import show_cached


def data_key(*parts: Any) -> str:
    """A short digest of what a chart is drawn from (frames by content, other parts by ``repr``):
    with the chart's options, a ``show_chart`` key that changes whenever the data do."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, pd.DataFrame):
            h.update(part.to_json(orient="split", date_format="iso", default_handler=str).encode())
        else:
            h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()[:20]


def show_chart(chart: alt.TopLevelMixin | Callable[[], alt.TopLevelMixin], caption: str | None = None, *,
               key: Hashable | None = None) -> None:
    """Render an Altair chart with the DLTL theme, and a caption saying what to notice.

    Args:
        chart: the chart, or (with ``key``) a function that builds it.
        caption: what to notice.
        key: names everything the chart shows: its compiled spec is then kept and reused
            (``charts.compiled.show_cached``), so a rerun or another session showing the same
            chart skips Altair altogether, and a builder is only called the first time.
    """
    if key is None:
        st.altair_chart(chart() if callable(chart) else chart, width="stretch", theme=None)
    else:
        show_cached(key, chart if callable(chart) else (lambda: chart))
    if caption:
        st.caption(caption)
