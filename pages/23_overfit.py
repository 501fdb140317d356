"""Overfitting and generalization: live learning curves, the three regimes, regularisers."""

import math

import pandas as pd
import streamlit as st

import dltl_ui as ui
from dltl_core.lessons.overfit import (DECAYS, DEFAULT_TRAIN_SIZE, KNOBS, PRESETS, VAL_2D, WIDTHS, OverfitConfig,
                                      pool_size, run_overfit)
from dltl_ui import train_charts as tc
from dltl_ui.binder import Binder
from dltl_ui.views import CompareView

ui.page_setup("Overfitting", "📈")
st.title("Overfitting and generalization")
ui.explain(
    r"""
Training lowers the loss on the **training** samples; what we care about is the loss on
samples the model has **not** seen (the **validation** set). The difference is the
**generalization gap**. A model too simple for the data **underfits** (both losses stay
high); one with a lot of capacity and little data **overfits**: the training loss keeps
falling while the validation loss turns up. **Early stopping** keeps the weights of the
epoch with the lowest validation loss; **dropout**, **weight decay** and **more data**
shrink the gap; **label noise** makes memorising the training set costlier.

The training curves average each epoch's mini-batches while the weights change (and with
dropout switched on), so with dropout the training loss can sit *above* the validation loss.
"""
)

FIELDS = ("data", "noise", "label_noise", "train_size", "depth", "width", "dropout", "weight_decay", "batchnorm",
          "early_stopping", "patience", "epochs", "lr", "seed")
ss = st.session_state
url = ui.UrlState()
knobs = Binder(OverfitConfig, prefix="of", fields=FIELDS, url=url)
view = Binder(CompareView, prefix="of", url=url)
knobs.load()
view.load()


def _apply_preset(name: str) -> None:
    cfg = PRESETS[name]
    for f in FIELDS:
        ss[knobs.key(f)] = getattr(cfg, f)
    ss.pop("overfit__stopped", None)


def _on_data_change() -> None:
    # Each data set keeps its own training-set size (switching to digits and back restores 80).
    prev = ss.get("of__data_prev", OverfitConfig.data)
    ss[f"of__n_{prev}"] = ss["of_train_size"]
    new = ss["of_data"]
    ss["of_train_size"] = min(ss.get(f"of__n_{new}", DEFAULT_TRAIN_SIZE.get(new, OverfitConfig.train_size)),
                              pool_size(new))
    ss["of__data_prev"] = new


area = ui.controls()
area.markdown("**The lecture's three regimes** on the same data (noisy moons, 80 training points):")
cols = area.columns(3)
for col, (name, icon) in zip(cols, (("underfit", "📉"), ("good fit", "✅"), ("overfit", "🎢"))):
    col.button(f"{icon} {name.capitalize()}", key=f"of_preset_{name}", on_click=_apply_preset, args=(name,),
               width="stretch")

with area, st.container(border=True):
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**Data**")
        data = knobs.widget("data", on_change=_on_data_change)
        ss["of__data_prev"] = data
        is_2d = data != "digits"
        knobs.widget("train_size", hi=pool_size(data),
                     help=f"The validation set stays the same ({VAL_2D if is_2d else 359} samples).")
        knobs.widget("noise", disabled=not is_2d)
        knobs.widget("label_noise")
    with c2:
        st.markdown("**Model capacity**")
        for f in ("depth", "width", "dropout", "batchnorm"):
            knobs.widget(f)
    with c3:
        st.markdown("**Training**")
        knobs.widget("epochs")
        knobs.widget("lr")
        knobs.widget("weight_decay")
        e1, e2 = st.columns(2)
        early = knobs.widget("early_stopping", where=e1)
        knobs.widget("patience", where=e2, disabled=not early)
        knobs.widget("seed")

cfg = knobs.build()
knobs.sync()
view.sync(["compare", "knob"])
url.report()
if cfg is None:
    st.stop()


