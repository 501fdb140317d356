"""Gradient descent: torch.optim's optimizers racing on 2-D loss surfaces."""

import streamlit as st

import dltl_ui as ui
from dltl_core.descend import Descent, descend_shared
from dltl_ui.gd import view as gv
from dltl_ui.code_panel import code_panel
from dltl_ui.gd.state import SLOTS, binders, init_from_url

ui.page_setup(__file__)
st.title("Gradient descent")
ui.explain(
    r"""
Training looks for the weights $w$ with the lowest loss $f(w)$. Here $w$ has just two
components, so the loss is a landscape you can see. **Gradient descent** starts somewhere and
repeats $w \leftarrow w - \eta\,\nabla f(w)$: a step downhill, of a size set by the learning
rate $\eta$. **Momentum** (and **Nesterov**) keep a running velocity, so steps build up along a
consistent direction and oscillations cancel. **RMSprop**, **Adagrad** and **Adam** divide each
component of the step by a running size of its gradient, so steep and flat directions move at
similar speeds. Every optimizer here is PyTorch's own `torch.optim` class.
"""
)

url = ui.UrlState()
view, slot_binders = binders(url)
init_from_url(view, slot_binders)
problems: list[str] = []
with ui.controls():  # classroom mode: a closed expander, so the chart is on screen
    surface, start = gv.top_controls(view)
    configs = []
    for i, (col, b) in enumerate(zip(st.columns(SLOTS), slot_binders)):
        with col:
            slot = gv.slot_controls(i, b, surface, start, problems)
        configs += [slot] if slot else []
configs = gv.distinguish(configs)  # two SGD + momentum runs: the legend names the β that differs
gv.sync(view, slot_binders, surface)
url.report()
for p in problems:
    st.warning(p, icon="⚠️")

steps = int(st.session_state["steps"])
with ui.guard("the descent"):  # each slot's descent computed once per process (scrubbing: no work)
    runs: list[Descent] = descend_shared(c for _, _, c in configs) if configs and steps > 0 else []
    if steps == 0:
        st.info("Zero steps: nothing moves. Choose at least one step to watch the descent.", icon="ℹ️")
    elif not configs:
        st.info("No optimizer to run: switch one on, with a learning rate above 0.", icon="ℹ️")
    gv.descent_view(view, surface, runs, [i for i, _, _ in configs], [label for _, label, _ in configs], steps,
                    start)

code_panel("gd")  # the plain PyTorch script behind these charts, for the current settings
