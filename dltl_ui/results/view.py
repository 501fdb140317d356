"""What the Results page shows beside its charts: provenance, downloads and the talk panel.

Its settings (``ResultsView``) and sources (``sources``, ``load``: shipped studies and what the
operator configured, never a path a visitor types) are declared in ``dltl_core.results_view``
(no Streamlit), so the code export reads a link with the same class; they are re-exported here,
and this module hands the core ``st.secrets`` and a cached reader. The tables, findings and
charts themselves live in ``dltl_core.report`` (no Streamlit), so the slide deck shows what the
page shows.
"""

from __future__ import annotations

import logging
from typing import Callable

import altair as alt
import pandas as pd
import streamlit as st

from dltl_core import results_view as core
from dltl_core.report import charts as C
from dltl_core.report.study import Provenance, arch_label
from dltl_core.results_view import (ASSETS, SCORES, SHIPPED, TIMES, ResultsUnavailable, ResultsView,  # noqa: F401
                                    load, sources)
from dltl_ui.layout import is_classroom

log = logging.getLogger("dltl")


def _secrets() -> dict | None:
    try:
        return dict(st.secrets)  # reading it without a secrets file raises
    except Exception:  # noqa: BLE001 - no secrets configured is the normal case
        return None


@st.cache_data(show_spinner="Reading the results...", ttl=60, max_entries=8)
def _read(kind: str, where: str) -> tuple[dict, list[dict]]:
    # Keyed by the resolved file or URL, so a changed configuration is never served stale.
    return core.read_source(kind, where)


core.serve_with(secrets=_secrets, read=_read)  # the page and its code export read through these


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


def chart_downloads(chart: alt.TopLevelMixin | Callable[[], alt.TopLevelMixin], name: str, key: str) -> None:
    """PNG and SVG buttons for one chart (or the function that builds it, called only on a
    click), rendered only when clicked (``vl-convert``, the slides' look).

    Not in classroom mode: a projector shows charts, it does not download them.
    """
    if is_classroom():
        return
    if not isinstance(chart, alt.TopLevelMixin):
        build = chart
    else:
        build = lambda: chart  # noqa: E731
    row = st.container(horizontal=True)
    row.download_button("PNG", _deferred(lambda: C.to_png(build())), file_name=f"{name}.png", mime="image/png",
                       key=f"{key}_png", on_click="ignore", icon=":material/download:")
    row.download_button("SVG", _deferred(lambda: C.to_svg(build()).encode()), file_name=f"{name}.svg",
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
