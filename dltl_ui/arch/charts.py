"""Altair charts of the assignment pages (architectures, results & search)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from dltl_ui.layout import chart_height

_AXES = {
    "params": ("Parameters", "params"),
    "flops": ("FLOPs per image", "flops"),
    "wall_seconds": ("Training time (wall, s)", "wall_seconds"),
    "cpu_seconds": ("Training time (CPU, s)", "cpu_seconds"),
}


def layer_bars(table: pd.DataFrame) -> alt.Chart:
    """Parameters and FLOPs of each block, side by side (where the size and the work sit)."""
    long = table.melt(id_vars=["name", "layer", "output"], value_vars=["params", "flops"],
                      var_name="measure", value_name="value")
    long["share"] = long["value"] / long.groupby("measure")["value"].transform("sum").clip(lower=1)
    long["measure"] = long["measure"].map({"params": "parameters", "flops": "FLOPs"})
    order = list(table["name"])
    return alt.Chart(long).mark_bar().encode(
        y=alt.Y("name:N", sort=order, title=None),
        x=alt.X("share:Q", axis=alt.Axis(format="%"), title="share of the network"),
        color=alt.Color("measure:N", title=None, legend=alt.Legend(orient="top")),
        yOffset="measure:N",
        tooltip=["name", "layer", "output", "measure", alt.Tooltip("value:Q", format=",")],
    ).properties(height=alt.Step(chart_height(16, max(5, 230 // (2 * max(len(order), 1))))))  # per bar: no overlap


def size_vs_flops(df: pd.DataFrame, selected: str) -> alt.Chart:
    """Every architecture's parameters against its FLOPs (log-log), the selected one highlighted."""
    d = df.assign(selected=df["name"] == selected)
    d["below"] = _crowded(d)
    base = alt.Chart(d).encode(
        x=alt.X("params:Q", scale=alt.Scale(type="log"), title="parameters"),
        y=alt.Y("flops:Q", scale=alt.Scale(type="log"), title="FLOPs per image"),
        tooltip=["label", alt.Tooltip("params:Q", format=","), alt.Tooltip("flops:Q", format=",")],
    )
    points = base.transform_filter("!datum.below").mark_circle(size=220).encode(
        color=alt.Color("family:N", title="family"),
        opacity=alt.condition("datum.selected", alt.value(1.0), alt.value(0.55)),
        stroke=alt.condition("datum.selected", alt.value("black"), alt.value(None)))
    # A point on top of another (PreActResNet-18 on ResNet-18) is a ring around it, so both show.
    rings = base.transform_filter("datum.below").mark_point(shape="circle", filled=False, size=700,
                                                             strokeWidth=4).encode(
        color=alt.Color("family:N", title="family"),
        opacity=alt.condition("datum.selected", alt.value(1.0), alt.value(0.8)))
    above = base.transform_filter("!datum.below").mark_text(align="left", dx=10, dy=-10).encode(text="label:N")
    below = base.transform_filter("datum.below").mark_text(align="left", dx=10, dy=14).encode(text="label:N")
    return (points + rings + above + below).properties(height=chart_height(340))


def speed_text(v: float | None) -> str:
    """Images per second with three significant digits (1.43, 14.3, 143, 1,430): slow networks
    on a CPU differ below 10 img/s, where whole numbers cannot tell them apart."""
    if not v:
        return "not measured"
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _crowded(d: pd.DataFrame, near: float = 0.12) -> list[bool]:
    """Which labels go under their point: the second of two points closer than ``near`` decades
    on both log axes (ResNet-18 and PreActResNet-18 almost coincide), so labels never overlap."""
    import numpy as np

    lp, lf = np.log10(d["params"].clip(lower=1)), np.log10(d["flops"].clip(lower=1))
    below = [False] * len(d)
    for i in range(len(d)):
        for j in range(i):
            if not below[j] and abs(lp.iloc[i] - lp.iloc[j]) < near and abs(lf.iloc[i] - lf.iloc[j]) < near:
                below[i] = True
    return below


SCORES = {"val_acc": "validation accuracy (%)", "test_acc": "test accuracy (%)",
          "test_acc_tta": "test accuracy, flip TTA (%)"}
