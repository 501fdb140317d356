"""The /loss page's charts: softmax output against the one-hot target, the gradients of both
losses, and the confidently-wrong sweep (projector-friendly, theme from ``dltl_ui.layout``)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from dltl_ui.charts.palette import LOSS_COLORS
from dltl_ui.layout import chart_height


def probability_bars(table: pd.DataFrame) -> alt.Chart:
    """Softmax output p beside the one-hot target t, per class (``softmax_losses``' table)."""
    bars = pd.concat([table.assign(kind="softmax output p", value=table["prob"]),
                      table.assign(kind="one-hot target t", value=table["target"])])
    return alt.Chart(bars).mark_bar().encode(
        x=alt.X("class:N", title="class", axis=alt.Axis(labelAngle=0)), xOffset="kind:N",
        y=alt.Y("value:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("kind:N", title=None, scale=alt.Scale(domain=["softmax output p", "one-hot target t"],
                                                             range=["#1f4eb4", "#bbbbbb"]),
                        legend=alt.Legend(orient="bottom")),
        tooltip=["class", "kind", alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=chart_height(280, 300))


def gradient_bars(table: pd.DataFrame) -> alt.Chart:
    """∂loss/∂logit per class, cross-entropy beside MSE."""
    grads = pd.concat([table.assign(loss="cross-entropy", grad=table["grad_ce"]),
                       table.assign(loss="MSE", grad=table["grad_mse"])])
    return alt.Chart(grads).mark_bar().encode(
        x=alt.X("class:N", axis=alt.Axis(labelAngle=0)), xOffset="loss:N", y=alt.Y("grad:Q", title="∂loss/∂logit"),
        color=alt.Color("loss:N", title=None, scale=LOSS_COLORS,
                        legend=alt.Legend(orient="bottom")),
        tooltip=["class", "loss", alt.Tooltip("grad:Q", format=".4f")],
    ).properties(height=chart_height(220))


def confidence_charts(sweep: pd.DataFrame) -> tuple[alt.Chart, alt.Chart]:
    """(loss, gradient) against the true-class logit's lead (``confidence_sweep``), both losses."""
    base = alt.Chart(sweep).encode(
        x=alt.X("gap:Q", title="true-class logit minus the others", scale=alt.Scale(reverse=True)),
        color=alt.Color("loss:N", title=None, scale=LOSS_COLORS, legend=alt.Legend(orient="bottom")),
    )
    loss_chart = base.mark_line(strokeWidth=3).encode(y=alt.Y("value:Q", title="loss")).properties(
        height=chart_height(260))
    grad_chart = base.mark_line(strokeWidth=3).encode(
        y=alt.Y("grad:Q", title="gradient |∂loss/∂z_true|")).properties(height=chart_height(260))
    return loss_chart, grad_chart
