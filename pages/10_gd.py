"""Gradient descent: torch.optim's optimizers racing on 2-D loss surfaces."""

import streamlit as st

import dltl_ui as ui
from dltl_core.descend import Descent, DescentConfig, descend_many
from dltl_core.optim import OPTIMIZERS
from dltl_core.surfaces import create_surface
from dltl_ui import gd_charts as gc
from dltl_ui.gd_state import (OFF, PRESET_NONE, PRESETS, SHORT, SLOTS, apply_preset, binders, current_surface,
                              init_from_url, new_random_start, on_optimizer_change, on_surface_change, sfx)
from dltl_ui.layout import chart_height

ui.page_setup("Gradient descent", "⛰️")
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

@st.cache_data(max_entries=256, show_spinner=False)
def run_descents(configs: tuple[DescentConfig, ...]) -> list[Descent]:
    """All slots' descents, in lock-step (cached by config: scrubbing is instant)."""
    return descend_many(configs)


@st.cache_data(max_entries=32, show_spinner=False)
def surface_grid(name: str, condition: float):
    """The banded contour map of a surface (cached: the grid is the same for every run)."""
    surface = create_surface(name, condition)
    xs, ys, z = surface.grid(72)
    return gc.surface_frame(xs, ys, z, surface.f_min, surface.log_scale)


# ----------------------------------------------------------------------------- controls

url = ui.UrlState()
view, slot_binders = binders(url)
init_from_url(view, slot_binders)
ss = st.session_state

top = st.columns([2, 1.2, 1.2, 1.6])
with top[0]:
    st.selectbox("Preset", [PRESET_NONE, *PRESETS], key="preset", on_change=apply_preset,
                 help="A ready-made comparison; every control stays editable.")
    if ss.get("preset") in PRESETS:
        st.caption(PRESETS[ss["preset"]][0])
with top[1]:
    view.widget("surface", on_change=on_surface_change)
    if ss["surface"] == "bowl":
        view.widget("condition", on_change=on_surface_change)
surface = current_surface()
with top[2]:
    view.widget("steps")
    view.widget("noise")
with top[3]:
    view.widget("rand")
    if ss["rand"]:
        sc = st.columns([1, 1])
        view.widget("seed", where=sc[0])
        sc[1].button("🎲 new start", on_click=new_random_start, width="stretch")
        x0, y0 = surface.random_start(int(ss["seed"]))
        st.caption(f"start w₀ = ({x0:g}, {y0:g})")
    else:
        sc = st.columns(2)  # the start's range is this surface's box (a link may carry another's)
        x0 = view.widget("x0", where=sc[0], lo=surface.xlim[0], hi=surface.xlim[1])
        y0 = view.widget("y0", where=sc[1], lo=surface.ylim[0], hi=surface.ylim[1])

configs: list[tuple[int, str, DescentConfig]] = []
problems: list[str] = []
for i, (col, b) in enumerate(zip(st.columns(SLOTS), slot_binders)):
    s = sfx(i)
    with col, st.container(border=True):
        name = b.widget("opt", label=f"optimizer {i + 1}", on_change=on_optimizer_change, args=(i,))
        if name == OFF:
            continue
        lr = b.widget("lr")
        names = list(OPTIMIZERS[name].hyper)
        summary = ", ".join(f"{SHORT[h]} {ss[h + s]:g}" for h in names if h != "weight_decay" or len(names) == 1)
        with st.popover(f"⚙️ {summary}", width="stretch", help="The optimizer's other hyperparameters."):
            hyper = {hp: b.widget(hp) for hp in names}
        label = f"{i + 1}. {OPTIMIZERS[name].label}, η = {lr:g}"
        st.markdown(f"<div style='height:6px;background:{gc.COLORS[i]};border-radius:3px'></div>",
                    unsafe_allow_html=True)
        if int(ss["steps"]) == 0:
            continue
        try:  # the config checks itself: one message per bad field
            config = DescentConfig(surface=surface.name, optimizer=name, lr=float(lr), hyper=hyper,
                                   steps=int(ss["steps"]), start=(x0, y0), seed=int(ss["seed"]),
                                   noise=float(ss["noise"]), condition=float(ss.get("cond", 10.0)))
        except ValueError as err:
            problems.append(f"**{label}**: {err}.")
            continue
        configs.append((i, label, config))

