"""The /batches page's charts: the measured batch-size sweep (speed, steps, accuracy) and the
spread of mini-batch gradients around the full-batch one."""

from __future__ import annotations

import altair as alt
import pandas as pd

from dltl_ui.layout import chart_height


def sweep_charts(res: pd.DataFrame) -> tuple[alt.Chart, alt.Chart, alt.Chart]:
    """Seconds per epoch, steps per epoch and validation accuracy against the batch size (log axes)."""
    x = alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size (log scale)")
    line = lambda y, title: alt.Chart(res).mark_line(point=alt.OverlayMarkDef(size=90), strokeWidth=3).encode(  # noqa: E731
        x=x, y=alt.Y(y, title=title), tooltip=["batch_size", alt.Tooltip(y, format=".3g")]
    ).properties(height=chart_height(240, 300))
    return (line("seconds_per_epoch:Q", "seconds per epoch").encode(
                y=alt.Y("seconds_per_epoch:Q", scale=alt.Scale(type="log"), title="seconds per epoch (log)")),
            line("steps_per_epoch:Q", "steps per epoch").encode(
                y=alt.Y("steps_per_epoch:Q", scale=alt.Scale(type="log"), title="steps per epoch (log)")),
            line("val_acc:Q", "validation accuracy").encode(
                y=alt.Y("val_acc:Q", scale=alt.Scale(domain=[0, 1]), title="validation accuracy")))


def spread_scatter(points: pd.DataFrame) -> alt.LayerChart:
    """Each mini-batch gradient along and across the full-batch gradient g (the black cross at (1, 0))."""
    dots = alt.Chart(points).mark_circle(size=60, opacity=0.6).encode(
        x=alt.X("along:Q", title="along g (1 = full-batch gradient)"),
        y=alt.Y("across:Q", title="across g"),
        color=alt.Color("batch_size:O", title="batch size", scale=alt.Scale(scheme="plasma")),
        tooltip=["batch_size", alt.Tooltip("cosine:Q", format=".2f")],
    )
    target = alt.Chart(pd.DataFrame({"along": [1.0], "across": [0.0]})).mark_point(
        shape="cross", size=400, color="black", filled=True).encode(x="along:Q", y="across:Q")
    return (dots + target).properties(height=chart_height(320))


def noise_lines(summary: pd.DataFrame) -> alt.Chart:
    """The gradient's relative error against the batch size: measured, and the 1/√b prediction."""
    long = summary.melt(id_vars=["batch_size"], value_vars=["rms_rel_error", "predicted_rel_error"],
                        var_name="curve", value_name="error")
    long["curve"] = long["curve"].map({"rms_rel_error": "measured", "predicted_rel_error": "∝ 1/√b"})
    return alt.Chart(long).mark_line(point=True, strokeWidth=3).encode(
        x=alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size (log scale)"),
        y=alt.Y("error:Q", scale=alt.Scale(type="log"), title="|g_b − g| / |g| (log)"),
        color=alt.Color("curve:N", title=None, legend=alt.Legend(orient="bottom")),
        strokeDash=alt.StrokeDash("curve:N", legend=None),
    ).properties(height=chart_height(320))
