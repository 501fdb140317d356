"""State of the gradient-descent page: defaults, presets, URL loading and widget callbacks.

Kept out of ``pages/10_gd.py`` so the page stays a thin view (widgets and charts). Every
widget of the page has a key that is also its URL parameter; slot 1 of the four optimizer
slots has bare names (``/gd?lr=0.42``), slots 2-4 a suffix (``lr_2``, ``momentum_3``...).
"""

from __future__ import annotations

import streamlit as st

from dltl_core.gd_settings import (DEFAULTS, HYPER, OFF, SHORT, SLOT_LRS, SLOT_OPTS, SLOTS, GdView,  # noqa: F401
                                   SlotConfig, hyper_defaults, sfx)
from dltl_core.surfaces import create_surface
from dltl_ui.binder import Binder
from dltl_ui.urlstate import UrlState


def binders(url: UrlState) -> tuple[Binder, list[Binder]]:
    """The page's binders: the view and one per optimizer slot (slot i's keys end in ``_i``)."""
    view = Binder(GdView, url=url)
    slots = [Binder(SlotConfig, suffix=sfx(i), url=url,
                    defaults={"opt": SLOT_OPTS[i], "lr": SLOT_LRS[i], **hyper_defaults(SLOT_OPTS[i])})
             for i in range(SLOTS)]
    return view, slots


PRESETS: dict[str, tuple[str, dict]] = {
    "Momentum overshoots": (
        "On a bowl, momentum 0.9 is faster than plain SGD; with 0.99 the ball rolls far past the "
        "minimum and spirals back.",
        {"surface": "bowl", "cond": 10.0, "x0": -3.5, "y0": 2.0, "steps": 200,
         "opt": "sgd", "lr": 0.02, "opt_2": "momentum", "lr_2": 0.02, "momentum_2": 0.9,
         "opt_3": "momentum", "lr_3": 0.02, "momentum_3": 0.99, "opt_4": OFF}),
    "Adam on Rosenbrock": (
        "Everyone finds the valley at once; moving along its flat, curved floor is the hard part: after "
        "500 steps SGD and Adam at η = 0.01 are still far from the minimum, while Adam at η = 0.1 "
        "(its per-coordinate steps stay large on the flat floor) and momentum reach it.",
        {"surface": "rosenbrock", "x0": -1.5, "y0": 2.0, "steps": 500,
         "opt": "sgd", "lr": 0.001, "opt_2": "adam", "lr_2": 0.01, "opt_3": "adam", "lr_3": 0.1,
         "opt_4": "momentum", "lr_4": 0.001, "momentum_4": 0.9}),
    "Escaping a saddle": (
        "Started on the ridge of a saddle the gradient barely points away from it: plain SGD lingers, "
        "momentum and Adam leave much sooner.",
        {"surface": "saddle", "x0": -1.8, "y0": 0.001, "steps": 150,
         "opt": "sgd", "lr": 0.05, "opt_2": "momentum", "lr_2": 0.05, "momentum_2": 0.9,
         "opt_3": "rmsprop", "lr_3": 0.05, "opt_4": "adam", "lr_4": 0.05}),
    "Zig-zag in a narrow valley": (
        "κ = 50: the steep direction limits η, so plain SGD zig-zags and crawls along the flat one; "
        "momentum and Adam do not.",
        {"surface": "bowl", "cond": 50.0, "x0": -3.5, "y0": 1.0, "steps": 150,
         "opt": "sgd", "lr": 0.038, "opt_2": "momentum", "lr_2": 0.01, "momentum_2": 0.9,
         "opt_3": "nesterov", "lr_3": 0.01, "momentum_3": 0.9, "opt_4": "adam", "lr_4": 0.1}),
    "A step too far": (
        "SGD on a bowl with κ = 10 is stable only for η < 2/κ = 0.2: just below it oscillates, "
        "just above it diverges.",
        {"surface": "bowl", "cond": 10.0, "x0": -3.5, "y0": 2.0, "steps": 100,
         "opt": "sgd", "lr": 0.05, "opt_2": "sgd", "lr_2": 0.15, "opt_3": "sgd", "lr_3": 0.195,
         "opt_4": "sgd", "lr_4": 0.21}),
    "Same start, different minima": (
        "Himmelblau has four equally good minima. From one start, different optimizers take different "
        "paths and end in different minima.",
        {"surface": "himmelblau", "x0": 0.0, "y0": -3.0, "steps": 300,
         "opt": "sgd", "lr": 0.01, "opt_2": "momentum", "lr_2": 0.01, "momentum_2": 0.9,
         "opt_3": "rmsprop", "lr_3": 0.1, "opt_4": "adam", "lr_4": 0.3}),
    "Rugged landscape": (
        "Many local minima, like a network's loss landscape: each optimizer stops in a different dip; "
        "only Adam with a large η reaches the deepest one.",
        {"surface": "rugged", "x0": 3.0, "y0": 3.5, "steps": 300,
         "opt": "sgd", "lr": 0.3, "opt_2": "momentum", "lr_2": 0.1, "momentum_2": 0.95,
         "opt_3": "adam", "lr_3": 0.2, "opt_4": "adam", "lr_4": 1.0}),
    "Noisy gradients": (
        "Gradient noise (as with small mini-batches) makes SGD jitter; the noise also lets it move "
        "where the true gradient is almost zero.",
        {"surface": "saddle", "x0": -1.8, "y0": 0.0, "steps": 200, "noise": 0.3,
         "opt": "sgd", "lr": 0.05, "opt_2": "momentum", "lr_2": 0.05, "momentum_2": 0.9,
         "opt_3": "adam", "lr_3": 0.05, "opt_4": OFF}),
}
PRESET_NONE = "— choose a preset —"


