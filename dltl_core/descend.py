"""Gradient descent on a 2-D surface with ``torch.optim``'s own optimizers.

One idea: put a point on a surface (``dltl_core.surfaces``), let an optimizer from
``dltl_core.optim.create_optimizer`` move it, record where it goes. Gradients come
from autograd; the update is always ``optimizer.step()``, never written by hand.

Speed. A 2-element tensor makes every torch call pure Python overhead (a few µs
each), so the loop does as few calls per step as possible: several optimizers run
in lock-step on the rows of one leaf ``X`` of shape (n, 2) (one forward and one
backward for all of them; each optimizer owns a row through a storage-sharing
leaf), the points are copied into a preallocated tensor (no ``.item()``), and
losses and divergence are computed for the whole trajectory at once afterwards.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.optim import optimizer as _optimizer_module

from dltl_core.optim import OPTIMIZERS, SCHEDULES, create_optimizer, create_scheduler
from dltl_core.settings import SettingsError, check, seed_field, setting
from dltl_core.surfaces import CONDITION_RANGE, SURFACES, create_surface

MAX_STEPS = 2000  # one bound for the pages, the command line and the core
MAX_NOISE = 10.0
LR_MAX = 100.0


def _optimizer_label(name: str) -> str:
    return OPTIMIZERS[name].label


def _descent_rules(c: "DescentConfig") -> dict[str, str]:
    """Rules beyond bounds and choices (each bad field -> one message)."""
    out: dict[str, str] = {}
    bad = [name for name, value in c.hyper if not math.isfinite(value)]
    if bad:
        out["hyper"] = f"hyperparameter {bad[0]} must be finite, got {dict(c.hyper)[bad[0]]}"
    if c.start is not None and "surface" not in out:
        surface = create_surface(c.surface, c.condition)
        x, y = c.start
        inside = math.isfinite(x) and math.isfinite(y) and bool(surface.contains(torch.tensor([x, y])))
        if not inside:
            out["start"] = (f"the start point ({x:g}, {y:g}) is outside the plotted region of {surface.label}: "
                            f"x in [{surface.xlim[0]:g}, {surface.xlim[1]:g}], "
                            f"y in [{surface.ylim[0]:g}, {surface.ylim[1]:g}]")
    return out


@dataclass(frozen=True)
class DescentConfig:
    """One descent; a config that exists is valid (checked in ``__post_init__``).

    Attributes:
        surface: a name in ``dltl_core.surfaces.SURFACES``.
        optimizer: a key of ``dltl_core.optim.OPTIMIZERS``.
        lr: the (peak) learning rate η.
        hyper: optimizer hyperparameters as sorted ``(name, value)`` pairs (a dict is accepted).
        steps: number of optimizer steps.
        start: start point; None uses the surface's default start.
        seed: seed of the gradient noise.
        noise: standard deviation of Gaussian noise added to each gradient component
            (a stand-in for mini-batch noise).
        schedule: a key of ``dltl_core.optim.SCHEDULES``, stepped once per step.
        condition: condition number κ of the ``bowl`` surface.

    Raises:
        SettingsError: (a ``ValueError``) one message per bad field.
    """

    surface: str = setting("rosenbrock", label="Loss surface", choices=SURFACES.names,
                           labels=lambda k: SURFACES.meta(k)["label"])
    optimizer: str = setting("adam", label="optimizer", choices=lambda: list(OPTIMIZERS), labels=_optimizer_label)
    lr: float = setting(0.01, label="learning rate η", lo=0.0, ui_hi=LR_MAX, positive=True, noun="learning rate",
                        step=0.001, fmt="%g", widget="number",
                        help="The size of each step.")
    hyper: tuple[tuple[str, float], ...] = ()
    steps: int = setting(300, label="steps", lo=1, hi=MAX_STEPS, step=1)
    start: tuple[float, float] | None = None
    seed: int = seed_field(help="Seeds the gradient noise and a random start.")
    noise: float = setting(0.0, label="gradient noise σ", lo=0.0, hi=MAX_NOISE, step=0.05,
                           help="Gaussian noise added to every gradient, like the noise of a mini-batch gradient.")
    schedule: str = setting("constant", label="schedule", choices=lambda: list(SCHEDULES), labels=SCHEDULES)
    condition: float = setting(10.0, label="condition number κ", lo=CONDITION_RANGE[0], hi=CONDITION_RANGE[1],
                               step=1.0, url="cond",
                               help="Ratio of the steepest to the flattest curvature of the bowl.")

    def __post_init__(self) -> None:
        # Normalise so equal configs hash equal (st.cache_data, dict keys).
        try:
            hyper = tuple(sorted((str(k), float(v)) for k, v in dict(self.hyper).items()))
            start = None if self.start is None else (float(self.start[0]), float(self.start[1]))
        except (TypeError, ValueError, IndexError) as err:
            raise SettingsError({"hyper": f"hyperparameters and start must be numbers ({err})"}) from err
        object.__setattr__(self, "hyper", hyper)
        object.__setattr__(self, "start", start)
        check(self, _descent_rules)

    def replace(self, **changes: object) -> "DescentConfig":
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Descent:
    """What one descent did.

    Attributes:
        config: the configuration that produced it.
        trajectory: (n, 2) points at steps 0..n-1 (the start is step 0); when the run
            diverged it stops before the first bad point, so every point is finite and inside
            the plotted box.
        loss: (n,) loss at those points.
        lr: (steps,) learning rate used at each step.
        diverged_at: the step whose point was inf/NaN or outside the plotted box, else None.
        reason: why it diverged (None if it did not).
    """

    config: DescentConfig
    trajectory: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    diverged_at: int | None = None
    reason: str | None = None
    extras: dict = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        """Loss at the last step, or inf when the run diverged."""
        return math.inf if self.diverged_at is not None or not len(self.loss) else float(self.loss[-1])

    @property
    def status(self) -> str:
        """A one-line summary for a chart legend or a caption."""
        if self.diverged_at is not None:
            return f"diverged at step {self.diverged_at} ({self.reason})"
        x, y = self.trajectory[-1]
        return f"ended at ({x:.3g}, {y:.3g}), f = {self.loss[-1]:.3g}"

    def as_dict(self) -> dict:
        """JSON-ready: ``{"trajectory": [[x, y], ...], "loss": [...], "diverged_at": k or None, ...}``."""
        return {
            "trajectory": self.trajectory.tolist(),
            "loss": self.loss.tolist(),
            "diverged_at": self.diverged_at,
            "reason": self.reason,
            "lr": self.lr.tolist(),
        }


def validate(config: DescentConfig) -> None:
    """Kept for callers: a ``DescentConfig`` is validated when it is built (``__post_init__``)."""
    if not isinstance(config, DescentConfig):
        raise ValueError(f"expected a DescentConfig, got {type(config).__name__}")


def descend(config: DescentConfig) -> Descent:
    """Run one descent (see ``descend_many``)."""
    return descend_many([config])[0]


def descend_many(configs: Iterable[DescentConfig]) -> list[Descent]:
    """Run several descents, in lock-step where they share surface and number of steps.

    Each result is the same as running its config alone: every optimizer sees only its
    own row, and the gradient noise comes from the config's own seed.

    Raises:
        ValueError: a config that cannot run (raised when it is built).
    """
    configs = list(configs)  # each one validated itself when it was built
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault((c.surface, float(c.condition) if c.surface == "bowl" else 0.0, int(c.steps)),
                          []).append(i)
    out: list[Descent | None] = [None] * len(configs)
    for idx in groups.values():
        for i, result in zip(idx, _lockstep([configs[i] for i in idx])):
            out[i] = result
    return out  # type: ignore[return-value]


SHARED_MAX = 512  # descents kept per process (~10-50 KB each): a class's worth of settings
_shared: OrderedDict[DescentConfig, Descent] = OrderedDict()
_shared_lock = threading.Lock()


def descend_shared(configs: Iterable[DescentConfig]) -> list[Descent]:
    """``descend_many``, each descent computed once per process and shared, read-only.

    A page rerun that changes one optimizer's learning rate then computes that one descent,
    not all four (a batch's results equal each config run alone, so splitting it changes
    nothing), and thirty visitors on one link share one computation. The arrays are made
    read-only: a caller cannot change what another visitor sees.
    """
    configs = list(configs)
    with _shared_lock:
        found = {c: _shared[c] for c in configs if c in _shared}
        for c in found:
            _shared.move_to_end(c)
    missing = list(dict.fromkeys(c for c in configs if c not in found))
    if missing:
        for c, run in zip(missing, descend_many(missing)):
            for arr in (run.trajectory, run.loss, run.lr):
                arr.setflags(write=False)
            found[c] = run
        with _shared_lock:
            for c in missing:
                _shared[c] = found[c]
            while len(_shared) > SHARED_MAX:
                _shared.popitem(last=False)
    return [found[c] for c in configs]


def _lockstep(configs: Sequence[DescentConfig]) -> list[Descent]:
    surface = create_surface(configs[0].surface, configs[0].condition)
    n, steps = len(configs), int(configs[0].steps)
    dtype = torch.float32
    starts = [c.start if c.start is not None else surface.start for c in configs]

    # X (n, 2) is the one leaf autograd differentiates; row i is optimizer i's parameter.
    # The optimizers get storage-sharing leaves of the rows, and their .grad are views of
    # X.grad, so a single backward fills every optimizer's gradient.
    X = torch.tensor(starts, dtype=dtype).requires_grad_()
    G = torch.zeros(n, 2, dtype=dtype)
    X.grad = G
    Xd = X.detach()
    params = []
    for i in range(n):
        p = Xd[i].requires_grad_()  # a leaf view of row i
        p.grad = G[i]
        params.append(p)
    opts = [create_optimizer(c.optimizer, [p], c.lr, **dict(c.hyper)) for c, p in zip(configs, params)]
    scheds = [None if c.schedule == "constant" else create_scheduler(c.schedule, o, steps)
              for c, o in zip(configs, opts)]
    steppers = [_fast_step(o) for o in opts]  # after the schedulers: they wrap opt.step
    lrs = torch.tensor([[c.lr] for c in configs], dtype=torch.float64).repeat(1, steps)  # (n, steps)
    use_sched = any(s is not None for s in scheds)

    noise = _noise(configs, steps, dtype)

    traj = torch.empty(steps + 1, n, 2, dtype=dtype)  # preallocated: no per-step .item()
    rows = traj.unbind(0)  # views, so recording a step is one copy_
    rows[0].copy_(Xd)
    ones = torch.ones(n, dtype=dtype)  # d(loss_i)/d(loss_i), for backward without a sum node
    fn = surface.fn
    check_every = 25
    for k in range(steps):
        G.zero_()
        fn(X).backward(ones)  # rows are independent: row i of X.grad is ∇f(X[i])
        if noise is not None:
            G.add_(noise[k])
        if use_sched:
            for i, o in enumerate(opts):
                lrs[i, k] = o.param_groups[0]["lr"]
        with torch.no_grad():  # as Optimizer.step does itself
            for step in steppers:
                step()
        if use_sched:
            for s in scheds:
                if s is not None:
                    s.step()
        rows[k + 1].copy_(Xd)
        # Once every run has blown up or left the box, the rest is wasted work.
        if (k + 1) % check_every == 0 and not bool(surface.contains(Xd).any()):
            traj[k + 2:] = math.nan
            break

    return _results(configs, surface, traj, lrs, steps)


def _noise(configs: Sequence[DescentConfig], steps: int, dtype: torch.dtype) -> torch.Tensor | None:
    """(steps, n, 2) gradient noise, or None. Each config's noise comes from its own
    generator, so results don't depend on which other descents share the run."""
    if not any(c.noise > 0 for c in configs):
        return None
    return torch.stack([
        torch.randn(steps, 2, generator=torch.Generator().manual_seed(int(c.seed)), dtype=dtype) * c.noise
        for c in configs], dim=1)


