"""The /overfit page's exported script reproduces run_overfit on the CPU, epoch by epoch.

The script builds the same split, label noise, initial weights (seeded MLP), AdamW groups,
batch order and dropout masks as ``dltl_core.lessons.overfit.run_overfit`` and performs the
same operations in the same order on one CPU thread, so every printed number (8 significant
digits) equals the core's.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dltl_core.codegen import export
from dltl_core.codegen.overfit import FIELDS
from dltl_core.device import get_policy
from dltl_core.lessons.overfit import OverfitConfig, run_overfit
from dltl_core.query import read_query
from dltl_core.settings import settings_of
from tests.codegen_util import printed, run_notebook, run_script

EPOCH = re.compile(r"^epoch\s+(\d+)\s+train loss (\S+)\s+val loss (\S+)\s+train acc (\S+)\s+val acc (\S+)$",
                   re.MULTILINE)


def _epochs(out: str) -> list[tuple[str, ...]]:
    return [m.groups() for m in EPOCH.finditer(out)]


def _core(query: str):
    values, problems = read_query(OverfitConfig, dict(p.split("=") for p in query.split("&") if p), fields=FIELDS)
    return run_overfit(OverfitConfig(**values)), problems


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setenv("DLTL_DEVICE", "cpu")  # the comparison is on the CPU (the script trains there)
    assert get_policy().device.type == "cpu"


@pytest.mark.slow
@pytest.mark.parametrize("query", [
    "",  # the page's defaults: two moons, 80 points, 150 epochs
    "data=digits&train_size=200&depth=2&width=64&dropout=0.2&batchnorm=1&weight_decay=0.01&label_noise=0.1"
    "&early_stopping=1&patience=4&epochs=30&lr=0.003&seed=3",
])
def test_script_prints_the_core_curves(query):
    res, problems = _core(query)
    script = export("overfit", query)
    assert list(script.problems) == problems
    out = run_script(script.source())
    rows = _epochs(out)
    want = [(str(int(r.epoch)), f"{r.train_loss:.8g}", f"{r.val_loss:.8g}", f"{r.train_acc:.8g}", f"{r.val_acc:.8g}")
            for r in res.history.itertuples()]
    assert rows == want
    got = printed(out)
    assert got["best epoch"] == res.best_epoch
    assert got["parameters"] == res.parameters
    assert got["training samples"] == res.train_samples and got["validation samples"] == res.val_samples
    assert f"{got['validation accuracy']:.8g}" == f"{res.final['val_acc']:.8g}"
    assert f"{got['training loss']:.8g}" == f"{res.final['train_loss']:.8g}"
    assert got["gap (val - train loss)"] == pytest.approx(res.gap_loss, rel=1e-6)


@pytest.mark.slow
def test_a_diverging_rate_diverges_in_the_script_too():
    query = "data=digits&train_size=300&depth=3&width=256&lr=3&epochs=20"
    res, _ = _core(query)
    assert res.diverged_at is not None
    out = run_script(export("overfit", query).source())
    assert len(_epochs(out)) == res.diverged_at
    assert f"Diverged at epoch {res.diverged_at}" in out


def test_a_size_above_the_pool_is_clamped_as_the_page_slider_does():
    script = export("overfit", "data=moons&train_size=900")
    assert "TRAIN_SIZE = 600" in script.source() and not script.problems


def test_a_config_the_page_cannot_train_prints_its_message():
    from dltl_core.codegen.overfit import read, settings_cell, training_cells

    values, _, _ = read({})
    cells = training_cells(values, "The training-set size must be between 1 and 600 for Two moons, got 900.")
    source = "\n\n".join(c.text for c in cells)
    assert source.startswith(settings_cell(values).text) and "import torch" not in source
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.py"
        path.write_text(source)
        proc = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=120, cwd=tmp)
    assert proc.returncode == 1 and "got 900." in proc.stdout and "Traceback" not in proc.stderr


def _other(name: str, value):
    s = settings_of(OverfitConfig)[name]
    if isinstance(value, bool):
        return "0" if value else "1"
    if s.ticks:
        return str(next(t for t in s.ticks if t != value))
    if s.choices:
        return next(c for c in s.options() if c != value)
    if isinstance(value, float):
        return str(round(value + 0.1, 2))
    return str(value + 1)


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_changes_the_code(name):
    base = export("overfit", "").source()
    value = getattr(OverfitConfig(), name)
    changed = export("overfit", {name: _other(name, value)})
    assert not changed.problems
    assert changed.source() != base
    body = changed.source().split("# The page's settings", 1)[1].split("\n\n", 1)[1]
    assert name.upper() in body, f"{name} is declared but the script does not use it"


@pytest.mark.slow
def test_the_notebook_runs_headless_and_prints_the_same_run():
    query = "data=digits&train_size=60&epochs=3&dropout=0.1&seed=1"
    res, _ = _core(query)
    out = "".join(run_notebook(export("overfit", query).notebook(), timeout=300))
    assert [int(r[0]) for r in _epochs(out)] == list(res.history.epoch)
    assert f"{printed(out)['validation accuracy']:.8g}" == f"{res.final['val_acc']:.8g}"


@pytest.mark.slow
def test_the_page_panel_shows_the_links_export():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/23_overfit.py")
    at.query_params["lr"] = "abc"  # one message on the page, the same in the code's problems
    at.query_params["data"], at.query_params["train_size"] = "moons", "900"
    at.run()
    assert not at.exception
    assert any(e.label.startswith("PyTorch code") for e in at.expander)
    script = export("overfit", {"lr": "abc", "data": "moons", "train_size": "900"})
    assert any(script.problems[0] in w.value for w in at.warning)
    assert any(c.value.strip() == script.source().strip() for c in at.code)  # the panel's code is the link's export
