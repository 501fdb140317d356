"""Issue 11, replayed: heavy work runs apart, seeded, bounded and stoppable.

Seeded runs beside each other, the job runner (queue position, time limit, memory cap,
Stop, a closed tab) and the job panel (a link starts nothing; Stop ends the process).

The other findings of the review: tests/test_security_*.py, one file per subject.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch

from dltl_core import job_runner
from dltl_core.device import seeded


# ----------------------------------------------------------------------------- job functions
# Top-level (importable by name in the spawned process), as every job must be.

def train_digits_job(config: dict, report) -> list[float]:
    """A small seeded training on scikit-learn's digits: the loss after each epoch."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for epoch in range(config["epochs"]):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        losses.append(float(loss.detach()))
        report("training", epoch + 1, config["epochs"], {"epoch": epoch, "loss": losses[-1]})
    return losses


def sleep_job(config: dict, report) -> str:
    """Reports, then sleeps in small steps (a job that only ends when stopped)."""
    for i in range(int(config.get("steps", 10_000))):
        report("sleeping", i, 10_000)
        time.sleep(0.05)
    return "woke up"


def alloc_job(config: dict, report) -> int:
    """Allocates and touches ``mb`` megabytes."""
    block = np.ones(int(config["mb"]) * 2**20, dtype=np.uint8)
    return int(block[:: 4096].sum())


def raise_job(config: dict, report) -> None:
    raise ValueError("need at least 2 species\n(details for the log)")


def _gone(pid: int, within: float) -> bool:
    """Whether process ``pid`` no longer exists (reaped) within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _wait_running(runner: job_runner.JobRunner, job_id: int, timeout: float = 60) -> job_runner.JobStatus:
    """Wait until the job's function itself reported (its process is up and importing is done)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        snap = runner.status(job_id)
        if snap.finished or (snap.state == job_runner.RUNNING and snap.phase not in ("", "starting")):
            return snap
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not start within {timeout} s")


def _idle(runner: job_runner.JobRunner, timeout: float = 30) -> None:
    """Wait until earlier tests' processes have exited (a finished job holds its slot until then)."""
    end = time.monotonic() + timeout
    while runner.load() != (0, 0) and time.monotonic() < end:
        time.sleep(0.05)
    assert runner.load() == (0, 0)


@pytest.fixture(scope="module")
def runner():
    r = job_runner.JobRunner(max_jobs=2, seconds=120, memory_mb=1500)
    yield r
    r.shutdown()


# ----------------------------------------------------------------------------- seeded runs

