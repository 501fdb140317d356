"""Live runs for the training pages (layers, overfitting): learning curves that grow while a
run trains (``LiveCurves``), a Stop button, a bounded run that goes to a worker process when
long, and a results memo keyed by configuration.

The charts it draws come from the chart kit (``dltl_ui.charts.curves``); a page's own charts
live in its concept's ``charts`` module (the decision boundary: ``dltl_ui.overfit.charts``).
The only core imports are the ``Callback`` base class the live view plugs into
``dltl_core.train.fit`` and the cache's ``single_flight``.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Hashable

import pandas as pd
import streamlit as st

from dltl_core.cache import config_key, single_flight
from dltl_core.train import Callback, YieldWhile
from dltl_ui.charts.curves import show_curves

__all__ = ["AUTO_SECONDS", "LiveCurves", "memo_get", "memo_put", "others_running", "resume_button", "run_bounded",
           "run_live"]


class LiveCurves(Callback):
    """Redraws the learning curves in a placeholder while ``fit`` runs, and a progress bar.

    Redraws at most every ``every_s`` seconds, so the drawing does not slow the training
    down, and not while ``defer()`` says other visitors' pages are running (a redraw is
    0.1-0.2 s of Python that would hold up theirs) unless it is ``4 * every_s`` late. Not
    at the last epoch either: the page replaces the live view with the final charts at
    once. Each redraw is also where Streamlit notices a click (a Stop button, a slider):
    the run is then interrupted and the page reruns. The records so far are kept in
    ``st.session_state[state_key]`` for that rerun to show.
    """

    def __init__(self, epochs: int, state_key: str, every_s: float = 0.5, label: str = "Training",
                 defer: Callable[[], bool] = lambda: False) -> None:
        self.epochs = epochs
        self.state_key = state_key
        self.every_s = every_s
        self.label = label
        self.defer = defer
        self.records: list[dict[str, Any]] = []
        self._bar = st.progress(0.0, text=f"{label}…")
        self._chart = st.empty()
        self._last_draw = time.perf_counter()
        self._draw_cost = 0.0

    def on_epoch_end(self, trainer, record) -> None:  # noqa: D102
        self.records.append(record.as_dict())
        st.session_state[self.state_key] = list(self.records)
        now = time.perf_counter()
        # Drawing costs ~0.1-0.2 s: keep it under a quarter of the wall time.
        since = now - self._last_draw
        due = since >= max(self.every_s, 3 * self._draw_cost)
        # Deferred at most a few periods: the progress and the Stop button stay alive.
        if due and record.epoch < self.epochs and (since >= 4 * self.every_s or not self.defer()):
            self._bar.progress(min(1.0, record.epoch / self.epochs),
                               text=f"{self.label}: epoch {record.epoch} of {self.epochs}, "
                                    f"validation loss {record.val_loss:.3f}")
            with self._chart.container():
                show_curves(pd.DataFrame(self.records), self.epochs, show_gap=False)
            self._last_draw = time.perf_counter()
            self._draw_cost = self._last_draw - now

    def clear(self) -> None:
        """Remove the live view (the page then draws the final charts)."""
        self._bar.empty()
        self._chart.empty()


_SCRIPT_THREAD = "ScriptRunner.scriptThread"  # Streamlit's name for the thread running one session's script


def others_running() -> bool:
    """True while another session's script (a page or a fragment) runs in this server.

    Streamlit runs each session's script in a thread of this name that ends with the run,
    so the live threads of that name are the sessions waiting for an answer right now.
    """
    me = threading.current_thread()
    return any(t is not me and t.name == _SCRIPT_THREAD for t in threading.enumerate())


@st.cache_data(max_entries=64, show_spinner=False)
def _memo(namespace: str, key: Hashable, _value: Any = None) -> Any:
    # Returns whatever value it was first called with for (namespace, key).
    return _value


def memo_get(namespace: str, key: Hashable) -> Any | None:
    """A finished result stored by ``memo_put`` under ``key`` (any session), or None.

    Results of runs that show live progress cannot come from a plain ``st.cache_data``
    function (its element replay does not allow drawing into a placeholder created
    outside it), so they go through this small ``st.cache_data`` store keyed by config.
    """
    value = _memo(namespace, key)
    if value is None:
        _memo.clear(namespace, key)  # do not keep the miss
    return value


def memo_put(namespace: str, key: Hashable, value: Any) -> None:
    """Store ``value`` under ``key`` for ``memo_get``."""
    _memo.clear(namespace, key)
    _memo(namespace, key, value)


def run_live(namespace: str, key: Hashable, run: Callable[[list[Callback]], Any], epochs: int,
             label: str = "Training") -> tuple[Any | None, list[dict] | None]:
    """Return the memoised result of ``run`` for ``key``, or run it with live curves.

    Returns:
        ``(result, partial)``: the result, or None and the records so far when the user
        stopped this configuration (``stop_button`` below) before it finished.
    """
    cached = memo_get(namespace, key)
    if cached is not None:
        return cached, None
    stopped_key, partial_key = f"{namespace}__stopped", f"{namespace}__partial"
    if st.session_state.get(stopped_key) == key:
        return None, st.session_state.get(partial_key, [])
    # Single flight: thirty tabs opening the same link train it once; the others wait for
    # the first one's result (a file lock, so replicas sharing the cache folder agree too).
    waiting = st.empty()

    def on_wait(seconds: float) -> None:
        if seconds > 0.5:
            waiting.info(f"Another visitor is training this same configuration; using their result "
                         f"when it finishes ({seconds:.0f} s).", icon="⏳")

    with single_flight(f"live-{namespace}-{config_key(repr(key))}", timeout=120.0, on_wait=on_wait):
        waiting.empty()
        cached = memo_get(namespace, key)
        if cached is not None:
            return cached, None
        return _train_live(namespace, key, run, epochs, label)


def _train_live(namespace: str, key: Hashable, run: Callable[[list[Callback]], Any], epochs: int,
                label: str) -> tuple[Any | None, list[dict] | None]:
    """Train ``run`` with live curves and a Stop button, and memoise its result."""
    stopped_key, partial_key = f"{namespace}__stopped", f"{namespace}__partial"
    st.session_state[partial_key] = []
    button = st.empty()
    button.button("⏹ Stop", key=f"{namespace}__stop_btn",
                  on_click=lambda: st.session_state.update({stopped_key: key}),
                  help="Stop this run; the curves so far stay on the page.")
    live = LiveCurves(epochs, partial_key, label=label, defer=others_running)
    result = run([live, YieldWhile(others_running)])  # the class's slider moves go first
    live.clear()
    button.empty()
    memo_put(namespace, key, result)
    return result, None


AUTO_SECONDS = 8.0  # a run expected to finish within this starts by itself (from a link too)


def run_bounded(namespace: str, key: Any, run: Callable[[list[Callback]], Any], epochs: int, *,
                job: Callable[..., Any], expected_s: float, seed: int = 0,
                label: str = "Training") -> tuple[Any | None, list[dict] | None]:
    """``run_live`` for a short run; a long one starts only on a click, in a worker process.

    A long run (over ``AUTO_SECONDS``) is a job of ``dltl_core.job_runner`` (its own seeded
    process, a time and memory limit, a Stop that ends the process, cancelled when the tab
    closes); its epochs stream back as payloads and draw the live curves. Runs that would
    take longer than ``REFUSE_SECONDS`` are refused with the expected time.

    Returns:
        like ``run_live``; ``(None, None)`` while a long run waits for its click or runs.
    """
    from dltl_core.lessons import lesson_jobs as lj
    from dltl_ui import job_panel as jobs_ui
    from dltl_ui.layout import heavy_button

    cached = memo_get(namespace, key)
    if cached is not None or expected_s <= AUTO_SECONDS:
        return (cached, None) if cached is not None else run_live(namespace, key, run, epochs, label=label)
    clicked = heavy_button(label, f"{namespace}__go", expected_s, ask_s=lj.ASK_SECONDS, refuse_s=lj.REFUSE_SECONDS,
                           help="A long run: it trains in a worker process you can stop.")
    final = jobs_ui.job_panel(namespace, job, key, start=clicked, seed=seed, label=label,
                              on_partial=lambda recs: show_curves(pd.DataFrame(list(recs)), epochs, show_gap=False))
    if final is None:
        return None, None
    if final.error or final.result is None:
        st.warning(final.error or "The run was stopped.")
        return None, [p for p in final.payloads if isinstance(p, dict)]
    memo_put(namespace, key, final.result)
    return final.result, None


def resume_button(namespace: str) -> None:
    """A button that forgets a stopped run, so the next rerun trains it again."""
    if st.button("▶ Train again", key=f"{namespace}__resume"):
        st.session_state.pop(f"{namespace}__stopped", None)
        st.rerun()