# ----------------------------------------------------------------------------- state

def current_surface():
    """The surface the widgets currently select."""
    return create_surface(st.session_state["surface"], float(st.session_state.get("cond", DEFAULTS["cond"])))


def init_from_url(view: Binder, slots: list[Binder]) -> None:
    """First run of a session: widget state from the link (clamped), else defaults."""
    ss = st.session_state
    missing = [k for k in ("x0", "y0", "at") if k not in ss and view.url.raw(k) is None]
    view.load()
    start = dict(zip(("x0", "y0"), current_surface().start))  # no start in the link: the demo start
    for key in missing:
        ss[key] = start[key] if key in start else ss["steps"]
    for b in slots:
        b.load()


def apply_preset() -> None:
    """Callback of the preset box: set every widget to the preset's values."""
    name = st.session_state.get("preset", PRESET_NONE)
    if name not in PRESETS:
        return
    preset = PRESETS[name][1]
    values = {**DEFAULTS, "rand": False, "noise": 0.0}
    for i in range(SLOTS):  # each slot's hyperparameters start at its optimizer's defaults
        opt = preset.get("opt" + sfx(i), DEFAULTS["opt" + sfx(i)])
        values.update({hp + sfx(i): v for hp, v in hyper_defaults(opt).items()})
    values.update(preset)
    surface = create_surface(values["surface"], float(values.get("cond", DEFAULTS["cond"])))
    values.setdefault("x0", surface.start[0])
    values.setdefault("y0", surface.start[1])
    values["at"] = values["steps"]
    for key, value in values.items():
        st.session_state[key] = value


def on_surface_change() -> None:
    """Callback: a new surface has a new box, so the start moves to its default."""
    # A new surface has a new box: move the start to its default so the sliders stay in range.
    surface = current_surface()
    st.session_state["x0"], st.session_state["y0"] = surface.start


def on_optimizer_change(i: int) -> None:
    """Callback: a slot's new optimizer starts from its own hyperparameter defaults."""
    # A different optimizer starts from its own hyperparameter defaults (RMSprop's momentum is 0).
    s = sfx(i)
    for name, value in hyper_defaults(st.session_state["opt" + s]).items():
        st.session_state[name + s] = value


def new_random_start() -> None:
    """Callback of the dice button: random start, next seed."""
    st.session_state["rand"] = True
    st.session_state["seed"] = (int(st.session_state["seed"]) + 1) % 10000
