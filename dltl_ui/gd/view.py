"""The /gd page's sections: the controls (bound through ``dltl_ui.gd.state``'s binders) and the
descent view (scrub slider, contour map, loss chart), a fragment of its own."""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from dltl_core.descend import Descent, DescentConfig
from dltl_core.optim import OPTIMIZERS
from dltl_core.surfaces import Surface
from dltl_ui.gd import charts as gc
from dltl_ui.binder import Binder
from dltl_ui.charts.contour import paths_frame, show_contour
from dltl_ui.gd.state import (OFF, PRESET_NONE, PRESETS, SHORT, apply_preset, current_surface, new_random_start,
                              on_optimizer_change, on_surface_change, sfx)
from dltl_ui.layout import chart_height, guard, is_classroom, main_chart

Slot = tuple[int, str, DescentConfig]


def top_controls(view: Binder) -> tuple[Surface, tuple[float, float]]:
    """Preset, surface, steps, noise and the start; returns the surface and the start."""
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
        sc = st.columns([1, 1])
        if ss["rand"]:
            view.widget("seed", where=sc[0])
            sc[1].button("🎲 new start", on_click=new_random_start, width="stretch")
            start = surface.random_start(int(ss["seed"]))
            st.caption(f"start w₀ = ({start[0]:g}, {start[1]:g})")
        else:  # the start's range is this surface's box (a link may carry another's)
            start = (view.widget("x0", where=sc[0], lo=surface.xlim[0], hi=surface.xlim[1]),
                     view.widget("y0", where=sc[1], lo=surface.ylim[0], hi=surface.ylim[1]))
    return surface, (float(start[0]), float(start[1]))


def slot_controls(i: int, b: Binder, surface: Surface, start: tuple[float, float], problems: list[str]) -> Slot | None:
    """One optimizer's box; returns its (slot, label, config), or None when off or invalid."""
    ss, s = st.session_state, sfx(i)
    with st.container(border=True):
        name = b.widget("opt", label=f"optimizer {i + 1}", on_change=on_optimizer_change, args=(i,))
        if name == OFF:
            return None
        lr = b.widget("lr")
        names = list(OPTIMIZERS[name].hyper)
        summary = ", ".join(f"{SHORT[h]} {ss[h + s]:g}" for h in names if h != "weight_decay" or len(names) == 1)
        with st.popover(f"⚙️ {summary}", width="stretch", help="The optimizer's other hyperparameters."):
            hyper = {hp: b.widget(hp) for hp in names}
        label = f"{i + 1}. {OPTIMIZERS[name].label}, η = {lr:g}"
        st.markdown(f"<div style='height:6px;background:{gc.COLORS[i]};border-radius:3px'></div>",
                    unsafe_allow_html=True)
    if int(ss["steps"]) == 0:
        return None
    try:  # the config checks itself: one message per bad field
        config = DescentConfig(surface=surface.name, optimizer=name, lr=float(lr), hyper=hyper,
                               steps=int(ss["steps"]), start=start, seed=int(ss["seed"]),
                               noise=float(ss["noise"]), condition=float(ss.get("cond", 10.0)))
    except ValueError as err:
        problems.append(f"**{label}**: {err}.")
        return None
    return i, label, config


def distinguish(slots: Sequence[Slot]) -> list[Slot]:
    """Labels that tell the series apart: each label names the hyperparameters that differ
    between runs of the same optimizer ("SGD + momentum, η = 0.02, β 0.99"), whichever they are."""
    out = []
    for i, label, config in slots:
        same = [dict(c.hyper) for _, _, c in slots if c.optimizer == config.optimizer]
        mine = dict(config.hyper)
        differ = [h for h in mine if len({hp.get(h) for hp in same}) > 1]
        extra = "".join(f", {SHORT.get(h, h)} {mine[h]:g}" for h in differ)
        out.append((i, label + extra, config))
    return out


def sync(view: Binder, slots: Sequence[Binder], surface: Surface) -> None:
    """The link always describes what is on screen (hidden settings are left out)."""
    ss = st.session_state
    view.sync(["surface", "steps", "noise", "rand", "seed"] + (["condition"] if surface.name == "bowl" else [])
              + ([] if ss["rand"] else ["x0", "y0"]))
    for i, b in enumerate(slots):
        opt = ss["opt" + sfx(i)]
        b.sync(["opt"] + ([] if opt == OFF else ["lr", *OPTIMIZERS[opt].hyper]))


def _scrubber(view: Binder, steps: int) -> int:
    ss = st.session_state
    # Follow the end of the run when the number of steps changes, unless scrubbing.
    prev = ss.get("_steps_prev", steps)
    if ss.get("at", steps) > steps or ss.get("at", steps) == prev:
        ss["at"] = steps
    ss["_steps_prev"] = steps
    at = view.widget("at", hi=max(steps, 1), disabled=steps == 0)
    view.sync(["at"])
    return int(at)


@st.fragment
def descent_view(view: Binder, surface: Surface, runs: list[Descent], slots: list[int], labels: list[str],
                 steps: int, start: tuple[float, float]) -> None:
    """Step slider, contour map, loss chart and results. A fragment: scrubbing reruns only this."""
    with guard("the charts"):  # a fragment rerun is outside the page's guard
        colors = [gc.COLORS[i] for i in slots]
        at = steps if is_classroom() else _scrubber(view, steps)  # classroom: the slider goes under the chart
        notes = [(label, *r.trajectory[-1], f"💥 diverged at step {r.diverged_at}") for label, r in zip(labels, runs)
                 if r.diverged_at is not None and len(r.trajectory) and r.diverged_at <= at]
        with main_chart():
            left, right = st.columns([3, 2])
            with left:
                show_contour(surface, runs, labels, colors, condition=float(st.session_state.get("cond", 10.0)),
                             start=start, at=at, notes=notes, height=chart_height(520, 400))
                st.caption(f"{surface.about} ◆ known minima, □ the start, ● where each optimizer is at step {at}.")
            with right:
                if runs:
                    gc.show_loss(paths_frame(runs, labels, surface.f_min), labels, at=at, colors=colors,
                                 height=chart_height(470, 360))
                    st.caption("Loss above the minimum on a log scale: a straight downward line is steady "
                               "(linear) convergence; a flat stretch is a plateau, a saddle or a local minimum; a line that "
                               "stops has diverged.")
        if is_classroom():
            _scrubber(view, steps)
        for i, label, r in zip(slots, labels, runs):
            icon = "💥" if r.diverged_at is not None else "✅"
            st.markdown(f"<span style='color:{gc.COLORS[i]};font-size:1.3rem'>●</span> {icon} **{label}**: "
                        f"{r.status}", unsafe_allow_html=True)
