"""Code text several exporters share: settings blocks, the 2-D surfaces, torch.optim calls.

Only string building: nothing here runs torch (the panel builds a script on every rerun).
The surfaces are written out in plain torch exactly as ``dltl_core.surfaces`` computes
them (same operations, same order), so a script's numbers equal the page's.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from dltl_core.settings import settings_of
from dltl_core.surfaces import _WELLS, create_surface


def py(value: Any) -> str:
    """A value as Python source that reads back to exactly the same value."""
    if isinstance(value, tuple):
        return "(" + ", ".join(py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def settings_lines(cls: type, values: Mapping[str, Any], names: Iterable[str],
                   rename: Mapping[str, str] | None = None) -> str:
    """``name = value  # label`` for each field in ``names``, read from its declaration.

    The comments are the widgets' labels, so a student finds each line on the page.
    """
    declared = settings_of(cls)
    lines = []
    for name in names:
        var = (rename or {}).get(name, name)
        lines.append(f"{var} = {py(values[name])}  # {declared[name].label.strip()}")
    # Align the comments, except after a long value (which would push them all far right).
    width = max((len(line.split("  #")[0]) for line in lines if len(line.split("  #")[0]) <= 40), default=0)
    return "\n".join(line.split("  #")[0].ljust(width) + "  #" + line.split("  #", 1)[1] for line in lines)


# ----------------------------------------------------------------------------- surfaces

_BODY = {
    "bowl": ("0.5 * (x * x + condition * y * y)", "½(x² + κ y²): curvature 1 along x, κ along y"),
    "rosenbrock": ("(1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2",
                   "(1 − x)² + 100 (y − x²)²: a curved, flat-bottomed valley, minimum at (1, 1)"),
    "himmelblau": ("(x * x + y - 11) ** 2 + (x + y * y - 7) ** 2",
                   "(x² + y − 11)² + (x + y² − 7)²: four minima of equal depth (f = 0)"),
    "beale": ("(1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2 + (2.625 - x + x * y ** 3) ** 2",
              "Beale's function: flat plateaus, steep walls, minimum at (3, 0.5)"),
}


def surface_code(name: str, condition: float = 10.0) -> str:
    """``def f(w)`` for a surface, its plotted box and ``inside(w)`` (leaving the box = diverging)."""
    s = create_surface(name, condition)
    if name == "saddle":
        body = ("    y2 = y * y\n"
                "    return 0.5 * x * x + 0.25 * y2 * y2 - 0.5 * y2")
        doc = "½x² + ¼y⁴ − ½y²: a saddle at the origin between two minima at (0, ±1)"
    elif name == "rugged":
        wells = ", ".join(py(w) for w in _WELLS)
        body = ("    f = 0.06 * (x * x + y * y) + 0.35 * (1 - torch.cos(2.2 * x) * torch.cos(2.2 * y))\n"
                f"    for cx, cy, depth, width in ({wells}):  # two Gaussian wells\n"
                "        f = f - depth * torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * width ** 2))\n"
                "    return f")
        doc = "a bowl with ripples and two wells: many local minima, one global one"
    else:
        expr, doc = _BODY[name]
        body = f"    return {expr}"
    head = f"condition = {py(float(condition))}  # κ, the condition number of the bowl\n\n\n" if name == "bowl" else ""
    return (f"{head}def f(w):\n"
            f'    """The loss {doc}.\n\n    w has shape (..., 2): one point, or a batch of points."""\n'
            f"    x, y = w[..., 0], w[..., 1]\n{body}\n\n\n"
            f"XLIM, YLIM = {py(s.xlim)}, {py(s.ylim)}  # the plotted box: a point outside it has diverged\n\n\n"
            "def inside(w):\n"
            '    """Whether points (..., 2) lie in the plotted box (NaN counts as outside)."""\n'
            "    x, y = w[..., 0], w[..., 1]\n"
            "    return (x >= XLIM[0]) & (x <= XLIM[1]) & (y >= YLIM[0]) & (y <= YLIM[1])")


# ----------------------------------------------------------------------------- optimizers

def optimizer_call(name: str, params: str, lr: str, hyper: Mapping[str, float]) -> str:
    """``torch.optim.X(params, lr=..., ...)`` as ``dltl_core.optim.OPTIMIZERS[name]`` builds it."""
    from dltl_core.optim import OPTIMIZERS

    info = OPTIMIZERS.get(name)
    hp = {**info.hyper, **{k: float(v) for k, v in hyper.items() if k in info.hyper}}
    args = [params, f"lr={lr}"]
    if "beta1" in hp:
        args.append(f"betas=({py(hp.pop('beta1'))}, {py(hp.pop('beta2', 0.999))})")
    args += [f"{k}={py(v)}" for k, v in hp.items()]
    args += [f"{k}={py(v)}" for k, v in info.fixed.items()]
    return f"torch.optim.{info.opt_class.__name__}({', '.join(args)})"


__all__ = ["optimizer_call", "py", "settings_lines", "surface_code"]
