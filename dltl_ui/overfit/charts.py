"""The /overfit page's own chart: a classifier's decision boundary behind its data points."""

from __future__ import annotations

import altair as alt
import pandas as pd

from dltl_ui.layout import chart_height


def boundary_chart(boundary: pd.DataFrame, points: pd.DataFrame, title: str = "Decision boundary",
                   height: int | None = None, show_validation: bool = False) -> alt.LayerChart:
    """Predicted P(class 1) on a grid behind the training points (validation points optional)."""
    height = height or chart_height(300)
    xs = boundary.x1.drop_duplicates().sort_values()
    ys = boundary.x2.drop_duplicates().sort_values()
    dx, dy = float(xs.diff().median()), float(ys.diff().median())
    cells = boundary.assign(x1a=boundary.x1 - dx / 2, x1b=boundary.x1 + dx / 2,
                            x2a=boundary.x2 - dy / 2, x2b=boundary.x2 + dy / 2)
    x_scale = alt.Scale(domain=[float(xs.min() - dx / 2), float(xs.max() + dx / 2)], nice=False, zero=False)
    y_scale = alt.Scale(domain=[float(ys.min() - dy / 2), float(ys.max() + dy / 2)], nice=False, zero=False)
    rects = alt.Chart(cells).mark_rect(opacity=0.85).encode(
        x=alt.X("x1a:Q", scale=x_scale, title="x₁"), x2="x1b:Q",
        y=alt.Y("x2a:Q", scale=y_scale, title="x₂"), y2="x2b:Q",
        color=alt.Color("p:Q", scale=alt.Scale(scheme="redblue", domain=[0, 1], reverse=True),
                        title="P(class 1)", legend=alt.Legend(orient="bottom", gradientLength=160)),
    )
    shown = points if show_validation else points[points.split == "train"]
    dots = alt.Chart(shown).mark_circle(size=55, stroke="white", strokeWidth=1.2, opacity=1).encode(
        x=alt.X("x1:Q", scale=x_scale), y=alt.Y("x2:Q", scale=y_scale),
        color=alt.Color("label:N", scale=alt.Scale(domain=[0, 1], range=["#0b3d91", "#b3001b"]), legend=None),
    )
    return alt.layer(rects, dots).resolve_scale(color="independent").properties(height=height, title=title)
