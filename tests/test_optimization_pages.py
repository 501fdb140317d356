"""The gradient-descent and learning-rate pages, driven through Streamlit's AppTest."""

from __future__ import annotations


import altair as alt
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dltl_core.descend import DescentConfig, descend_many
from dltl_core.lessons.learning_rate import log_grid, lr_sweep
from dltl_core.lr_range import RangeTestConfig, lr_range_test
from dltl_core.surfaces import create_surface
from dltl_ui.gd import charts as gc
from dltl_ui.lr import charts as lc
from tests.conftest import open_page

GD, LR = "pages/10_gd.py", "pages/11_lr.py"


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def statuses(at: AppTest) -> list[str]:
    """The per-optimizer result lines under the gradient-descent charts."""
    return [m.value for m in at.markdown if "ended at" in m.value or "diverged at step" in m.value]


def charts(at: AppTest) -> list:
    return at.get("vega_lite_chart")


def test_gd_default_view():
    at = open_page(GD)
    assert not at.error and not at.warning
    assert at.title[0].value == "Gradient descent"
    assert len(statuses(at)) == 4 and len(charts(at)) == 2
    # The link now describes the view.
    assert at.query_params["surface"] == "rosenbrock" and at.query_params["opt_4"] == "adam"


def test_gd_deep_link_sets_the_widgets():
    at = open_page(GD, query={"lr": "0.42", "surface": "bowl", "cond": "25", "opt_2": "adam", "lr_2": "0.3",
                              "steps": "120"})
    assert at.number_input(key="lr").value == pytest.approx(0.42)
    assert at.selectbox(key="surface").value == "bowl" and at.slider(key="cond").value == 25
    assert at.selectbox(key="opt_2").value == "adam" and at.number_input(key="lr_2").value == pytest.approx(0.3)
    assert at.slider(key="steps").value == 120 and at.slider(key="at").value == 120
    assert not at.warning and not at.error


@pytest.mark.parametrize("params, expect", [
    ({"lr": "0"}, "learning rate must be a positive number"),
    ({"lr": "1e9"}, "outside"),
    ({"lr": "abc"}, "not a number"),
    ({"steps": "-5"}, "outside"),
    ({"surface": "moon"}, "not one of"),
    ({"x0": "1e30"}, "outside"),
    ({"opt_3": "lbfgs", "cond": "nan"}, "not one of"),
    ({"seed": "x", "rand": "maybe"}, "not an integer"),
])
def test_gd_bad_links_give_messages_not_tracebacks(params, expect):
    at = open_page(GD, query=params)
    assert not at.error, [e.value for e in at.error]
    assert expect in texts(at.warning), texts(at.warning)
    assert charts(at), "the rest of the page keeps working"


def test_gd_lr_zero_and_huge_keep_the_other_runs():
    at = open_page(GD, query={"lr": "0"})
    assert len(statuses(at)) == 3  # the other three still run
    at = open_page(GD, query={"lr": "1e9"})
    assert at.number_input(key="lr").value == 100.0  # clamped into the widget's range
    assert any("diverged at step 1" in s for s in statuses(at))
    at.number_input(key="lr").set_value(0.0).run()
    assert not at.exception and "learning rate must be a positive number" in texts(at.warning)


def test_gd_zero_steps():
    at = open_page(GD, query={"steps": "0"})
    assert "Zero steps" in texts(at.info) and not at.error
    assert len(charts(at)) == 1  # the landscape is still drawn
    at.slider(key="steps").set_value(50).run()
    assert not at.exception and len(statuses(at)) == 4


@pytest.mark.parametrize("preset", ["Momentum overshoots", "Adam on Rosenbrock", "Escaping a saddle",
                                    "A step too far", "Same start, different minima", "Rugged landscape",
                                    "Noisy gradients", "Zig-zag in a narrow valley"])
def test_gd_presets(preset):
    at = open_page(GD)
    at.selectbox(key="preset").set_value(preset).run()
    assert not at.exception and not at.error and not at.warning
    assert statuses(at)
    if preset == "A step too far":  # η = 0.21 > 2/κ on the bowl
        assert at.selectbox(key="surface").value == "bowl"
        assert sum("diverged" in s for s in statuses(at)) == 1
    if preset == "Escaping a saddle":
        assert at.query_params["surface"] == "saddle"
    if preset in ("Same start, different minima", "Rugged landscape"):  # the optimizers part ways
        ends = {s.split("ended at ")[1].split(")")[0] for s in statuses(at)}
        assert len(ends) >= 3, ends