def test_seeded_threads_do_not_change_each_others_results():
    """Finding: "the loss was 0.185875 alone and 0.188194 beside another run"."""
    def run(out: list, seed: int) -> None:
        with seeded(seed):
            draws = []
            for _ in range(200):
                draws.append(float(torch.rand(1)))
                time.sleep(0)  # invite a thread switch in the middle of the run
            out.append(draws)

    alone: list = []
    run(alone, 7)
    side: list = [[], []]
    threads = [threading.Thread(target=run, args=(side[i], 7)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert side[0][0] == alone[0] and side[1][0] == alone[0]


@pytest.mark.slow
def test_jobs_side_by_side_give_the_result_of_a_run_alone(runner):
    _idle(runner)
    ids = [runner.submit(train_digits_job, {"epochs": 3}, seed=5) for _ in range(3)]
    done = [runner.wait(i, 180) for i in ids]
    assert [d.state for d in done] == [job_runner.DONE] * 3, [d.error for d in done]
    # ids[0] and ids[1] ran at the same time (max_jobs=2); ids[2] ran alone after them.
    assert done[0].result == done[1].result == done[2].result
    assert len(set(done[0].result)) == 3  # a real training: the loss changes every epoch
    assert [p["epoch"] for p in done[0].payloads] == [0, 1, 2]
    assert done[0].payloads[-1]["loss"] == done[0].result[-1]


# ----------------------------------------------------------------------------- the runner

@pytest.mark.slow
def test_queue_limit_position_and_stop_ends_the_process(runner):
    """Finding: "after Stop, and after closing the tab, the server stayed at 100-200% CPU"."""
    _idle(runner)
    ids = [runner.submit(sleep_job, {}) for _ in range(4)]
    assert runner.load() == (2, 2)
    assert [runner.position(i) for i in ids] == [0, 0, 1, 2]
    assert runner.status(ids[3]).state == job_runner.QUEUED and runner.status(ids[3]).position == 2
    first = _wait_running(runner, ids[0])
    assert first.pid and first.pid != os.getpid()
    t0 = time.monotonic()
    runner.cancel(ids[0])
    assert runner.status(ids[0]).state == job_runner.CANCELLED
    assert _gone(first.pid, 5), "the job's process still exists 5 s after Stop"
    assert time.monotonic() - t0 < 5
    # The freed slot goes to the next in the queue; the last moves up.
    end = time.monotonic() + 10
    while runner.position(ids[3]) != 1 and time.monotonic() < end:
        time.sleep(0.05)
    assert runner.position(ids[2]) == 0 and runner.position(ids[3]) == 1
    runner.cancel(ids[3])  # a queued job is simply dropped
    assert runner.status(ids[3]).state == job_runner.CANCELLED and runner.status(ids[3]).pid is None
    for i in ids[1:3]:
        pid = _wait_running(runner, i).pid
        runner.cancel(i)
        assert _gone(pid, 5)


@pytest.mark.slow
def test_time_limit_memory_cap_and_errors_are_clear_messages(runner):
    timed = runner.submit(sleep_job, {}, seconds=8)
    hog = runner.submit(alloc_job, {"mb": 4000}, memory_mb=700)
    small = runner.submit(alloc_job, {"mb": 50}, memory_mb=700)
    bad = runner.submit(raise_job, {})
    snaps = {name: runner.wait(i, 90) for name, i in
             (("timed", timed), ("hog", hog), ("small", small), ("bad", bad))}
    assert snaps["timed"].state == job_runner.FAILED and "time limit of 8 s" in snaps["timed"].error
    assert _gone(snaps["timed"].pid, 5)
    assert snaps["hog"].state == job_runner.FAILED and "out of memory" in snaps["hog"].error
    assert snaps["small"].state == job_runner.DONE and snaps["small"].result == 50 * 256
    assert snaps["bad"].state == job_runner.FAILED and snaps["bad"].error == "need at least 2 species"
    for s in snaps.values():
        assert "Traceback" not in (s.error or "")


@pytest.mark.slow
def test_a_closed_tab_cancels_its_job(runner):
    connected = threading.Event()
    connected.set()
    job = runner.submit(sleep_job, {}, alive=connected.is_set)
    pid = _wait_running(runner, job).pid
    connected.clear()  # the visitor's websocket went away
    snap = runner.wait(job, 5)
    assert snap.state == job_runner.CANCELLED and "closed" in snap.error
    assert _gone(pid, 5)
    quiet = runner.submit(sleep_job, {}, heartbeat_timeout=1.0)  # nobody polls it
    snap = runner.wait(quiet, 60)
    assert snap.state == job_runner.CANCELLED and "closed" in snap.error


def test_a_job_must_be_an_importable_function(runner):
    with pytest.raises(ValueError, match="top-level"):
        runner.submit(lambda config, report: None, {})


# ----------------------------------------------------------------------------- the job panel

_PANEL_APP = '''
import streamlit as st
from dltl_ui import job_panel as jobs_ui
from tests.test_security_jobs import sleep_job
clicked = st.button("Run", key="run")
final = jobs_ui.job_panel("demo", sleep_job, {"steps": 10_000}, start=clicked, label="Sleeping")
st.markdown(f"final: {None if final is None else (final.state, final.error)}")
'''


@pytest.mark.slow
def test_job_panel_starts_on_click_only_and_stop_ends_the_process():
    """Findings: "a link alone starts heavy work"; "after Stop … 100-200% CPU until the epoch ended"."""
    from streamlit.testing.v1 import AppTest

    from dltl_core.job_runner import get_runner

    runner = get_runner()
    at = AppTest.from_string(_PANEL_APP, default_timeout=60)
    at.query_params["run"] = "1"  # a link with parameters starts nothing
    at.run()
    assert not at.exception and not at.get("progress") and "_dltl_job::demo" not in at.session_state
    at.button(key="run").click().run()
    assert not at.exception
    job_id = at.session_state["_dltl_job::demo"]["id"]
    snap = _wait_running(runner, job_id)
    at.run()
    texts = [p.proto.text for p in at.get("progress")]
    assert texts and texts[0].startswith("Sleeping: sleeping")
    at.button(key="run").click().run()  # clicking again does not start a second run
    assert at.session_state["_dltl_job::demo"]["id"] == job_id
    assert runner.status(job_id).state == job_runner.RUNNING
    at.button(key="demo__stop").click().run()
    assert not at.exception
    assert _gone(snap.pid, 5), "the job's process still runs after Stop"
    at.run()
    assert any("cancelled" in m.value for m in at.markdown)
