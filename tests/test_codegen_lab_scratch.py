"""The lab notebook "Train a full model from scratch", executed headless (nbclient).

Part 1 (the digits, the overfit page's knobs) is compared with ``run_overfit`` on the CPU:
the same operations in the same order, so the printed numbers are equal. Part 2 trains the
CNN on a tiny CIFAR-10 folder built from the shared *training* images (never a test set):
the test asserts that it trains (the training loss falls) and prints its accuracies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dltl_core.codegen import export
from dltl_core.codegen.lab_scratch import LAB_FIELDS, CifarLab, read
from dltl_core.lessons.overfit import OverfitConfig, run_overfit
from dltl_core.settings import settings_of
from tests.codegen_util import printed, run_notebook

CIFAR = Path(__file__).resolve().parents[1] / ".." / "shared" / "cifar10" / "train"
PER_CLASS = 12


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    """DATA_DIR with the first PER_CLASS training images of each class (links, nothing copied)."""
    if not CIFAR.is_dir():
        pytest.skip("the shared CIFAR-10 training images are not here")
    for cls in sorted(p for p in CIFAR.iterdir() if p.is_dir()):
        (tmp_path / cls.name).mkdir()
        for img in sorted(cls.glob("*.jpg"))[:PER_CLASS]:
            os.symlink(img, tmp_path / cls.name / img.name)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DLTL_DEVICE", "cpu")
    return tmp_path


@pytest.mark.slow
def test_the_lab_notebook_runs_and_part_one_is_the_pages_run(tiny_cifar):
    query = (f"data=digits&train_size=120&epochs=6&dropout=0.1&weight_decay=0.01&seed=2"
             f"&c10_per_class={PER_CLASS}&c10_epochs=4&c10_batch=16")
    knobs, cifar, problems, error = read(dict(p.split("=") for p in query.split("&")))
    assert not problems and not error
    script = export("lab-scratch", query)
    nb = script.notebook()
    assert any("J(W)" in c.source for c in nb.cells if c.cell_type == "markdown")
    got = printed("".join(run_notebook(nb, timeout=600)))
    res = run_overfit(OverfitConfig(**knobs))
    assert f"{got['validation accuracy']:.8g}" == f"{res.final['val_acc']:.8g}"
    assert f"{got['training loss']:.8g}" == f"{res.final['train_loss']:.8g}"
    assert got["best epoch"] == res.best_epoch
    n = 10 * PER_CLASS
    assert got["cifar validation images"] == round(n * 0.2) and got["cifar training images"] == n - round(n * 0.2)
    assert got["cifar last epoch training loss"] < got["cifar first epoch training loss"]  # it learns
    assert 0 <= got["cifar validation accuracy"] <= 1 and 0 <= got["cifar training accuracy"] <= 1


def test_a_2d_link_trains_the_digits_at_their_default_size():
    knobs, *_ = read({"data": "moons", "train_size": "80"})
    assert knobs["data"] == "digits" and knobs["train_size"] == 300


def test_the_lab_link_reads_back_to_the_same_notebook():
    script = export("lab-scratch", "data=digits&train_size=250&c10_epochs=3")
    assert export("lab-scratch", script.query).source() == script.source()


OTHER = {"label_noise": "0.2", "train_size": "250", "depth": "3", "width": "64", "dropout": "0.3",
         "weight_decay": "0.01", "batchnorm": "1", "early_stopping": "1", "patience": "7", "epochs": "20",
         "lr": "0.003", "seed": "5", "c10_per_class": "50", "c10_epochs": "3", "c10_lr": "0.01", "c10_batch": "32"}


@pytest.mark.parametrize("param", [*LAB_FIELDS, *(s.url for s in settings_of(CifarLab).values())])
def test_every_setting_changes_the_code(param):
    base = export("lab-scratch", "").source()
    changed = export("lab-scratch", {param: OTHER[param]})
    assert not changed.problems
    assert changed.source() != base
    name = param.upper()
    assert changed.source().count(name) >= 2, f"{param} is declared but the notebook does not use it"


@pytest.mark.slow
def test_a_missing_data_folder_is_one_message(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-folder"
    monkeypatch.setenv("DATA_DIR", str(missing))
    source = export("lab-scratch", "train_size=50&epochs=1").source()
    proc = subprocess.run([sys.executable, "-I", "-c", source], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 1 and f"DATA_DIR={str(missing)!r} is not a folder" in proc.stdout
    assert "Traceback" not in proc.stderr
