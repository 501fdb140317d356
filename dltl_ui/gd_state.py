"""State of the gradient-descent page: defaults, presets, URL loading and widget callbacks.

Kept out of ``pages/10_gd.py`` so the page stays a thin view (widgets and charts). Every
widget of the page has a key that is also its URL parameter; slot 1 of the four optimizer
slots has bare names (``/gd?lr=0.42``), slots 2-4 a suffix (``lr_2``, ``momentum_3``...).
"""

from __future__ import annotations

import streamlit as st

from dltl_core.optim import OPTIMIZERS
from dltl_core.surfaces import CONDITION_RANGE, SURFACES, create_surface
from dltl_ui.urlstate import UrlState

SLOTS = 4
OFF = "off"
OPT_CHOICES = [*OPTIMIZERS, OFF]
LR_MAX = 100.0
STEPS_MAX = 2000
NOISE_MAX = 50.0
# Widgets for the hyperparameters torch.optim exposes: (label, min, max, step).
HYPER = {
    "momentum": ("momentum β", 0.0, 0.999, 0.01),
    "alpha": ("RMS decay α", 0.5, 0.9999, 0.001),
    "beta1": ("β₁ (momentum)", 0.0, 0.999, 0.01),
    "beta2": ("β₂ (RMS decay)", 0.5, 0.9999, 0.0001),
    "weight_decay": ("weight decay", 0.0, 1.0, 0.01),
}


def sfx(i: int) -> str:
    """URL/widget-key suffix of optimizer slot i: slot 1 has none (``/gd?lr=0.42``)."""
    return "" if i == 0 else f"_{i + 1}"


DEFAULTS: dict = {
    "surface": "rosenbrock", "cond": 10.0, "steps": 300, "noise": 0.0, "rand": False, "seed": 0,
    "opt": "sgd", "lr": 0.001, "opt_2": "momentum", "lr_2": 0.001,
    "opt_3": "rmsprop", "lr_3": 0.01, "opt_4": "adam", "lr_4": 0.05,
}
SHORT = {"momentum": "β", "alpha": "α", "beta1": "β₁", "beta2": "β₂", "weight_decay": "wd"}
HYPER_DEFAULTS = {"momentum": 0.9, "alpha": 0.99, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0}


def hyper_defaults(name: str) -> dict[str, float]:
    """The widgets' defaults for an optimizer: torch.optim's own (as in dltl_core.optim)."""
    return {**HYPER_DEFAULTS, **(OPTIMIZERS[name].hyper if name in OPTIMIZERS else {})}


for _i in range(SLOTS):
    for _name, _value in hyper_defaults(DEFAULTS["opt" + sfx(_i)]).items():
        DEFAULTS[_name + sfx(_i)] = _value

PRESETS: dict[str, tuple[str, dict]] = {
    "Momentum overshoots": (
        "On a bowl, momentum 0.9 is faster than plain SGD; with 0.99 the ball rolls far past the "
        "minimum and spirals back.",
        {"surface": "bowl", "cond": 10.0, "x0": -3.5, "y0": 2.0, "steps": 200,
         "opt": "sgd", "lr": 0.02, "opt_2": "momentum", "lr_2": 0.02, "momentum_2": 0.9,
         "opt_3": "momentum", "lr_3": 0.02, "momentum_3": 0.99, "opt_4": OFF}),
    "Adam on Rosenbrock": (
        "Everyone finds the valley at once; moving along its flat, curved floor is the hard part. "
        "Adam's per-coordinate step sizes keep it moving.",
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
    return create_surface(st.session_state["surface"], float(st.session_state["cond"]))


def init_from_url(url: UrlState) -> None:
    """First run of a session: widget state from the link (clamped), else defaults."""
    ss = st.session_state
    if "surface" not in ss:
        ss["surface"] = url.choice("surface", DEFAULTS["surface"], list(SURFACES))
    if "cond" not in ss:
        ss["cond"] = url.float("cond", DEFAULTS["cond"], *CONDITION_RANGE)
    surface = current_surface()
    for key, lo, hi, default in (("x0", *surface.xlim, surface.start[0]), ("y0", *surface.ylim, surface.start[1])):
        if key not in ss:
            ss[key] = url.float(key, default, lo, hi)
    if "steps" not in ss:
        ss["steps"] = url.int("steps", DEFAULTS["steps"], 0, STEPS_MAX)
    if "noise" not in ss:
        ss["noise"] = url.float("noise", DEFAULTS["noise"], 0.0, NOISE_MAX)
    if "rand" not in ss:
        ss["rand"] = url.bool("rand", DEFAULTS["rand"])
    if "seed" not in ss:
        ss["seed"] = url.int("seed", DEFAULTS["seed"], 0, 9999)
    for i in range(SLOTS):
        s = sfx(i)
        if "opt" + s not in ss:
            ss["opt" + s] = url.choice("opt" + s, DEFAULTS["opt" + s], OPT_CHOICES)
        if "lr" + s not in ss:
            ss["lr" + s] = url.float("lr" + s, DEFAULTS["lr" + s], 0.0, LR_MAX)
        for name, (_, lo, hi, _) in HYPER.items():
            if name + s not in ss:
                ss[name + s] = url.float(name + s, DEFAULTS[name + s], lo, hi)
    if "at" not in ss:
        ss["at"] = url.int("at", ss["steps"], 0, ss["steps"])


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
