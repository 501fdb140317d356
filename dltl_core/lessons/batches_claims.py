"""The /batches captions, computed from the numbers its charts show.

Each function returns the "What to notice" sentence for one chart, stated from the
measured table: when the measurement disagrees with the textbook (a GPU where small
batches are as fast, a long run where large batches catch up), the sentence says what
was measured instead.
"""

from __future__ import annotations

import math

import pandas as pd

N_VAL = 359  # the digits' validation split (20% of 1,797)


def _se(p: float, n: int = N_VAL) -> float:
    """One binomial standard error of an accuracy ``p`` measured on ``n`` samples."""
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def speed_claim(res: pd.DataFrame) -> str:
    """Seconds per epoch from the smallest to the largest batch."""
    if len(res) < 2:
        return ""
    r = res.sort_values("batch_size")
    small, large = r.iloc[0], r.iloc[-1]
    ratio = small.seconds_per_epoch / large.seconds_per_epoch
    head = (f"What to notice: an epoch takes {small.seconds_per_epoch:.3g} s with batches of {small.batch_size} "
            f"and {large.seconds_per_epoch:.3g} s with {large.batch_size}")
    if ratio >= 1.5:
        return f"{head}: {ratio:.0f}× faster with fewer, better-used steps."
    if ratio > 1 / 1.5:
        return f"{head}: about the same here, so the per-step overhead does not dominate on this device."
    return f"{head}: slower with the larger batch on this device."


def steps_claim(res: pd.DataFrame, n_train: int) -> str:
    """Steps per epoch are ⌈n / b⌉: named for the smallest and the largest batch."""
    if res.empty:
        return ""
    r = res.sort_values("batch_size")
    ends = [r.iloc[0]] if len(r) == 1 else [r.iloc[0], r.iloc[-1]]
    said = " and ".join(f"{int(x.steps_per_epoch)} at b = {int(x.batch_size)}" for x in ends)
    return f"What to notice: steps per epoch are ⌈{n_train:,} / b⌉, falling as 1/b: {said}."


def accuracy_claim(res: pd.DataFrame, epochs: int) -> str:
    """How the largest batch's accuracy compares with the best one after the same epochs."""
    if len(res) < 2 or res.val_acc.isna().any():
        return ""
    r = res.sort_values("batch_size")
    large, best = r.iloc[-1], r.loc[r.val_acc.idxmax()]
    gap = best.val_acc - large.val_acc
    noise = 2 * math.hypot(_se(best.val_acc), _se(large.val_acc))
    same = f"after the same {epochs} epoch(s) and learning rate"
    if best.batch_size == large.batch_size or gap <= noise:
        return (f"What to notice: {same}, the largest batch ({int(large.batch_size)}, {large.val_acc:.1%}) is "
                f"within noise (±{noise:.1%}) of the best: with these epochs even its "
                f"{int(large.total_steps)} steps are enough.")
    return (f"What to notice: {same}, batches of {int(large.batch_size)} reach {large.val_acc:.1%} against "
            f"{best.val_acc:.1%} with {int(best.batch_size)}: {int(large.total_steps)} steps in total are too few "
            f"to learn as much as {int(best.total_steps)}.")


def scatter_claim(points: pd.DataFrame) -> str:
    """How widely each batch size's gradients scatter around g (their rms distance from (1, 0))."""
    if points.empty:
        return ""
    d = points.assign(dist=((points.along - 1) ** 2 + points.across ** 2) ** 0.5)
    rms = d.groupby("batch_size").dist.apply(lambda s: float((s ** 2).mean() ** 0.5)).sort_index()
    if len(rms) < 2:
        return ""
    small, large = rms.index[0], rms.index[-1]
    if rms.is_monotonic_decreasing:
        return (f"What to notice: in this plane the batches of {small} lie {rms.iloc[0]:.2g} |g| from g on "
                f"average, those of {large} only {rms.iloc[-1]:.2g} |g|: small batches scatter, large ones cluster.")
    return (f"What to notice: the spread does not shrink steadily with the batch here "
            f"({', '.join(f'{b}: {v:.2g}' for b, v in rms.items())} |g|); few draws make it noisy.")


def noise_claim(summary: pd.DataFrame) -> str:
    """Whether the measured error follows 1/√b (with the finite-population correction)."""
    s = summary.sort_values("batch_size")
    if len(s) < 2:
        return ""
    dev = (s.rms_rel_error / s.predicted_rel_error - 1).abs().max()
    b0, b1 = s.iloc[0], s.iloc[-1]
    meas = b0.rms_rel_error / b1.rms_rel_error
    pred = math.sqrt(b1.batch_size / b0.batch_size)
    corrected = b0.predicted_rel_error / b1.predicted_rel_error
    head = (f"What to notice: from b = {int(b0.batch_size)} to {int(b1.batch_size)} the error falls "
            f"{meas:.1f}×; 1/√b predicts {pred:.1f}×")
    if corrected > 1.05 * pred:  # the batch is a sizeable share of the data: drawn without replacement
        head += f", {corrected:.1f}× counting that a batch holds no image twice"
    if dev <= 0.25:
        return (f"{head}. The measured curve stays within {dev:.0%} of the prediction: 4× the batch, "
                "about half the noise.")
    return f"{head}; here the measurement departs from it by up to {dev:.0%}."


__all__ = ["accuracy_claim", "noise_claim", "scatter_claim", "speed_claim", "steps_claim"]
