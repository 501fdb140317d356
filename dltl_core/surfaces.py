"""Two-dimensional loss surfaces for watching optimizers move.

Each surface is a pure torch function of a point ``p`` of shape ``(..., 2)``
returning the loss, shape ``(...)``: the same function evaluates one point
during a descent, a batch of points for several optimizers at once, or a whole
grid for the contour plot. Gradients always come from autograd.

One ``Registry`` (``SURFACES``) in the spirit of timm: ``create_surface("rosenbrock")``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from dltl_core.registry import Registry

LossFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Surface:
    """One loss surface with what a plot of it needs.

    Attributes:
        name: registry key.
        label: display name.
        fn: the loss, ``(..., 2) -> (...)``.
        xlim: plotted range of the first coordinate; leaving the box counts as diverging.
        ylim: plotted range of the second coordinate.
        minima: known local minima ``(x, y)``, the global one(s) first.
        start: a start point that makes a good default demo.
        log_scale: whether the contour colours are best on a log scale of ``f - f*``.
        about: one line on what the surface shows.
    """

    name: str
    label: str
    fn: LossFn
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    start: tuple[float, float]
    log_scale: bool
    about: str

    def __call__(self, p: Tensor) -> Tensor:
        return self.fn(p)

    @functools.cached_property
    def f_min(self) -> float:
        """The lowest known value f* (at the global minimum)."""
        return float(self.fn(torch.tensor(self.minima, dtype=torch.float64)).min())

    @functools.cached_property
    def minima_values(self) -> tuple[float, ...]:
        """f at each known minimum."""
        return tuple(float(v) for v in self.fn(torch.tensor(self.minima, dtype=torch.float64)))

    def contains(self, p: Tensor) -> Tensor:
        """Whether points ``(..., 2)`` lie in the plotted box (NaN counts as outside)."""
        x, y = p[..., 0], p[..., 1]
        return (x >= self.xlim[0]) & (x <= self.xlim[1]) & (y >= self.ylim[0]) & (y <= self.ylim[1])

    def grid(self, n: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The surface on an ``n x n`` grid over the plotted box, in one vectorised call.

        Returns:
            ``xs`` (n,), ``ys`` (n,) and ``z`` (n, n) with ``z[i, j] = f(xs[j], ys[i])``.
        """
        xs = torch.linspace(*self.xlim, n, dtype=torch.float64)
        ys = torch.linspace(*self.ylim, n, dtype=torch.float64)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        with torch.no_grad():
            z = self.fn(torch.stack([gx, gy], dim=-1))  # (n, n, 2) -> (n, n)
        return xs.numpy(), ys.numpy(), z.numpy()

    def random_start(self, seed: int, margin: float = 0.1) -> tuple[float, float]:
        """A reproducible random start inside the box (``margin`` of each side left out)."""
        g = torch.Generator().manual_seed(int(seed))
        u = torch.rand(2, generator=g, dtype=torch.float64)
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        x = x0 + (x1 - x0) * (margin + (1 - 2 * margin) * float(u[0]))
        y = y0 + (y1 - y0) * (margin + (1 - 2 * margin) * float(u[1]))
        return (round(x, 3), round(y, 3))


# ----------------------------------------------------------------------------- functions
# Each takes p (..., 2) and returns (...); x = p[..., 0], y = p[..., 1].

def bowl(p: Tensor, condition: float = 10.0) -> Tensor:
    """Quadratic bowl ½(x² + κ y²): curvature 1 along x, κ along y (condition number κ)."""
    x, y = p[..., 0], p[..., 1]
    return 0.5 * (x * x + condition * y * y)


def rosenbrock(p: Tensor, a: float = 1.0, b: float = 100.0) -> Tensor:
    """(a − x)² + b (y − x²)²: a curved, flat-bottomed valley; minimum at (a, a²)."""
    x, y = p[..., 0], p[..., 1]
    return (a - x) ** 2 + b * (y - x * x) ** 2


def himmelblau(p: Tensor) -> Tensor:
    """(x² + y − 11)² + (x + y² − 7)²: four minima of equal depth (f = 0)."""
    x, y = p[..., 0], p[..., 1]
    return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2


def beale(p: Tensor) -> Tensor:
    """Beale's function: flat plateaus, steep walls, minimum at (3, 0.5)."""
    x, y = p[..., 0], p[..., 1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2 + (2.625 - x + x * y ** 3) ** 2


def saddle(p: Tensor) -> Tensor:
    """½x² + ¼y⁴ − ½y²: a saddle at the origin between two minima at (0, ±1)."""
    x, y = p[..., 0], p[..., 1]
    y2 = y * y
    return 0.5 * x * x + 0.25 * y2 * y2 - 0.5 * y2


# The rugged landscape: a gentle bowl with ripples and two wells, like the picture of a
# network's loss landscape in the lecture (many local minima, one clearly deepest).
_WELLS = ((1.6, -1.2, 1.6, 0.9), (-1.9, 1.7, 0.9, 0.6))  # (x, y, depth, width)


def rugged(p: Tensor) -> Tensor:
    """Bowl + ripples + two Gaussian wells: many local minima, one global one."""
    x, y = p[..., 0], p[..., 1]
    f = 0.06 * (x * x + y * y) + 0.35 * (1 - torch.cos(2.2 * x) * torch.cos(2.2 * y))
    for cx, cy, depth, width in _WELLS:
        f = f - depth * torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * width ** 2))
    return f


# ----------------------------------------------------------------------------- minima

