"""/loss's exported script against the page's own computation (``dltl_core.lessons.softmax``).

The script does the page's float64 operations in the same order, so every number is equal
(exact equality: nothing here is seeded or parallel).
"""

from __future__ import annotations

import pytest

from dltl_core.codegen import export, parse_link
from dltl_core.codegen.loss import read_settings
from dltl_core.lessons.softmax import confidence_sweep, losses_of_probs, softmax_losses
from dltl_core.settings import settings_of
from dltl_core.views import LossView
from tests.codegen_util import other_value, printed, run_script


def _expected(query: str) -> dict[str, float]:
    v, _ = read_settings(parse_link(query))
    k, target = v["k"], v["target"]
    out = softmax_losses([v[f"z{i}"] for i in range(k)], target, v["T"])
    exp = {"cross-entropy": out["cross_entropy"], "MSE": out["mse"]}
    for c in range(k):
        exp[f"class {c} p"] = out["probs"][c]
        exp[f"class {c} dCE/dz"] = out["grad_ce"][c]
        exp[f"class {c} dMSE/dz"] = out["grad_mse"][c]
    ex = losses_of_probs([0.2, 0.8], [0, 1])
    exp["example cross-entropy"], exp["example MSE"] = ex["cross_entropy"], ex["mse"]
    sweep = confidence_sweep(num_classes=k)
    for name, loss in (("cross-entropy", "cross-entropy"), ("MSE", "MSE")):
        rows = sweep[sweep["loss"] == loss].reset_index(drop=True)
        for i, where in ((0, "confidently right"), (len(rows) - 1, "confidently wrong")):
            exp[f"{where} {name}"] = rows["value"][i]
            exp[f"{where} {name} gradient"] = rows["grad"][i]
    return exp


@pytest.mark.parametrize("query", ["", "k=5&target=4&T=0.3&z4=-8&z1=7.5"])
def test_script_prints_the_pages_numbers(query):
    out = run_script(export("loss", query).source())
    got = printed(out)
    for name, value in _expected(query).items():
        assert got[name] == float(value), name
    v, _ = read_settings(parse_link(query))
    probs = softmax_losses([v[f"z{i}"] for i in range(v["k"])], v["target"], v["T"])["probs"]
    assert f"p(true class {v['target']}): {probs[v['target']]:.3f}" in out  # the metric as the page shows it


def test_true_class_beyond_the_classes_falls_back_to_class_0_as_on_the_page():
    script = export("loss", "k=2&target=5&T=99")
    assert "target=0" in script.query and "T=5" in script.query
    assert len(script.problems) == 1  # T clamped; the page resets the target silently
    got = printed(run_script(script.source()))
    assert got["cross-entropy"] == _expected(script.query)["cross-entropy"]


def test_every_declared_parameter_reaches_the_code():
    base = {"k": "6", "target": "2"}  # six classes: every logit is used
    values, _ = read_settings(base)
    for name, s in settings_of(LossView).items():
        changed = {**base, s.url or name: other_value(LossView, name, values[name])}
        assert export("loss", changed).source() != export("loss", base).source(), name
