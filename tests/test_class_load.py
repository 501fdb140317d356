"""Many tabs at once on one real server, through Streamlit's own protocol (bench/stclient.py)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from tests.browser import streamlit_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import stclient  # noqa: E402


def _open_at_once(base: str, path: str, query: str, n: int) -> list[stclient.Result]:
    results: list[stclient.Result] = [None] * n  # type: ignore[list-item]
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait(timeout=60)
        s = stclient.connect(base, path, query, timeout=300)
        results[i] = s.last
        s.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return results


def test_the_same_overfit_link_opened_by_many_tabs_trains_once(tmp_path):
    with streamlit_server(env={"DLTL_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)}) as base:
        stclient.connect(base, "/overfit", "", timeout=300).close()  # imports and the default run done
        # 500 epochs: a few seconds of training (still no click needed), so the other tabs arrive
        # while it runs and wait; with the default 150 epochs a quiet machine finished it before
        # the others asked, and no tab had to wait (the test failed 2 runs in 4).
        results = _open_at_once(base, "/overfit", "seed=4242&epochs=500", 4)
    assert all(r is not None and not r.exception for r in results), [r and r.exceptions for r in results]
    # Only a tab that trains draws the live progress bar; the others wait for its result.
    trained = [r for r in results if r.kinds.get("progress")]
    assert len(trained) == 1, [r.kinds for r in results]
    waited = [r for r in results if any("Another visitor is training" in a for a in r.alerts)]
    assert waited, [r.alerts for r in results]
    # Every tab shows the finished run (its learning curves), the waiters included.
    assert all(r.kinds.get("vega_lite_chart", 0) >= 1 for r in results), \
        [r.kinds for r in results]


def test_a_short_run_pauses_while_other_visitors_pages_run(tmp_path):
    with streamlit_server(env={"DLTL_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)}) as base:
        stclient.connect(base, "/overfit", "", timeout=300).close()  # imports and the default run done
        light = stclient.connect(base, "/gd", "", timeout=300)
        done, answers = threading.Event(), []

        def student() -> None:  # another visitor rerunning /gd the whole time
            while not done.is_set():
                answers.append(light.rerun())

        t = threading.Thread(target=student)
        t.start()
        try:
            run = stclient.connect(base, "/overfit", "seed=4343&epochs=300", timeout=300)
        finally:
            done.set()
            t.join(timeout=120)
        light.close()
    assert not run.last.exception and answers and not any(exc for _, _, exc in answers), run.last.exceptions
    assert run.last.kinds.get("progress"), run.last.kinds  # this tab trained the run itself
    # The run gave way to the /gd reruns: its caption says for how long.
    paused = [t for t in run.last.texts if "paused for other visitors' pages" in t]
    assert paused, run.last.texts