def refine_minimum(fn: LossFn, guess: tuple[float, float], iters: int = 50) -> tuple[float, float]:
    """Polish a guess of a local minimum with ``torch.optim.LBFGS`` (float64)."""
    p = torch.tensor(guess, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([p], lr=1, max_iter=iters, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = fn(p)
        loss.backward()
        return loss

    opt.step(closure)
    return (float(p[0].detach()), float(p[1].detach()))


def find_minima(fn: LossFn, xlim: tuple[float, float], ylim: tuple[float, float], n: int = 9,
                tol: float = 1e-2) -> tuple[tuple[float, float], ...]:
    """Local minima inside a box: LBFGS from an ``n x n`` grid of starts, deduplicated,
    sorted from deepest to shallowest."""
    found: list[tuple[float, float]] = []
    for gx in np.linspace(*xlim, n):
        for gy in np.linspace(*ylim, n):
            x, y = refine_minimum(fn, (float(gx), float(gy)))
            inside = xlim[0] <= x <= xlim[1] and ylim[0] <= y <= ylim[1]
            if inside and math.isfinite(x + y) and all(math.dist((x, y), m) > tol for m in found):
                found.append((x, y))
    values = fn(torch.tensor(found, dtype=torch.float64))
    # Keep true minima: the Hessian is positive definite there (LBFGS can stop at a saddle).
    keep = []
    for point, value in sorted(zip(found, values.tolist()), key=lambda t: t[1]):
        h = torch.autograd.functional.hessian(fn, torch.tensor(point, dtype=torch.float64))
        if bool(torch.linalg.eigvalsh(h).min() > 0):
            keep.append((round(point[0], 6), round(point[1], 6)))
    return tuple(keep)


# ----------------------------------------------------------------------------- registry

# Each entry builds its surface from a condition number (only the bowl uses it).
SURFACES: Registry[Callable[[float], Surface]] = Registry("surface")


@SURFACES.register("bowl", label="Ill-conditioned bowl")
def _bowl(condition: float) -> Surface:
    return Surface("bowl", f"Ill-conditioned bowl (κ = {condition:g})",
                   functools.partial(bowl, condition=float(condition)),
                   (-4.0, 4.0), (-3.0, 3.0), ((0.0, 0.0),), (-3.5, 2.0), True,
                   "Curvature is 1 along w₁ and κ along w₂: plain gradient descent with η above 1/κ "
                   "zig-zags across the steep direction (diverging above 2/κ), and with η below 1/κ it "
                   "crawls along the flat one.")


@SURFACES.register("rosenbrock", label="Rosenbrock")
def _rosenbrock(_: float) -> Surface:
    return Surface("rosenbrock", "Rosenbrock (a = 1, b = 100)", rosenbrock,
                   (-2.0, 2.0), (-1.0, 3.0), ((1.0, 1.0),), (-1.5, 2.0), True,
                   "Finding the curved valley is easy; following its flat floor to (1, 1) is hard.")


@SURFACES.register("himmelblau", label="Himmelblau (4 minima)")
def _himmelblau(_: float) -> Surface:
    return Surface("himmelblau", "Himmelblau (four minima)", himmelblau,
                   (-5.0, 5.0), (-5.0, 5.0),
                   ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
                   (-0.3, -0.5), True,
                   "Four equally deep minima: which one you reach depends on the start and the optimizer.")


@SURFACES.register("beale", label="Beale")
def _beale(_: float) -> Surface:
    return Surface("beale", "Beale", beale, (-4.5, 4.5), (-4.5, 4.5), ((3.0, 0.5),), (-1.0, 1.5), True,
                   "Flat plateaus and steep walls: the gradient's size ranges over orders of "
                   "magnitude across the map, so no single η suits plain gradient descent everywhere.")


@SURFACES.register("saddle", label="Saddle")
def _saddle(_: float) -> Surface:
    return Surface("saddle", "Saddle", saddle, (-2.0, 2.0), (-2.0, 2.0), ((0.0, 1.0), (0.0, -1.0)),
                   (-1.8, 0.001), False,
                   "The origin is a saddle: downhill along y, uphill along x. Starting on the ridge, "
                   "the gradient barely points out of it.")


@SURFACES.register("rugged", label="Rugged (many minima)")
def _rugged(_: float) -> Surface:
    return Surface("rugged", "Rugged landscape", rugged, (-4.0, 4.0), (-4.0, 4.0),
                   RUGGED_MINIMA, (-3.2, 3.0), False,
                   "Many local minima, like a network's loss landscape: where you end up depends on "
                   "the start, the step size, momentum and noise.")


# Found with find_minima(rugged, (-4, 4), (-4, 4), n=13) (a test re-derives them); listed
# because the search takes seconds. Deepest first.
RUGGED_MINIMA: tuple[tuple[float, float], ...] = (
    (1.472975, -1.26234), (-1.651472, 1.54106), (1.333984, 1.267269), (-1.313241, -1.329157),
    (-2.650811, 0.023496), (-0.005413, 2.658713), (2.636586, 2.636408), (-2.636727, -2.63674),
    (1.300842, -3.927295), (-3.959072, 1.305769), (3.964637, 1.30295), (-1.306076, 3.965539),
    (-1.305714, -3.9673), (1.305967, 3.967545), (-3.967545, -1.305967),
)


CONDITION_RANGE = (1.0, 1000.0)


@functools.lru_cache(maxsize=64)
def create_surface(name: str, condition: float = 10.0) -> Surface:
    """Build a surface by name.

    Args:
        name: a name in ``SURFACES``.
        condition: condition number κ of the ``bowl`` (ignored by the others), in [1, 1000].

    Raises:
        ValueError: unknown name or a condition number out of range.
    """
    build = SURFACES.get(name)  # ValueError listing the names when unknown
    lo, hi = CONDITION_RANGE
    if not (math.isfinite(condition) and lo <= condition <= hi):
        raise ValueError(f"the condition number must be in [{lo:g}, {hi:g}], got {condition}")
    return build(float(condition) if name == "bowl" else 1.0)
