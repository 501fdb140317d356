"""The /transfer page's exported code against the core, on a few photos of the real birds.

The script runs in a fresh process without this project, on a small copy of
``../shared/birds/cub100`` (3 species x 8 photos, copied into a temporary folder). It must
pick the same photos and split as ``dltl_core.birds``, compute the same features as a bare
timm forward of the core's backbone, and train the same linear head and fine-tuning as
``dltl_core.transfer.run_transfer`` for the same settings.

Tolerances: features to 1e-4 (the core decodes through its own image reader, batches
differently and, on the default route, runs the last stages on cached activations: the
same operations, float-rounded in another order). The training then does the same ops in
the same order (seed, initial weights, batch order, Adam, dropout draws), so losses agree
to 1e-3 and validation accuracies exactly (3 photos: one prediction flips it by 1/3, and
the features' rounding moves no prediction).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from dltl_core import backbones as bk
from dltl_core.birds import load_birds, split_indices
from dltl_core.codegen import _birds, export
from dltl_core.features import pooled_features
from dltl_core.images import open_rgb
from dltl_core.transfer import TransferConfig, finetune_default_config, run_transfer
from tests.codegen_util import printed, run_script


@pytest.fixture(scope="module")
def few_birds(birds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 species x 8 photos of the real data, in a temporary folder (never the repo)."""
    root = tmp_path_factory.mktemp("birds")
    for species in sorted(p for p in birds_dir.iterdir() if p.is_dir())[:3]:
        (root / species.name).mkdir()
        for photo in sorted(species.iterdir())[:8]:
            shutil.copy(photo, root / species.name / photo.name)
    return root


@pytest.fixture(scope="module")
def backbone() -> bk.Backbone:
    return bk.create_backbone()


def _run(query: str, folder: Path, monkeypatch: pytest.MonkeyPatch, cwd: Path) -> dict[str, float]:
    monkeypatch.setenv("BIRDS_DIR", str(folder))
    return printed(run_script(export("transfer", query).source(), cwd=cwd, timeout=600))


@pytest.mark.slow
@pytest.mark.parametrize("query", ["", "k=2&cap=5&seed=3"])
def test_script_reproduces_the_pages_features_head_and_finetuning(query, few_birds, backbone, monkeypatch,
                                                                   tmp_path) -> None:
    s, _ = _birds.read_settings(dict(p.split("=") for p in query.split("&")) if query else {})
    out = _run(query, few_birds, monkeypatch, tmp_path)
    birds = load_birds(few_birds, str(s.k), s.cap)
    tr, va = split_indices(birds.labels, 0.2, s.seed)
    assert out["species"] == len(birds.species)
    assert (out["training photos"], out["validation photos"]) == (len(tr), len(va))

    saved = torch.load(tmp_path / "bird_features.pt", weights_only=False)
    assert [Path(f).name for f in saved["files"]] == [Path(f).name for f in birds.files]
    with torch.inference_mode():  # the bare timm forward of the page's backbone
        x = torch.stack([backbone.transform(open_rgb(f)) for f in birds.files])
        bare = pooled_features(backbone.model, x)
    torch.testing.assert_close(saved["features"], bare, atol=1e-4, rtol=1e-4)

    base = dict(data=str(few_birds), species=str(s.k), max_per_species=s.cap, seed=s.seed)
    linear = run_transfer(TransferConfig(**base, mode="linear", feature_map="none"), backbone=backbone)
    assert out["linear head validation accuracy"] == pytest.approx(linear.val_accuracy, abs=1e-6)
    assert out["linear head final training loss"] == pytest.approx(linear.history[-1]["train_loss"], abs=1e-3)
    fine = run_transfer(finetune_default_config(**base, feature_map="none"), backbone=backbone)
    assert out["fine-tuning validation accuracy"] == pytest.approx(fine.val_accuracy, abs=1e-6)
    assert out["fine-tuning final training loss"] == pytest.approx(fine.history[-1]["train_loss"], abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("make, message", [
    (lambda root: root / "missing", "Cannot read the folder: bird folder not found"),
    (lambda root: root, "This folder has 1 species with photos; a classifier needs at least 2"),
])
def test_bad_folder_gives_the_pages_message_and_a_clean_exit(make, message, few_birds, tmp_path) -> None:
    import subprocess
    import sys

    one = tmp_path / "one"
    shutil.copytree(next(few_birds.iterdir()), one / "only_species")
    script = tmp_path / "transfer.py"
    script.write_text(export("transfer", "").source())
    from tests.codegen_util import _env

    env = {**_env(), "BIRDS_DIR": str(make(one))}
    proc = subprocess.run([sys.executable, "-I", str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr


def _body(script) -> str:
    return "\n".join(c.text for c in script.cells)


def test_every_setting_changes_the_code() -> None:
    """Every declared setting of the page (``TransferView``) and the backbone reach the code."""
    from dltl_core.settings import settings_of
    from dltl_core.transfer_view import TransferView
    from tests.codegen_util import other_value

    view = TransferView()
    base = _body(export("transfer", ""))  # the cells, not the header that quotes the link
    for name, s in settings_of(TransferView).items():
        param = s.url or name
        link = {param: other_value(TransferView, name, getattr(view, name))}
        if name == "augment":  # augmentation only acts where photos are trained on: end to end
            link["ft_way"] = "full"
            assert _body(export("transfer", link)) != _body(export("transfer", {"ft_way": "full"})), param
            continue
        assert _body(export("transfer", link)) != base, param
    assert _body(export("transfer", {"bb": "resnet18"})) != base


def test_bad_link_is_read_as_the_page_reads_it() -> None:
    script = export("transfer", "k=1&cap=abc&bb=nope")
    assert script.query.startswith("k=2&cap=40&seed=0&") and script.query.endswith("&bb=efficientnet_lite0")
    assert len(script.problems) == 3
