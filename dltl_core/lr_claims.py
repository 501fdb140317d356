"""The /lr captions for the regimes, the sweep and the schedules, computed from their runs.

"The good η is just below the divergent one" holds for plain SGD on the bowl and not for
momentum (45× below); the sentences name the measured ratio, the measured width of the
good valley and which schedules really settled lower, so they stay true for every setting.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from dltl_core.descend import Descent
from dltl_core.lessons.learning_rate import SweepPoint

JUST_BELOW = 2.0  # "just below the cliff": within this factor of the smallest divergent η
SETTLE_SHARE = 0.1  # the last tenth of the steps is "the end" of a run


def regimes_claim(examples: Mapping[str, float]) -> str:
    """How far the good η sits below the smallest divergent one (both from the sweep)."""
    good, bad = examples.get("good"), examples.get("divergent")
    if good is None or bad is None:
        return "" if good is None else "What to notice: no learning rate in the sweep diverged."
    ratio = bad / good
    if ratio <= JUST_BELOW:
        return (f"What to notice: the good η ({good:.3g}) is just below the divergent one ({bad:.3g}), "
                f"only {ratio:.2f}× smaller: the best step is close to the largest stable one.")
    return (f"What to notice: here the good η ({good:.3g}) is {ratio:.0f}× below the divergent one ({bad:.3g}): "
            "with this optimizer the best step is not the largest stable one.")


def sweep_claim(points: Sequence[SweepPoint]) -> str:
    """The span of good learning rates on the grid and where the runs start to diverge."""
    good = sorted(p.lr for p in points if p.regime == "good")
    diverged = [p.lr for p in points if p.diverged_at is not None]
    parts = []
    if good:
        decades = math.log10(good[-1] / good[0])
        span = (f"good values from η = {good[0]:.3g} to {good[-1]:.3g}, {decades:.1f} decade(s) of the log axis"
                if len(good) > 1 else f"a single good value, η = {good[0]:.3g}")
        parts.append(span)
    if diverged:
        stable = [p.lr for p in points if p.diverged_at is None and p.lr < min(diverged)]
        edge = f" (the largest stable η is {max(stable):.3g})" if stable else ""
        above = [p for p in points if p.lr >= min(diverged)]
        every = all(p.diverged_at is not None for p in above)
        parts.append(f"a cliff at η = {min(diverged):.3g}, from where "
                     f"{'every run' if every else f'{sum(p.diverged_at is not None for p in above)} of {len(above)} runs'}"
                     f" diverge{'s' if every else ''}{edge}")
    return ("What to notice: " + "; ".join(parts) + ".") if parts else ""


def settled_gap(run: Descent, f_min: float) -> float:
    """Mean loss above the minimum over the last tenth of the steps (inf for a diverged run)."""
    if run.diverged_at is not None or not len(run.loss):
        return math.inf
    k = max(1, int(len(run.loss) * SETTLE_SHARE))
    return float(np.mean(run.loss[-k:]) - f_min)


def schedules_loss_claim(runs: Sequence[Descent], names: Sequence[str], labels: Sequence[str],
                         f_min: float) -> str:
    """Which schedules end lower than the constant η (over the last tenth of the steps)."""
    gaps = {n: settled_gap(r, f_min) for n, r in zip(names, runs)}
    label = dict(zip(names, labels))
    if "constant" not in gaps or len(gaps) < 2 or not math.isfinite(gaps["constant"]):
        return "Loss above the minimum, over the steps."
    const = gaps["constant"]
    lower = [n for n, g in gaps.items() if n != "constant" and g < 0.5 * const]
    other = [n for n, g in gaps.items() if n != "constant" and n not in lower]
    text = (f"Loss above the minimum. What to notice: over the last tenth of the steps the constant η stays "
            f"{const:.3g} above the minimum")
    if lower:
        best = min(lower, key=gaps.get)
        text += (f"; {_names([label[n] for n in lower])} settle{'s' if len(lower) == 1 else ''} at least 2× lower "
                 f"({label[best]}: {gaps[best]:.3g})")
    if other:
        text += f"; {_names([label[n] for n in other])} do{'es' if len(other) == 1 else ''} not"
    return text + "."


def _names(labels: Sequence[str]) -> str:
    """"A", "A and B", "A, B and C"."""
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def schedules_map_claim(runs: Sequence[Descent], names: Sequence[str], labels: Sequence[str]) -> str:
    """First and last step lengths on the maps: warm-up starts small, decay ends small."""
    def step(run: Descent, where: slice) -> float:
        d = np.linalg.norm(np.diff(run.trajectory, axis=0), axis=1)[where]
        return float(d.mean()) if len(d) else math.nan

    by = dict(zip(names, runs))
    if "constant" not in by or by["constant"].diverged_at is not None:
        return "Each schedule from the same start (□), with the same optimizer, base η and noise."
    n = max(1, len(by["constant"].trajectory) // 10)
    const_first, const_last = step(by["constant"], slice(0, 3)), step(by["constant"], slice(-n, None))
    warm = [label for name, label in zip(names, labels) if name != "constant" and by[name].diverged_at is None
            and step(by[name], slice(0, 3)) < 0.5 * const_first]
    calm = [label for name, label in zip(names, labels) if name != "constant" and by[name].diverged_at is None
            and step(by[name], slice(-n, None)) < 0.5 * const_last]
    text = "Each schedule from the same start (□), with the same optimizer, base η and noise."
    if warm:
        verb = "takes" if len(warm) == 1 else "take"
        text += f" What to notice: {_names(warm)} {verb} first steps under half the constant η's."
    if calm:
        text += (f" {'What to notice: ' if not warm else ''}{_names(calm)} end{'s' if len(calm) == 1 else ''} "
                 "with steps under half as long as the "
                 f"constant η's last ones ({const_last:.2g} on average): the final bouncing is damped.")
    return text


__all__ = ["regimes_claim", "schedules_loss_claim", "schedules_map_claim", "settled_gap", "sweep_claim"]