def test_gd_widgets():
    at = open_page(GD)
    at.selectbox(key="opt_3").set_value("adam").run()  # RMSprop -> Adam: Adam's own defaults
    assert at.slider(key="beta2_3").value == pytest.approx(0.999)
    at.selectbox(key="surface").set_value("himmelblau").run()
    assert (at.slider(key="x0").value, at.slider(key="y0").value) == create_surface("himmelblau").start
    at.slider(key="at").set_value(10).run()  # scrub
    assert not at.exception and at.query_params["at"] == "10"
    at.selectbox(key="opt_4").set_value("off").run()
    assert len(statuses(at)) == 3
    at.slider(key="noise").set_value(2.0).run()
    at.toggle(key="rand").set_value(True).run()
    seed = at.number_input(key="seed").value
    at.button[0].click().run()  # new random start
    assert at.number_input(key="seed").value == seed + 1
    assert "start w₀ = (" in texts(at.caption)
    assert not at.exception and not at.error


def test_lr_page():
    at = open_page(LR)
    assert not at.error and not at.warning
    assert at.title[0].value == "Learning rate"
    # 4 regimes + sweep + η curves + loss + 6 schedules + range test
    assert len(charts(at)) == 4 + 1 + 2 + 6 + 1
    assert "Suggested η" in texts(at.markdown)
    at.selectbox(key="lr_surface").set_value("rosenbrock").run()
    at.selectbox(key="lr_opt").set_value("adam").run()
    assert not at.exception and not at.error
    at.multiselect(key="lr_scheds").set_value(["constant", "cosine"]).run()
    assert len(charts(at)) == 4 - 1 + 1 + 2 + 2 + 1  # Adam on Rosenbrock has no "too large" run
    at.number_input(key="lr_lr").set_value(0.0).run()
    assert "learning rate must be a positive number" in texts(at.warning)
    at.number_input(key="lr_lr").set_value(0.1).run()
    at.multiselect(key="lr_scheds").set_value([]).run()
    assert "Pick at least one schedule" in texts(at.info)
    at.selectbox(key="lr_rt_opt").set_value("adam").run()
    assert not at.exception and not at.error


def test_lr_page_bad_links():
    at = open_page(LR, query={"steps": "0", "lr": "-3", "scheds": "cosine,bogus", "bs": "1e9", "surface": "x"})
    assert not at.error, [e.value for e in at.error]
    assert "Zero steps" in texts(at.info)
    assert "outside" in texts(at.warning) and "unknown entries" in texts(at.warning)


def test_charts_are_valid_vega_lite():
    """The pages render charts without schema validation (speed); validate each kind here once."""
    surface = create_surface("rosenbrock")
    runs = descend_many([DescentConfig(optimizer="sgd", lr=1e9, steps=20), DescentConfig(steps=20)])
    labels = ["a", "b"]
    xs, ys, z = surface.grid(20)
    grid = gc.surface_frame(xs, ys, z, surface.f_min, True)
    paths = gc.paths_frame(runs, labels, surface.f_min)
    sweep = pd.DataFrame([{"lr": p.lr, "gap": p.gap, "regime": p.regime}
                          for p in lr_sweep(DescentConfig(surface="bowl", optimizer="sgd", steps=30),
                                            log_grid(1e-3, 1, 6))])
    rt = lr_range_test(RangeTestConfig(batch_size=64))
    built = [
        gc.contour_chart(grid, paths, labels, xlim=surface.xlim, ylim=surface.ylim, minima=surface.minima, at=5,
                         notes=[("a", 0.0, 0.0, "x")], title="t", legend=False),
        gc.loss_chart(paths, labels, at=5),
        lc.sweep_chart(sweep, marked=[0.01]),
        lc.lr_chart(pd.DataFrame({"run": "a", "step": range(5), "lr": [0.1] * 5}), ["a"]),
        lc.range_test_chart(pd.DataFrame({"lr": rt.lr, "loss": rt.loss, "smooth": rt.smooth}), rt.suggested),
    ]
    with alt.data_transformers.disable_max_rows():
        for chart in built:
            spec = chart.to_dict(validate=True)  # FastLayerChart only changes the default
            assert spec.get("layer") or spec.get("mark")


def test_results_kept_on_disk_are_keyed_by_the_code(tmp_path):
    """/lr keeps its sweep on disk (Streamlit's cache folder outlives an upgrade): the key holds
    the core's code version, so a moved class (``SweepPoint``) never meets an old pickle."""
    import inspect

    from dltl_core.cache import code_version, tree_hash
    from dltl_ui.lr import view as lr_view

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    before = tree_hash(tmp_path)
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert tree_hash(tmp_path) != before  # any edit of the code gives another version
    assert len(code_version()) == 12
    source = inspect.getsource(lr_view)
    assert "sweep(base, code_version())" in source and "range_test(rcfg, code_version())" in source
