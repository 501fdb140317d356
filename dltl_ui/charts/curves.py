"""The one learning-curve chart: loss and accuracy per epoch, train against validation.

Takes one history type: rows of ``dltl_core.train.EpochRecord`` (``as_dict()``), a
DataFrame of them, or ``FitResult.history_dicts()``; every training page draws it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Collection

import altair as alt
import pandas as pd
import streamlit as st

from dltl_ui.charts.compiled import show_template
from dltl_ui.charts.palette import SPLIT_COLORS
from dltl_ui.layout import chart_height


def curves_frame(history: pd.DataFrame) -> pd.DataFrame:
    """Long form of a history: epoch, metric, split, value (non-finite values dropped)."""
    rows = []
    for metric, cols in (("loss", ("train_loss", "val_loss")), ("accuracy", ("train_acc", "val_acc"))):
        for col, split in zip(cols, ("train", "validation")):
            if col in history:
                rows.append(pd.DataFrame({"epoch": history["epoch"], "value": history[col],
                                          "elapsed": history["elapsed"] if "elapsed" in history else math.nan,
                                          "metric": metric, "split": split}))
    if not rows:
        return pd.DataFrame(columns=["epoch", "elapsed", "value", "metric", "split"])
    out = pd.concat(rows, ignore_index=True)
    return out[out["value"].map(lambda v: v is not None and math.isfinite(v))]


def _panel(data: Any, metric: str, epochs: int | None, height: int, marks: list[alt.Chart],
           x_field: str = "epoch") -> alt.LayerChart:
    x = alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[1, max(epochs or 1, 2)], nice=False))
    if x_field == "elapsed":  # wall-clock time since the fit started (EpochRecord.elapsed)
        x = alt.X("elapsed:Q", title="seconds since the start")
    y_title = "loss (cross-entropy)" if metric == "loss" else "accuracy"
    y_scale = alt.Scale(domain=[0, 1]) if metric == "accuracy" else alt.Scale(zero=True)
    lines = alt.Chart(data).mark_line(strokeWidth=3).encode(
        x=x, y=alt.Y("value:Q", title=y_title, scale=y_scale),
        color=alt.Color("split:N", scale=SPLIT_COLORS, title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["epoch:Q", "split:N", alt.Tooltip("value:Q", format=".4f"), alt.Tooltip("elapsed:Q", format=".1f")],
    )
    return alt.layer(lines, *marks).properties(height=height, title=metric.capitalize())


def curve_frames(history: pd.DataFrame, best_epoch: int | None = None, show_gap: bool = True,
                 x: str = "epoch") -> dict[str, pd.DataFrame]:
    """The data of the two panels by name: ``loss`` and ``accuracy`` (long form), and when
    marked, ``best`` (the best epoch's rule) and ``gap`` (the final generalization gap)."""
    long = curves_frame(history)
    frames = {"loss": long[long.metric == "loss"], "accuracy": long[long.metric == "accuracy"]}
    if best_epoch and x == "epoch":
        frames["best"] = pd.DataFrame({"epoch": [best_epoch], "label": [f"best epoch {best_epoch}"]})
    cols = [c for c in ("train_loss", "val_loss") if c in history]
    last = history.dropna(subset=cols).tail(1) if len(cols) == 2 else history.iloc[0:0]
    if show_gap and x == "epoch" and not last.empty:
        e, tl, vl = int(last.epoch.iloc[0]), float(last.train_loss.iloc[0]), float(last.val_loss.iloc[0])
        if math.isfinite(tl) and math.isfinite(vl):
            frames["gap"] = pd.DataFrame({"epoch": [e], "lo": [min(tl, vl)], "hi": [max(tl, vl)],
                                          "mid": [(tl + vl) / 2], "label": [f"gap {vl - tl:+.2f}"]})
    return frames


def curve_panels(data: Callable[[str], Any], names: Collection[str], epochs: int | None, height: int,
                 x: str = "epoch") -> tuple[alt.LayerChart, alt.LayerChart]:
    """The loss and accuracy panels drawn from ``data(name)`` for the ``names`` of
    ``curve_frames`` (frames, or ``alt.NamedData`` for a compiled template)."""
    loss_marks: list[alt.Chart] = []
    acc_marks: list[alt.Chart] = []
    if "best" in names:
        for marks in (loss_marks, acc_marks):
            marks.append(alt.Chart(data("best")).mark_rule(strokeDash=[6, 4], color="#2ca02c", strokeWidth=2)
                         .encode(x="epoch:Q"))
        loss_marks.append(alt.Chart(data("best")).mark_text(align="left", dx=5, dy=-8, color="#2ca02c",
                                                             fontWeight="bold")
                          .encode(x="epoch:Q", y=alt.value(12), text="label:N"))
    if "gap" in names:
        loss_marks.append(alt.Chart(data("gap")).mark_rule(color="#555", strokeWidth=4)
                          .encode(x="epoch:Q", y="lo:Q", y2="hi:Q"))
        loss_marks.append(alt.Chart(data("gap")).mark_text(align="right", dx=-8, color="#333", fontWeight="bold")
                          .encode(x="epoch:Q", y="mid:Q", text="label:N"))
    return (_panel(data("loss"), "loss", epochs, height, loss_marks, x),
            _panel(data("accuracy"), "accuracy", epochs, height, acc_marks, x))


def learning_curves(history: pd.DataFrame, epochs: int | None = None, best_epoch: int | None = None,
                    show_gap: bool = True, height: int | None = None,
                    x: str = "epoch") -> tuple[alt.LayerChart, alt.LayerChart]:
    """Loss and accuracy charts, train vs validation (draw them side by side).

    Args:
        history: one row per epoch (``FitResult.history_dicts()``).
        epochs: the planned number of epochs (fixes the x axis while the curves grow).
        best_epoch: marked with a dashed rule ("lowest validation loss / early stopping").
        show_gap: mark the generalization gap (validation minus training loss) at the last epoch.
        x: ``"epoch"`` or ``"elapsed"`` (seconds since the fit started; the epoch marks are left out).

    Returns:
        ``(loss_chart, accuracy_chart)``.
    """
    frames = curve_frames(history, best_epoch, show_gap, x)
    return curve_panels(frames.__getitem__, frames, epochs, height or chart_height(300, 320), x)


def show_curves(history: pd.DataFrame, epochs: int | None = None, best_epoch: int | None = None,
                show_gap: bool = True, extra: alt.TopLevelMixin | None = None, caption: str | None = None) -> None:
    """Loss and accuracy side by side (and an ``extra`` chart, e.g. the boundary, beside them).

    The two panels are compiled once per shape (``charts.compiled.show_template``): a new run,
    or a live redraw while one trains, only converts its frames, without building Altair
    layers again (0.2 s of Python a run, which held up every other visitor's page).
    """
    frames = curve_frames(history, best_epoch, show_gap)
    height = chart_height(300, 320)
    cols = st.columns(3 if extra is not None else 2)
    for i, (col, metric) in enumerate(zip(cols, ("loss", "accuracy"))):
        used = {name: frames[name] for name in (metric, "best", "gap" if metric == "loss" else "") if name in frames}
        shape = ("curves", metric, epochs, height, tuple(sorted(frames)))
        with col:
            show_template(shape, lambda: curve_panels(lambda name: alt.NamedData(name=name), frames, epochs,
                                                      height)[i], used)
    if extra is not None:
        cols[2].altair_chart(extra, width="stretch", theme=None)
    if caption:
        st.caption(caption)


__all__ = ["curve_frames", "curve_panels", "curves_frame", "learning_curves", "show_curves"]
