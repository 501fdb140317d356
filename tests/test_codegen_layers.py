"""The /layers page's exported script against the core (``dltl_core.lessons.layers``).

Parameter counts are exact. The trainings are the core's on the CPU, same seeds, same
operations in the same order (one thread), so accuracies and losses printed to 8
significant digits are equal; feature-map means are compared to 1e-6 (pandas and torch
sum the pixels in different orders).
"""

from __future__ import annotations

import pytest

from dltl_core.codegen import export
from dltl_core.codegen._page_views import views
from dltl_core.lessons.layers import LINEAR_MAP, compare_layers, param_table
from dltl_core.query import read_query
from dltl_core.settings import settings_of
from tests.codegen_util import printed, run_notebook, run_script

LayersView = views().LayersView


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setenv("DLTL_DEVICE", "cpu")


def _check(query: dict[str, str]) -> None:
    v, problems = read_query(LayersView, query)
    script = export("layers", query)
    assert list(script.problems) == problems
    got = printed(run_script(script.source(), timeout=600))
    for row in param_table(out_channels=v["channels"]).itertuples():
        assert got[f"{row.input} fully connected parameters"] == row._3
        assert got[f"{row.input} convolutional parameters"] == row.convolutional
    res = compare_layers(epochs=v["epochs"], seed=v["seed"], seeds=v["seeds"])
    for r in res.models.itertuples():
        name = "linear map (L-BFGS)" if r.model == LINEAR_MAP else r.model
        assert f"{got[f'{name} seed {r.seed} val acc']:.8g}" == f"{r.val_acc:.8g}", name
        if r.model != LINEAR_MAP:
            assert got[f"{name} parameters"] == r.parameters
            assert f"{got[f'{name} seed {r.seed} val loss']:.8g}" == f"{r.val_loss:.8g}", name
    assert got[f"linear map (L-BFGS) seed {v['seed']} iterations"] == res.lbfgs_iterations[0]
    assert f"{got['deep linear network val acc']:.8g}" == f"{res.linear_acc:.8g}"
    assert f"{got['its product W3 W2 W1 as one layer val acc']:.8g}" == f"{res.collapsed_acc:.8g}"
    maps = res.maps[(res.maps.digit == v["digit"]) & (res.maps.layer == 1)].groupby("channel")["value"].mean()
    for c, mean in maps.items():
        assert got[f"digit {v['digit']} feature map {c} mean"] == pytest.approx(mean, rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_script_matches_the_core_at_a_link():
    _check({"channels": "8", "epochs": "2", "seed": "4", "seeds": "1", "digit": "5"})


@pytest.mark.slow
def test_script_matches_the_core_at_the_defaults():
    _check({})


def test_absurd_values_are_read_as_the_page_reads_them():
    script = export("layers", {"epochs": "1e9", "seeds": "abc"})
    assert len(script.problems) == 2
    assert "EPOCHS = 40" in script.source() and "SEEDS = 3" in script.source()


def _other(name: str, value) -> str:
    s = settings_of(LayersView)[name]
    return str(value + 1 if value + 1 <= s.hi else value - 1)


@pytest.mark.parametrize("name", list(settings_of(LayersView)))
def test_every_setting_changes_the_code(name):
    value = getattr(LayersView(), name)
    changed = export("layers", {name: _other(name, value)})
    assert not changed.problems
    assert changed.source() != export("layers", "").source()
    body = changed.source().split("# The page's settings", 1)[1].split("\n\n", 1)[1]
    assert name.upper() in body, f"{name} is declared but the script does not use it"


@pytest.mark.slow
def test_the_notebook_runs_headless():
    query = {"epochs": "1", "seeds": "1", "channels": "4"}
    got = printed("".join(run_notebook(export("layers", query).notebook(), timeout=600)))
    assert got["digits 8x8 convolutional parameters"] == 4 * 9 + 4
    res = compare_layers(epochs=1, seed=0, seeds=1)
    assert f"{got['its product W3 W2 W1 as one layer val acc']:.8g}" == f"{res.collapsed_acc:.8g}"
