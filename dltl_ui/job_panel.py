"""Heavy work from a page: start on a click, queue position, live progress, Stop, results.

The page calls ``job_panel`` on every rerun with the job function, its config and
whether the visitor just clicked the start button. The work runs in the
process-wide ``dltl_core.job_runner`` runner (a spawned process, bounded in number,
time and memory); this helper only draws it:

* while queued: the position in the queue;
* while running: a progress bar with the phase, count and ETA, the partial
  results (through ``on_partial``) and a Stop button, refreshed by an
  ``st.fragment`` every ``refresh`` seconds (only the fragment reruns, not the page);
* when the job ends: the whole page reruns once and ``job_panel`` returns the
  final ``JobStatus`` (``.result`` when done, ``.error`` otherwise) for as long as
  the config stays the same.

A link alone never starts work: only ``start=True`` (a button's return value)
submits. A job whose tab was closed is cancelled: at once when Streamlit reports
the visitor's session disconnected, else after ``heartbeat_timeout`` seconds
without a refresh.

A visitor has one queued or running job at a time, across all their tabs (keyed by
the browser's Streamlit cookie, else the session): a second start names the job
already running and offers to stop it. An action that states its memory need
(``need_mb``) and cannot fit into the server's budget is not offered (``offer``) and
never submitted; the job's memory cap is its need plus a margin.

Example (in a page)::

    from dltl_ui import job_panel as jobs_ui
    clicked = st.button("▶ Fine-tune")
    final = jobs_ui.job_panel("finetune", finetune_job, config, start=clicked, seed=config.seed,
                              label="Fine-tuning", on_partial=lambda rows: live.line_chart(rows))
    if final is not None and final.error:
        st.warning(final.error)
    elif final is not None:
        show(final.result)
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import streamlit as st

from dltl_core import budget as mem
from dltl_core.cache import config_key
from dltl_core.job_runner import Busy, JobFn, JobStatus, get_runner, memory_need

_STATE = "_dltl_job::"
HEARTBEAT_SECONDS = 120.0  # browsers slow down timers of hidden tabs to about once a minute
# Streamlit's XSRF cookie: one per browser, the same in all its tabs (set by the server).
_VISITOR_COOKIE = "_streamlit_xsrf"


def visitor_id() -> str:
    """Who this visitor is, for "one job per visitor": a hash of the browser's Streamlit
    cookie (the same in every tab), else this session's id. Never shown to anyone.

    A visitor who clears cookies becomes a new visitor; the runner's queue and memory budget
    still bound everything a crowd of such visitors can start.
    """
    try:
        cookie = st.context.cookies.get(_VISITOR_COOKIE)
    except Exception:  # noqa: BLE001 - no request context (AppTest, bare mode)
        cookie = None
    if isinstance(cookie, str) and cookie:
        # Tornado's v2 XSRF cookie "2|mask|masked-token|time": the token part is what is stable.
        return "c:" + hashlib.sha256(cookie.encode()).hexdigest()[:16]
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
        ctx = get_script_run_ctx()
    except ImportError:
        ctx = None
    return "s:" + (ctx.session_id if ctx is not None else "bare")


def memory_cap(need_mb: float) -> float:
    """The cap given to a job that declared ``need_mb``: one job's share of the budget (at least
    its need). A need is one measurement (one photo size, one number of unfrozen stages); a cap
    of need + 25% failed a default fine-tune of two stages with "can't allocate memory", so the
    need decides whether a job is offered and the budget decides how far it may grow."""
    return max(need_mb, mem.job_cap_mb(get_runner().budget()))


def refusal(label: str, need_mb: float) -> str | None:
    """Why ``label`` (which needs about ``need_mb``) cannot run on this server, or None."""
    return mem.refusal(label, need_mb, get_runner().budget())


def offer(label: str, need_mb: float) -> bool:
    """Whether to offer an action that needs about ``need_mb``; if not, say why (one line)."""
    why = refusal(label, need_mb)
    if why is not None:
        st.warning(why + " Choose a smaller setting, or use the command line.", icon="🧠")
    return why is None


def session_alive() -> Callable[[], bool] | None:
    """A check "is this visitor's session still connected", or None outside a server."""
    try:
        from streamlit import runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:
        return None
    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return None
    instance, session_id = runtime.get_instance(), ctx.session_id
    return lambda: instance.is_active_session(session_id)


def _eta_text(snap: JobStatus) -> str:
    if snap.eta is None:
        return ""
    secs = int(round(snap.eta))
    return f" · about {secs // 60} min {secs % 60:02d} s left" if secs >= 60 else f" · about {secs} s left"


def progress_text(snap: JobStatus, label: str) -> str:
    """One line for the progress bar: label, phase, count and ETA."""
    if snap.state == "queued":
        return f"{label}: waiting, position {snap.position} in the queue"
    count = f" {snap.done}/{snap.total}" if snap.total else ""
    phase = snap.phase or "starting"
    if phase == "starting":
        phase = "starting a worker process"
    return f"{label}: {phase}{count}{_eta_text(snap)}"


def job_panel(key: str, fn: JobFn, config: Any, *, start: bool, seed: int = 0, label: str = "Working",
              on_partial: Callable[[tuple[dict, ...]], None] | None = None, refresh: float = 0.5,
              heartbeat_timeout: float = HEARTBEAT_SECONDS, need_mb: float | None = None,
              **limits: float) -> JobStatus | None:
    """Draw (and on ``start`` submit) one job; return its final status for this config.

    Args:
        key: unique per page and job kind (e.g. ``"tl_finetune"``); also prefixes widget keys.
        fn: a top-level job function ``fn(config, report)`` from an importable module.
        config: its picklable config; a different config hides the earlier outcome and
            cancels a job still running for the old one.
        start: True on the rerun where the visitor clicked the start button (ignored while
            a job with the same config runs; after it ended, a click runs it again).
        seed: the job's seed (its own process is seeded with it).
        label: shown in the progress bar ("Fine-tuning").
        on_partial: called on each refresh with every payload reported so far (e.g. to
            draw a live learning curve); it draws inside the refreshing fragment.
        refresh: seconds between refreshes while the job is queued or running.
        heartbeat_timeout: cancel when the page stopped refreshing for this long.
        need_mb: the job's memory need (``dltl_core.needs``; default: what ``fn`` declares with
            ``dltl_core.job_runner.declare_need``): a start that cannot fit is refused with the
            figures, else the job's cap is ``memory_cap(need_mb)``.
        **limits: ``seconds=`` and ``memory_mb=`` override the runner's limits.

    Returns:
        The final ``JobStatus`` (``state`` done / failed / cancelled) for this config,
        or None when none ran yet or it is still queued or running.
    """
    runner, ckey = get_runner(), config_key(getattr(fn, "__module__", ""), getattr(fn, "__qualname__", ""),
                                            config, seed)
    entry = st.session_state.get(_STATE + key)
    running = entry is not None and entry["final"] is None
    if running and entry["ckey"] == ckey:
        start = False  # a second click on the same settings keeps the run going
    elif running:
        runner.forget(entry["id"])  # new settings: the old run is not wanted any more
        entry = None
    if start:
        need_mb = memory_need(fn, config) if need_mb is None else need_mb
        entry = _submit(key, runner, fn, config, ckey, seed=seed, label=label, need_mb=need_mb,
                        heartbeat_timeout=heartbeat_timeout, **limits) or entry
    _busy_note(key)
    if entry is None or entry["ckey"] != ckey:
        return None
    if entry["final"] is not None:
        return entry["final"]
    _live(key, entry, label, on_partial, refresh)
    return entry["final"]


def _submit(key: str, runner, fn: JobFn, config: Any, ckey: str, *, seed: int, label: str,
            need_mb: float | None, heartbeat_timeout: float, **limits: float) -> dict | None:
    """Submit on a click: refused (with a message) when it cannot fit or the visitor has a job."""
    if need_mb is not None:
        why = refusal(label, need_mb)
        if why is not None:
            st.warning(why, icon="🧠")
            return None
        limits.setdefault("memory_mb", memory_cap(need_mb))
        limits.setdefault("need_mb", need_mb)
    try:
        job_id = runner.submit(fn, config, seed=seed, heartbeat_timeout=heartbeat_timeout,
                               alive=session_alive(), owner=visitor_id(), label=label, **limits)
    except Busy as busy:
        st.session_state[_STATE + key + "__busy"] = busy.job_id  # shown until that job ends
        return None
    st.session_state.pop(_STATE + key + "__busy", None)
    entry = {"id": job_id, "ckey": ckey, "final": None}
    st.session_state[_STATE + key] = entry
    return entry


def _busy_note(key: str) -> None:
    """After a refused start: name the visitor's other job and offer to stop it, until it ends."""
    job_id = st.session_state.get(_STATE + key + "__busy")
    if job_id is None:
        return
    runner = get_runner()
    try:
        other = runner.status(job_id)
    except KeyError:
        other = None
    if other is None or other.finished:
        st.session_state.pop(_STATE + key + "__busy", None)
        return
    where = f"position {other.position} in the queue" if other.state == "queued" else \
        f"running, {other.phase or 'starting'}"
    st.warning(f"**{other.label or 'Another job'} is already {where}** (started by you, here or in another "
               "tab). One job per visitor at a time: wait for it to finish, or stop it and start this one.",
               icon="⏳")
    if st.button("Stop my other job", key=f"{key}__stop_other", icon=":material/stop_circle:"):
        runner.cancel(job_id, "stopped")
        st.rerun()


