"""What the Results page reads and shows: its sources, its view settings, provenance and downloads.

Visitors never type a path or a storage URL (a public server must not open files or
databases a visitor names): the page offers the shipped study files and what the
operator configured (``DLTL_RESULTS`` files, the ``DLTL_STORAGE`` Optuna study; see
``dltl_core.paths.operator_storage``). When a source cannot be read, the visitor sees one
message that names neither a server path nor a storage URL; the detail goes to the log.
The tables, findings and charts themselves live in ``dltl_core.report`` (no Streamlit), so
the slide deck shows what the page shows.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import altair as alt
import pandas as pd
import streamlit as st

from dltl_core import runs as R
from dltl_core.archs import ARCHS
from dltl_core.paths import operator_storage
from dltl_core.recipes import RECIPES
from dltl_core.report import charts as C
from dltl_core.report.study import Provenance, arch_label
from dltl_core.settings import check, setting
from dltl_ui.layout import is_classroom

log = logging.getLogger("dltl")

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHIPPED = {"gpu": ASSETS / "results_gpu.json", "cpu": ASSETS / "results_cpu.json"}
SCORES = {"val_acc": "validation", "test_acc": "test (official test set)",
          "test_acc_tta": "test, flip TTA"}
TIMES = {"auto": "auto (CPU s on a shared or CPU machine)", "cpu_seconds": "CPU seconds",
         "wall_seconds": "wall seconds"}


class ResultsUnavailable(Exception):
    """A source that cannot be read; ``str()`` is safe to show a visitor (no path, no URL)."""


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
    time: str = setting("auto", label="Time axis", choices=tuple(TIMES), labels=TIMES, url="time",
                        help="Wall seconds include waiting for everything else the machine ran; CPU seconds "
                             "count the training process's own work (all its threads). Auto takes CPU seconds "
                             "when the study says its machine was shared, or when every run trained on a CPU.")
    target: float = setting(0.0, label="Target accuracy (%), 0 = auto", lo=0.0, hi=100.0, step=1.0,
                            widget="number", fmt="%.0f",
                            url="target", help="The accuracy of \"fastest to\" under the time-to-accuracy "
                                               "chart; 0 picks the highest one that every plotted run reaches.")
    talk: str = setting("resnet18", label="Talk about", choices=lambda: list(ARCHS), labels=arch_label,
                        url="talk", help="The architecture the slide deck presents against the others.")

    def __post_init__(self) -> None:
        check(self)


def load(source: str) -> tuple[dict, list[dict]]:
    """Provenance and run records of a source key (see ``sources``).

    Raises:
        ResultsUnavailable: the source cannot be read; its message names no path or URL.
    """
    try:
        return _load(source)
    except ValueError as err:
        log.warning("results source %s: %s", source, err)
        if "not a DLTL results file" in str(err):
            raise ResultsUnavailable("this file is not a DLTL results file") from None
        raise ResultsUnavailable("this source is not one the server offers") from None
    except FileNotFoundError as err:
        log.warning("results source %s: %s", source, err)
        raise ResultsUnavailable("the server's results file is missing") from None
    except Exception as err:  # noqa: BLE001 - a storage down raises anything; the visitor sees one line
        log.warning("results source %s: %s", source, _scrub(str(err)))
        what = "the operator's Optuna study cannot be reached" if source == "study" else \
            "the server could not read this source"
        raise ResultsUnavailable(f"{what} right now") from None


def _scrub(text: str) -> str:
    # Passwords never reach the log either.
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", text)


def _load(source: str) -> tuple[dict, list[dict]]:
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
        from dltl_core import studies as S  # optuna: imported only when a study is shown

        return {"storage": "operator-configured"}, S.study_records(where)
    res = R.load_results(where)
    return res.provenance, res.runs


def provenance_markdown(p: Provenance, time_why: str) -> str:
    """The provenance panel's paragraph: source, device, recipe, epochs, images, dates, versions, time axis."""
    return (f"**Source:** {p.source} · **{p.runs}**  \n**Device:** {p.device} · **recipe** {p.recipe} · "
            f"**epochs** {p.epochs} · **images** {p.images} · **dates** {p.dates}  \n**Versions:** {p.versions}"
            f"  \n**Time axis:** {time_why}")


