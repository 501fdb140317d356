"""Learning rate: too small, good, too large, divergent; schedules; an LR range test."""

import streamlit as st

import dltl_ui as ui
from dltl_core.descend import DescentConfig
from dltl_core.surfaces import create_surface
from dltl_ui.lr import view as lv
from dltl_ui.binder import Binder
from dltl_ui.code_panel import code_panel
from dltl_ui.views import LrView

ui.page_setup(__file__)
st.title("Learning rate")
ui.explain(
    r"""
The learning rate $\eta$ sets the size of every step $w \leftarrow w - \eta\,\nabla f(w)$.
**Too small**: every step is safe but the descent barely moves. **Good**: in the steps it has,
it gets (nearly) as close to the minimum as the best η of the sweep. **Too large**: it
overshoots, and ends farther from the minimum than the good ones. **Divergent**: the loss
explodes. (The sweep below names each η this way, from its own final losses: within 75% of the
best run's progress in powers of ten is *good*, below that *too small* or *too large* by side.) A **schedule**
changes $\eta$ during training (big steps first, small ones to settle); the **LR range test**
finds a good $\eta$ for a real network in one pass.
"""
)

url = ui.UrlState()
lrb = Binder(LrView, prefix="lr", url=url)
lrb.load()
ss = st.session_state

st.header("Too small, good, too large, divergent")
with ui.controls():
    c = st.columns([1.4, 1.2, 1])
    lrb.widget("surface", where=c[0])
    lrb.widget("opt", where=c[1])
    lrb.widget("steps", where=c[2])
surface = create_surface(ss["lr_surface"])
base = DescentConfig(surface=surface.name, optimizer=ss["lr_opt"], steps=max(1, int(ss["lr_steps"])))
lrb.sync(["surface", "opt", "steps"])
url.report()
lv.regimes_section(base)
lv.schedules_section(lrb, base, surface)
lv.range_test_section(lrb)

code_panel("lr")  # the plain PyTorch script behind these charts, for the current settings
