"""The /gd page as plain PyTorch: torch.optim optimizers racing on a 2-D loss surface.

``build(params)`` reads the link with the page's own declarations (``GdView`` and the four
``SlotConfig`` slots of ``dltl_ui.gd.state``, read here without Streamlit) and writes a
script that runs each optimizer from the same start for the same steps, with the same
gradient noise, and detects divergence as ``dltl_core.descend`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from dltl_core import gd_settings as gs
from dltl_core.codegen.script import Script, code, md
from dltl_core.codegen.snippets import optimizer_call, py, settings_lines, surface_code
from dltl_core.descend import DescentConfig
from dltl_core.optim import OPTIMIZERS
from dltl_core.query import encode_query, read_query
from dltl_core.surfaces import create_surface

@dataclass(frozen=True)
class GdSettings:
    """What the /gd page runs for a link (as ``pages/10_gd.py`` reads it).

    Attributes:
        view: the page's values (``GdView`` fields; ``x0``/``y0`` the start actually used).
        slots: ``(slot, label, config)`` of each optimizer that runs.
        shown: the page fields the link keeps (the page's ``sync`` list).
        slot_values: each slot's values (``SlotConfig`` fields), also the switched-off ones.
        problems: the link's problems and each slot that cannot run.
    """

    view: dict[str, Any]
    slots: list[tuple[int, str, DescentConfig]]
    shown: list[str]
    slot_values: list[dict[str, Any]]
    problems: list[str]


def read_settings(params: Mapping[str, str]) -> GdSettings:
    """The page's settings for a link: the view, the start, and each slot's descent config."""
    view, problems = read_query(gs.GdView, params, defaults={k: gs.DEFAULTS[k] for k in ("steps", "noise", "rand",
                                                                                           "seed", "surface")})
    view["condition"] = float(view["condition"])
    surface = create_surface(view["surface"], view["condition"])
    if view["rand"]:
        start = surface.random_start(int(view["seed"]))
    else:  # no start in the link: the surface's demo start; the widgets keep it in the box
        x = view["x0"] if "x0" in params else surface.start[0]
        y = view["y0"] if "y0" in params else surface.start[1]
        start = (min(max(float(x), surface.xlim[0]), surface.xlim[1]),
                 min(max(float(y), surface.ylim[0]), surface.ylim[1]))
    view["x0"], view["y0"] = start
    view["at"] = min(int(view["at"]), view["steps"]) if "at" in params else view["steps"]
    slots, slot_values = [], []
    for i in range(gs.SLOTS):
        s = gs.sfx(i)
        values, found = read_query(gs.SlotConfig, params, suffix=s, defaults={
            "opt": gs.SLOT_OPTS[i], "lr": gs.SLOT_LRS[i], **gs.hyper_defaults(gs.SLOT_OPTS[i])})
        problems += found
        slot_values.append(values)
        name = values["opt"]
        if name == gs.OFF or view["steps"] == 0:
            continue
        hyper = {h: values[h] for h in OPTIMIZERS[name].hyper}
        label = f"{i + 1}. {OPTIMIZERS[name].label}, η = {values['lr']:g}"
        try:
            config = DescentConfig(surface=surface.name, optimizer=name, lr=float(values["lr"]), hyper=hyper,
                                   steps=int(view["steps"]), start=start, seed=int(view["seed"]),
                                   noise=float(view["noise"]), condition=view["condition"])
        except ValueError as err:
            problems.append(f"{label}: {err}.")
            continue
        slots.append((i, label, config))
    shown = (["surface", "steps", "noise", "rand", "seed"] + (["condition"] if surface.name == "bowl" else [])
             + ([] if view["rand"] else ["x0", "y0"]) + ["at"])
    return GdSettings(view, _distinguish(slots), shown, slot_values, problems)


def _distinguish(slots: list[tuple[int, str, DescentConfig]]) -> list[tuple[int, str, DescentConfig]]:
    """The page's legend labels: name the hyperparameters that differ between runs of one optimizer."""
    out = []
    for i, label, config in slots:
        same = [dict(c.hyper) for _, _, c in slots if c.optimizer == config.optimizer]
        mine = dict(config.hyper)
        extra = "".join(f", {gs.SHORT.get(h, h)} {mine[h]:g}" for h in mine if len({hp.get(h) for hp in same}) > 1)
        out.append((i, label + extra, config))
    return out


def _query(st: GdSettings) -> str:
    out = encode_query(gs.GdView, {k: st.view[k] for k in st.shown})
    for i, values in enumerate(st.slot_values):
        opt = values["opt"]
        names = ["opt"] + ([] if opt == gs.OFF else ["lr", *OPTIMIZERS[opt].hyper])
        out.update(encode_query(gs.SlotConfig, {k: values[k] for k in names}, suffix=gs.sfx(i)))
    return "&".join(f"{k}={v}" for k, v in out.items())


def build(params: Mapping[str, str]) -> Script:
    """The /gd script for a link's parameters."""
    st = read_settings(params)
    v = st.view
    names = [n for n in st.shown if n not in ("x0", "y0", "condition")]
    settings = settings_lines(gs.GdView, v, names, rename={"at": "show_step"})
    settings += f"\nstart = {py((v['x0'], v['y0']))}  # the start w₀ = (w₁, w₂)"
    if v["rand"]:
        settings += ", drawn from the seed below"
    opts = []
    for i, label, c in st.slots:
        call = optimizer_call(c.optimizer, "params", py(c.lr), dict(c.hyper))
        if len(call) > 70:  # keep the panel's lines short: the arguments on their own line
            head, args = call.split("(", 1)
            call = f"{head}(\n            {args}"
        opts.append(f"    {label!r}:\n        lambda params: {call},")
    for i, values in enumerate(st.slot_values):
        if values["opt"] == gs.OFF:
            opts.append(f"    # optimizer {i + 1} is switched off")
        elif all(j != i for j, _, _ in st.slots) and v["steps"]:
            opts.append(f"    # optimizer {i + 1} cannot run: see the page's warning")
    cells = [
        md(r"""
        ## Gradient descent on a 2-D loss surface
        Training looks for the weights $w$ with the lowest loss $f(w)$. Here $w$ has two components,
        so the loss is a landscape. Gradient descent repeats $w \leftarrow w - \eta\,\nabla f(w)$;
        momentum keeps a running velocity; RMSprop, Adagrad and Adam divide each component of the
        step by a running size of its gradient. Every optimizer below is PyTorch's own `torch.optim` class.
        """),
        code("import torch"),
        md("### The settings of the page"),
        code(settings),
    ]
    if v["rand"]:
        s = create_surface(v["surface"], v["condition"])
        cells.append(code(f"""
        # A random start, reproducible from the seed (10% of each side of the box left out).
        u = torch.rand(2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        start = (round({s.xlim[0]!r} + {s.xlim[1] - s.xlim[0]!r} * (0.1 + (1 - 2 * 0.1) * float(u[0])), 3),
                 round({s.ylim[0]!r} + {s.ylim[1] - s.ylim[0]!r} * (0.1 + (1 - 2 * 0.1) * float(u[1])), 3))
        """))
    cells += [
        md(r"### The loss $f(w)$: the model is just the two weights $w = (w_1, w_2)$"),
        code(surface_code(v["surface"], v["condition"])),
        md(r"### The optimizers (torch.optim), one per slot of the page"),
        code("optimizers = {\n" + "\n".join(opts) + "\n}"),
        md(r"""
        ### The training loop
        Each step: forward (the loss at $w$), backward (autograd fills `w.grad` with $\nabla f(w)$),
        optionally Gaussian noise on the gradient (a stand-in for mini-batch noise), then
        `optimizer.step()` moves $w$.
        """),
        code("""
        def descend(make_optimizer):
            \"\"\"The points w_0 .. w_steps of one optimizer's descent (float32, as on the page).\"\"\"
            w = torch.tensor(start, requires_grad=True)  # the two weights
            optimizer = make_optimizer([w])
            # The same noise for every optimizer: one draw from the seed (zero when noise is 0).
            kicks = torch.randn(steps, 2, generator=torch.Generator().manual_seed(seed)) * noise
            path = [w.detach().clone()]
            for k in range(steps):
                optimizer.zero_grad()
                loss = f(w)  # forward
                loss.backward()  # backward: w.grad = ∇f(w)
                if noise > 0:
                    w.grad += kicks[k]  # a noisy gradient, like a mini-batch's
                optimizer.step()  # the update, torch.optim's own
                path.append(w.detach().clone())
            return torch.stack(path)
        """),
        md(r"""
        ### Evaluation
        The loss along the path (in float64). A run has **diverged** at the first step whose loss is
        inf/NaN or whose point left the plotted box; its path stops before that step.
        """),
        code("""
        if steps == 0:
            print("Zero steps: nothing moves.")
        elif not optimizers:
            print("No optimizer to run: switch one on, with a learning rate above 0.")
        for label, make in optimizers.items():
            path = descend(make).double()
            losses = f(path)
            bad = ~(torch.isfinite(losses) & inside(path))
            k = int(bad.to(torch.uint8).argmax()) if bool(bad.any()) else None
            tag = "opt" + label.split(".")[0]
            if k is None:
                x, y = path[-1].tolist()
                print(f"{label}: ended at ({x:.3g}, {y:.3g}), f = {float(losses[-1]):.3g}")
                print(f"  {tag} final loss: {float(losses[-1]):.17g}")
            else:
                finite = bool(torch.isfinite(path[k]).all()) and bool(torch.isfinite(losses[k]))
                reason = "left the plotted region" if finite else "the loss became inf/NaN"
                print(f"{label}: diverged at step {k} ({reason})")
                print(f"  {tag} diverged at step: {k}")
                path, losses = path[:k], losses[:k]
            print(f"  {tag} final w1: {float(path[-1, 0]):.17g}")
            print(f"  {tag} final w2: {float(path[-1, 1]):.17g}")
            if show_step < len(path):
                print(f"  {tag} loss at step {show_step}: {float(losses[show_step]):.17g}")
        """),
    ]
    return Script("gd", "Gradient descent", _query(st), tuple(cells), tuple(st.problems))


__all__ = ["GdSettings", "build", "read_settings"]