def diverged(df: pd.DataFrame, records: list[dict]) -> list[str]:
    """One line per diverged run: which network, which settings, and why."""
    reasons = {r.get("run_id"): r.get("diverged_reason") or "the loss became inf/NaN" for r in records}
    return [f"{row.label}: lr {row.lr:g}, {row.optimizer} — {reasons.get(row.run_id)}"
            for row in df[df["state"] == "diverged"].itertuples()]


def chart_downloads(chart: alt.TopLevelMixin, name: str, key: str) -> None:
    """PNG and SVG buttons for one chart, rendered only when clicked (``vl-convert``, the slides' look).

    Not in classroom mode: a projector shows charts, it does not download them.
    """
    if is_classroom():
        return
    row = st.container(horizontal=True)
    row.download_button("PNG", _deferred(lambda: C.to_png(chart)), file_name=f"{name}.png", mime="image/png",
                       key=f"{key}_png", on_click="ignore", icon=":material/download:")
    row.download_button("SVG", _deferred(lambda: C.to_svg(chart).encode()), file_name=f"{name}.svg",
                       mime="image/svg+xml", key=f"{key}_svg", on_click="ignore", icon=":material/download:")


def _deferred(make: Callable[[], bytes]) -> Callable[[], bytes]:
    # Runs on the click, in its own thread: a failure becomes a short text file, never a traceback.
    def run() -> bytes:
        try:
            return make()
        except Exception as err:  # noqa: BLE001 - a download must not take the page down
            log.error("chart export: %s", err)
            return b""
    return run


@st.cache_data(show_spinner=False, ttl=600, max_entries=4)
def deck_bytes(source: str, arch: str, score: str, time: str, target: float | None, run_ids: tuple[str, ...]) -> bytes:
    """The talk about ``arch`` from a source's runs (those in ``run_ids``, the page's filters), cached."""
    from dltl_core.report.deck import build_deck

    prov, records = load(source)
    keep = set(run_ids)
    return build_deck(prov, [r for r in records if r.get("run_id") in keep], arch, source=sources().get(source, source),
                      score=score, time=time, target=target)


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


def talk_panel(view: ResultsView, view_df: pd.DataFrame, score: str) -> None:
    """Make the deck about ``view.talk`` from the runs on screen, then offer it for download."""
    present = list(dict.fromkeys(view_df["arch"].dropna()))
    if view.talk not in present:
        st.info(f"{arch_label(view.talk)} has no run among those shown; choose one of "
                f"{', '.join(map(arch_label, present))} in *Talk about* above.")
        return
    st.markdown(f"A PowerPoint deck about **{arch_label(view.talk)}** against the other networks shown: the "
                "architecture, the recipe and search space, the search, the charts above as images, the reference "
                "table, the conclusions computed here and the provenance. It opens in PowerPoint, Keynote, Google "
                "Slides and LibreOffice, and every slide can be edited.")
    key = (view.source, view.talk, score, view.time, view.target or None, tuple(view_df["run_id"]))
    if st.button("Make the slides", key="talk_make", icon=":material/slideshow:"):
        with st.spinner("Drawing the charts and writing the slides…"):
            st.session_state["_talk_deck"] = (key, deck_bytes(*key))
    made = st.session_state.get("_talk_deck")
    if made and made[0] == key:
        st.download_button("Download the slides (.pptx)", made[1], file_name=f"talk_{view.talk}.pptx",
                           mime="application/vnd.openxmlformats-officedocument.presentationml.presentation",
                           key="talk_pptx", on_click="ignore", icon=":material/download:")
    st.caption(f"The same deck from a terminal: `python -m dltl_core report --results FILE --arch {view.talk} "
               "--out talk.pptx` (FILE: your `search --results` file).")


def runs_display(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs table as a visitor reads it: columns with no value at all (e.g. test accuracy of a
    study without test images) left out, and a single run's study shown as "—" (numbers stay
    numbers, so the columns sort)."""
    kept = frame.drop(columns=["label"]).dropna(axis=1, how="all")
    if "study" in kept:
        kept["study"] = ["—" if pd.isna(v) else str(v) for v in kept["study"]]
    return kept
