"""A loaded study as the Results page and the talk see it: labelled runs, curves, provenance.

Everything here works on the run records of any results file or Optuna study, whatever
is missing from them (no history, no CPU time, no test accuracy, one architecture).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from dltl_core import runs as R
from dltl_core.archs import ARCHS

SCORES = {"val_acc": "validation", "test_acc": "test (official test set)", "test_acc_tta": "test, flip TTA"}
TIME_UNITS = {"cpu_seconds": "CPU seconds", "wall_seconds": "wall seconds"}
OFFICIAL_TEST_IMAGES = 10_000


def arch_label(arch: Any) -> str:
    """Display name of an architecture key (the key itself when it is not registered)."""
    return ARCHS[arch].label if isinstance(arch, str) and arch in ARCHS else str(arch)


def run_label(arch: Any, width: Any, kind: Any = "run", trial: Any = None) -> str:
    """``ResNet-18 ×0.25`` for a run, ``ResNet-18 ×0.25, trial 3`` for a search trial."""
    w = "" if width is None or pd.isna(width) else f" ×{float(width):g}"
    t = "" if kind != "trial" or trial is None or pd.isna(trial) else f", trial {int(trial)}"
    return f"{arch_label(arch)}{w}{t}"


def runs_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """``runs.runs_table`` plus a ``label`` column (one name per run for legends and sentences)."""
    df = R.runs_table(records)
    df["label"] = [run_label(a, w, k, t) for a, w, k, t in zip(df["arch"], df["width"], df["kind"], df["trial"])]
    return df


def curves_frame(records: Sequence[dict[str, Any]], run_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-epoch curves (``runs.curves_table``) of the chosen runs, labelled like ``runs_frame``."""
    keep = None if run_ids is None else set(run_ids)
    chosen = [r for r in records if keep is None or r.get("run_id") in keep]
    curves = R.curves_table(chosen)
    labels = {r.get("run_id"): run_label(r.get("arch"), r.get("width"), r.get("kind", "run"), r.get("trial"))
              for r in chosen}
    curves["label"] = curves["run_id"].map(labels)
    return curves


def completed(df: pd.DataFrame, score: str = "val_acc") -> pd.DataFrame:
    """The runs that count as an accuracy: complete (not pruned, diverged or failed) with a score."""
    return df[(df["state"] == "complete") & df[score].notna()]


def best_per_arch(df: pd.DataFrame, score: str = "val_acc") -> pd.DataFrame:
    """The most accurate completed run of each architecture, most accurate first."""
    done = completed(df, score)
    if done.empty:
        return done
    return done.loc[done.groupby("arch")[score].idxmax()].sort_values(score, ascending=False)


@dataclass(frozen=True)
class TimeBasis:
    """Which seconds the time axes show, and why.

    Attributes:
        column: ``cpu_seconds`` or ``wall_seconds`` (a ``runs_table`` column).
        curve: the matching ``curves_table`` column (``cpu_elapsed`` or ``elapsed``).
        unit: ``CPU seconds`` or ``wall seconds``.
        why: one sentence saying why these seconds (shown under the charts).
    """

    column: str
    curve: str
    unit: str
    why: str


def _shared(prov: dict[str, Any]) -> bool | None:
    """What the provenance says about the machine: shared (True), alone (False), or nothing (None)."""
    value = prov.get("shared_machine")
    if value is None and isinstance(prov.get("machine"), dict):
        value = prov["machine"].get("shared")
    return None if value is None else bool(value)


def time_basis(prov: dict[str, Any], df: pd.DataFrame, choice: str = "auto") -> TimeBasis:
    """The seconds to plot: ``choice`` (``cpu_seconds``/``wall_seconds``), or for ``auto`` from the study.

    ``auto`` takes CPU seconds where the provenance says the machine was shared (wall time
    then counts the other users' work too), or, when it says nothing, where every run ran on
    a CPU and recorded its CPU time; otherwise wall seconds (a GPU's work is not CPU time).
    """
    has_cpu = bool(len(df)) and df["cpu_seconds"].notna().all()
    shared = _shared(prov)
    if choice == "cpu_seconds":
        why = "CPU seconds of the training process (all its threads), as chosen."
    elif choice == "wall_seconds":
        why = "wall-clock seconds, as chosen" + (
            "; the provenance says the machine was shared, so they include waiting for other work." if shared
            else ".")
    elif shared and has_cpu:
        choice, why = "cpu_seconds", ("CPU seconds of the training process (all its threads): the provenance "
                                      "says the machine was shared, so wall time would measure the other work "
                                      "too.")
    elif shared is None and has_cpu and set(df["device"].dropna()) == {"cpu"}:
        choice, why = "cpu_seconds", ("CPU seconds of the training process (all its threads): every run trained "
                                      "on a CPU, where they count the network's own work whatever else ran.")
    else:
        choice, why = "wall_seconds", "wall-clock seconds of training" + (
            " (no CPU time was recorded for every run)." if not has_cpu and shared else ".")
    return TimeBasis(choice, "cpu_elapsed" if choice == "cpu_seconds" else "elapsed", TIME_UNITS[choice], why)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _join(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values) or "not recorded"


