"""What the Results page reads and shows: its sources, its view settings, two tables and a chart.

Visitors never type a path or a storage URL (a public server must not open files or
databases a visitor names): the page offers the shipped study files and what the
operator configured (``DLTL_RESULTS`` files, the ``DLTL_STORAGE`` Optuna study; see
``dltl_core.paths.operator_storage``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from dltl_core import runs as R
from dltl_core.archs import ARCHS
from dltl_core.paths import operator_storage
from dltl_core.recipes import RECIPES
from dltl_core.settings import check, setting
from dltl_ui.layout import chart_height

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHIPPED = {"gpu": ASSETS / "results_gpu.json", "cpu": ASSETS / "results_cpu.json"}
SCORES = {"val_acc": "validation", "test_acc": "test (official test set)",
          "test_acc_tta": "test, flip TTA"}


def _secrets() -> dict | None:
    try:
        return dict(st.secrets)  # reading it without a secrets file raises
    except Exception:  # noqa: BLE001 - no secrets configured is the normal case
        return None


def sources() -> dict[str, str]:
    """Source key -> what it is: shipped studies first, then the operator's files and study."""
    out = {k: f"shipped {k.upper()} study ({p.name})" for k, p in SHIPPED.items() if p.is_file()}
    op = operator_storage(_secrets())
    for i, path in enumerate(op.results):
        out[f"file{i + 1}"] = f"results file {path.name} (server)"
    if op.storage:
        out["study"] = "Optuna study (server)"
    return out


def _default_source() -> str:
    return next(iter(sources()), "cpu")


@dataclass(frozen=True)
class ResultsView:
    """The Results page's settings (kept in the URL through ``dltl_ui.binder``)."""

    source: str = setting("gpu" if SHIPPED["gpu"].is_file() else "cpu", label="Results",
                          choices=lambda: list(sources()), labels=lambda k: sources().get(k, k), url="source",
                          help="The shipped studies, or a results file / Optuna study the server's operator "
                               "configured (DLTL_RESULTS, DLTL_STORAGE).")
    score: str = setting("val_acc", label="Accuracy", choices=tuple(SCORES), labels=SCORES, url="score",
                         help="Validation accuracy chooses hyperparameters; test accuracy is measured once "
                              "after training on the official test images and never used to choose.")

    def __post_init__(self) -> None:
        check(self)


def load(source: str) -> tuple[dict, list[dict]]:
    """Provenance and run records of a source key (see ``sources``).

    Raises:
        ValueError: an unknown key, or a file that is not a DLTL results file.
        FileNotFoundError: a configured file that is missing.
    """
    if source in SHIPPED:
        return _read("file", str(SHIPPED[source]))
    op = operator_storage(_secrets())
    if source == "study" and op.storage:
        return _read("study", op.storage)
    if source.startswith("file") and source[4:].isdigit() and 1 <= int(source[4:]) <= len(op.results):
        return _read("file", str(op.results[int(source[4:]) - 1]))
    raise ValueError(f"unknown results source {source!r}")


@st.cache_data(show_spinner="Reading the results...", ttl=60, max_entries=8)
def _read(kind: str, where: str) -> tuple[dict, list[dict]]:
    # Keyed by the resolved file or URL, so a changed configuration is never served stale.
    if kind == "study":
        from dltl_core import search as S  # optuna: imported only when a study is shown

        return {"storage": "operator-configured"}, S.study_records(where)
    res = R.load_results(where)
    return res.provenance, res.runs


