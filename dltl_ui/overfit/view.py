"""The /overfit page's parts: one run's metrics and curves, and the A/B comparison."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from dltl_core.lessons.overfit import KNOBS, OverfitConfig, pool_size
from dltl_core.lessons.overfit_claims import overfit_claim
from dltl_ui import live_run as tc
from dltl_ui.binder import Binder
from dltl_ui.charts.curves import show_curves
from dltl_ui.charts.show import show_chart
from dltl_ui.overfit.charts import boundary_chart
from dltl_ui.layout import main_chart


def _metrics(res: Any, compact: bool) -> None:
    metrics = [("Training accuracy", f"{res.final['train_acc']:.1%}"),
               ("Validation accuracy", f"{res.final['val_acc']:.1%}"),
               ("Gap (val − train loss)", f"{res.gap_loss:+.3f}" if math.isfinite(res.gap_loss) else "–"),
               ("Best epoch", f"{res.best_epoch}" + (" (kept)" if res.config.early_stopping else ""))]
    m = st.columns(2 if compact else 4)  # two per row in a half-width column: no cut numbers
    for i, (label, value) in enumerate(metrics):
        m[i % len(m)].metric(label, value)


def show_run(res: Any, partial: list[dict] | None, namespace: str, epochs: int, compact: bool = False) -> None:
    """Curves (and the boundary for 2-D data) of a finished or stopped run."""
    if res is None:
        hist = pd.DataFrame(partial or [])
        st.warning(f"Stopped after {len(hist)} epoch(s); the curves so far are below.")
        tc.resume_button(namespace)
        if not hist.empty:
            show_curves(hist, epochs, show_gap=False,
                        caption="What to notice: the run was stopped; nothing was cached.")
        return
    if res.diverged_at:
        st.warning(f"Diverged at epoch {res.diverged_at}: the loss blew up (learning rate {res.config.lr:g} is too "
                 "large). The curves up to that epoch are shown; lower the learning rate.")
    _metrics(res, compact)
    if res.stopped_early:
        st.info(f"Early stopping ended the run at epoch {len(res.history)}: no better validation loss for "
                f"{res.config.patience} epochs. The weights of epoch {res.best_epoch} were restored.")
    boundary = None
    if res.boundary is not None:
        boundary = boundary_chart(res.boundary, res.points, title="Decision boundary")
    if compact:
        show_curves(res.history, res.config.epochs, res.best_epoch,
                    caption="What to notice: the dashed line is the best epoch; the grey bar the final gap.")
        if boundary is not None:
            show_chart(boundary, caption="What to notice: how smooth the boundary is.")
    else:
        with main_chart():
            show_curves(res.history, res.config.epochs, res.best_epoch, extra=boundary,
                        caption="What to notice: the dashed line marks the epoch with the lowest validation "
                                "loss (where early stopping rolls back to); the grey bar is the gap at the end. "
                                + overfit_claim(res))
    paused = f" ({res.paused_s:.1f} s of it paused for other visitors' pages)" if res.paused_s >= 0.05 else ""
    st.caption(f"{res.parameters:,} weights · {res.train_samples} training / {res.val_samples} validation samples "
               f"· trained in {res.seconds:.1f} s{paused}")


# Run B's default: a clear contrast to run A's value of the knob.
CONTRAST = {
    "dropout": lambda c, pool: 0.5 if c == 0 else 0.0, "weight_decay": lambda c, pool: 0.5 if c == 0 else 0.0,
    "batchnorm": lambda c, pool: not c, "early_stopping": lambda c, pool: not c,
    "train_size": lambda c, pool: min(pool, c * 4), "width": lambda c, pool: 16 if c > 16 else 256,
    "depth": lambda c, pool: 1 if c > 1 else 3, "label_noise": lambda c, pool: 0.2 if c == 0 else 0.0,
}


def knob_b(cfg: OverfitConfig, view: Binder) -> tuple[str, Any]:
    """The knob that differs and its value in run B; its widget comes from the knob's own
    declaration in ``OverfitConfig`` (same bounds as run A's)."""
    k1, k2 = st.columns(2)
    knob = view.widget("knob", where=k1)
    current, pool = getattr(cfg, knob), pool_size(cfg.data)
    b = Binder(OverfitConfig, prefix="of_b", fields=[knob])
    st.session_state.setdefault(b.key(knob), CONTRAST[knob](current, pool))
    extra = {"hi": pool} if knob == "train_size" else {}
    value = b.widget(knob, where=k2, label=f"{KNOBS[knob]} in run B", **extra)
    return knob, value


def compare_table(knob: str, res_a: Any, res_b: Any) -> None:
    """Run A against run B in one table."""
    table = pd.DataFrame({
        "run": ["A", "B"], KNOBS[knob]: [str(getattr(res_a.config, knob)), str(getattr(res_b.config, knob))],
        "validation accuracy": [res_a.final["val_acc"], res_b.final["val_acc"]],
        "training accuracy": [res_a.final["train_acc"], res_b.final["train_acc"]],
        "gap (loss)": [res_a.gap_loss, res_b.gap_loss],
        "best epoch": [res_a.best_epoch, res_b.best_epoch]})
    st.dataframe(table, hide_index=True, width="stretch")
