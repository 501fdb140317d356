"""Page frame: set-up, sidebar heading and classroom switch, error boundary, the chart theme and sizes."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
import traceback
from typing import Any, Iterator

import altair as alt
import streamlit as st

from dltl_ui.binder import Binder
from dltl_ui.nav import leave_pages_folder_mode, page_of
from dltl_ui.views import ClassroomView

log = logging.getLogger("dltl")

# Projector: big body text, but compact headings and padding so each page's main chart fits
# a 1280x720 or 1024x768 screen without scrolling (the browser test checks it).
_CLASSROOM_CSS = """
<style>
html, body, [class*="css"], .stMarkdown p, .stMarkdown li, label, .stSlider, .stSelectbox
  { font-size: 1.25rem !important; }
.block-container { padding-top: 2.6rem !important; padding-bottom: 1rem !important; }
h1 { font-size: 2rem !important; padding: 0 0 0.3rem 0 !important; }
h2 { font-size: 1.6rem !important; padding: 0.2rem 0 !important; }
h3 { font-size: 1.4rem !important; padding: 0.2rem 0 !important; }
[data-testid="stCaptionContainer"] { display: none; }
</style>
"""
MAIN_CHART_KEY = "dltl_main_chart"
_BASE_CSS = """
<style>
.block-container { padding-top: 2.2rem; }
</style>
"""


_freeze_lock = threading.Lock()
_frozen_at_modules = 0


def freeze_imports() -> None:
    """Move what the imported modules allocated out of the garbage collector's sight, once per
    new set of imports.

    Streamlit runs a full collection after every script run (``runner.postScriptGC``) so a
    busy server's memory stays bounded. A full collection walks every tracked object, and
    torch, pandas, Altair and Streamlit leave about half a million of them alive for good:
    about 0.3 s per rerun, half of a /gd rerun's time, measured in ``bench/profile_pages.py``.
    ``gc.freeze()`` puts them in the permanent generation (never scanned, still freed by
    reference counting), so the collection only walks the sessions' own objects. It runs
    again only when a page imported new modules (a bounded number of times per process),
    after a full collection so no garbage is frozen with them.
    """
    global _frozen_at_modules
    if len(sys.modules) <= _frozen_at_modules:
        return
    with _freeze_lock:
        if len(sys.modules) > _frozen_at_modules:
            gc.collect()
            gc.freeze()
            _frozen_at_modules = len(sys.modules)


def is_classroom() -> bool:
    """Whether classroom mode (projector: big type, explanations hidden) is on."""
    return bool(st.session_state.get("classroom", False))


def _font_sizes() -> tuple[int, int, int]:
    # (axis labels, axis titles, chart title): readable from the back of a lecture hall.
    return (18, 20, 24) if is_classroom() else (14, 16, 18)


def _register_theme() -> None:
    label, title, header = _font_sizes()

    def theme() -> dict:
        return {
            "config": {
                "axis": {"labelFontSize": label, "titleFontSize": title, "gridOpacity": 0.5, "labelLimit": 0},
                # No label or title limit: a cut legend entry ("2. SGD + momentum, η =") or
                # title hides the very thing the chart is about.
                "legend": {"labelFontSize": label, "titleFontSize": title, "symbolSize": 160, "labelLimit": 0},
                "title": {"fontSize": header, "anchor": "start", "limit": 0},
                "header": {"labelFontSize": title, "titleFontSize": title},
                "text": {"fontSize": label},
                "range": {"category": {"scheme": "tableau10"}},
                "view": {"stroke": None},
            }
        }

    name = "dltl_classroom" if is_classroom() else "dltl"
    alt.theme.register(name, enable=True)(theme)


def _sync_classroom() -> None:
    st.session_state["classroom"] = st.session_state["_classroom_toggle"]


def _classroom_binder() -> Binder:
    # ``classroom`` itself is plain session state (it survives page switches, a widget key
    # would not); ``?classroom=1`` is written only while it is on.
    return Binder(ClassroomView, omit_default=True)


def page_setup(script: str) -> None:
    """First call of every page: page config, sidebar, classroom mode, theme.

    Args:
        script: the page's ``__file__``; its title and icon come from ``dltl_ui.nav``.
            The menu itself is ``st.navigation``'s (drawn by the entry script).
    """
    leave_pages_folder_mode(rerun=True)  # only where folder mode ran this page without the menu
    page = page_of(script)
    classroom = _classroom_binder()
    classroom.load()  # ?classroom=1 on a fresh session (a reload, a shared link)
    try:
        st.set_page_config(page_title=f"{page.title} · DLTL", page_icon=page.icon, layout="wide",
                           initial_sidebar_state="collapsed" if is_classroom() else "auto")
    except st.errors.StreamlitAPIException:
        pass  # already set (AppTest may run pages back to back)
    with st.sidebar:
        st.markdown("### 🧠 Deep learning & transfer learning")
        st.toggle(
            "Classroom mode",
            value=is_classroom(),
            key="_classroom_toggle",
            on_change=_sync_classroom,
            help=classroom.settings["classroom"].help,
        )
    classroom.sync()
    classroom.report()
    st.markdown(_BASE_CSS + (_CLASSROOM_CSS if is_classroom() else ""), unsafe_allow_html=True)
    _register_theme()
    freeze_imports()  # the page's imports are done by now (they come before page_setup)


def explain(markdown: str) -> None:
    """Explanatory text, hidden in classroom mode (the teacher says it aloud)."""
    if not is_classroom():
        st.markdown(markdown)


def chart_height(base: int = 360, classroom: int | None = None) -> int:
    """Chart height in pixels: ``classroom`` (default 1.2 x base, at most 400) in classroom mode.

    A projector shows 720-768 pixels: a main chart of 400 px plot height, its axes and one
    line of controls fit without scrolling.
    """
    if not is_classroom():
        return base
    return classroom if classroom is not None else min(int(base * 1.2), 400)


def controls(label: str = "⚙️ Settings") -> Any:
    """Where a page's controls go: inline, or in classroom mode a closed expander above the chart
    (the teacher opens it to change a setting; the chart stays on screen)."""
    return st.expander(label, expanded=False) if is_classroom() else st.container()


def side_controls(ratio: tuple[float, float] = (1, 2)) -> tuple[Any, Any]:
    """``(controls, content)``: two columns, or in classroom mode a closed expander above
    full-width content (a projector needs the width for the chart)."""
    if is_classroom():
        return st.expander("⚙️ Settings", expanded=False), st.container()
    left, right = st.columns(list(ratio))
    return left, right


def duration(seconds: float) -> str:
    """``45 s`` or ``3 min 20 s``."""
    secs = int(round(seconds))
    return f"{secs // 60} min {secs % 60:02d} s" if secs >= 60 else f"{secs} s"


def heavy_button(label: str, key: str, expected_s: float, *, ask_s: float, refuse_s: float,
                 help: str | None = None) -> bool:
    """A start button for long work that says how long it takes: above ``ask_s`` it asks
    first (a checkbox), above ``refuse_s`` it refuses with the expected time. True on the click."""
    if expected_s > refuse_s:
        st.warning(f"{label} would take about {duration(expected_s)} here: too long for this page. "
                   "Choose a smaller size, or use the command line.", icon="⏳")
        return False
    ok = expected_s <= ask_s or st.checkbox(f"Yes, this takes about {duration(expected_s)}", key=f"{key}__ok")
    return st.button(f"{label} (about {duration(expected_s)})", key=key, disabled=not ok, help=help)


def main_chart() -> Any:
    """The container of a page's main chart (the one the projector must show whole)."""
    return st.container(key=MAIN_CHART_KEY)


@contextlib.contextmanager
def guard(what: str = "this view") -> Iterator[None]:
    """Error boundary: an unexpected error becomes a clear message, never a traceback.

    Streamlit's own control-flow exceptions (rerun, stop) pass through.
    """
    try:
        yield
    except (st.runtime.scriptrunner.StopException, st.runtime.scriptrunner.RerunException):
        raise
    except Exception as err:  # noqa: BLE001 - the boundary is the point
        log.error("error in %s:\n%s", what, traceback.format_exc())
        st.error(f"Something went wrong in {what}: {err}. The rest of the page still works; "
                 "try other settings.")
