"""Everything a talk about one architecture needs, gathered once from a study's records.

``gather`` reads the records the way the Results page does (the same tables, findings and
chart specs), so the deck (``deck.build_deck``) says what the page says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from dltl_core import profile
from dltl_core.archs import ARCHS
from dltl_core.report import findings as F
from dltl_core.report import study as S


@dataclass
class Talk:
    """A study seen from one architecture.

    Attributes:
        arch: the architecture the talk is about (registry key).
        label: its display name.
        df: every run (``study.runs_frame``).
        score: the accuracy column the talk compares (``val_acc`` unless the study has test figures).
        score_note: why the score is what it is, when it differs from the one asked for.
        basis: the seconds of the time axes and why.
        curves: per-epoch curves of the best run of each architecture.
        target: the accuracy (%) of "fastest to", or None without curves.
        chosen: the talk architecture's best completed run, or None (e.g. every run diverged).
        width: the width its architecture slide describes.
        provenance: the study's provenance facts.
        trials: the search trials of the study shown (the talk architecture's when it has one).
        study_name: that study's name, or None.
        history: its search history (``studies.search_history``).
        importances: Optuna's parameter importances ({} when they cannot be computed).
        importance_note: why there are no importances, when there are none.
        conclusions: the computed findings, by topic.
    """

    arch: str
    label: str
    df: pd.DataFrame
    score: str
    score_note: str
    basis: S.TimeBasis
    curves: pd.DataFrame
    target: float | None
    chosen: pd.Series | None
    width: float
    provenance: S.Provenance
    trials: list[dict[str, Any]] = field(default_factory=list)
    study_name: str | None = None
    history: pd.DataFrame | None = None
    importances: dict[str, float] = field(default_factory=dict)
    importance_note: str = ""
    conclusions: dict[str, str] = field(default_factory=dict)

    def rank(self) -> str | None:
        """Where the talk architecture's best run ranks among the architectures' best runs."""
        best = S.best_per_arch(self.df, self.score).reset_index(drop=True)
        hit = best.index[best["arch"] == self.arch]
        if not len(hit):
            return None
        return f"{int(hit[0]) + 1} of {len(best)} architectures"


def _score(df: pd.DataFrame, asked: str) -> tuple[str, str]:
    if asked != "val_acc" and df[asked].notna().sum() == 0:
        return "val_acc", (f"No run has {S.SCORES[asked]} accuracy (the official test images were not in its "
                           "data folder), so the talk compares validation accuracy.")
    return asked, ""


def _search(records: Sequence[dict[str, Any]], arch: str) -> tuple[str | None, list[dict[str, Any]]]:
    """The study to show: the one searching ``arch`` with the most trials, else the largest."""
    trials = [r for r in records if r.get("kind") == "trial" and r.get("trial") is not None]
    if not trials:
        return None, []
    by_study: dict[str, list[dict[str, Any]]] = {}
    for r in trials:
        by_study.setdefault(str(r.get("study")), []).append(r)
    mine = {k: v for k, v in by_study.items() if any(r.get("arch") == arch for r in v)}
    name = max(mine or by_study, key=lambda k: len((mine or by_study)[k]))
    return name, by_study[name]


def _importances(trials: list[dict[str, Any]], name: str | None) -> tuple[dict[str, float], str]:
    if not trials:
        return {}, ("This study has no hyperparameter search: run `python -m dltl_core search --trials N "
                    "--results FILE` to add one.")
    from dltl_core import studies as SR  # optuna: only for a study with a search

    imp = SR.param_importances(trials, name)
    if imp:
        return imp, ""
    done = sum(1 for r in trials if r.get("state") == "complete")
    return {}, (f"Optuna's importances need at least two completed trials with their search space; "
                f"this search has {done} completed of {len(trials)}.")


def gather(prov: dict[str, Any], records: Sequence[dict[str, Any]], arch: str, *, source: str = "results file",
           score: str = "val_acc", time: str = "auto", target: float | None = None) -> Talk:
    """Collect the talk about ``arch`` from a study.

    Args:
        prov: the results file's provenance block.
        records: its run records.
        arch: the architecture of the talk; it must have runs in the study.
        source: what the study is, in words (the title and provenance slides).
        score: ``val_acc``, ``test_acc`` or ``test_acc_tta`` (validation when the study has no test figures).
        time: ``auto``, ``cpu_seconds`` or ``wall_seconds`` (see ``study.time_basis``).
        target: the accuracy (%) of "fastest to"; None chooses one every curve reaches.

    Raises:
        ValueError: no runs, or ``arch`` unknown or not in the study (the message lists what is).
    """
    df = S.runs_frame(records)
    if df.empty:
        raise ValueError("this results file has no runs")
    present = [a for a in dict.fromkeys(df["arch"].dropna())]
    if arch not in present:
        raise ValueError(f"{arch!r} has no runs in this study; it has {', '.join(map(str, present))}")
    score, score_note = _score(df, score)
    basis = S.time_basis(prov, df, time)
    best = S.best_per_arch(df, score)
    curves = S.curves_frame(records, list(best["run_id"]))
    target = F.default_target(curves) if target is None else float(target)
    mine = best[best["arch"] == arch]
    chosen = mine.iloc[0] if len(mine) else None
    widths = df.loc[df["arch"] == arch, "width"].dropna()
    width = float(chosen["width"]) if chosen is not None and pd.notna(chosen["width"]) else \
        float(widths.iloc[0]) if len(widths) else 1.0
    name, trials = _search(records, arch)
    history = None
    if trials:
        from dltl_core import studies as SR

        history = SR.search_history(trials)
    imp, imp_note = _importances(trials, name)
    talk = Talk(arch=arch, label=S.arch_label(arch), df=df, score=score, score_note=score_note, basis=basis,
                curves=curves, target=target, chosen=chosen, width=width,
                provenance=S.provenance(prov, records, df, source), trials=trials, study_name=name,
                history=history, importances=imp, importance_note=imp_note)
    talk.conclusions = F.conclusions(df, curves, score=score, time_col=basis.column, curve_col=basis.curve,
                                     unit=basis.unit, target=target)
    return talk


def layer_rows(arch: str, width: float) -> list[dict[str, Any]]:
    """The layer table of ``arch`` at ``width``, consecutive identical blocks folded into one row."""
    if arch not in ARCHS:
        return []
    rows: list[dict[str, Any]] = []
    for r in profile.layer_table(profile.meta_arch(arch, width)):
        last = rows[-1] if rows else None
        if last and last["layer_one"] == r["layer"] and last["output"] == r["output"]:
            last["count"] += 1
            last["params"] += r["params"]
            last["flops"] += r["flops"]
            last["last_name"] = r["name"]
            continue
        rows.append({**r, "layer_one": r["layer"], "count": 1, "last_name": r["name"]})
    for r in rows:
        if r["count"] > 1:
            r["name"] = f"{r['name']}–{r['last_name'].rsplit('.', 1)[-1]}"
            r["layer"] = f"{r['count']} × {r['layer_one']}"
    return [{k: r[k] for k in ("name", "layer", "output", "params", "flops")} for r in rows]
