"""The /layers page's charts: parameters of one layer, the networks' accuracy, and inside the
trained CNN (an input digit, its first-layer filters, its feature maps)."""

from __future__ import annotations

import math
from typing import Sequence

import altair as alt
import pandas as pd

from dltl_ui.charts.palette import KIND_COLORS
from dltl_ui.layout import chart_height


def param_dots(table: pd.DataFrame) -> alt.LayerChart:
    """Parameters of one fully connected vs one convolutional layer per input size (``param_table``)."""
    long = table.melt(id_vars=["input"], value_vars=["fully connected", "convolutional"], var_name="layer",
                      value_name="parameters")
    # Dots on a log axis (bars cannot start at 0 on a log scale).
    dots = alt.Chart(long).mark_circle(size=260, opacity=1).encode(
        y=alt.Y("input:N", sort=list(table["input"]), title=None),
        x=alt.X("parameters:Q", scale=alt.Scale(type="log"), title="parameters of one layer (log scale)",
                axis=alt.Axis(format="~s")),
        color=alt.Color("layer:N", title=None, legend=alt.Legend(orient="bottom"),
                        scale=KIND_COLORS),
        tooltip=["input", "layer", alt.Tooltip("parameters:Q", format=",")],
    )
    labels = dots.mark_text(dy=-16, fontWeight="bold").encode(text=alt.Text("parameters:Q", format=".3~s"))
    return (dots + labels).properties(height=chart_height(260, 300))


def accuracy_floor(summary: pd.DataFrame) -> float:
    """Where the accuracy axis starts: near the lowest bar (leads of a point or two would vanish
    on 0-100 %), at most 80 %."""
    return min(0.8, math.floor(float(summary["low"].min()) * 10) / 10)


def accuracy_bars(summary: pd.DataFrame, seeds: Sequence[int]) -> alt.LayerChart:
    """Mean validation accuracy per model (bar), lowest to highest over ``seeds`` (line), the mean as text."""
    order = list(summary["model"])
    base = alt.Chart(summary).encode(y=alt.Y("model:N", sort=order, title=None))
    # The bars are clipped to the axis (it starts at ``accuracy_floor``), else they would run over
    # the model names.
    floor = accuracy_floor(summary)
    acc = base.mark_bar(clip=True).encode(
        x=alt.X("mean:Q", title=f"validation accuracy (mean over {len(seeds)} seed"
                                f"{'s' if len(seeds) > 1 else ''}; line: lowest to highest)",
                scale=alt.Scale(domain=[floor, 1]), axis=alt.Axis(format="%", tickCount=5)),
        color=alt.Color("kind:N", title=None, legend=alt.Legend(orient="bottom"), scale=KIND_COLORS),
        tooltip=["model", alt.Tooltip("parameters:Q", format=","), alt.Tooltip("mean:Q", format=".3f"),
                 alt.Tooltip("low:Q", format=".3f"), alt.Tooltip("high:Q", format=".3f")],
    )
    spread = base.mark_rule(color="black", strokeWidth=2).encode(x="low:Q", x2="high:Q")
    text = base.mark_text(align="left", dx=4, dy=-9).encode(x="high:Q", text=alt.Text("mean:Q", format=".1%"))
    return (acc + spread + text).properties(height=chart_height(240))


def digit_image(img: pd.DataFrame, digit: int) -> alt.Chart:
    """One 8×8 input image (rows of ``row``, ``col``, ``value``)."""
    return alt.Chart(img).mark_rect().encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="greys"), legend=None),
    ).properties(width=200, height=200, title=f"Input: a {digit}")


def filter_grid(filters: pd.DataFrame) -> alt.Chart:
    """The first layer's 3×3 filters, four to a row (red positive, blue negative weights)."""
    return alt.Chart(filters).mark_rect().encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
        color=alt.Color("weight:Q", scale=alt.Scale(scheme="redblue", domainMid=0), legend=None),
        facet=alt.Facet("filter:O", columns=4, title="First-layer 3×3 filters", header=alt.Header(labels=False)),
    ).properties(width=44, height=44)


def feature_maps(maps: pd.DataFrame) -> alt.Chart:
    """The feature maps after the first convolution and ReLU, eight to a row."""
    return alt.Chart(maps).mark_rect().encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="viridis"), legend=None),
        facet=alt.Facet("channel:O", columns=8, title="Feature maps after the first conv + ReLU",
                        header=alt.Header(labels=False)),
    ).properties(width=56, height=56)
