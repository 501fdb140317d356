"""The computations behind the training pages, checked against PyTorch and against the lesson."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dltl_core.lessons import batches, layers, overfit, softmax
from dltl_core.models import create_model


# --- softmax & cross-entropy (micrograd-style: the same numbers as torch.nn.functional) ---

def test_softmax_losses_match_torch():
    logits, target, temp = [2.0, -1.0, 0.5, 3.0], 2, 0.7
    out = softmax.softmax_losses(logits, target, temp)
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    p = F.softmax(z / temp, dim=0)
    assert out["probs"] == pytest.approx(p.tolist(), rel=1e-12)
    ce = -torch.log(p[target])
    assert out["cross_entropy"] == pytest.approx(ce.item(), rel=1e-12)
    (g,) = torch.autograd.grad(ce, z)
    assert out["grad_ce"] == pytest.approx(g.tolist(), rel=1e-9)
    # The textbook identity: d CE / dz = (p - onehot) / T.
    onehot = torch.zeros(4, dtype=torch.float64)
    onehot[target] = 1
    assert out["grad_ce"] == pytest.approx(((p - onehot) / temp).tolist(), rel=1e-9)
    assert out["mse"] == pytest.approx(((p - onehot) ** 2).mean().item(), rel=1e-12)
    assert sum(out["probs"]) == pytest.approx(1.0)


def test_softmax_is_stable_for_huge_logits_and_rejects_bad_input():
    out = softmax.softmax_losses([1000.0, 0.0], 1)
    assert math.isfinite(out["cross_entropy"]) and out["cross_entropy"] == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="temperature"):
        softmax.softmax_losses([1.0, 2.0], 0, temperature=0.0)
    with pytest.raises(ValueError, match="target"):
        softmax.softmax_losses([1.0, 2.0], 2)
    with pytest.raises(ValueError, match="two classes"):
        softmax.softmax_losses([1.0], 0)


def test_lecture_example():
    ex = softmax.losses_of_probs([0.2, 0.8], [0, 1])
    assert ex["cross_entropy"] == pytest.approx(-math.log(0.8))
    assert ex["mse"] == pytest.approx(0.04)
    with pytest.raises(ValueError, match="sum to 1"):
        softmax.losses_of_probs([0.5, 0.8], [0, 1])


def test_confidently_wrong_cross_entropy_keeps_pushing_mse_does_not():
    sweep = softmax.confidence_sweep(num_classes=3, points=101, max_logit_gap=12.0)
    ce = sweep[sweep.loss == "cross-entropy"]
    mse = sweep[sweep.loss == "MSE"]
    wrong_ce, wrong_mse = ce.iloc[-1], mse.iloc[-1]  # true-class logit 12 below the others
    assert wrong_ce.value > 10 and wrong_mse.value < 1
    assert wrong_ce.grad > 0.99 and wrong_mse.grad < 1e-3
    # Cross-entropy's loss grows monotonically as the mistake gets more confident.
    assert ce.value.is_monotonic_increasing


# --- layers ---

def test_parameter_counts_match_torch_modules():
    for shape in [(1, 8, 8), (3, 32, 32)]:
        c, h, w = shape
        conv = torch.nn.Conv2d(c, 16, 3, padding=1)
        assert layers.conv_params(shape, 16) == sum(p.numel() for p in conv.parameters())
        fc = torch.nn.Linear(c * h * w, 16 * h * w)
        assert layers.fc_params(shape, 16) == sum(p.numel() for p in fc.parameters())
    table = layers.param_table()
    assert (table["ratio"] > 100).all() and table["ratio"].is_monotonic_increasing


def test_deep_linear_network_collapses_to_one_linear_map():
    model = create_model("mlp", depth=3, width=32, activation="linear", seed=0).eval()
    x = torch.randn(50, 1, 8, 8)
    single = layers.collapse_linear(model)
    assert torch.allclose(model(x), single(x), atol=1e-5)


@pytest.fixture(scope="module")
def layers_result():
    return layers.compare_layers(epochs=6, seed=0, seeds=1)


def test_compare_layers(layers_result):
    res = layers_result
    m = res.models.set_index("model")
    cnn, mlp = m.loc["CNN (ReLU)"], m.loc["MLP (ReLU)"]
    assert cnn.parameters < mlp.parameters / 3
    assert cnn.val_acc > 0.9 and mlp.val_acc > 0.9
    assert res.collapsed_acc == pytest.approx(res.linear_acc, abs=1 / 359)
    assert set(res.images.digit) == set(range(10))
    assert res.filters.shape[0] == 16 * 9
    assert set(res.maps.layer) == {1, 2}
    assert (res.maps[res.maps.layer == 1].value >= 0).all()  # after ReLU


# --- mini-batches ---

def test_epoch_step_counts():
    counts = batches.epoch_step_counts(1438, [1, 32, 1438], 3)
    assert counts.steps_per_epoch.tolist() == [1438, 45, 1]
    assert counts.total_steps.tolist() == [4314, 135, 3]
    assert counts.last_batch.tolist() == [1, 1438 - 44 * 32, 1438]
    with pytest.raises(ValueError, match="between 1 and"):
        batches.epoch_step_counts(1438, [2000], 1)


def test_batch_size_sweep_measures_speed_and_steps():
    calls = []
    res = batches.batch_size_sweep((16, 512), epochs=2, progress=lambda i, n, b: calls.append(b))
    assert calls == [16, 512]
    small, big = res.iloc[0], res.iloc[1]
    assert small.steps_per_epoch == 90 and big.steps_per_epoch == 3
    assert small.seconds_per_epoch > big.seconds_per_epoch  # many small steps cost more wall time
    assert small.val_acc > big.val_acc  # same epochs: far more updates
    with pytest.raises(ValueError, match="between 1 and"):
        batches.batch_size_sweep((5000,), epochs=1)


def test_gradient_spread_shrinks_like_one_over_sqrt_b():
    points, summary = batches.gradient_spread((8, 128), draws=24, warmup_epochs=1)
    s = summary.set_index("batch_size")
    assert s.loc[128, "mean_cosine"] > s.loc[8, "mean_cosine"]
    ratio = s.loc[8, "rms_rel_error"] / s.loc[128, "rms_rel_error"]
    assert 2.5 < ratio < 6.5  # sqrt(16) = 4, with sampling noise
    assert points.groupby("batch_size").along.mean().between(0.6, 1.4).all()


# --- overfitting ---

def _val_rise(history):
    best = history.val_loss.idxmin()
    return history.val_loss.iloc[-1] / history.val_loss.iloc[best], best


def test_presets_reproduce_the_three_regimes():
    under = overfit.run_overfit(overfit.PRESETS["underfit"])
    good = overfit.run_overfit(overfit.PRESETS["good fit"])
    over = overfit.run_overfit(overfit.PRESETS["overfit"])
    # Overfitting: validation loss rises well above its minimum while training loss keeps falling.
    rise, best = _val_rise(over.history)
    assert rise > 2.0
    assert over.history.train_loss.iloc[-1] < over.history.train_loss.iloc[best] / 3
    assert over.final["train_acc"] > 0.95 and over.gap_loss > 0.5
    # Good fit: no such rise, a small gap, the best validation accuracy of the three.
    rise, _ = _val_rise(good.history)
    assert rise < 1.15 and abs(good.gap_loss) < 0.1
    assert good.final["val_acc"] > max(under.final["val_acc"], over.final["val_acc"])
    # Underfitting: both losses stay high, no gap.
    assert under.history.train_loss.iloc[-1] > 1.3 * good.history.train_loss.iloc[-1]
    assert under.history.val_loss.min() > 1.2 * good.history.val_loss.min()
    assert under.final["val_acc"] < good.final["val_acc"] - 0.03
    assert under.gap_loss < 0.05
    assert under.boundary is not None and len(under.boundary) == 60 * 60


def test_early_stopping_on_the_overfit_preset_keeps_the_best_epoch():
    cfg = overfit.PRESETS["overfit"].replace(early_stopping=True, patience=10, epochs=200)
    res = overfit.run_overfit(cfg)
    assert res.stopped_early and len(res.history) == res.best_epoch + 10
    assert res.final["val_loss"] == res.history.val_loss.min()


def test_overfit_data_and_knobs():
    cfg = overfit.OverfitConfig(train_size=50, label_noise=0.2, epochs=3)
    (xt, yt), (xv, yv) = overfit.make_data(cfg)
    (xt0, yt0), (xv0, yv0) = overfit.make_data(cfg.replace(label_noise=0.0, train_size=200))
    assert len(xt) == 50 and len(xv) == overfit.VAL_2D
    assert torch.equal(xv, xv0) and torch.equal(yv, yv0)  # the validation set never changes
    assert torch.equal(xt, xt0[:50]) and (yt != yt0[:50]).sum().item() == 10
    res = overfit.run_overfit(overfit.OverfitConfig(data="digits", train_size=300, epochs=3))
    assert res.boundary is None and res.val_samples == 359 and len(res.history) == 3
    with pytest.raises(ValueError, match="training-set size"):
        overfit.make_data(cfg.replace(train_size=10_000))
    diverged = overfit.run_overfit(overfit.OverfitConfig(lr=1e4, epochs=20))
    assert diverged.diverged_at is not None and len(diverged.history) == diverged.diverged_at


def test_seeded_overfit_runs_are_reproducible():
    cfg = overfit.OverfitConfig(epochs=10, dropout=0.3)
    a, b = overfit.run_overfit(cfg), overfit.run_overfit(cfg)
    assert a.history.val_loss.tolist() == b.history.val_loss.tolist()
    c = overfit.run_overfit(cfg.replace(dropout=0.0))
    assert c.history.val_loss.tolist() != a.history.val_loss.tolist()


def test_digits_match_scikit_learns_loader():
    from sklearn.datasets import load_digits as sk_load_digits

    from dltl_core.data.digits import load_digits

    x, y = load_digits()
    ref = sk_load_digits()
    assert torch.equal(x[:, 0], torch.from_numpy(ref.images.astype("float32") / 16.0))
    assert torch.equal(y, torch.from_numpy(ref.target.astype("int64")))