def provenance_line(df: pd.DataFrame, records: list[dict], name: str) -> str:
    """One paragraph: where the numbers come from (device, versions, recipes, epochs, images, dates)."""
    devices = ", ".join(sorted(df["device"].dropna().unique())) or "unknown"
    torch_v = ", ".join(sorted({(r.get("versions") or {}).get("torch", "?") for r in records}))
    recipes = ", ".join(sorted(df["recipe"].dropna().unique())) or "none"
    epochs = ", ".join(map(str, sorted(df["epochs"].dropna().astype(int).unique())))
    n_train = ", ".join(f"{n:,}" for n in sorted(df["n_train"].dropna().astype(int).unique()))
    dates = df["started_at"].dropna()
    when = f"{dates.min()[:10]} to {dates.max()[:10]}" if len(dates) else "?"
    return (f"**Source:** {name} · **{len(df)} runs** ({(df['kind'] == 'run').sum()} single runs, "
            f"{(df['kind'] == 'trial').sum()} search trials)  \n**Device:** {devices} · **torch** {torch_v} · "
            f"**recipe** {recipes} · **epochs** {epochs} · **training images** {n_train} · **dates** {when}")


def reference_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per architecture: kuangliu's published test accuracy beside our best run (by validation accuracy).

    Every figure of a row comes from that one run, so its accuracy, epochs and time belong together.
    """
    done = df[(df["state"] == "complete") & df["val_acc"].notna()]
    best = done.loc[done.groupby("arch")["val_acc"].idxmax()].set_index("arch")
    ours = best[["val_acc", "test_acc", "test_acc_tta", "epochs", "n_train", "wall_seconds"]].rename(columns={
        "val_acc": "our best val (%)", "test_acc": "its test (%)", "test_acc_tta": "its test, TTA (%)",
        "epochs": "its epochs", "n_train": "its training images", "wall_seconds": "its time (s)"})
    ref = pd.DataFrame([{"arch": a, "architecture": i.label, "kuangliu test (%)": i.reference_acc}
                        for a, i in ARCHS.items()]).set_index("arch")
    return ref.join(ours, how="left").reset_index(drop=True)


def diverged(df: pd.DataFrame, records: list[dict]) -> list[str]:
    """One line per diverged run: which network, which settings, and why."""
    reasons = {r.get("run_id"): r.get("diverged_reason") or "the loss became inf/NaN" for r in records}
    return [f"{row.label}: lr {row.lr:g}, {row.optimizer} — {reasons.get(row.run_id)}"
            for row in df[df["state"] == "diverged"].itertuples()]


def time_to_accuracy(curves: pd.DataFrame) -> alt.Chart:
    """Validation accuracy against wall-clock training time, one line per run."""
    return alt.Chart(curves).mark_line(point=True, strokeWidth=3).encode(
        x=alt.X("elapsed:Q", title="training time (s, wall clock)"),
        y=alt.Y("val_acc:Q", title="validation accuracy (%)", scale=alt.Scale(zero=False)),
        color=alt.Color("label:N", title="run"),
        tooltip=["label", "epoch", alt.Tooltip("elapsed:Q", format=".1f"), alt.Tooltip("val_acc:Q", format=".1f")],
    ).properties(height=chart_height(340))


def recipe_panel(arch: str, width: float) -> None:
    """Pick a named recipe: what it sets, and the command that trains ``arch`` with it."""
    names = RECIPES.names()
    pick = st.selectbox("Train it with a recipe", names, index=names.index("fast"), key="arch_recipe",
                        format_func=lambda n: RECIPES[n].label)
    recipe = RECIPES[pick]
    c = recipe.config
    st.markdown(f"{recipe.about}  \n`{c.optimizer}` lr {c.lr:g}, batch {c.batch_size}, {c.epochs} epochs, "
                f"{c.schedule} (warm-up {c.warmup:.0%}), weight decay {c.weight_decay:g}"
                f"{' on every parameter' if c.decay_1d else ' on weights only'}, label smoothing "
                f"{c.label_smoothing:g}{f', EMA over {c.ema_epochs:g} epochs' if c.ema_epochs else ''}"
                f"{', flip TTA' if recipe.tta else ''}.")
    st.code(f"python -m dltl_core search --fixed recipe={pick} --arch {arch} --widths {width:g} "
            "--data-dir DIR --results runs.json", language="bash")
