"""Altair charts of the /lr page: the learning-rate sweep by regime, schedules (η against
step) and the LR range test. (Its descents' loss chart is /gd's ``dltl_ui.gd.charts.loss_chart``;
its contour maps come from the kit's ``dltl_ui.charts.contour``.)

Everything here takes plain numbers (numpy arrays, pandas frames); no torch.
"""

from __future__ import annotations

import math
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

from dltl_ui.charts.contour import fast_layer, run_scale
from dltl_ui.charts.palette import COLORS, REGIME_COLORS
from dltl_ui.layout import chart_height

__all__ = ["lr_chart", "range_test_chart", "sweep_chart"]


def sweep_chart(sweep: pd.DataFrame, *, height: int | None = None, marked: Sequence[float] = ()) -> alt.LayerChart:
    """Final loss above the minimum against learning rate (log–log), points coloured by regime.

    Args:
        sweep: columns ``lr``, ``gap`` (inf for divergent), ``regime``.
        marked: learning rates to highlight with a vertical rule (the side-by-side runs).
    """
    h = height or chart_height(380)
    df = sweep.copy()
    finite = df["gap"].replace([np.inf, -np.inf], np.nan)
    top = float(np.nanmax(finite)) if finite.notna().any() else 1.0
    bottom = float(np.nanmin(finite[finite > 0])) if (finite > 0).any() else 1e-12
    # Divergent runs have no final loss: draw them on a line above the top of the axis.
    ceiling = 10 ** (math.ceil(math.log10(max(top, 1e-12))) + 1)
    df["plot_gap"] = finite.fillna(ceiling).clip(lower=max(bottom, 1e-12))
    df["shown"] = np.where(finite.isna(), "diverged", df["gap"].map(lambda g: f"{g:.3g}"))
    domain = [r for r in REGIME_COLORS]
    x = alt.X("lr:Q", scale=alt.Scale(type="log"), title="learning rate η (log scale)")
    y = alt.Y("plot_gap:Q", scale=alt.Scale(type="log"), title="final f − f*  (log scale)")
    color = alt.Color("regime:N", scale=alt.Scale(domain=domain, range=[REGIME_COLORS[d] for d in domain]),
                      legend=alt.Legend(title=None, orient="bottom"))
    line = alt.Chart(df[finite.notna()]).mark_line(color="#888", strokeWidth=2).encode(x=x, y=y)
    pts = alt.Chart(df).mark_point(filled=True, size=180, opacity=1).encode(
        x=x, y=y, color=color, shape=alt.Shape("regime:N", scale=alt.Scale(domain=domain), legend=None),
        tooltip=[alt.Tooltip("lr:Q", format=".3g"), alt.Tooltip("regime:N"), alt.Tooltip("shown:N", title="final f − f*")])
    layers = [line, pts]
    if marked:
        rules = pd.DataFrame({"lr": list(marked)})
        layers.insert(0, alt.Chart(rules).mark_rule(strokeDash=[4, 4], color="#999").encode(x=x))
    div = df[finite.isna()]
    if len(div):
        layers.append(alt.Chart(pd.DataFrame({"lr": [float(div["lr"].min())], "plot_gap": [ceiling]}))
                      .mark_text(text="diverged", dy=-16, fontSize=16, color=REGIME_COLORS["divergent"], align="left")
                      .encode(x=x, y=y))
    return fast_layer(*layers, height=h)


def lr_chart(curves: pd.DataFrame, labels: Sequence[str], *, height: int | None = None,
             colors: Sequence[str] | None = None) -> alt.Chart:
    """η against step for several schedules (columns ``run``, ``step``, ``lr``)."""
    h = height or chart_height(320)
    return alt.Chart(curves).mark_line(strokeWidth=3).encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("lr:Q", title="learning rate η"),
        color=alt.Color("run:N", scale=run_scale(labels, colors), legend=alt.Legend(title=None, orient="bottom",
                                                                                 columns=2, labelLimit=400)),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("step:Q"), alt.Tooltip("lr:Q", format=".3g")],
    ).properties(height=h)


def range_test_chart(df: pd.DataFrame, suggested: float | None, *, height: int | None = None) -> alt.LayerChart:
    """LR range test: smoothed loss against η (log x), the suggested η marked."""
    h = height or chart_height(360)
    x = alt.X("lr:Q", scale=alt.Scale(type="log"), title="learning rate η (log scale)")
    # The final blow-up can be 10x the start: cap the axis so the informative dip stays visible.
    top = 1.6 * float(df["smooth"].iloc[0]) if len(df) else 1.0
    ys = alt.Scale(domain=[0, top], clamp=True)
    raw = alt.Chart(df).mark_line(color="#bbb", strokeWidth=1.5, clip=True).encode(
        x=x, y=alt.Y("loss:Q", title="training loss", scale=ys))
    smooth = alt.Chart(df).mark_line(color=COLORS[1], strokeWidth=3.5, clip=True).encode(
        x=x, y=alt.Y("smooth:Q", scale=ys), tooltip=[alt.Tooltip("lr:Q", format=".3g"), alt.Tooltip("smooth:Q", format=".3g")])
    layers = [raw, smooth]
    if suggested is not None:
        mark = pd.DataFrame({"lr": [suggested], "text": [f"suggested η ≈ {suggested:.2g}"]})
        layers.append(alt.Chart(mark).mark_rule(color=REGIME_COLORS["good"], strokeWidth=3).encode(x=x))
        layers.append(alt.Chart(mark).mark_text(align="right", dx=-10, dy=-8, fontSize=18, fontWeight="bold",
                                                color=REGIME_COLORS["good"]).encode(x=x, y=alt.value(20), text=alt.Text("text:N")))
    return fast_layer(*layers, height=h)
