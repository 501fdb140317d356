"""The study's conclusions, computed from its records: the captions of /results and the talk's slide.

Each function reads the runs it is given and returns one plain sentence (or None when the
data cannot support one), so a caption always describes the numbers beside it: change the
records and the sentence changes; take them away and it disappears.
"""

from __future__ import annotations

import math

import pandas as pd

from dltl_core.report.study import OFFICIAL_TEST_IMAGES, SCORES, completed

NOISE_Z = 2.0  # a gap under two standard errors of the difference is within the noise (about 95%)
# cost column -> (its name, its unit after a number, "better" in it, "best" in it)
_COST_WORDS = {"params": ("parameters", "", "smaller", "smallest"),
               "flops": ("FLOPs per image", " FLOPs", "cheaper", "cheapest"),
               "cpu_seconds": ("CPU seconds of training", " CPU s", "faster", "fastest"),
               "wall_seconds": ("wall seconds of training", " wall s", "faster", "fastest")}


def standard_error(acc_pct: float, n: float) -> float:
    """Binomial standard error, in points, of an accuracy (%) measured on ``n`` images."""
    p = min(max(acc_pct / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(p * (1.0 - p) / n)


def _n_images(row: pd.Series, score: str) -> float | None:
    """How many images the accuracy ``score`` of this run was measured on (None when unknown)."""
    n = row.get("n_val") if score == "val_acc" else (row.get("n_test") or OFFICIAL_TEST_IMAGES)
    return None if n is None or pd.isna(n) or n <= 0 else float(n)


def _fmt_cost(value: float, cost: str) -> str:
    unit = _COST_WORDS.get(cost, (cost, "", "", ""))[1]
    if cost in ("params", "flops"):
        for div, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
            if value >= div:
                return f"{value / div:.3g}{suffix}{unit}"
        return f"{value:.0f}{unit}"
    return f"{value:,.0f}{unit}"


def most_accurate(df: pd.DataFrame, score: str = "val_acc") -> str | None:
    """Which network is most accurate, and whether its lead over the next network exceeds the noise.

    The noise is the binomial standard error of each accuracy on the images it was measured
    on (``n_val`` for validation); the gap counts when it exceeds ``NOISE_Z`` standard errors
    of the difference. The runner-up is the best run of another architecture when there is one.
    """
    done = completed(df, score).sort_values(score, ascending=False)
    if done.empty:
        return None
    top = done.iloc[0]
    what = SCORES.get(score, score).split(" (")[0]
    if len(done) == 1:
        return f"Only one completed run: {top['label']} at {top[score]:.1f}% {what} accuracy; nothing to compare."
    others = done[done["arch"] != top["arch"]]
    second = (others if len(others) else done.iloc[1:]).iloc[0]
    gap = top[score] - second[score]
    head = (f"Most accurate: {top['label']} at {top[score]:.1f}% {what} accuracy, {gap:.1f} points ahead of "
            f"{second['label']} ({second[score]:.1f}%).")
    n1, n2 = _n_images(top, score), _n_images(second, score)
    if n1 is None or n2 is None:
        return head + " The number of validation images is not recorded, so the noise cannot be judged."
    se1, se2 = standard_error(top[score], n1), standard_error(second[score], n2)
    z = gap / math.hypot(se1, se2) if se1 or se2 else math.inf
    near = []
    for _, row in done.iloc[1:].iterrows():
        n = _n_images(row, score)
        if n and top[score] - row[score] < NOISE_Z * math.hypot(se1, standard_error(row[score], n)):
            near.append(row["label"])
    verdict = ("larger than the noise." if z >= NOISE_Z else
               "within the noise: these images cannot tell the two apart.")
    more = f" and {len(near) - 4} more" if len(near) > 4 else ""
    tail = f" Within the noise of the best: {', '.join(near[:4])}{more}." if near else ""
    return (f"{head} On {n1:,.0f} images one accuracy has a standard error of about ±{se1:.1f} points; the gap "
            f"is {z:.1f} standard errors of the difference, {verdict}{tail}")


def default_target(curves: pd.DataFrame) -> float | None:
    """A target accuracy (%) every plotted run reaches: the lowest of their best, rounded down."""
    best = curves.dropna(subset=["val_acc"]).groupby("run_id")["val_acc"].max()
    return None if best.empty else float(math.floor(best.min()))


def times_to_accuracy(curves: pd.DataFrame, target: float, time_col: str = "elapsed") -> pd.DataFrame:
    """Per run: the first epoch whose validation accuracy reaches ``target`` and the seconds by then.

    Runs that never reach it have ``epoch`` and ``seconds`` NaN. Sorted fastest first.
    """
    rows = []
    for run_id, c in curves.dropna(subset=["val_acc"]).sort_values("epoch").groupby("run_id", sort=False):
        hit = c[(c["val_acc"] >= target) & c[time_col].notna()]
        first = hit.iloc[0] if len(hit) else None
        rows.append({"run_id": run_id, "label": c["label"].iloc[0], "best": c["val_acc"].max(),
                     "epoch": math.nan if first is None else first["epoch"],
                     "seconds": math.nan if first is None else first[time_col]})
    out = pd.DataFrame(rows, columns=["run_id", "label", "best", "epoch", "seconds"])
    return out.sort_values("seconds", na_position="last").reset_index(drop=True)


def fastest_to(curves: pd.DataFrame, target: float | None, unit: str = "wall seconds",
               time_col: str = "elapsed") -> str | None:
    """Which run reaches ``target`` % validation accuracy first, in ``unit`` (from each epoch's end time)."""
    if curves.empty or curves["val_acc"].notna().sum() == 0 or target is None:
        return None
    times = times_to_accuracy(curves, target, time_col)
    reached = times.dropna(subset=["seconds"])
    if reached.empty:
        if curves[time_col].notna().sum() == 0:
            return f"These runs have no {unit} per epoch recorded, so time to accuracy cannot be measured."
        return (f"No run shown reaches {target:.0f}% validation accuracy; the best reaches "
                f"{times['best'].max():.1f}%.")
    first = reached.iloc[0]
    rest = "; then " + ", ".join(f"{r.label} ({r.seconds:,.0f} s)" for r in reached.iloc[1:4].itertuples()) \
        if len(reached) > 1 else ""
    missing = len(times) - len(reached)
    never = f" {missing} of {len(times)} runs never reach it." if missing else \
        f" All {len(times)} runs reach it." if len(times) > 1 else ""
    most = times.sort_values("best", ascending=False).iloc[0]
    twist = (f" The most accurate at the end, {most['label']}, is not the fastest to get there."
             if len(times) > 1 and most["run_id"] != first["run_id"] else "")
    return (f"Fastest to {target:.0f}% validation accuracy: {first['label']} after {first['seconds']:,.0f} {unit} "
            f"(end of epoch {int(first['epoch'])}){rest}.{never}{twist}")


def pareto_front(df: pd.DataFrame, cost: str, score: str = "val_acc") -> pd.DataFrame:
    """The completed runs that no other run beats on both ``cost`` (lower) and ``score`` (higher)."""
    from dltl_core.runs import pareto_front as front

    return front(completed(df, score).dropna(subset=[cost]), cost, score)


def pareto_sentence(df: pd.DataFrame, cost: str, score: str = "val_acc") -> str | None:
    """Which runs are on the Pareto front of ``score`` against ``cost``, in words."""
    done = completed(df, score).dropna(subset=[cost])
    if len(done) < 2:
        return None
    noun, _, better, best = _COST_WORDS.get(cost, (cost, "", "cheaper", "cheapest"))
    front = pareto_front(done, cost, score)
    if len(front) == 1:
        f = front.iloc[0]
        return (f"One run dominates all {len(done) - 1} others: {f['label']} is both the {best} "
                f"({_fmt_cost(f[cost], cost)}) and the most accurate ({f[score]:.1f}%).")
    items = ", ".join(f"{r['label']} ({_fmt_cost(r[cost], cost)}, {r[score]:.1f}%)" for _, r in front.iterrows())
    return (f"Pareto front in {noun} ({len(front)} of {len(done)} runs, circled; the dashed line joins them): "
            f"{items}. Each other run is dominated: another costs no more and is at least as accurate, "
            "and beats it on one of the two.")


def conclusions(df: pd.DataFrame, curves: pd.DataFrame, *, score: str, time_col: str, curve_col: str,
                unit: str, target: float | None) -> dict[str, str]:
    """Every computed conclusion that the data supports, by topic (missing topics are left out)."""
    out = {
        "accuracy": most_accurate(df, score),
        "time to accuracy": fastest_to(curves, target, unit, curve_col),
        "size": pareto_sentence(df, "params", score),
        "training time": pareto_sentence(df, time_col, score),
        "work (FLOPs)": pareto_sentence(df, "flops", score),
    }
    return {k: v for k, v in out.items() if v}


def still_improving(curves: pd.DataFrame, metric: str = "val_acc") -> str | None:
    """Which plotted runs were still improving at their last epoch (their budget, not their design, stopped them).

    A run improves at the end when its last epoch is its best so far (highest accuracy, or
    lowest loss for a loss curve).
    """
    d = curves.dropna(subset=[metric])
    if d.empty or d.groupby("run_id")["epoch"].count().max() < 2:
        return None
    higher = not metric.endswith("loss")
    rising, flat = [], []
    for _, c in d.sort_values("epoch").groupby("run_id", sort=False):
        last, before = c[metric].iloc[-1], c[metric].iloc[:-1]
        best_before = before.max() if higher else before.min()
        (rising if (last > best_before if higher else last < best_before) else flat).append(c["label"].iloc[0])
    word = "best" if higher else "lowest"
    if not flat:
        more = f" and {len(rising) - 4} more" if len(rising) > 4 else ""
        return (f"Every curve shown is at its {word} at the last epoch ({', '.join(rising[:4])}{more}): still "
                "improving when training stopped: a longer budget may still raise them.")
    if not rising:
        return "No curve shown improves at its last epoch: these runs had flattened before the budget ran out."
    return (f"Still improving at the last epoch: {', '.join(rising)} (the budget limited them); "
            f"flattened before the end: {', '.join(flat)}.")


def search_sentence(hist: pd.DataFrame) -> str | None:
    """The search in one sentence: trials by state and where the best accuracy was found."""
    if hist is None or hist.empty:
        return None
    states = ", ".join(f"{n} {s}" for s, n in hist["state"].value_counts().items())
    done = hist[hist["state"] == "complete"].dropna(subset=["val_acc"])
    if done.empty:
        return f"{_trials(len(hist))} ({states}); none completed, so there is no best configuration yet."
    best = done.loc[done["val_acc"].idxmax()]
    pruned = int((hist["state"] == "pruned").sum())
    why = f"; the {pruned} pruned trial(s) were stopped early by the pruner" if pruned else ""
    return (f"{_trials(len(hist))} ({states}); the best, {best['val_acc']:.1f}% validation accuracy, came at trial "
            f"{int(best['trial'])}. Green line: the best so far{why}.")


def _trials(n: int) -> str:
    return f"{n} trial{'' if n == 1 else 's'}"


def importance_sentence(imp: dict[str, float]) -> str | None:
    """Which hyperparameter explained most of the differences between trials (Optuna's evaluator)."""
    if not imp:
        return None
    ranked = sorted(imp.items(), key=lambda kv: -kv[1])
    top = ", ".join(f"{k} ({v:.0%})" for k, v in ranked[:2])
    return f"Most of the differences between trials are explained by {top} (Optuna's importance evaluator)."


def noise_note(df: pd.DataFrame, score: str = "val_acc") -> str:
    """What the Pareto charts' error bars are, when the image counts behind the accuracies are known."""
    if score == "val_acc" and ("n_val" not in df or df["n_val"].isna().all()):
        return ""
    return "Bars: ±1 standard error of each accuracy (binomial, from the number of images it was measured on)."
