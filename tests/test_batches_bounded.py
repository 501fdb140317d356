"""/batches: a link alone starts no long measurement; it waits for a click that says how long it
takes (estimated from a calibration on this machine), then runs as a stoppable job."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dltl_core.job_runner import get_runner
from dltl_core.lessons import batches_jobs as bj
from dltl_core.lessons.batches import batch_size_sweep
from dltl_ui.layout import duration
from dltl_ui.views import BATCH_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
# The link of issue 15: every size, 30 epochs (66 s of CPU in the server process before).
HOSTILE = {"sizes": ",".join(map(str, BATCH_OPTIONS)), "extra": "3", "epochs": "30"}


def _page(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/22_batches.py")
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    return at


def _jobs() -> int:
    return len(getattr(get_runner(), "_jobs", {}))


def test_the_calibration_orders_the_work_as_the_machine_does():
    """The estimate comes from timing this machine now; it ranks work as a real run does."""
    cal = bj.calibration()
    assert cal.step_s > 0 and cal.epoch_s > 0 and cal.n_train == 1438
    small, big = ((512,), 2), ((4,), 2)
    t0 = time.perf_counter()
    batch_size_sweep(*small)
    t_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch_size_sweep(*big)
    t_big = time.perf_counter() - t0
    assert t_big > t_small  # 720 steps against 6
    assert bj.expected_seconds_sweep(*big, cal=cal) > 5 * bj.expected_seconds_sweep(*small, cal=cal)
    sizes = tuple(sorted({*BATCH_OPTIONS, 3}))
    assert bj.expected_seconds_sweep(sizes, 30, cal=cal) > 10 * bj.LINK_SECONDS


def test_the_hostile_link_starts_nothing_and_shows_the_expected_time():
    before = _jobs()
    t0 = time.perf_counter()
    at = _page(HOSTILE)
    assert time.perf_counter() - t0 < 60  # no minute of training in the server process
    assert _jobs() == before  # nothing was submitted
    sizes = tuple(sorted({*BATCH_OPTIONS, 3}))
    assert at.multiselect(key="mb_sizes").value == list(BATCH_OPTIONS) and at.number_input(key="mb_extra").value == 3
    # The measurement waits: a button naming its expected time (or, on a very slow machine, a
    # refusal naming it); the estimate is this machine's, not a constant.
    texts = [b.label for b in at.button if b.key == "mb_sweep__go"] + [w.value for w in at.warning]
    expected = bj.expected_seconds_sweep(sizes, 30)
    assert any("about" in t and ("min" in t or " s" in t) for t in texts), texts
    minutes = duration(expected).split(" min")[0]
    assert any(minutes in t for t in texts), (texts, duration(expected))
    assert "Measured on" not in " ".join(c.value for c in at.caption)  # no sweep chart drawn


def test_the_default_view_is_measured_at_once():
    at = _page()
    assert not [b for b in at.button if b.key == "mb_sweep__go"]
    assert any("Measured on" in c.value for c in at.caption)


def test_a_click_runs_the_measurement_as_a_job_with_progress():
    """A small but not instant link: the click submits one job, whose result draws the charts."""
    at = _page({"sizes": "64,128", "extra": "0", "epochs": "30"})
    expected = bj.expected_seconds_sweep((64, 128), 30)
    if expected <= bj.LINK_SECONDS:  # a fast machine measures this at once: nothing to click
        assert any("Measured on" in c.value for c in at.caption)
        return
    before = _jobs()
    if expected > 20:  # above ASK_SECONDS the visitor confirms first
        at.checkbox(key="mb_sweep__go__ok").check().run()
    at.button(key="mb_sweep__go").click().run()
    assert _jobs() == before + 1
    deadline = time.time() + 240
    while "Measured on" not in " ".join(c.value for c in at.caption) and time.time() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception and not at.error
    assert any("Measured on" in c.value for c in at.caption)
