"""The learning-rate lesson (/lr): sweep η on a 2-D surface, name each regime, compare schedules.

Every run is a ``dltl_core.descend`` descent with ``torch.optim``'s own optimizers; this
module only chooses the learning rates, labels what they did (too small, good, too
large, divergent) and picks one example of each for side-by-side runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dltl_core.descend import Descent, DescentConfig, descend, descend_many
from dltl_core.optim import SCHEDULES
from dltl_core.surfaces import create_surface

REGIMES = ("too small", "good", "too large", "divergent")


@dataclass(frozen=True)
class SweepPoint:
    """One learning rate of a sweep.

    Attributes:
        lr: the learning rate.
        final_loss: loss after the last step (inf when diverged).
        gap: ``final_loss - f*``, the distance above the global minimum (inf when diverged).
        diverged_at: as in ``Descent``.
        regime: one of ``REGIMES``.
    """

    lr: float
    final_loss: float
    gap: float
    diverged_at: int | None
    regime: str


def log_grid(lo: float, hi: float, n: int) -> list[float]:
    """``n`` learning rates evenly spaced on a log axis from ``lo`` to ``hi``."""
    if not (0 < lo < hi and n >= 2):
        raise ValueError(f"need 0 < lo < hi and n >= 2, got lo={lo}, hi={hi}, n={n}")
    return [float(v) for v in np.geomspace(lo, hi, n)]


def lr_sweep(config: DescentConfig, lrs: Sequence[float], refine: int = 6) -> list[SweepPoint]:
    """Final loss against learning rate, each lr labelled with its regime.

    Regimes: ``divergent`` (the run blew up or left the box); ``good`` (the gap above f*
    shrank by at least 3/4 as many powers of ten as with the best lr); otherwise
    ``too small`` below the best lr and ``too large`` above it.

    Args:
        config: the descent; its ``lr`` is replaced by each learning rate.
        lrs: the learning rates (e.g. ``log_grid(1e-5, 10, 25)``).
        refine: bisection steps (on a log axis) between the largest lr that did not diverge and
            the smallest one that did: they resolve the cliff, where "too large" lives.
    """
    lrs = sorted(float(lr) for lr in lrs)
    runs = descend_many([config.replace(lr=lr) for lr in lrs])
    ok = [r.config.lr for r in runs if r.diverged_at is None]
    bad = [r.config.lr for r in runs if r.diverged_at is not None and (not ok or r.config.lr > max(ok))]
    if ok and bad:
        lo, hi = max(ok), min(bad)
        for _ in range(refine):  # bisect the cliff on a log axis
            mid = math.sqrt(lo * hi)
            run = descend(config.replace(lr=mid))
            runs.append(run)
            lo, hi = (mid, hi) if run.diverged_at is None else (lo, mid)
        runs.sort(key=lambda r: r.config.lr)
    surface = create_surface(config.surface, config.condition)
    f_star = surface.f_min
    start_gap = float(runs[0].loss[0] - f_star) if len(runs[0].loss) else math.inf
    gaps = [max(r.final_loss - f_star, 0.0) for r in runs]
    finite = [(g, r.config.lr) for g, r in zip(gaps, runs) if math.isfinite(g)]
    best_gap, best_lr = min(finite) if finite else (math.inf, math.nan)
    floor = 1e-12 * max(start_gap, 1e-12)  # gaps below this are rounding noise

    def decades(g: float) -> float:  # how many powers of ten the gap above f* shrank
        return math.log10(max(start_gap, floor) / max(g, floor))

    best_decades = decades(best_gap) if finite else 0.0
    points = []
    for g, r in zip(gaps, runs):
        if not math.isfinite(g):
            regime = "divergent"
        elif best_decades > 0 and decades(g) >= 0.75 * best_decades:
            regime = "good"
        else:
            regime = "too small" if r.config.lr < best_lr else "too large"
        points.append(SweepPoint(r.config.lr, r.final_loss, g, r.diverged_at, regime))
    return points


def regime_examples(sweep: Sequence[SweepPoint]) -> dict[str, float]:
    """One learning rate per regime found in a sweep, for side-by-side runs.

    ``too small``: the one nearest a 30th of the good lr; ``good``: the lr with the lowest final loss;
    ``too large``: the largest lr that did not diverge (if it is not good);
    ``divergent``: the smallest lr that diverged.
    """
    out: dict[str, float] = {}
    by = {r: [p for p in sweep if p.regime == r] for r in REGIMES}
    best = min(by["good"], key=lambda p: p.gap).lr if by["good"] else None
    if by["too small"]:
        # Slow but visibly moving: the too-small lr nearest to a 30th of the best one.
        target = math.log(best / 30) if best else -math.inf
        out["too small"] = min(by["too small"], key=lambda p: abs(math.log(p.lr) - target)).lr
    if best is not None:
        out["good"] = best
    if by["too large"]:
        out["too large"] = max(p.lr for p in by["too large"])
    if by["divergent"]:
        out["divergent"] = min(p.lr for p in by["divergent"])
    return out


def compare_schedules(config: DescentConfig, schedules: Sequence[str] = tuple(SCHEDULES)) -> list[Descent]:
    """The same descent under each learning-rate schedule (``Descent.lr`` holds η per step)."""
    return descend_many([config.replace(schedule=s) for s in schedules])
