"""The /batches page's exported script against ``dltl_core.lessons.batches`` on the CPU.

Step counts are exact. The sweep and the gradient spread are the core's computations in the
same order on one CPU thread, so accuracies and losses (8 significant digits) and the
gradient statistics (6 digits) are equal. Seconds per epoch are this machine's and are not
compared.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dltl_core.codegen import export
from dltl_core.codegen.batches import EMPTY, read
from dltl_core.codegen._page_views import views
from dltl_core.lessons.batches import batch_size_sweep, epoch_step_counts, gradient_spread
from dltl_core.settings import settings_of
from tests.codegen_util import printed, run_notebook, run_script

BatchesView = views().BatchesView
N_TRAIN = views().BATCHES_N_TRAIN


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setenv("DLTL_DEVICE", "cpu")


def _check(query: dict[str, str]) -> None:
    v, problems = read(query)
    script = export("batches", query)
    assert list(script.problems) == problems
    got = printed(run_script(script.source(), timeout=600))
    sizes = tuple(sorted(set(v["sizes"]) | ({v["extra"]} if v["extra"] else set())))
    for r in epoch_step_counts(N_TRAIN, sizes, v["epochs"]).itertuples():
        assert got[f"batch {r.batch_size} steps per epoch"] == r.steps_per_epoch
        assert got[f"batch {r.batch_size} steps in total"] == r.total_steps
        assert got[f"batch {r.batch_size} size of the last batch"] == r.last_batch
    for r in batch_size_sweep(sizes, epochs=v["epochs"]).itertuples():
        assert f"{got[f'batch {r.batch_size} val acc']:.8g}" == f"{r.val_acc:.8g}"
        assert f"{got[f'batch {r.batch_size} val loss']:.8g}" == f"{r.val_loss:.8g}"
        assert f"{got[f'batch {r.batch_size} train loss']:.8g}" == f"{r.train_loss:.8g}"
    usable = tuple(b for b in sizes if b < N_TRAIN) or (32,)
    _, summary = gradient_spread(usable)
    for r in summary.itertuples():
        assert f"{got[f'batch {r.batch_size} mean cosine with g']:.6g}" == f"{r.mean_cosine:.6g}"
        assert f"{got[f'batch {r.batch_size} rms relative error']:.6g}" == f"{r.rms_rel_error:.6g}"
        assert f"{got[f'batch {r.batch_size} predicted relative error']:.6g}" == f"{r.predicted_rel_error:.6g}"


@pytest.mark.slow
def test_script_matches_the_core_at_the_defaults():
    _check({})


@pytest.mark.slow
def test_script_matches_the_core_at_a_link():
    # 479 leaves a last batch of one sample (1438 = 3 x 479 + 1): both drop it.
    _check({"sizes": "64,1438", "extra": "479", "epochs": "2"})


def test_no_batch_size_gives_the_page_message():
    script = export("batches", {"sizes": "", "extra": "0"})
    assert script.problems == (EMPTY,)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.py"
        path.write_text(script.source())
        proc = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=120, cwd=tmp)
    assert proc.returncode == 1 and proc.stdout.strip() == EMPTY and "Traceback" not in proc.stderr


OTHER = {"sizes": "16,256", "extra": "100", "epochs": "7"}


@pytest.mark.parametrize("name", list(settings_of(BatchesView)))
def test_every_setting_changes_the_code(name):
    changed = export("batches", {name: OTHER[name]})
    assert not changed.problems
    assert changed.source() != export("batches", "").source()
    body = changed.source().split("# The page's settings", 1)[1].split("\n\n", 1)[1]
    assert name.upper() in body, f"{name} is declared but the script does not use it"


@pytest.mark.slow
def test_the_notebook_runs_headless():
    got = printed("".join(run_notebook(export("batches", {"sizes": "256,512", "epochs": "1"}).notebook(), timeout=600)))
    row = batch_size_sweep((256, 512), epochs=1).iloc[-1]
    assert got["batch 512 steps per epoch"] == 3
    assert f"{got['batch 512 val acc']:.8g}" == f"{row.val_acc:.8g}"
