"""/gd's exported script, run as a student runs it, against ``dltl_core.descend``.

Reference: ``descend_many`` on the configs the page builds for the link (``read_settings``
reads it with the page's declarations). Tolerance: the core runs the optimizers in
lock-step on the rows of one (n, 2) tensor, the script one (2,) tensor each; the
operations are the same element by element, so the numbers agree to float32 rounding
(rel 1e-6 allows a differently vectorised kernel for exp/cos; measured: equal).
"""

from __future__ import annotations

import math

import pytest

from dltl_core.codegen import export, parse_link
from dltl_core.codegen.gd import read_settings
from dltl_core.descend import descend_many
from dltl_core.gd_settings import OFF, SLOTS, GdView, SlotConfig, sfx
from dltl_core.optim import OPTIMIZERS
from dltl_core.settings import settings_of
from tests.codegen_util import other_value, printed, run_script, run_notebook

TOL = dict(rel=1e-6, abs=1e-9)


def _expected(query: str) -> dict[str, float]:
    """What the page computes for the link: each slot's end point and loss, or where it diverged."""
    settings = read_settings(parse_link(query))
    runs = descend_many([c for _, _, c in settings.slots])
    out = {}
    for (i, _, _), run in zip(settings.slots, runs):
        tag = f"opt{i + 1}"
        out[f"{tag} final w1"], out[f"{tag} final w2"] = run.trajectory[-1]
        if run.diverged_at is None:
            out[f"{tag} final loss"] = run.loss[-1]
        else:
            out[f"{tag} diverged at step"] = run.diverged_at
        at = settings.view["at"]
        if at < len(run.loss):
            out[f"{tag} loss at step {at}"] = run.loss[at]
    return out


@pytest.mark.parametrize("query", [
    "",  # the page's defaults: four optimizers on Rosenbrock
    # rugged surface, noise, a scrubbed step, Nesterov and a diverging SGD in slot 4
    "surface=rugged&noise=0.3&seed=5&steps=250&at=120&opt=nesterov&lr=0.05&momentum=0.8&opt_4=sgd&lr_4=3",
    "surface=bowl&cond=50&rand=1&seed=7&steps=120&opt_2=adamw&lr_2=0.1&weight_decay_2=0.05&opt_3=off",
])
def test_script_prints_what_the_page_computes(query):
    expected = _expected(query)
    got = printed(run_script(export("gd", query).source()))
    assert expected, "the link runs no optimizer"
    for name, value in expected.items():
        assert got[name] == pytest.approx(float(value), **TOL), name
    assert not {k for k in got if k.startswith("opt")} - set(expected), "the script printed runs the page has not"


def test_divergence_is_reproduced_not_an_error():
    # η = 0.21 > 2/κ on the bowl: the page reports a divergence; so must the script.
    query = "surface=bowl&cond=10&steps=100&opt=sgd&lr=0.21&opt_2=off&opt_3=off&opt_4=off"
    got = printed(run_script(export("gd", query).source()))
    expected = _expected(query)
    assert "opt1 diverged at step" in expected
    assert got["opt1 diverged at step"] == expected["opt1 diverged at step"]


def test_bad_link_gives_problems_and_code_for_the_values_used():
    script = export("gd", "steps=abc&lr=-3&opt_2=nope&noise=99")
    assert len(script.problems) == 4, script.problems
    assert "noise=10" in script.query and "steps=300" in script.query
    got = printed(run_script(script.source()))
    for name, value in _expected(script.query).items():
        assert got[name] == pytest.approx(float(value), **TOL), name


def test_zero_steps_exports_code_that_says_so():
    out = run_script(export("gd", "steps=0").source())
    assert "Zero steps: nothing moves." in out and "opt1" not in out


def _base() -> dict[str, str]:
    # Every setting matters here: a bowl (κ), noise > 0 (the seed), a fixed start (x0, y0).
    return {"surface": "bowl", "noise": "0.1", "steps": "60", "at": "40"}


def test_every_declared_parameter_reaches_the_code():
    base = _base()
    view = read_settings(base).view
    for name, s in settings_of(GdView).items():
        param = s.url or name
        changed = {**base, param: other_value(GdView, name, view[name])}
        assert export("gd", changed).source() != export("gd", base).source(), param
    for i in range(SLOTS):
        for name, s in settings_of(SlotConfig).items():
            # the slot's optimizer must have the hyperparameter for it to matter
            opt = next((o for o in OPTIMIZERS if name in OPTIMIZERS[o].hyper), "adam")
            slot_base = {**base, "opt" + sfx(i): opt if name not in ("opt", "lr") else "adam"}
            values = read_settings(slot_base).slot_values[i]
            changed = {**slot_base, name + sfx(i): other_value(SlotConfig, name, values[name])}
            assert export("gd", changed).source() != export("gd", slot_base).source(), name + sfx(i)
    assert OFF in settings_of(SlotConfig)["opt"].options()


@pytest.mark.slow  # a Jupyter kernel start: ~15 s on a busy machine
def test_notebook_runs_headless_and_prints_the_same():
    query = "steps=20&opt_3=off&opt_4=off"
    cells = run_notebook(export("gd", query).notebook())
    got = printed("".join(cells))
    for name, value in _expected(query).items():
        assert got[name] == pytest.approx(float(value), **TOL), name
    assert math.isfinite(got["opt1 final loss"])


@pytest.mark.slow  # the page in AppTest plus the script: ~20 s on a busy machine
def test_the_page_panel_shows_this_script_and_it_prints_the_pages_lines():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parent.parent
    link = {"surface": "beale", "steps": "80", "opt": "adam", "lr": "0.05", "opt_2": "momentum", "lr_2": "0.05",
            "opt_3": "off", "opt_4": "sgd", "lr_4": "0.9"}
    at = AppTest.from_file(str(root / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/10_gd.py")
    for key, value in link.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    panel = [c.value for c in at.code]
    assert [p.rstrip("\n") for p in panel] == [export("gd", link).source().rstrip("\n")]  # the page link's export
    # The page's result lines ("**label**: ended at ...") are the script's.
    page_lines = {m.value.split("**", 1)[1].replace("**", "") for m in at.markdown
                  if "ended at" in m.value or "diverged at step" in m.value}
    out = run_script(panel[0])
    script_lines = {line for line in out.splitlines() if not line.startswith(" ")}
    assert page_lines == script_lines and len(page_lines) == 3
