"""/lr's exported script against the core the page calls: ``lr_sweep`` + ``regime_examples``,
``compare_schedules`` and ``lr_range_test``, for the same settings.

Tolerances: the descents are float32 on one (2,) tensor in the script and on rows of an
(n, 2) tensor in the core, the same operations element by element (rel 1e-6 allows a
differently vectorised kernel; measured: equal). The range test does the core's float32
operations in its order; the script runs with one BLAS thread and the test process may not,
which can reorder a matrix product's sums (rel 1e-6; measured: equal). Counts are exact.
"""

from __future__ import annotations

import pytest

from dltl_core.codegen import export, parse_link
from dltl_core.codegen.lr import SWEEP, read_settings
from dltl_core.descend import DescentConfig, descend_many
from dltl_core.lessons.learning_rate import compare_schedules, log_grid, lr_sweep, regime_examples
from dltl_core.lr_range import RangeTestConfig, lr_range_test
from dltl_core.settings import settings_of
from dltl_core.views import LrView
from tests.codegen_util import other_value, printed, run_script

TOL = dict(rel=1e-6, abs=1e-12)


def _expected(query: str) -> tuple[dict[str, float], set[str]]:
    """The page's numbers for the link, and the names to compare exactly."""
    v, _ = read_settings(parse_link(query))
    base = DescentConfig(surface=v["surface"], optimizer=v["opt"], steps=max(1, int(v["steps"])))
    out: dict[str, float] = {}
    if v["steps"]:
        examples = regime_examples(lr_sweep(base, log_grid(*SWEEP)))
        for (regime, lr), run in zip(examples.items(), descend_many([base.replace(lr=lr) for lr in examples.values()])):
            out[f"{regime} lr"] = lr
            if run.diverged_at is None:
                out[f"{regime} final loss"] = run.final_loss
            else:
                out[f"{regime} diverged at step"] = run.diverged_at
    names = tuple(v["scheds"])
    for name, run in zip(names, compare_schedules(base.replace(lr=float(v["lr"]), noise=float(v["noise"])), names)):
        out[f"{name} last lr"] = run.lr[-1]
        if run.diverged_at is None:
            out[f"{name} final loss"] = run.final_loss
        else:
            out[f"{name} diverged at step"] = run.diverged_at
    res = lr_range_test(RangeTestConfig(optimizer=v["rt_opt"], batch_size=int(v["bs"])))
    out["range test batches"], out["lowest loss at lr"] = len(res.lr), res.lr_at_min
    if res.suggested is not None:
        out["suggested lr"] = res.suggested
    if res.stopped_at is not None:
        out["stopped at batch"] = res.stopped_at
    exact = {k for k in out if "step" in k or "batch" in k}
    return out, exact


@pytest.mark.slow  # 31 descents + 6 schedules + a pass over the digits, in a fresh process
@pytest.mark.parametrize("query", [
    "",  # defaults: SGD on the bowl, all six schedules, momentum range test with batches of 8
    "surface=himmelblau&opt=adam&steps=60&lr=0.3&noise=0.5&scheds=cosine,onecycle,constant&rt_opt=adam&bs=32",
])
def test_script_prints_what_the_page_computes(query):
    expected, exact = _expected(query)
    got = printed(run_script(export("lr", query).source()))
    for name, value in expected.items():
        if name in exact:
            assert got[name] == value, name
        else:
            assert got[name] == pytest.approx(float(value), **TOL), name
    assert set(got) == set(expected), "the script printed numbers the page does not show (or missed some)"


@pytest.mark.slow  # runs the range test too
def test_zero_steps_and_no_schedule_are_said_not_failed():
    script = export("lr", "steps=0&scheds=&bs=5")
    assert script.problems  # bs=5 snaps to an offered batch size, as on the page
    out = run_script(script.source())
    assert "Zero steps: nothing moves" in out and "Pick at least one schedule." in out
    assert "range test batches" in printed(out)


def test_every_declared_parameter_reaches_the_code():
    base = {"scheds": "constant,cosine"}
    values, _ = read_settings(base)
    for name, s in settings_of(LrView).items():
        changed = {**base, s.url or name: other_value(LrView, name, values[name])}
        assert export("lr", changed).source() != export("lr", base).source(), name
