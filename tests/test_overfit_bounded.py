"""/overfit: a link alone never starts minutes of training; a long run waits for a click."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from dltl_core.job_runner import get_runner
from dltl_core.lessons import lesson_jobs as lj
from dltl_core.lessons.overfit import OverfitConfig

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"data": "digits", "train_size": "1438", "depth": "5", "width": "512", "epochs": "500"}


def test_expected_time_of_the_reported_link_is_minutes_and_the_default_is_instant():
    heavy = OverfitConfig(data="digits", train_size=1438, depth=5, width=512, epochs=500)
    assert lj.expected_seconds_overfit(heavy) > 120  # the issue measured ~350 s of CPU
    assert lj.expected_seconds_overfit(OverfitConfig()) < 5


def test_a_link_alone_does_not_start_a_long_overfit_run():
    before = len(getattr(get_runner(), "_jobs", {}))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/23_overfit.py")
    for k, v in HEAVY.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception and not at.error
    start = [b for b in at.button if b.key == "overfit__go"]
    assert start and "min" in start[0].label  # says how long it would take
    assert len(getattr(get_runner(), "_jobs", {})) == before  # nothing was submitted
