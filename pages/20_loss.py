"""Loss and softmax: logits -> probabilities, cross-entropy vs MSE, confidently wrong predictions."""

import streamlit as st

import dltl_ui as ui
from dltl_core.lessons.softmax import confidence_sweep, gradient_story, losses_of_probs, softmax_losses
from dltl_ui.binder import Binder
from dltl_ui.code_panel import code_panel
from dltl_ui.loss import charts
from dltl_ui.views import LossView

ui.page_setup(__file__)
st.title("Loss & softmax")
ui.explain(
    r"""
A classifier's last layer outputs one number per class, the **logits** $z$. **Softmax** turns
them into probabilities $p_k = e^{z_k/T} / \sum_j e^{z_j/T}$ (all positive, summing to 1; the
**temperature** $T$ sharpens or flattens them). The target is a **one-hot** vector $t$.
**Cross-entropy** $L = -\sum_k t_k \log p_k = -\log p_{\text{true}}$ punishes a confident
mistake without limit; **MSE** $\frac1K\sum_k (p_k - t_k)^2$ never exceeds 1. Training follows
the gradient $\partial L / \partial z$: for cross-entropy it is simply $p - t$.
"""
)

ss = st.session_state
view = Binder(LossView, prefix="ls")
view.load()

left, right = ui.side_controls((1, 2))
with left:
    k = view.widget("k")
    if ss["ls_target"] >= k:
        ss["ls_target"] = 0
    target = st.radio(view.settings["target"].label, list(range(k)), key="ls_target", horizontal=True)
    temperature = view.widget("T")
    logits = [view.widget(f"z{i}") for i in range(k)]
view.sync(["k", "target", "T", *[f"z{i}" for i in range(k)]])
view.report()

with right, ui.guard("the softmax"):
    out = softmax_losses(logits, target, temperature)
    m = st.columns(3)
    m[0].metric(f"p(true class {target})", f"{out['probs'][target]:.3f}")
    m[1].metric("Cross-entropy", f"{out['cross_entropy']:.3f}")
    m[2].metric("MSE", f"{out['mse']:.3f}")
    chart = charts.probability_bars(out["table"])
    with ui.main_chart():
        ui.show_chart(chart, caption="What to notice: softmax is never exactly 0 or 1 (large gaps between logits round to 1.000 "
                                     "on screen); raising one logit takes "
                                     "probability from all the others. Low temperature sharpens, high flattens.")
    ui.show_chart(charts.gradient_bars(out["table"]), caption=gradient_story(out, target, temperature))

st.subheader("The lecture's example")
with ui.guard("the example"):
    ex = losses_of_probs([0.2, 0.8], [0, 1])
    st.markdown(
        f"Target $t = [0, 1]$, output $p = [0.2, 0.8]$: cross-entropy $= -\\log 0.8 = {ex['cross_entropy']:.3f}$, "
        f"MSE $= \\frac{{(0.2 - 0)^2 + (0.8 - 1)^2}}{{2}} = {ex['mse']:.3f}$.")

st.subheader("Confidently wrong")
ui.explain("Let the true class's logit run from far above the others (confidently right) to far below "
           "(confidently wrong). How big is the loss, and how hard does the gradient push back?")
with ui.guard("the sweep"):
    sweep = confidence_sweep(num_classes=k)
    loss_chart, grad_chart = charts.confidence_charts(sweep)
    c1, c2 = st.columns(2)
    with c1:
        ui.show_chart(loss_chart, caption="What to notice: cross-entropy grows without bound as the mistake "
                                          "gets more confident; MSE saturates.")
    with c2:
        ui.show_chart(grad_chart, caption="What to notice: the more wrong, the harder cross-entropy pushes "
                                          "(gradient → 1); MSE's gradient vanishes — it barely learns from "
                                          "its worst mistakes.")

code_panel("loss")  # the plain PyTorch script behind these charts, for the current settings