# The link always describes what is on screen.
shown = ["surface", "steps", "noise", "rand", "seed"] + (["condition"] if surface.name == "bowl" else []) \
    + ([] if ss["rand"] else ["x0", "y0"])
view.sync(shown)
for i, b in enumerate(slot_binders):
    opt = ss["opt" + sfx(i)]
    b.sync(["opt"] + ([] if opt == OFF else ["lr", *OPTIMIZERS[opt].hyper]))
url.report()
for p in problems:
    st.warning(p, icon="⚠️")

# ----------------------------------------------------------------------------- the descent


@st.fragment
def descent_view(runs: list[Descent], slots: list[int], labels: list[str], steps: int, start: tuple[float, float]):
    """Step slider, contour map, loss chart and results. A fragment: scrubbing reruns only this."""
    with ui.guard("the charts"):  # a fragment rerun is outside the page's guard
        colors = [gc.COLORS[i] for i in slots]
        # Follow the end of the run when the number of steps changes, unless scrubbing.
        prev = ss.get("_steps_prev", steps)
        if ss.get("at", steps) > steps or ss.get("at", steps) == prev:
            ss["at"] = steps
        ss["_steps_prev"] = steps
        at = view.widget("at", hi=max(steps, 1), disabled=steps == 0)
        view.sync(["at"])

        grid = surface_grid(surface.name, float(ss.get("cond", 10.0)) if surface.name == "bowl" else 10.0)
        paths = gc.paths_frame(runs, labels, surface.f_min)
        if not len(paths):  # nothing ran: still show the landscape and the start
            paths = gc.start_frame(*start)
        notes = [(label, *r.trajectory[-1], f"💥 diverged at step {r.diverged_at}") for label, r in zip(labels, runs)
                 if r.diverged_at is not None and len(r.trajectory) and r.diverged_at <= at]
        _, color_title = gc.color_value(grid["level"].to_numpy()[:1], surface.f_min, surface.log_scale)
        left, right = st.columns([3, 2])
        with left:
            ui.show_chart(
                gc.contour_chart(grid, paths, labels or ["start"], xlim=surface.xlim, ylim=surface.ylim,
                                 minima=surface.minima, at=at, color_title=color_title, notes=notes,
                                 colors=colors or ["#000"], height=chart_height(520)),
                caption=f"{surface.about} ◆ known minima, □ the start, ● where each optimizer is at step {at}.")
        with right:
            if runs:
                ui.show_chart(
                    gc.loss_chart(paths, labels, at=at, colors=colors, height=chart_height(470)),
                    caption="Loss above the minimum on a log scale: a straight downward line is steady "
                            "(linear) convergence; a flat stretch is a plateau or a saddle; a line that "
                            "stops has diverged.")
        for i, label, r in zip(slots, labels, runs):
            icon = "💥" if r.diverged_at is not None else "✅"
            st.markdown(f"<span style='color:{gc.COLORS[i]};font-size:1.3rem'>●</span> {icon} **{label}**: "
                        f"{r.status}", unsafe_allow_html=True)


steps = int(ss["steps"])
with ui.guard("the descent"):
    runs: list[Descent] = run_descents(tuple(c for _, _, c in configs)) if configs and steps > 0 else []
    if steps == 0:
        st.info("Zero steps: nothing moves. Choose at least one step to watch the descent.", icon="ℹ️")
    elif not configs:
        st.info("No optimizer to run: switch one on, with a learning rate above 0.", icon="ℹ️")
    descent_view(runs, [i for i, _, _ in configs], [label for _, label, _ in configs], steps, (x0, y0))
