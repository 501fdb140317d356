"""Runs open in the tools students know: TensorBoard event files and Optuna's own API."""

from __future__ import annotations

import json

import optuna
import pytest

from dltl_core.cli import main


def _scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_train_writes_per_epoch_scalars_and_hparams(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    logdir = tmp_path / "tb"
    assert main(["train", "--data", "digits", "--epochs", "3", "--tensorboard", str(logdir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    scalars = _scalars(logdir)
    assert [s for s, _ in scalars["loss/train"]] == [1, 2, 3]
    assert [v for _, v in scalars["accuracy/val"]] == pytest.approx([h["val_acc"] for h in result["history"]])
    assert scalars["hparam/best_val_acc"][0][1] == pytest.approx(result["val_acc"])
    assert any(p.name.startswith("events.out.tfevents") for p in logdir.rglob("*"))


@pytest.mark.slow
def test_search_study_opens_with_optuna_and_tensorboard(tmp_path, cifar_dir, capsys):
    db = tmp_path / "runs.db"
    code = main(["search", "--arch", "resnet18", "--widths", "0.125", "--trials", "2", "--epochs", "1",
                 "--data-dir", str(cifar_dir), "--max-per-class", "8", "--batch-sizes", "16",
                 "--storage", f"sqlite:///{db}", "--study", "demo", "--pruner", "none",
                 "--tensorboard", str(tmp_path / "tb"), "--quiet", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    study = optuna.load_study(study_name="demo", storage=f"sqlite:///{db}")  # Optuna's own API
    assert len(study.trials) == 2
    assert {t.number for t in study.trials} == {t["trial"] for t in out["trials"]}
    for t in study.trials:
        assert t.user_attrs["record"]["arch"] == "resnet18"
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert _scalars(tmp_path / "tb" / f"trial-{t.number}")["accuracy/val"]
