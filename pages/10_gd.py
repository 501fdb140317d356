"""Gradient descent: torch.optim's optimizers racing on 2-D loss surfaces."""

import streamlit as st

import dltl_ui as ui
from dltl_core.descend import Descent, DescentConfig, descend_many, validate
from dltl_core.optim import OPTIMIZERS
from dltl_core.surfaces import CONDITION_RANGE, SURFACES, create_surface
from dltl_ui import gd_charts as gc
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
SHORT = {"momentum": "β", "alpha": "α", "beta1": "β₁", "beta2": "β₂"}
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

def _surface():
    return create_surface(st.session_state["surface"], float(st.session_state["cond"]))


def _init_from_url(url: ui.UrlState) -> None:
    """First run of a session: widget state from the link (clamped), else defaults."""
    ss = st.session_state
    if "surface" not in ss:
        ss["surface"] = url.choice("surface", DEFAULTS["surface"], list(SURFACES))
    if "cond" not in ss:
        ss["cond"] = url.float("cond", DEFAULTS["cond"], *CONDITION_RANGE)
    surface = _surface()
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


def _apply_preset() -> None:
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


def _on_surface_change() -> None:
    # A new surface has a new box: move the start to its default so the sliders stay in range.
    surface = _surface()
    st.session_state["x0"], st.session_state["y0"] = surface.start


def _on_optimizer_change(i: int) -> None:
    # A different optimizer starts from its own hyperparameter defaults (RMSprop's momentum is 0).
    s = sfx(i)
    for name, value in hyper_defaults(st.session_state["opt" + s]).items():
        st.session_state[name + s] = value


def _new_random_start() -> None:
    st.session_state["rand"] = True
    st.session_state["seed"] = (int(st.session_state["seed"]) + 1) % 10000


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
_init_from_url(url)
ss = st.session_state

top = st.columns([2, 1.2, 1.2, 1.6])
with top[0]:
    st.selectbox("Preset", [PRESET_NONE, *PRESETS], key="preset", on_change=_apply_preset,
                 help="A ready-made comparison; every control stays editable.")
    if ss.get("preset") in PRESETS:
        st.caption(PRESETS[ss["preset"]][0])
with top[1]:
    st.selectbox("Loss surface", list(SURFACES), format_func=lambda k: SURFACES[k].label, key="surface",
                 on_change=_on_surface_change)
    if ss["surface"] == "bowl":
        st.slider("condition number κ", *CONDITION_RANGE, step=1.0, key="cond", on_change=_on_surface_change,
                  help="Ratio of the steepest to the flattest curvature of the bowl.")
surface = _surface()
with top[2]:
    st.slider("steps", 0, STEPS_MAX, step=1, key="steps")
    st.slider("gradient noise σ", 0.0, NOISE_MAX, step=0.05, key="noise",
              help="Gaussian noise added to every gradient, like the noise of a mini-batch gradient.")
with top[3]:
    st.toggle("Random start", key="rand", help="A start drawn from the seed below, reproducible.")
    if ss["rand"]:
        sc = st.columns([1, 1])
        sc[0].number_input("seed", 0, 9999, step=1, key="seed")
        sc[1].button("🎲 new start", on_click=_new_random_start, width="stretch")
        x0, y0 = surface.random_start(int(ss["seed"]))
        st.caption(f"start w₀ = ({x0:g}, {y0:g})")
    else:
        sc = st.columns(2)
        # Clamp into this surface's box (a link may carry another surface's start).
        for key, (lo, hi) in (("x0", surface.xlim), ("y0", surface.ylim)):
            ss[key] = min(max(float(ss[key]), lo), hi)
        sc[0].slider("start w₁", *surface.xlim, step=0.001, format="%.3f", key="x0")
        sc[1].slider("start w₂", *surface.ylim, step=0.001, format="%.3f", key="y0")
        x0, y0 = float(ss["x0"]), float(ss["y0"])

