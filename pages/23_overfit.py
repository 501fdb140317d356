"""Overfitting and generalization: live learning curves, the three regimes, regularisers."""

import math

import pandas as pd
import streamlit as st

import dltl_ui as ui
from dltl_core.lessons.overfit import DATA_CHOICES, KNOBS, POOL_2D, PRESETS, VAL_2D, OverfitConfig, run_overfit
from dltl_ui import train_charts as tc

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

D = OverfitConfig()
WIDTHS = [2, 4, 8, 16, 32, 64, 128, 256, 512]
DECAYS = [0.0, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.3, 0.5, 1.0]
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
DIGITS_POOL = 1438  # 80 % of the 1,797 digits
FIELDS = ("data", "noise", "label_noise", "train_size", "depth", "width", "dropout", "weight_decay", "batchnorm",
          "early_stopping", "patience", "epochs", "lr", "seed")

url = ui.UrlState()
ss = st.session_state


def _init(name: str, value) -> None:
    if f"of_{name}" not in ss:
        ss[f"of_{name}"] = value


def _nearest(options: list, value: float):
    return min(options, key=lambda o: abs(math.log10(o + 1e-6) - math.log10(value + 1e-6)))


_init("data", url.choice("data", D.data, list(DATA_CHOICES)))
_init("noise", url.float("noise", D.noise, 0.0, 1.0))
_init("label_noise", url.float("label_noise", D.label_noise, 0.0, 0.5))
_init("train_size", url.int("train_size", D.train_size, 10, DIGITS_POOL))
_init("depth", url.int("depth", D.depth, 0, 5))
_init("width", _nearest(WIDTHS, url.int("width", D.width, 2, 512)))
_init("dropout", url.float("dropout", D.dropout, 0.0, 0.7))
_init("weight_decay", _nearest(DECAYS, url.float("weight_decay", D.weight_decay, 0.0, 1.0)))
_init("batchnorm", url.bool("batchnorm", D.batchnorm))
_init("early_stopping", url.bool("early_stopping", D.early_stopping))
_init("patience", url.int("patience", D.patience, 1, 100))
_init("epochs", url.int("epochs", D.epochs, 1, 500))
_init("lr", _nearest(LRS, url.float("lr", D.lr, 1e-4, 3.0)))
_init("seed", url.int("seed", D.seed, 0, 999))
_init("compare", url.bool("compare", False))
_init("knob", url.choice("knob", "dropout", list(KNOBS)))


def _apply_preset(name: str) -> None:
    cfg = PRESETS[name]
    for f in FIELDS:
        value = getattr(cfg, f)
        ss[f"of_{f}"] = _nearest(WIDTHS if f == "width" else DECAYS if f == "weight_decay" else LRS, value) \
            if f in ("width", "weight_decay", "lr") else value
    ss.pop("overfit__stopped", None)


st.markdown("**The lecture's three regimes** on the same data (noisy moons, 80 training points):")
cols = st.columns(3)
for col, (name, icon) in zip(cols, (("underfit", "📉"), ("good fit", "✅"), ("overfit", "🎢"))):
    col.button(f"{icon} {name.capitalize()}", key=f"of_preset_{name}", on_click=_apply_preset, args=(name,),
               width="stretch")

with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**Data**")
        data = st.selectbox("Data set", list(DATA_CHOICES), format_func=DATA_CHOICES.get, key="of_data")
        is_2d = data != "digits"
        pool = POOL_2D - VAL_2D if is_2d else DIGITS_POOL
        if ss["of_train_size"] > pool:
            ss["of_train_size"] = pool
        train_size = st.slider("Training-set size", 10, pool, key="of_train_size",
                               help=f"The validation set stays the same ({VAL_2D if is_2d else 359} samples).")
        noise = st.slider("Point noise", 0.0, 1.0, step=0.05, key="of_noise", disabled=not is_2d,
                          help="Jitter of the 2-D points.")
        label_noise = st.slider("Label noise (training)", 0.0, 0.5, step=0.05, key="of_label_noise",
                                help="Share of training labels replaced by a wrong class.")
    with c2:
        st.markdown("**Model capacity**")
        depth = st.slider("Hidden layers", 0, 5, key="of_depth", help="0 = a linear classifier.")
        width = st.select_slider("Units per layer", WIDTHS, key="of_width")
        dropout = st.slider("Dropout", 0.0, 0.7, step=0.05, key="of_dropout")
        batchnorm = st.checkbox("Batch norm", key="of_batchnorm")
    with c3:
        st.markdown("**Training**")
        epochs = st.slider("Epochs", 1, 500, key="of_epochs")
        lr = st.select_slider("Learning rate (AdamW)", LRS, key="of_lr", format_func=lambda v: f"{v:g}")
        weight_decay = st.select_slider("Weight decay", DECAYS, key="of_weight_decay", format_func=lambda v: f"{v:g}")
        e1, e2 = st.columns(2)
        early = e1.checkbox("Early stopping", key="of_early_stopping")
        patience = e2.number_input("Patience", 1, 100, key="of_patience", disabled=not early)
        seed = st.number_input("Seed", 0, 999, key="of_seed")

cfg = OverfitConfig(data=data, noise=float(noise), label_noise=float(label_noise), train_size=int(train_size),
                    depth=int(depth), width=int(width), dropout=float(dropout), weight_decay=float(weight_decay),
                    batchnorm=bool(batchnorm), early_stopping=bool(early), patience=int(patience),
                    epochs=int(epochs), lr=float(lr), seed=int(seed))
url.sync(**{f: getattr(cfg, f) for f in FIELDS}, compare=ss["of_compare"], knob=ss["of_knob"])
url.report()


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
    m = st.columns(4)
    m[0].metric("Training accuracy", f"{res.final['train_acc']:.1%}")
    m[1].metric("Validation accuracy", f"{res.final['val_acc']:.1%}")
    m[2].metric("Gap (val − train loss)", f"{res.gap_loss:+.3f}" if math.isfinite(res.gap_loss) else "–")
    m[3].metric("Best epoch", f"{res.best_epoch}" + (" (kept)" if res.config.early_stopping else ""))
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
        tc.show_curves(res.history, res.config.epochs, res.best_epoch, extra=boundary,
                       caption="What to notice: the dashed line marks the epoch with the lowest validation loss "
                               "(where early stopping rolls back to); the grey bar is the gap at the end. An "
                               "overfit boundary bends around single noisy training points.")
    st.caption(f"{res.parameters:,} weights · {res.train_samples} training / {res.val_samples} validation samples "
               f"· trained in {res.seconds:.1f} s")


with ui.guard("the training run"):
    result, partial = tc.run_live("overfit", cfg, lambda cbs: run_overfit(cfg, cbs), cfg.epochs)
    show_run(result, partial, "overfit")

st.divider()
st.subheader("Compare two runs")
ui.explain("Change **one** knob, keep everything else (and the seed) the same: what did it change?")
compare = st.toggle("Train a second run that differs in one knob", key="of_compare")
if compare:
    k1, k2 = st.columns(2)
    knob = k1.selectbox("Knob", list(KNOBS), format_func=KNOBS.get, key="of_knob")
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
            pool = POOL_2D - VAL_2D if cfg.data != "digits" else DIGITS_POOL
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