def show_run(res, partial, namespace: str, compact: bool = False) -> None:
    """Curves (and the boundary for 2-D data) of a finished or stopped run."""
    if res is None:
        hist = pd.DataFrame(partial or [])
        st.warning(f"Stopped after {len(hist)} epoch(s); the curves so far are below.")
        tc.resume_button(namespace)
        if not hist.empty:
            tc.show_curves(hist, cfg.epochs, show_gap=False,
                           caption="What to notice: the run was stopped; nothing was cached.")
        return
    if res.diverged_at:
        st.warning(f"Diverged at epoch {res.diverged_at}: the loss blew up (learning rate {res.config.lr:g} is too "
                 "large). The curves up to that epoch are shown; lower the learning rate.")
    metrics = [("Training accuracy", f"{res.final['train_acc']:.1%}"),
               ("Validation accuracy", f"{res.final['val_acc']:.1%}"),
               ("Gap (val − train loss)", f"{res.gap_loss:+.3f}" if math.isfinite(res.gap_loss) else "–"),
               ("Best epoch", f"{res.best_epoch}" + (" (kept)" if res.config.early_stopping else ""))]
    m = st.columns(2 if compact else 4)  # two per row in a half-width column: no cut numbers
    for i, (label, value) in enumerate(metrics):
        m[i % len(m)].metric(label, value)
    if res.stopped_early:
        st.info(f"Early stopping ended the run at epoch {len(res.history)}: no better validation loss for "
                f"{res.config.patience} epochs. The weights of epoch {res.best_epoch} were restored.")
    boundary = None
    if res.boundary is not None:
        boundary = tc.boundary_chart(res.boundary, res.points, title="Decision boundary")
    if compact:
        tc.show_curves(res.history, res.config.epochs, res.best_epoch,
                       caption="What to notice: the dashed line is the best epoch; the grey bar the final gap.")
        if boundary is not None:
            ui.show_chart(boundary, caption="What to notice: how smooth the boundary is.")
    else:
        with ui.main_chart():
            tc.show_curves(res.history, res.config.epochs, res.best_epoch, extra=boundary,
                           caption="What to notice: the dashed line marks the epoch with the lowest validation "
                                   "loss (where early stopping rolls back to); the grey bar is the gap at the end. "
                                   "An overfit boundary bends around single noisy training points.")
    st.caption(f"{res.parameters:,} weights · {res.train_samples} training / {res.val_samples} validation samples "
               f"· trained in {res.seconds:.1f} s")


with ui.guard("the training run"):
    result, partial = tc.run_live("overfit", cfg, lambda cbs: run_overfit(cfg, cbs), cfg.epochs)
    show_run(result, partial, "overfit")

st.divider()
st.subheader("Compare two runs")
ui.explain("Change **one** knob, keep everything else (and the seed) the same: what did it change?")
compare = view.widget("compare")
if compare:
    k1, k2 = st.columns(2)
    knob = view.widget("knob", where=k1)
    current = getattr(cfg, knob)
    with k2:
        if knob == "dropout":
            value = st.slider("Dropout in run B", 0.0, 0.7, 0.5 if current == 0 else 0.0, 0.05, key="of_b_dropout")
        elif knob == "weight_decay":
            value = st.select_slider("Weight decay in run B", DECAYS, 0.5 if current == 0 else 0.0, key="of_b_wd",
                                     format_func=lambda v: f"{v:g}")
        elif knob in ("batchnorm", "early_stopping"):
            value = st.checkbox(f"{KNOBS[knob]} in run B", not current, key=f"of_b_{knob}")
        elif knob == "train_size":
            pool = pool_size(cfg.data)
            value = st.slider("Training-set size in run B", 10, pool, min(pool, current * 4), key="of_b_n")
        elif knob == "width":
            value = st.select_slider("Width in run B", WIDTHS, 16 if current > 16 else 256, key="of_b_width")
        elif knob == "depth":
            value = st.slider("Hidden layers in run B", 0, 5, 1 if current > 1 else 3, key="of_b_depth")
        else:
            value = st.slider("Label noise in run B", 0.0, 0.5, 0.2 if current == 0 else 0.0, 0.05, key="of_b_ln")
    cfg_b = cfg.replace(**{knob: type(current)(value)})
    with ui.guard("the second run"):
        res_a = tc.memo_get("overfit", cfg)
        res_b, partial_b = tc.run_live("overfit_b", cfg_b, lambda cbs: run_overfit(cfg_b, cbs), cfg_b.epochs,
                                       label="Run B")
        a, b = st.columns(2)
        with a:
            st.markdown(f"**Run A**: {KNOBS[knob].lower()} = {current}")
            if res_a is not None:
                show_run(res_a, None, "overfit", compact=True)
        with b:
            st.markdown(f"**Run B**: {KNOBS[knob].lower()} = {getattr(cfg_b, knob)}")
            show_run(res_b, partial_b, "overfit_b", compact=True)
        if res_a is not None and res_b is not None:
            table = pd.DataFrame({
                "run": ["A", "B"], KNOBS[knob]: [str(current), str(getattr(cfg_b, knob))],
                "validation accuracy": [res_a.final["val_acc"], res_b.final["val_acc"]],
                "training accuracy": [res_a.final["train_acc"], res_b.final["train_acc"]],
                "gap (loss)": [res_a.gap_loss, res_b.gap_loss],
                "best epoch": [res_a.best_epoch, res_b.best_epoch]})
            st.dataframe(table, hide_index=True, width="stretch")