def _results(configs: Sequence[DescentConfig], surface, traj: torch.Tensor, lrs: torch.Tensor,
             steps: int) -> list[Descent]:
    """Losses, divergence and ``Descent`` records from the recorded trajectory (vectorised)."""
    with torch.no_grad():
        loss = surface.fn(traj.double())  # (steps + 1, n), one vectorised call
        bad = ~(torch.isfinite(loss) & surface.contains(traj))
    results = []
    for i, c in enumerate(configs):
        col = bad[:, i]
        k = int(col.to(torch.uint8).argmax()) if bool(col.any()) else None
        end = steps + 1 if k is None else k
        reason = None
        if k is not None:
            pt = traj[k, i]
            finite = bool(torch.isfinite(pt).all()) and bool(torch.isfinite(loss[k, i]))
            reason = "left the plotted region" if finite else "the loss became inf/NaN"
        results.append(Descent(
            config=c,
            trajectory=traj[:end, i].double().numpy().copy(),
            loss=loss[:end, i].numpy().copy(),
            lr=lrs[i].numpy().copy(),
            diverged_at=k,
            reason=reason,
        ))
    return results


def _fast_step(opt: torch.optim.Optimizer) -> Callable[[], object]:
    """``opt.step`` without the profiler wrapper, when that changes nothing.

    ``torch.optim`` wraps every ``step`` in a ``record_function`` profiler range plus
    hook dispatch; on a 2-element tensor that wrapper costs more than the update itself
    (Adam: ~100 µs -> ~40 µs per step). With no step hooks registered the wrapper does
    nothing else, so we call the optimizer's own (undecorated-by-profiler) ``step``; call the
    result under ``torch.no_grad()``. The update is still torch.optim's code; ``foreach=False`` skips the per-step
    search for a multi-tensor kernel that a single tensor never needs.
    """
    for group in opt.param_groups:
        group["foreach"] = False
    inner = getattr(type(opt).step, "__wrapped__", None)
    hooks = (getattr(opt, "_optimizer_step_pre_hooks", None), getattr(opt, "_optimizer_step_post_hooks", None),
             getattr(_optimizer_module, "_global_optimizer_pre_hooks", None),
             getattr(_optimizer_module, "_global_optimizer_post_hooks", None))
    # A scheduler patches the instance's step to count calls; keep that one.
    if inner is None or "step" in vars(opt) or any(h is None or len(h) for h in hooks):
        return opt.step
    # One level further down is the bare update; its wrapper only switches grad mode off,
    # which the descent loop does once for all optimizers (torch.no_grad()).
    bare = getattr(inner, "__wrapped__", None)
    if bare is not None and not opt.defaults.get("differentiable", False):
        return functools.partial(bare, opt)
    return functools.partial(inner, opt)