def is_running(key: str) -> bool:
    """Whether this session has a queued or running job under ``key``."""
    entry = st.session_state.get(_STATE + key)
    return entry is not None and entry["final"] is None


def stop(key: str) -> None:
    """Cancel this session's job under ``key`` (no-op when none runs)."""
    entry = st.session_state.get(_STATE + key)
    if entry is not None and entry["final"] is None:
        get_runner().cancel(entry["id"], "stopped")


def _live(key: str, entry: dict, label: str, on_partial: Callable[[tuple[dict, ...]], None] | None,
          refresh: float) -> None:
    """The refreshing part: progress, partial results, Stop; reruns the page when the job ends."""

    @st.fragment(run_every=refresh)
    def live() -> None:
        runner = get_runner()
        try:
            snap = runner.poll(entry["id"])
        except KeyError:  # forgotten by the runner (server restarted the runner): start again
            st.session_state.pop(_STATE + key, None)
            return
        if not snap.finished:
            st.progress(snap.fraction, text=progress_text(snap, label))
            if snap.waiting_for_memory:
                st.caption("Waiting until a running job frees memory.")
            if on_partial is not None and snap.payloads:
                on_partial(snap.payloads)
            if st.button("Stop", key=f"{key}__stop", icon=":material/stop_circle:",
                         help="Ends the run's process now."):
                runner.cancel(entry["id"], "stopped")
                snap = runner.status(entry["id"])
        if snap.finished and entry["final"] is None:
            entry["final"] = snap
            runner.forget(entry["id"])
            st.rerun(scope="app")

    live()