slot_cols = st.columns(SLOTS)
configs: list[tuple[int, str, DescentConfig]] = []
problems: list[str] = []
for i, col in enumerate(slot_cols):
    s = sfx(i)
    with col, st.container(border=True):
        name = st.selectbox(f"optimizer {i + 1}", OPT_CHOICES, key="opt" + s,
                            on_change=_on_optimizer_change, args=(i,),
                            format_func=lambda k: "— off —" if k == OFF else OPTIMIZERS[k].label)
        if name == OFF:
            continue
        c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
        lr = c1.number_input("η", 0.0, LR_MAX, step=0.001, format="%g", key="lr" + s,
                             help="Learning rate: the size of each step.")
        hyper = {}
        names = list(OPTIMIZERS[name].hyper)
        summary = ", ".join(f"{SHORT[h]} {ss[h + s]:g}" for h in names if h != "weight_decay")
        with c2.popover(f"⚙️ {summary or 'weight decay'}", width="stretch"):
            for hp in names:
                label, lo, hi, step = HYPER[hp]
                hyper[hp] = st.slider(label, lo, hi, step=step, key=hp + s,
                                      format="%.4f" if step < 0.001 else ("%.3f" if step < 0.01 else "%.2f"))
        label = f"{i + 1}. {OPTIMIZERS[name].label}, η = {lr:g}"
        st.markdown(f"<div style='height:6px;background:{gc.COLORS[i]};border-radius:3px'></div>",
                    unsafe_allow_html=True)
        config = DescentConfig(surface=surface.name, optimizer=name, lr=float(lr), hyper=hyper,
                               steps=int(ss["steps"]), start=(x0, y0), seed=int(ss["seed"]),
                               noise=float(ss["noise"]), condition=float(ss["cond"]))
        try:
            validate(config)
        except ValueError as err:
            problems.append(f"**{label}**: {err}.")
            continue
        configs.append((i, label, config))

# The link always describes what is on screen.
state = {k: ss[k] for k in ("surface", "steps", "noise", "rand", "seed")}
if surface.name == "bowl":
    state["cond"] = float(ss["cond"])
if not ss["rand"]:
    state.update(x0=float(ss["x0"]), y0=float(ss["y0"]))
for i in range(SLOTS):
    s = sfx(i)
    state["opt" + s] = ss["opt" + s]
    if ss["opt" + s] != OFF:
        state["lr" + s] = float(ss["lr" + s])
        state.update({hp + s: float(ss[hp + s]) for hp in OPTIMIZERS[ss["opt" + s]].hyper})
url.report()
for p in problems:
    st.warning(p, icon="⚠️")

# ----------------------------------------------------------------------------- the descent

steps = int(ss["steps"])
with ui.guard("the descent"):
    runs: list[Descent] = run_descents(tuple(c for _, _, c in configs)) if configs and steps > 0 else []
    labels = [label for _, label, _ in configs]
    colors = [gc.COLORS[i] for i, _, _ in configs]
    if steps == 0:
        st.info("Zero steps: nothing moves. Choose at least one step to watch the descent.", icon="ℹ️")
    elif not configs:
        st.info("No optimizer to run: switch one on, with a learning rate above 0.", icon="ℹ️")
    # Follow the end of the run when the number of steps changes, unless scrubbing.
    prev = ss.get("_steps_prev", steps)
    if ss["at"] > steps or ss["at"] == prev:
        ss["at"] = steps
    ss["_steps_prev"] = steps
    at = st.slider("Show the descent up to step", 0, max(steps, 1), key="at", disabled=steps == 0,
                   help="Scrub through the descent; every step is already computed.")
    state["at"] = int(at)

    grid = surface_grid(surface.name, float(ss["cond"]) if surface.name == "bowl" else 10.0)
    paths = gc.paths_frame(runs, labels, surface.f_min)
    if not len(paths):  # nothing ran: still show the landscape and the start
        paths = gc.start_frame(x0, y0)
    notes = [(label, *r.trajectory[-1], f"💥 step {r.diverged_at}") for label, r in zip(labels, runs)
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
    for (i, label, _), r in zip(configs, runs):
        icon = "💥" if r.diverged_at is not None else "✅"
        st.markdown(f"<span style='color:{gc.COLORS[i]};font-size:1.3rem'>●</span> {icon} **{label}**: "
                    f"{r.status}", unsafe_allow_html=True)

url.sync(**state)
