"""Overfitting and generalization: live learning curves, the three regimes, regularisers."""

import streamlit as st

import dltl_ui as ui
from dltl_core.lessons.overfit import DEFAULT_TRAIN_SIZE, KNOBS, PRESETS, VAL_2D, OverfitConfig, pool_size, run_overfit
from dltl_ui.overfit import view as ov
from dltl_core.lessons import lesson_jobs as lj
from dltl_ui import live_run as tc
from dltl_ui.binder import Binder
from dltl_ui.code_panel import code_panel
from dltl_ui.views import CompareView

ui.page_setup(__file__)
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
    code_panel("overfit")  # the code reproduces the page's message
    st.stop()


with ui.guard("the training run"):
    result, partial = tc.run_bounded("overfit", cfg, lambda cbs: run_overfit(cfg, cbs), cfg.epochs,
                                     job=lj.overfit_job, expected_s=lj.expected_seconds_overfit(cfg), seed=cfg.seed)
    if result is not None or partial is not None:
        ov.show_run(result, partial, "overfit", cfg.epochs)

st.divider()
st.subheader("Compare two runs")
ui.explain("Change **one** knob, keep everything else (and the seed) the same: what did it change?")
if view.widget("compare"):
    knob, value = ov.knob_b(cfg, view)
    current = getattr(cfg, knob)
    cfg_b = cfg.replace(**{knob: type(current)(value)})
    with ui.guard("the second run"):
        res_a = tc.memo_get("overfit", cfg)
        res_b, partial_b = tc.run_bounded("overfit_b", cfg_b, lambda cbs: run_overfit(cfg_b, cbs), cfg_b.epochs,
                                          job=lj.overfit_job, expected_s=lj.expected_seconds_overfit(cfg_b),
                                          seed=cfg_b.seed, label="Run B")
        a, b = st.columns(2)
        with a:
            st.markdown(f"**Run A**: {KNOBS[knob].lower()} = {current}")
            if res_a is not None:
                ov.show_run(res_a, None, "overfit", cfg.epochs, compact=True)
        with b:
            st.markdown(f"**Run B**: {KNOBS[knob].lower()} = {getattr(cfg_b, knob)}")
            if res_b is not None or partial_b is not None:
                ov.show_run(res_b, partial_b, "overfit_b", cfg_b.epochs, compact=True)
        if res_a is not None and res_b is not None:
            ov.compare_table(knob, res_a, res_b)

code_panel("overfit")
