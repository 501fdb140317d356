"""The transfer-learning lab notebook runs headless (nbclient) on a few real bird photos.

A tiny copy of ``../shared/birds/cub100`` (2 species x 6 photos, in a temporary folder):
every cell must run, and the notebook must print the core's linear-probe accuracy and
fine-tuning accuracy for the same settings (the notebook's code is the /transfer script's,
whose tolerances ``tests/test_codegen_transfer.py`` states: the accuracies are equal).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dltl_core.codegen import export
from dltl_core.transfer import TransferConfig, finetune_default_config, run_transfer
from tests.codegen_util import printed, run_notebook


@pytest.mark.slow
def test_lab_notebook_runs_and_prints_the_pages_accuracies(birds_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "birds"
    for species in sorted(p for p in birds_dir.iterdir() if p.is_dir())[:2]:
        (root / species.name).mkdir(parents=True)
        for photo in sorted(species.iterdir())[:6]:
            shutil.copy(photo, root / species.name / photo.name)
    monkeypatch.setenv("BIRDS_DIR", str(root))
    script = export("lab-transfer", "k=2&cap=6&seed=1")
    nb = script.notebook()
    assert any(c.cell_type == "markdown" and "softmax" in c.source for c in nb.cells)
    work = tmp_path / "work"
    work.mkdir()
    out = printed("".join(run_notebook(nb, cwd=work, timeout=600)))
    base = dict(data=str(root), species="2", max_per_species=6, seed=1, feature_map="none")
    linear = run_transfer(TransferConfig(**base, mode="linear"))
    fine = run_transfer(finetune_default_config(**base))
    assert out["frozen backbone + linear head, validation accuracy"] == pytest.approx(linear.val_accuracy, abs=1e-6)
    assert out["fine-tuned last stages, validation accuracy"] == pytest.approx(fine.val_accuracy, abs=1e-6)
    assert (work / "bird_features.pt").is_file()


def test_lab_follows_the_transfer_page_settings() -> None:
    lab, page = export("lab-transfer", "k=4&cap=10&seed=2"), export("transfer", "k=4&cap=10&seed=2")
    assert lab.query == page.query
    page_code = [c.text for c in page.cells if c.kind == "code"]
    lab_code = [c.text for c in lab.cells if c.kind == "code"]
    assert lab_code[:len(page_code)] == page_code  # the same steps, then the comparison
    assert export("lab-transfer", "k=5").source() != export("lab-transfer", "").source()
