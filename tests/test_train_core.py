"""The training core on real data: digits, 2-D sets, image folders; fit's promises."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dltl_core.data import load_digits, load_image_folder, make_2d, split_tensors, train_val_split
from dltl_core.models import count_parameters, create_model
from dltl_core.train import Callback, StopFlag, TrainConfig, YieldWhile, evaluate, fit, predict

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits()
    return split_tensors(x, y, 0.2, seed=0)


def test_digits_are_real_scaled_images():
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert sorted(y.unique().tolist()) == list(range(10))
    # Fresh copies: a caller's in-place change does not leak into the next load.
    x.zero_()
    assert float(load_digits()[0].max()) == 1.0


def test_split_is_seeded_disjoint_and_complete():
    tr, va = train_val_split(1797, 0.2, seed=3)
    assert len(va) == 359 and len(tr) == 1797 - 359
    assert sorted(torch.cat([tr, va]).tolist()) == list(range(1797))
    assert torch.equal(va, train_val_split(1797, 0.2, seed=3)[1])
    assert not torch.equal(va, train_val_split(1797, 0.2, seed=4)[1])
    assert len(train_val_split(10, 0.0)[1]) == 0
    with pytest.raises(ValueError, match="validation fraction"):
        train_val_split(10, 1.0)
    with pytest.raises(ValueError, match="no training sample"):
        train_val_split(1, 0.9)


def test_default_mlp_reaches_95_percent_on_digits(digits):
    train, val = digits
    result = fit(create_model("mlp", seed=0), train, val, TrainConfig(epochs=30, seed=0))
    assert result.best_val_acc >= 0.95, result.best_val_acc
    assert len(result.history) == 30 and result.diverged_at is None
    first, last = result.history[0], result.history[-1]
    assert last.train_loss < first.train_loss / 5
    assert set(last.as_dict()) == {"epoch", "train_loss", "val_loss", "train_acc", "val_acc", "lr",
                                   "seconds", "samples_per_second", "elapsed"}
    assert last.samples_per_second > 0 and last.lr == pytest.approx(1e-3)
    # elapsed grows epoch by epoch and covers at least the epochs' own time
    elapsed = [r.elapsed for r in result.history]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= sum(r.seconds for r in result.history) * 0.99


def test_small_cnn_learns_digits(digits):
    train, val = digits
    result = fit(create_model("cnn", seed=0), train, val, TrainConfig(epochs=8, lr=3e-3))
    assert result.best_val_acc >= 0.9


def test_early_stopping_restores_best_weights(digits):
    train, val = digits
    # A wide net with a large lr on a small train set: validation loss turns up early.
    small = (train[0][:300], train[1][:300])
    config = TrainConfig(epochs=60, lr=3e-3, patience=4, seed=1)
    result = fit(create_model("mlp", width=256, seed=1), small, val, config)
    assert result.stopped_early and len(result.history) < 60
    best = result.history[result.best_epoch - 1]
    assert best.val_loss == min(r.val_loss for r in result.history)
    assert len(result.history) == result.best_epoch + 4
    loss, acc = evaluate(result.model, val, batch_size=256)
    assert loss == pytest.approx(best.val_loss, rel=1e-5)
    assert acc == pytest.approx(best.val_acc)
    assert result.best_val_acc == best.val_acc


def test_seeded_run_is_reproducible_and_seed_matters(digits):
    train, val = digits
    config = TrainConfig(epochs=3, seed=5)
    a = fit(create_model("mlp", dropout=0.3, seed=5), train, val, config)
    b = fit(create_model("mlp", dropout=0.3, seed=5), train, val, config)
    c = fit(create_model("mlp", dropout=0.3, seed=6), train, val, TrainConfig(epochs=3, seed=6))
    keys = ("train_loss", "val_loss", "train_acc", "val_acc")
    hist = lambda r: [[getattr(e, k) for k in keys] for e in r.history]  # noqa: E731
    assert hist(a) == hist(b)
    assert hist(a) != hist(c)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


def test_diverging_lr_stops_and_keeps_history(digits):
    train, val = digits
    result = fit(create_model("mlp", seed=0), train, val,
                 TrainConfig(epochs=20, optimizer="sgd", lr=1e4, seed=0))
    assert result.diverged_at is not None and result.diverged_at <= 20
    assert len(result.history) == result.diverged_at
    last = result.history[-1]
    assert not math.isfinite(last.train_loss) or last.train_loss > 10 * math.log(10)
    # Adam at lr 10 on tanh units: the loss stays finite but far above the start; one
    # step below the limit it trains.
    bad = fit(create_model("mlp", activation="tanh", seed=0), train, val,
              TrainConfig(epochs=3, lr=10.0, seed=0))
    assert bad.diverged_at == 1 and len(bad.history) == 1
    ok = fit(create_model("mlp", activation="tanh", seed=0), train, val,
             TrainConfig(epochs=3, lr=1e-2, seed=0))
    assert ok.diverged_at is None and len(ok.history) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs"),
    ({"batch_size": 0}, "batch size"),
    ({"lr": 0.0}, "learning rate"),
    ({"lr": float("nan")}, "learning rate"),
    ({"optimizer": "nope"}, "optimizer"),
    ({"schedule": "nope"}, "schedule"),
    ({"patience": 0}, "patience"),
])
def test_bad_configs_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_bad_data_is_a_clear_error(digits):
    train, val = digits
    model = create_model("mlp", seed=0)
    with pytest.raises(ValueError, match="larger than the training set"):
        fit(model, (train[0][:10], train[1][:10]), val, TrainConfig(batch_size=64))
    with pytest.raises(ValueError, match="empty"):
        fit(model, (train[0][:0], train[1][:0]), val, TrainConfig())
    with pytest.raises(ValueError, match="labels"):
        fit(model, (train[0], train[1][:5]), val, TrainConfig())
    empty_val = (val[0][:0], val[1][:0])
    with pytest.raises(ValueError, match="early stopping needs a validation set"):
        fit(model, train, empty_val, TrainConfig(epochs=1, patience=2))
    # Without early stopping, an empty validation split is simply no validation.
    result = fit(model, train, empty_val, TrainConfig(epochs=2))
    assert all(math.isnan(r.val_loss) for r in result.history)
    assert result.best_epoch == 2 and math.isnan(result.best_val_acc)


def test_callbacks_see_every_epoch_and_can_stop(digits):
    train, val = digits

    class Recorder(Callback):
        def __init__(self):
            self.events = []

        def on_fit_start(self, trainer):
            self.events.append("start")

        def on_epoch_end(self, trainer, record):
            self.events.append(record.epoch)
            if record.epoch == 3:
                trainer.should_stop = True

        def on_fit_end(self, trainer, result):
            self.events.append("end")

    rec = Recorder()
    result = fit(create_model("mlp", seed=0), train, val, TrainConfig(epochs=10), callbacks=[rec])
    assert rec.events == ["start", 1, 2, 3, "end"]
    assert result.interrupted and len(result.history) == 3

    # A Stop button pressed mid-epoch: the run ends after that step, the partial epoch is kept.
    steps = []
    flag = StopFlag(lambda: len(steps) >= 5)
    probe = type("Probe", (Callback,), {"on_train_batch_end": lambda self, t, s, loss: steps.append(s)})()
    result = fit(create_model("mlp", seed=0), train, val, TrainConfig(epochs=10), callbacks=[probe, flag])
    assert result.interrupted and len(result.history) == 1 and len(steps) == 5


def test_yielding_pauses_the_run_but_keeps_its_result_and_a_share_of_the_time(digits):
    train, val = digits
    config = TrainConfig(epochs=3, seed=1)
    plain = fit(create_model("mlp", seed=1), train, val, config)
    idle = YieldWhile(lambda: False)
    assert fit(create_model("mlp", seed=1), train, val, config, callbacks=[idle]) and idle.waited_s == 0.0
    polls = []
    busy = YieldWhile(lambda: polls.append(1) or True, share=0.5)  # someone is always waiting
    paused = fit(create_model("mlp", seed=1), train, val, config, callbacks=[busy])
    # The same steps: the same curves and weights, only later.
    assert [r.val_loss for r in paused.history] == [r.val_loss for r in plain.history]
    for a, b in zip(paused.model.state_dict().values(), plain.model.state_dict().values()):
        assert torch.equal(a, b)
    # It paused while asked, but kept its share (half here) of the wall time.
    assert polls and busy.waited_s > 0
    assert busy.waited_s <= paused.seconds * 0.5 + 0.05, (busy.waited_s, paused.seconds)
    assert busy.waited_s >= paused.seconds * 0.25, (busy.waited_s, paused.seconds)
    with pytest.raises(ValueError, match="share"):
        YieldWhile(lambda: True, share=0.0)


def test_schedule_weight_decay_and_param_groups(digits):
    train, val = digits
    model = create_model("mlp", seed=0)
    groups = [{"params": model.net[1].parameters(), "lr": 1e-4},
              {"params": [p for m in list(model.net)[2:] for p in m.parameters()]}]
    config = TrainConfig(epochs=3, schedule="cosine", weight_decay=1e-4, optimizer="adamw", lr=3e-3)
    result = fit(model, train, val, config, param_groups=groups)
    lrs = [r.lr for r in result.history]
    assert lrs[0] > lrs[1] > lrs[2]  # cosine decay, stepped per optimizer step
    assert result.best_val_acc > 0.8


def test_predict_gives_probabilities(digits):
    train, val = digits
    result = fit(create_model("mlp", seed=0), train, val, TrainConfig(epochs=5))
    probs = predict(result.model, val[0])
    assert probs.shape == (len(val[0]), 10)
    assert torch.allclose(probs.sum(1), torch.ones(len(probs)), atol=1e-5)
    acc = (probs.argmax(1) == val[1]).float().mean().item()
    assert acc == pytest.approx(evaluate(result.model, val)[1])


def test_uint8_images_and_batch_transform(cifar_dir):
    data = load_image_folder(cifar_dir / "train", classes=["airplane", "frog"], max_per_class=150)
    assert data.x.dtype == torch.uint8 and data.x.shape == (300, 3, 32, 32)
    train, val = split_tensors(data.x, data.y, 0.2, seed=0)
    calls = []

    def transform(x, training):
        calls.append((x.dtype, training))
        x = x.float() / 255
        return x.flip(3) if training else x

    model = create_model("cnn", in_channels=3, num_classes=2, seed=0)
    result = fit(model, train, val, TrainConfig(epochs=4, lr=3e-3), batch_transform=transform)
    assert {c for c in calls} == {(torch.uint8, True), (torch.uint8, False)}
    assert result.best_val_acc > 0.7  # planes vs frogs: colour alone goes a long way


def test_models_registry():
    assert count_parameters(create_model("mlp", in_features=64, depth=1, width=10)) == 64 * 10 + 10 + 10 * 10 + 10
    bn = create_model("mlp", depth=2, width=8, batchnorm=True, dropout=0.5)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in bn.modules())
    assert any(isinstance(m, torch.nn.Dropout) for m in bn.modules())
    a, b = create_model("cnn", seed=3), create_model("cnn", seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    maps = a.feature_maps(torch.zeros(2, 1, 8, 8))
    assert [m.shape for m in maps] == [(2, 16, 8, 8), (2, 32, 4, 4)]
    with pytest.raises(ValueError, match="unknown model"):
        create_model("transformer")
    with pytest.raises(ValueError, match="activation"):
        create_model("mlp", activation="swishy")


def test_synthetic_sets_are_seeded_and_label_noise_flips():
    for name in ("moons", "circles", "spirals", "xor"):
        x, y = make_2d(name, n=200, noise=0.1, seed=1)
        assert x.shape == (200, 2) and set(y.tolist()) == {0, 1}
        assert torch.equal(x, make_2d(name, n=200, noise=0.1, seed=1)[0])
        _, y_noisy = make_2d(name, n=200, noise=0.1, label_noise=0.2, seed=1)
        assert (y_noisy != y).sum().item() == 40
    with pytest.raises(ValueError, match="unknown data set"):
        make_2d("swiss")


def test_image_folder_skips_broken_files_with_reasons(tmp_path, birds_dir):
    species = sorted(p for p in birds_dir.iterdir() if p.is_dir())[:2]
    for sp in species:
        (tmp_path / sp.name).mkdir()
        for photo in sorted(sp.glob("*.jpg"))[:4]:
            shutil.copy(photo, tmp_path / sp.name / photo.name)
    good = sorted((tmp_path / species[0].name).glob("*.jpg"))[0].read_bytes()
    (tmp_path / species[0].name / "empty.jpg").write_bytes(b"")
    (tmp_path / species[0].name / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (tmp_path / species[1].name / "notes.jpg").write_text("not a photo")
    (tmp_path / species[1].name / "README.txt").write_text("hello")
    progress = []
    data = load_image_folder(tmp_path, size=48, progress=lambda d, t: progress.append((d, t)))
    assert data.classes == [sp.name for sp in species]
    assert data.x.shape == (8, 3, 48, 48) and data.x.dtype == torch.uint8
    assert data.y.tolist() == [0] * 4 + [1] * 4
    reasons = {Path(f).name: r for f, r in data.skipped}
    assert set(reasons) == {"empty.jpg", "truncated.jpg", "notes.jpg", "README.txt"}
    assert "not an image" in reasons["notes.jpg"] and "extension" in reasons["README.txt"]
    assert progress and progress[-1] == (11, 11)
    # Second load comes from the cache (no progress calls) with the same tensors.
    again = load_image_folder(tmp_path, size=48, progress=lambda d, t: progress.append("again"))
    assert "again" not in progress and torch.equal(again.x, data.x) and len(again.skipped) == 4
    # A changed file invalidates the cache.
    (tmp_path / species[0].name / "empty.jpg").write_bytes(good)
    assert len(load_image_folder(tmp_path, size=48)) == 9


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "cats").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        load_image_folder(tmp_path)
    (tmp_path / "cats" / "a.jpg").write_bytes(b"junk")
    with pytest.raises(ValueError, match="could be decoded"):
        load_image_folder(tmp_path)


def _cli(capsys, *args: str) -> tuple[int, dict]:
    from dltl_core.cli import main

    rc = main(["train", *args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


@pytest.mark.slow  # a fresh interpreter imports torch, torchvision and every command: ~10-30 s on 2 busy cores
def test_cli_train_json_keys(capsys):
    # The real entry point once, in a fresh interpreter...
    proc = subprocess.run([sys.executable, "-m", "dltl_core", "train", "--data", "digits", "--model", "mlp",
                           "--epochs", "3", "--seed", "0", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["history"]) == 3
    assert set(out["history"][0]) == {"epoch", "train_loss", "val_loss", "train_acc", "val_acc", "lr", "seconds"}
    assert 1 <= out["best_epoch"] <= 3
    assert out["val_acc"] == out["history"][out["best_epoch"] - 1]["val_acc"] > 0.5
    # ...and in this process: same seed, same curves.
    rc, again = _cli(capsys, "--data", "digits", "--model", "mlp", "--epochs", "3", "--seed", "0")
    assert rc == 0
    assert [h["val_loss"] for h in again["history"]] == pytest.approx([h["val_loss"] for h in out["history"]])
    rc, cnn = _cli(capsys, "--model", "cnn", "--epochs", "2", "--dropout", "0.2", "--batchnorm")
    assert rc == 0 and cnn["parameters"] > 0 and len(cnn["history"]) == 2


def test_cli_train_bad_input_and_offline_download(capsys):
    rc, out = _cli(capsys, "--batch-size", "5000")
    assert rc == 2 and "larger than the training set" in out["error"]
    rc, out = _cli(capsys, "--epochs", "0")
    assert rc == 2 and "epochs" in out["error"]
    rc, out = _cli(capsys, "--model", "cnn", "--data", "xor")
    assert rc == 2 and "needs images" in out["error"]
    rc, out = _cli(capsys, "--optimizer", "sgd", "--lr", "10000", "--epochs", "5")
    assert rc == 0 and out["diverged_at"] == len(out["history"])
    # This machine is offline (as classrooms often are): a clear message, not a traceback.
    rc, out = _cli(capsys, "--data", "fashion_mnist")
    assert rc == 2 and "Fashion-MNIST" in out["error"] and "digits" in out["error"]


def test_download_loader_offline_message(tmp_path):
    from dltl_core.data import load_download

    with pytest.raises(RuntimeError, match="downloading is off"):
        load_download("cifar10", root=tmp_path, download=False)
    with pytest.raises(ValueError, match="unknown data set"):
        load_download("imagenet", root=tmp_path)