@dataclass(frozen=True)
class Provenance:
    """Where a study's numbers come from, one fact per attribute (each a display string).

    Attributes:
        source: what the study is (shipped file, operator's file or study).
        runs: counts of runs and trials.
        device: devices (and CPU threads) the runs trained on.
        recipe: recipe names.
        epochs: epoch budgets.
        images: training and validation images.
        dates: first and last start date.
        versions: library versions.
        commands: the command lines that produced the runs.
        note: the study's own note, if any.
    """

    source: str
    runs: str
    device: str
    recipe: str
    epochs: str
    images: str
    dates: str
    versions: str
    commands: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""


def provenance(prov: dict[str, Any], records: Sequence[dict[str, Any]], df: pd.DataFrame,
               source: str) -> Provenance:
    """The provenance facts of a study, from its records (and its file's provenance block)."""
    threads = sorted(df["threads"].dropna().astype(int).unique())
    device = _join(sorted(df["device"].dropna().unique())) + (
        f" ({_join(threads)} CPU thread{'s' if threads != [1] else ''})" if threads else "")
    n_train = _join([f"{n:,}" for n in sorted(df["n_train"].dropna().astype(int).unique())])
    n_val = _join([f"{n:,}" for n in sorted(df["n_val"].dropna().astype(int).unique())])
    dates = df["started_at"].dropna()
    when = f"{min(dates)[:10]} to {max(dates)[:10]}" if len(dates) else "not recorded"
    vers: dict[str, set[str]] = {}
    for r in records:
        for lib, v in (r.get("versions") or {}).items():
            vers.setdefault(lib, set()).add(str(v))
    commands = list(prov.get("commands") or [])
    commands += [c for c in dict.fromkeys(r.get("command") for r in records) if c and c not in commands]
    return Provenance(
        source=source,
        runs=f"{_count(len(df), 'run')} ({_count(int((df['kind'] == 'run').sum()), 'single run')}, "
             f"{_count(int((df['kind'] == 'trial').sum()), 'search trial')})",
        device=device,
        recipe=_join(sorted(df["recipe"].dropna().unique())),
        epochs=_join(sorted(df["epochs"].dropna().astype(int).unique())),
        images=f"{n_train} training, {n_val} validation",
        dates=when,
        versions=", ".join(f"{lib} {'/'.join(sorted(v))}" for lib, v in vers.items()) or "not recorded",
        commands=tuple(commands),
        note=str(prov.get("note") or ""),
    )


def reference_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per architecture: kuangliu's published test accuracy beside our best run (by validation accuracy).

    Every figure of a row comes from that one run, so its accuracy, epochs and time belong together.
    """
    best = best_per_arch(df).set_index("arch")
    ours = best[["val_acc", "test_acc", "test_acc_tta", "width", "epochs", "n_train", "wall_seconds",
                 "cpu_seconds"]].rename(
        columns={"val_acc": "our best val (%)", "test_acc": "its test (%)", "test_acc_tta": "its test, TTA (%)",
                 "width": "its width", "epochs": "its epochs", "n_train": "its training images",
                 "wall_seconds": "its time (wall s)", "cpu_seconds": "its time (CPU s)"})
    ref = pd.DataFrame([{"arch": a, "architecture": i.label, "kuangliu test (%)": i.reference_acc}
                        for a, i in ARCHS.items()]).set_index("arch")
    return ref.join(ours, how="left").reset_index(drop=True)


_REF_FORMATS = {"kuangliu test (%)": "{:.2f}", "our best val (%)": "{:.1f}", "its test (%)": "{:.1f}",
                "its test, TTA (%)": "{:.1f}", "its width": "×{:g}", "its epochs": "{:.0f}",
                "its training images": "{:,.0f}", "its time (wall s)": "{:,.1f}", "its time (CPU s)": "{:,.1f}"}


def reference_display(ref: pd.DataFrame) -> pd.DataFrame:
    """The reference table as text: our columns without any value left out, gaps shown as "—"."""
    ours = [c for c in ref.columns if c.startswith(("our", "its"))]
    kept = ref.drop(columns=[c for c in ours if ref[c].isna().all()])
    return pd.DataFrame({c: ["—" if pd.isna(v) else _REF_FORMATS.get(c, "{}").format(v) for v in kept[c]]
                         for c in kept.columns})
