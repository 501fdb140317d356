"""The /overfit caption's verdict, computed from the run's own curves.

The old sentence ("an overfit boundary bends around single noisy training points") was
shown under every run, the underfitting line included. The verdict now says what this
run's numbers show: whether the training accuracy leads by more than noise, and whether
the validation loss turned up after its best epoch.
"""

from __future__ import annotations

import math
from typing import Any

RISE = 0.2  # the validation loss "turned up": it ends at least 20% above its lowest value


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / max(n, 1))


def overfit_claim(res: Any) -> str:
    """One or two sentences on the gap and on the validation curve of a finished run.

    Args:
        res: an ``OverfitResult`` (history, final, best_epoch, train/val sample counts, points).

    Returns:
        "" when the run has no finite curves (diverged at once, stopped).
    """
    hist = res.history
    if res.diverged_at or len(hist) == 0:
        return ""
    val = hist["val_loss"].astype(float)
    if not val.map(math.isfinite).all():
        return ""
    last = hist.iloc[-1]
    tr, va = float(last.train_acc), float(last.val_acc)
    noise = 2 * math.hypot(_se(tr, res.train_samples), _se(va, res.val_samples))
    lead = tr - va
    if lead > noise:
        text = (f"At the last epoch the training accuracy ({tr:.1%}) leads the validation accuracy ({va:.1%}) "
                f"by {lead * 100:.1f} points, more than noise (±{noise * 100:.1f}).")
    else:
        text = (f"At the last epoch training ({tr:.1%}) and validation accuracy ({va:.1%}) are within noise "
                f"(±{noise * 100:.1f} points).")
    low, end = float(val.min()), float(val.iloc[-1])
    best = int(hist.loc[val.idxmin(), "epoch"])
    if end > (1 + RISE) * low and best < len(hist):
        text += (f" The validation loss was lowest at epoch {best} ({low:.3f}) and ends {end / low - 1:.0%} higher "
                 f"({end:.3f}): this run overfits.")
        if res.points is not None and tr >= 0.995:
            share = "Every training point is" if tr >= 1.0 else f"{tr:.1%} of the training points are"
            text += f" {share} classified right, the noisy ones too: the boundary bends around them."
    else:
        text += f" The validation loss ends within {RISE:.0%} of its lowest ({low:.3f}): it did not turn up."
    return text


__all__ = ["RISE", "overfit_claim"]
