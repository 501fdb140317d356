"""Charts compiled once: Altair builds a chart's Vega-Lite spec, the app keeps it.

Building Altair layers and turning them into Vega-Lite (``to_dict``: deep copies, schema
objects, one Arrow conversion per data frame) costs tens of milliseconds per chart, on
every rerun, for every session; a class of thirty pays it thirty times for the same chart.
Two ways around it:

* ``show_cached(key, build)``: the finished spec of ``build()`` (data included, as Arrow
  bytes) is kept under ``key`` (and the theme). A rerun whose data did not change sends the
  same bytes without touching Altair, and Streamlit's message cache then sends the browser a
  short reference instead of the chart.
* ``show_template(key, build, data)``: ``build()`` draws its layers from named data
  (``alt.NamedData``); its spec, without data, is kept under ``key``, and each rerun only
  converts ``data`` (frames by name) to Arrow. For charts whose shape stays while their data
  move (the /gd map while scrubbing or changing a learning rate).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, Mapping, Sequence

import altair as alt
import pandas as pd
import streamlit as st
from streamlit import dataframe_util

_MAX_BYTES = 48 * 2**20  # compiled specs kept per process (LRU), a few hundred charts
_lock = threading.Lock()
_specs: OrderedDict[Hashable, tuple[str, dict[str, bytes]]] = OrderedDict()
_size = 0


def _remember(key: Hashable, value: tuple[str, dict[str, bytes]]) -> None:
    global _size
    with _lock:
        if key in _specs:
            return
        _specs[key] = value
        _size += len(value[0]) + sum(len(b) for b in value[1].values())
        while _size > _MAX_BYTES and len(_specs) > 1:
            _, (text, data) = _specs.popitem(last=False)
            _size -= len(text) + sum(len(b) for b in data.values())


def _recall(key: Hashable) -> tuple[str, dict[str, bytes]] | None:
    with _lock:
        value = _specs.get(key)
        if value is not None:
            _specs.move_to_end(key)
        return value


def arrow(df: pd.DataFrame) -> bytes:
    """A frame as the Arrow bytes Streamlit sends for a chart's dataset."""
    return dataframe_util.convert_pandas_df_to_arrow_bytes(df)


def compile_chart(chart: alt.TopLevelMixin) -> tuple[str, dict[str, bytes]]:
    """``chart``'s Vega-Lite spec (JSON text, the active theme's config included) and its
    datasets as Arrow bytes by name (content hashes, so equal frames are sent once)."""
    datasets: dict[str, bytes] = {}

    def to_arrow(data: Any) -> dict[str, str]:
        raw = arrow(data) if isinstance(data, pd.DataFrame) else arrow(pd.DataFrame(data))
        name = "d" + hashlib.sha1(raw).hexdigest()[:16]
        datasets[name] = raw
        return {"name": name}

    # Altair's data transformers are process-wide: one conversion at a time.
    with _lock, alt.data_transformers.disable_max_rows():
        alt.data_transformers.register("dltl_arrow", to_arrow)
        with alt.data_transformers.enable("dltl_arrow"):
            spec = chart.to_dict(validate=False)
    spec.pop("datasets", None)
    return json.dumps(spec), datasets


def _show(text: str, datasets: Mapping[str, bytes]) -> None:
    spec = json.loads(text)
    spec["datasets"] = dict(datasets)
    st.vega_lite_chart(spec=spec, width="stretch", theme=None)


def _theme_key(key: Hashable) -> tuple:
    # The same chart in classroom mode has other font sizes: another spec.
    return key, alt.theme.active


def show_cached(key: Hashable, build: Callable[[], alt.TopLevelMixin]) -> None:
    """Draw ``build()``, compiled once per ``key`` (which must name everything the chart shows)."""
    k = _theme_key(("cached", key))
    value = _recall(k)
    if value is None:
        value = compile_chart(build())
        _remember(k, value)
    _show(*value)


def _stand_in(i: int) -> str:
    return f"@@dltl-text-{i}@@"  # ASCII: json.dumps leaves it as it is


def show_template(key: Hashable, build: Callable[..., alt.TopLevelMixin], data: Mapping[str, pd.DataFrame],
                  texts: Sequence[str] | None = None) -> None:
    """Draw the chart ``build()`` (layers on ``alt.NamedData(name)``) filled with ``data``.

    Args:
        key: names the chart's shape (everything but ``data`` and ``texts``): colours, sizes.
        build: makes the chart; called once per key and theme (with ``texts``: called with
            stand-ins for them, ``build(stand_ins)``).
        data: the frame of each named dataset, converted on every call.
        texts: strings the spec holds that change more often than its shape (the legend's
            run labels "SGD, η = 0.0013": a new learning rate is a new label, not a new
            chart); each is put in place of its stand-in on every call. A stand-in that is
            only part of a longer string cannot be replaced: that chart is compiled with
            the texts themselves.
    """
    if texts is None:
        k = _theme_key(("template", key))
        value = _recall(k)
        if value is None:
            value = compile_chart(build())
            _remember(k, value)
        text, fixed = value
    else:
        texts = list(texts)
        k = _theme_key(("template", key, len(texts)))
        value = _recall(k)
        if value is None:
            value = compile_chart(build([_stand_in(i) for i in range(len(texts))]))
            _remember(k, value)
        text, fixed = value
        for i, t in enumerate(texts):
            text = text.replace(json.dumps(_stand_in(i)), json.dumps(t))
        if "@@dltl-text-" in text:  # a stand-in inside a longer string: compile with the texts
            k = _theme_key(("template", key, tuple(texts)))
            value = _recall(k) or compile_chart(build(texts))
            _remember(k, value)
            text, fixed = value
    _show(text, {**fixed, **{name: (df if isinstance(df, bytes) else arrow(df)) for name, df in data.items()}})


def clear() -> None:
    """Forget every compiled chart (tests)."""
    global _size
    with _lock:
        _specs.clear()
        _size = 0


__all__ = ["arrow", "clear", "compile_chart", "show_cached", "show_template"]
