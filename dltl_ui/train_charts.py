"""Charts and live progress for the training pages (loss & softmax, layers, mini-batches,
overfitting): learning curves that grow while a run trains, decision boundaries, and a
results memo keyed by configuration.

Takes plain data (pandas frames, ``EpochRecord``s); the only core import is the
``Callback`` base class the live view plugs into ``dltl_core.train.fit``.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Hashable

import altair as alt
import pandas as pd
import streamlit as st

from dltl_core.train import Callback
from dltl_ui.layout import chart_height

SPLIT_COLORS = alt.Scale(domain=["train", "validation"], range=["#1f4eb4", "#e4572e"])
CLASS_COLORS = alt.Scale(domain=[0, 1], range=["#1f4eb4", "#e4572e"])


def curves_frame(history: pd.DataFrame) -> pd.DataFrame:
    """Long form of a history: epoch, metric, split, value (non-finite values dropped)."""
    rows = []
    for metric, cols in (("loss", ("train_loss", "val_loss")), ("accuracy", ("train_acc", "val_acc"))):
        for col, split in zip(cols, ("train", "validation")):
            if col in history:
                rows.append(pd.DataFrame({"epoch": history["epoch"], "value": history[col],
                                          "metric": metric, "split": split}))
    if not rows:
        return pd.DataFrame(columns=["epoch", "value", "metric", "split"])
    out = pd.concat(rows, ignore_index=True)
    return out[out["value"].map(lambda v: v is not None and math.isfinite(v))]


def _panel(long: pd.DataFrame, metric: str, epochs: int | None, height: int, marks: list[alt.Chart]) -> alt.LayerChart:
    data = long[long.metric == metric]
    x = alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[1, max(epochs or 1, 2)], nice=False))
    y_title = "loss (cross-entropy)" if metric == "loss" else "accuracy"
    y_scale = alt.Scale(domain=[0, 1]) if metric == "accuracy" else alt.Scale(zero=True)
    lines = alt.Chart(data).mark_line(strokeWidth=3).encode(
        x=x, y=alt.Y("value:Q", title=y_title, scale=y_scale),
        color=alt.Color("split:N", scale=SPLIT_COLORS, title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["epoch", "split", alt.Tooltip("value:Q", format=".4f")],
    )
    return alt.layer(lines, *marks).properties(height=height, title=metric.capitalize())


def learning_curves(history: pd.DataFrame, epochs: int | None = None, best_epoch: int | None = None,
                    show_gap: bool = True, height: int | None = None) -> tuple[alt.LayerChart, alt.LayerChart]:
    """Loss and accuracy charts, train vs validation (draw them side by side).

    Args:
        history: one row per epoch (``FitResult.history_dicts()``).
        epochs: the planned number of epochs (fixes the x axis while the curves grow).
        best_epoch: marked with a dashed rule ("lowest validation loss / early stopping").
        show_gap: mark the generalization gap (validation minus training loss) at the last epoch.

    Returns:
        ``(loss_chart, accuracy_chart)``.
    """
    height = height or chart_height(300)
    long = curves_frame(history)
    loss_marks: list[alt.Chart] = []
    acc_marks: list[alt.Chart] = []
    if best_epoch:
        rule = pd.DataFrame({"epoch": [best_epoch], "label": [f"best epoch {best_epoch}"]})
        for marks in (loss_marks, acc_marks):
            marks.append(alt.Chart(rule).mark_rule(strokeDash=[6, 4], color="#2ca02c", strokeWidth=2)
                         .encode(x="epoch:Q"))
        loss_marks.append(alt.Chart(rule).mark_text(align="left", dx=5, dy=-8, color="#2ca02c", fontWeight="bold")
                          .encode(x="epoch:Q", y=alt.value(12), text="label:N"))
    cols = [c for c in ("train_loss", "val_loss") if c in history]
    last = history.dropna(subset=cols).tail(1) if len(cols) == 2 else history.iloc[0:0]
    if show_gap and not last.empty:
        e, tl, vl = int(last.epoch.iloc[0]), float(last.train_loss.iloc[0]), float(last.val_loss.iloc[0])
        if math.isfinite(tl) and math.isfinite(vl):
            gap = pd.DataFrame({"epoch": [e], "lo": [min(tl, vl)], "hi": [max(tl, vl)], "mid": [(tl + vl) / 2],
                                "label": [f"gap {vl - tl:+.2f}"]})
            loss_marks.append(alt.Chart(gap).mark_rule(color="#555", strokeWidth=4)
                              .encode(x="epoch:Q", y="lo:Q", y2="hi:Q"))
            loss_marks.append(alt.Chart(gap).mark_text(align="right", dx=-8, color="#333", fontWeight="bold")
                              .encode(x="epoch:Q", y="mid:Q", text="label:N"))
    return (_panel(long, "loss", epochs, height, loss_marks), _panel(long, "accuracy", epochs, height, acc_marks))


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


def show_curves(history: pd.DataFrame, epochs: int | None = None, best_epoch: int | None = None,
                show_gap: bool = True, extra: alt.TopLevelMixin | None = None, caption: str | None = None) -> None:
    """Loss and accuracy side by side (and an ``extra`` chart, e.g. the boundary, beside them)."""
    loss, acc = learning_curves(history, epochs, best_epoch, show_gap)
    cols = st.columns(3 if extra is not None else 2)
    cols[0].altair_chart(loss, width="stretch", theme=None)
    cols[1].altair_chart(acc, width="stretch", theme=None)
    if extra is not None:
        cols[2].altair_chart(extra, width="stretch", theme=None)
    if caption:
        st.caption(caption)


class LiveCurves(Callback):
    """Redraws the learning curves in a placeholder while ``fit`` runs, and a progress bar.

    Redraws at most every ``every_s`` seconds (plus the last epoch), so the drawing does
    not slow the training down. Each redraw is also where Streamlit notices a click (a
    Stop button, a slider): the run is then interrupted and the page reruns. The records
    so far are kept in ``st.session_state[state_key]`` for that rerun to show.
    """

    def __init__(self, epochs: int, state_key: str, every_s: float = 0.5, label: str = "Training") -> None:
        self.epochs = epochs
        self.state_key = state_key
        self.every_s = every_s
        self.label = label
        self.records: list[dict[str, Any]] = []
        self._bar = st.progress(0.0, text=f"{label}…")
        self._chart = st.empty()
        self._last_draw = time.perf_counter()
        self._draw_cost = 0.0

    def on_epoch_end(self, trainer, record) -> None:  # noqa: D102
        self.records.append(record.as_dict())
        st.session_state[self.state_key] = list(self.records)
        now = time.perf_counter()
        # Drawing costs ~0.1-0.2 s: keep it under a quarter of the wall time.
        if now - self._last_draw >= max(self.every_s, 3 * self._draw_cost) or record.epoch >= self.epochs:
            self._bar.progress(min(1.0, record.epoch / self.epochs),
                               text=f"{self.label}: epoch {record.epoch} of {self.epochs}, "
                                    f"validation loss {record.val_loss:.3f}")
            with self._chart.container():
                show_curves(pd.DataFrame(self.records), self.epochs, show_gap=False)
            self._last_draw = time.perf_counter()
            self._draw_cost = self._last_draw - now

    def clear(self) -> None:
        """Remove the live view (the page then draws the final charts)."""
        self._bar.empty()
        self._chart.empty()


@st.cache_data(max_entries=64, show_spinner=False)
def _memo(namespace: str, key: Hashable, _value: Any = None) -> Any:
    # Returns whatever value it was first called with for (namespace, key).
    return _value


def memo_get(namespace: str, key: Hashable) -> Any | None:
    """A finished result stored by ``memo_put`` under ``key`` (any session), or None.

    Results of runs that show live progress cannot come from a plain ``st.cache_data``
    function (its element replay does not allow drawing into a placeholder created
    outside it), so they go through this small ``st.cache_data`` store keyed by config.
    """
    value = _memo(namespace, key)
    if value is None:
        _memo.clear(namespace, key)  # do not keep the miss
    return value


def memo_put(namespace: str, key: Hashable, value: Any) -> None:
    """Store ``value`` under ``key`` for ``memo_get``."""
    _memo.clear(namespace, key)
    _memo(namespace, key, value)


def run_live(namespace: str, key: Hashable, run: Callable[[list[Callback]], Any], epochs: int,
             label: str = "Training") -> tuple[Any | None, list[dict] | None]:
    """Return the memoised result of ``run`` for ``key``, or run it with live curves.

    Returns:
        ``(result, partial)``: the result, or None and the records so far when the user
        stopped this configuration (``stop_button`` below) before it finished.
    """
    cached = memo_get(namespace, key)
    if cached is not None:
        return cached, None
    stopped_key, partial_key = f"{namespace}__stopped", f"{namespace}__partial"
    if st.session_state.get(stopped_key) == key:
        return None, st.session_state.get(partial_key, [])
    st.session_state[partial_key] = []
    button = st.empty()
    button.button("⏹ Stop", key=f"{namespace}__stop_btn",
                  on_click=lambda: st.session_state.update({stopped_key: key}),
                  help="Stop this run; the curves so far stay on the page.")
    live = LiveCurves(epochs, partial_key, label=label)
    result = run([live])
    live.clear()
    button.empty()
    memo_put(namespace, key, result)
    return result, None


def resume_button(namespace: str) -> None:
    """A button that forgets a stopped run, so the next rerun trains it again."""
    if st.button("▶ Train again", key=f"{namespace}__resume"):
        st.session_state.pop(f"{namespace}__stopped", None)
        st.rerun()
