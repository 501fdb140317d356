"""Weights students keep: train --save writes one weights_only file; predict --load reproduces it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from dltl_core import checkpoint
from dltl_core.cli import main

CLASSES = ("cat", "ship", "truck")


@pytest.fixture(scope="module")
def image_folders(cifar_dir, tmp_path_factory) -> Path:
    """imgs/train/<class> (40 each) and imgs/val/<class> (20 each): real CIFAR-10 photos, copied."""
    root = tmp_path_factory.mktemp("imgs")
    for c in CLASSES:
        files = sorted((cifar_dir / "train" / c).iterdir())[:60]
        for split, part in (("train", files[:40]), ("val", files[40:])):
            (root / split / c).mkdir(parents=True)
            for f in part:
                shutil.copy(f, root / split / c / f.name)
    return root


def _run(argv: list[str], capsys) -> tuple[int, dict]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def saved(image_folders, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "cnn.pt"
    code = main(["train", "--data", "folder", "--folder", str(image_folders / "train"), "--val-folder",
                 str(image_folders / "val"), "--model", "cnn", "--epochs", "4", "--batch-size", "16",
                 "--lr", "3e-3", "--save", str(path), "--quiet", "--json"])
    assert code == 0
    return path


def test_saved_file_loads_with_weights_only(saved):
    ck = torch.load(saved, weights_only=True)
    assert ck["format"] == "dltl-model" and ck["classes"] == list(CLASSES)
    assert ck["versions"]["torch"] == torch.__version__.split("+")[0] or ck["versions"]["torch"]
    assert ck["config"]["epochs"] == 4 and ck["metrics"]["val_samples"] == 60
    assert all(isinstance(v, torch.Tensor) for v in ck["state_dict"].values())


def test_predict_reproduces_the_saved_accuracy(saved, image_folders, capsys):
    code, out = _run(["predict", "--load", str(saved), str(image_folders / "val"), "--json"], capsys)
    assert code == 0 and out["labelled"] == 60
    ck = checkpoint.load(saved)
    assert out["accuracy"] == pytest.approx(ck["metrics"]["val_acc"], abs=1e-9)
    assert out["accuracy"] > 1 / 3  # it learned something beyond chance on 3 classes


def test_predict_single_file_matches_the_rebuilt_model(saved, image_folders, capsys):
    one = sorted((image_folders / "val" / "ship").iterdir())[0]
    code, out = _run(["predict", "--load", str(saved), str(one), "--json"], capsys)
    assert code == 0 and out["n"] == 1 and "true" not in out["predictions"][0]
    # The same photo through a model rebuilt by hand from the file: same probabilities.
    from PIL import Image

    x = torch.from_numpy(__import__("numpy").array(Image.open(one).convert("RGB"))).permute(2, 0, 1)
    model = checkpoint.build_model(checkpoint.load(saved))
    with torch.no_grad():
        p = model(x[None].float() / 255).softmax(1)[0]
    assert out["predictions"][0]["confidence"] == pytest.approx(float(p.max()), abs=1e-5)
    assert out["predictions"][0]["predicted"] == CLASSES[int(p.argmax())]


def test_to_bytes_equals_the_saved_file_content(saved):
    ck = checkpoint.load(saved)
    again = checkpoint.load(checkpoint.to_bytes(ck))
    assert again["metrics"] == ck["metrics"]
    for k, v in ck["state_dict"].items():
        assert torch.equal(v, again["state_dict"][k])


@pytest.mark.parametrize("content", [b"", b"root:x:0:0:root:/root:/bin/bash\n", b"PK\x03\x04garbage"])
def test_not_a_model_is_one_clear_message(tmp_path, capsys, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    code, out = _run(["predict", "--load", str(bad), str(tmp_path), "--json"], capsys)
    assert code == 2 and "not a DLTL model file" in out["error"]


def test_a_torch_file_of_something_else_is_refused(tmp_path, capsys):
    other = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, other)
    code, out = _run(["predict", "--load", str(other), str(tmp_path), "--json"], capsys)
    assert code == 2 and "not a DLTL model file" in out["error"]


def test_unwritable_save_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, out = _run(["train", "--epochs", "1", "--save", str(blocker / "m.pt"), "--json"], capsys)
    assert code == 2 and "--save" in out["error"]
    code, out = _run(["train", "--epochs", "1", "--save", str(tmp_path), "--json"], capsys)
    assert code == 2 and "folder" in out["error"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["linear", "finetune"])
def test_transfer_model_reproduces_its_validation_accuracy(mode, birds_dir, tmp_path, capsys):
    """The saved network (backbone + trained head) on the run's own validation photos gives
    the validation accuracy the run reported."""
    from dltl_core.transfer import TransferConfig, load_split

    path = tmp_path / f"{mode}.pt"
    extra = ["--epochs", "1", "--image-size", "64", "--unfreeze-blocks", "1"] if mode == "finetune" else []
    code, out = _run(["transfer", "--data", str(birds_dir), "--species", "3", "--max-per-species", "10",
                      "--mode", mode, *extra, "--save", str(path), "--quiet", "--json"], capsys)
    assert code == 0, out
    birds, _, va = load_split(TransferConfig(data=str(birds_dir), species="3", max_per_species=10))
    val_dir = tmp_path / "val"
    for p in va:
        f = Path(birds.files[p])
        (val_dir / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, val_dir / f.parent.name / f.name)
    code, pred = _run(["predict", "--load", str(path), str(val_dir), "--json"], capsys)
    assert code == 0 and pred["labelled"] == out["n_val"]
    assert pred["accuracy"] == pytest.approx(out["val_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_search_fixed_save_predicts_like_the_network(cifar_dir, tmp_path, capsys):
    """A CIFAR architecture saved by search --fixed: predict gives the rebuilt network's own
    probabilities (CIFAR mean/std normalisation included)."""
    from PIL import Image

    from dltl_core.data.cifar import CLASSES, normalize_batch

    path = tmp_path / "r18.pt"
    code, out = _run(["search", "--fixed", "batch_size=16", "--arch", "resnet18", "--widths", "0.125",
                      "--epochs", "1", "--data-dir", str(cifar_dir), "--max-per-class", "8", "--save", str(path),
                      "--quiet", "--json"], capsys)
    assert code == 0, out
    assert out["runs"][0]["saved"] == str(path)
    ck = checkpoint.load(path)
    assert ck["classes"] == list(CLASSES) and ck["architecture"]["name"] == "resnet18"
    files = sorted((cifar_dir / "train" / "ship").iterdir())[100:104]
    code, pred = _run(["predict", "--load", str(path), *map(str, files), "--json"], capsys)
    assert code == 0 and pred["n"] == len(files)
    x = torch.stack([torch.from_numpy(__import__("numpy").array(Image.open(f).convert("RGB"))).permute(2, 0, 1)
                     for f in files])
    with torch.no_grad():
        probs = checkpoint.build_model(ck)(normalize_batch(x, False)).softmax(1)
    for row, p in zip(pred["predictions"], probs):
        assert row["predicted"] == CLASSES[int(p.argmax())]
        assert row["confidence"] == pytest.approx(float(p.max()), abs=1e-5)
