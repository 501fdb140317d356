"""Every "what to notice" sentence a page states is true of the numbers the page shows.

The sentences that are computed from the data (``range_test_story``, ``depth_claims``,
``gradient_story``) are checked against an independent reading of the same numbers; the
fixed ones are checked at the page's defaults (and the extremes of its sliders).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from dltl_core import calibration
from dltl_core.lessons import layers as ly
from dltl_core.lessons.softmax import confidence_sweep, gradient_story, softmax_losses
from dltl_core.lr_range import RangeTestConfig, RangeTestResult, lr_range_test, range_test_story, suggest_lr
from dltl_core.optim import OPTIMIZERS
from dltl_ui.views import LayersView, LossView, LrView


# --- /lr: "the suggested η is where the smoothed loss falls fastest, before its minimum" ---

def _window_slopes(lr: np.ndarray, smooth: np.ndarray, half: int = 2) -> np.ndarray:
    """Least-squares slope of the smoothed loss against log10 η over 2 * half + 1 points."""
    x, out = np.log10(lr), np.full(len(smooth), np.nan)
    for i in range(half, len(smooth) - half):
        out[i] = np.polyfit(x[i - half:i + half + 1], smooth[i - half:i + half + 1], 1)[0]
    return out


@pytest.fixture(scope="module")
def range_tests() -> dict[str, RangeTestResult]:
    return {name: lr_range_test(RangeTestConfig(optimizer=name, batch_size=LrView.bs)) for name in OPTIMIZERS}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_suggested_lr_is_the_steepest_fall_before_the_minimum(range_tests, name):
    r = range_tests[name]
    lowest = int(np.argmin(r.smooth))
    assert r.suggested is not None
    k = int(np.flatnonzero(r.lr == r.suggested)[0])
    assert k < lowest and r.suggested < r.lr_at_min  # never the minimum itself (Adam's marker sat there)
    slopes = _window_slopes(r.lr, r.smooth)
    steepest = np.nanmin(slopes[:lowest])
    assert slopes[k] < 0 and slopes[k] <= 0.75 * steepest, (slopes[k], steepest)
    assert "falls fastest" in range_test_story(r)


def test_range_test_story_names_only_what_the_curve_did(range_tests):
    adam = range_tests["adam"]
    assert adam.stopped_at is not None and "exploding" in range_test_story(adam)
    # The same curve cut before its rise: no explosion is claimed.
    cut = int(np.argmin(adam.smooth)) + 1
    calm = replace(adam, lr=adam.lr[:cut], loss=adam.loss[:cut], smooth=adam.smooth[:cut], stopped_at=None)
    assert "exploding" not in range_test_story(calm) and "falls fastest" in range_test_story(calm)
    # A loss that only rises: no suggestion and no story of a fall.
    rising = np.linspace(2.3, 9.0, 40)
    lr = np.logspace(-4, 1, 40)
    assert suggest_lr(lr, rising) is None
    flat = replace(adam, lr=lr, loss=rising, smooth=rising, suggested=None, stopped_at=None)
    assert "falls fastest" not in range_test_story(flat)


# --- /layers: deep linear = one linear map; where the ReLU networks' lead is real ---

@pytest.fixture(scope="module")
def layers_defaults() -> ly.LayersResult:
    return ly.compare_layers(epochs=LayersView.epochs, seed=LayersView.seed, seeds=LayersView.seeds)


def test_layers_deep_linear_net_agrees_with_the_converged_linear_map(layers_defaults):
    res = layers_defaults
    acc = res.models.pivot_table(index="seed", columns="model", values="val_acc")
    deep = ly.DEEP_LINEAR.format(depth=3)
    assert len(acc) == LayersView.seeds >= 3
    assert abs((acc[deep] - acc[ly.LINEAR_MAP]).mean()) <= 2 * res.noise
    assert all(its < ly.LBFGS_MAX_ITER for its in res.lbfgs_iterations)  # converged, not cut off
    assert res.collapsed_acc == pytest.approx(res.linear_acc, abs=1 / res.n_val)
    assert "within noise of the converged linear map" in ly.depth_claims(res)[0]


def test_layers_cnn_beats_every_linear_map_on_every_seed(layers_defaults):
    res = layers_defaults
    acc = res.models.pivot_table(index="seed", columns="model", values="val_acc")
    lead = acc["CNN (ReLU)"] - acc[ly.LINEAR_MAP]
    assert (lead > 0).all() and lead.mean() > res.noise
    assert any("CNN (ReLU) beats the best linear map on every one of 3 seeds" in c for c in ly.depth_claims(res))


def test_layers_claims_change_when_the_numbers_disagree(layers_defaults):
    res = layers_defaults
    m = res.models.copy()
    deep = ly.DEEP_LINEAR.format(depth=3)
    m.loc[m.model == deep, "val_acc"] -= 0.06  # an under-trained deep linear net
    m.loc[m.model == "CNN (ReLU)", "val_acc"] = m.loc[m.model == ly.LINEAR_MAP, "val_acc"].to_numpy()
    claims = ly.depth_claims(replace(res, models=m))
    assert "has not converged" in claims[0]
    assert any("CNN (ReLU)'s lead over the best linear map is within noise" in c for c in claims)
    assert ly.depth_claims(replace(res, models=m[m.model != ly.LINEAR_MAP])) == []  # no data, no claim


# --- /loss: softmax, the gradients, "confidently wrong" ---

def test_loss_softmax_caption_holds_at_the_defaults_and_extremes():
    d = LossView()
    for logits, t in ((d.logits, 1.0), ([8.0, -8.0, 8.0], 0.1), ([-8.0, 8.0], 5.0)):
        p = np.array(softmax_losses(logits, 0, t)["probs"])
        assert ((p > 0) & (p < 1)).all()  # never exactly 0 or 1 (float64)
        raised = np.array(softmax_losses([logits[0] + 1.0, *logits[1:]], 0, t)["probs"])
        assert (raised[1:] < p[1:]).all()  # raising one logit takes from all the others
    sharp, flat = (max(softmax_losses(d.logits, 0, t)["probs"]) for t in (0.5, 3.0))
    assert sharp > max(softmax_losses(d.logits, 0, 1.0)["probs"]) > flat  # low T sharpens, high flattens


def test_loss_gradient_caption_is_the_gradient_shown():
    d = LossView()
    for t in (d.T, 0.5):
        out = softmax_losses(d.logits, d.target, t)
        p, onehot = np.array(out["probs"]), np.eye(d.k)[d.target]
        assert np.allclose(out["grad_ce"], (p - onehot) / t)  # (p - t)/T, as the caption says
        story = gradient_story(out, d.target, t)
        assert ("p − t" in story) and (("T = 0.5" in story) == (t == 0.5))
        ratio = max(map(abs, out["grad_ce"])) / max(map(abs, out["grad_mse"]))
        assert f"{ratio:.1f}× smaller" in story and ratio > 2
    confident = softmax_losses([8.0, -8.0], 0, 0.5)
    assert "about zero" in gradient_story(confident, 0, 0.5)


@pytest.mark.parametrize("k", [2, 6])
def test_loss_confidently_wrong_captions(k):
    sweep = confidence_sweep(num_classes=k)
    ce, mse = (sweep[sweep.loss == name].sort_values("gap", ascending=False) for name in ("cross-entropy", "MSE"))
    assert np.all(np.diff(ce.value) > 0) and ce.value.iloc[-1] > 9  # grows without bound
    assert mse.value.max() <= 1 and mse.value.iloc[-1] - mse.value.iloc[-20] < 1e-3  # saturates
    assert ce.grad.iloc[-1] > 0.99  # the gradient tends to 1
    assert mse.grad.iloc[-1] < 0.01 * mse.grad.max()  # MSE's vanishes


# --- time estimates: a prediction corrected by what this machine took ---

def test_calibration_corrects_a_prediction_by_the_median_of_recent_runs(tmp_path):
    path = tmp_path / "calibration.json"
    assert calibration.estimate("job", 10.0, path) == 10.0  # nothing measured yet
    for actual in (25.0, 30.0, 29.0):
        calibration.record("job", 10.0, actual, path)
    assert calibration.factor("job", path) == pytest.approx(2.9)
    assert calibration.estimate("job", 4.0, path) == pytest.approx(11.6)
    assert calibration.estimate("other", 4.0, path) == 4.0  # kinds do not mix
    for bad in ((0.0, 5.0), (5.0, -1.0), (5.0, math.inf), (1.0, 1e6)):
        calibration.record("job", *bad, path)
    assert calibration.factor("job", path) == pytest.approx(2.9)  # nonsense is ignored
    for k in range(2 * calibration.KEEP):
        calibration.record("job", 1.0, 1.0, path)
    assert calibration.factor("job", path) == 1.0 and len(json.loads(path.read_text())["job"]) == calibration.KEEP
    path.write_text("{not json")
    assert calibration.factor("job", path) == 1.0  # a damaged file is a fresh start, not an error


def test_layers_estimate_is_measured_here_and_scales_with_the_budget():
    from dltl_core.lessons import lesson_jobs

    epoch_s, linear_s = lesson_jobs._layers_probe()
    assert epoch_s > 0 and linear_s > 0
    one, three = lesson_jobs.predicted_seconds_layers(10, 1), lesson_jobs.predicted_seconds_layers(10, 3)
    assert three - lesson_jobs.JOB_START_SECONDS == pytest.approx(3 * (one - lesson_jobs.JOB_START_SECONDS))


# --- /gd: each preset's sentence holds for the runs it draws ---

def _preset_runs(preset: str) -> tuple[list, object]:
    from dltl_core.descend import DescentConfig, descend
    from dltl_core.surfaces import create_surface
    from dltl_ui.gd_state import OFF, PRESETS, SLOTS, hyper_defaults

    p = PRESETS[preset][1]
    runs = []
    for i in range(SLOTS):
        s = "" if i == 0 else f"_{i + 1}"
        name = p.get("opt" + s)
        if name in (None, OFF):
            continue
        defaults = hyper_defaults(name)
        hyper = {h: p.get(h + s, defaults[h]) for h in OPTIMIZERS[name].hyper}
        runs.append(descend(DescentConfig(surface=p["surface"], optimizer=name, lr=p["lr" + s], hyper=hyper,
                                          steps=p["steps"], start=(p["x0"], p["y0"]), noise=p.get("noise", 0.0),
                                          condition=p.get("cond", 10.0))))
    return runs, create_surface(p["surface"], p.get("cond", 10.0))


def _steps_to(run, surface, gap: float = 1e-2) -> float:
    below = np.flatnonzero(run.loss - surface.f_min < gap)
    return float(below[0]) if len(below) else math.inf


def _nearest_minimum(run, surface) -> int:
    return int(np.linalg.norm(np.asarray(surface.minima) - run.trajectory[-1], axis=1).argmin())


def test_gd_preset_momentum_overshoots():
    (sgd, m9, m99), bowl = _preset_runs("Momentum overshoots")
    assert _steps_to(m9, bowl) < _steps_to(sgd, bowl)  # 0.9 is faster than plain SGD
    assert m99.trajectory[:, 0].max() > 2.0  # 0.99 rolls far past the minimum at x = 0 ...
    assert np.sign(np.diff(m99.trajectory[:, 0])).tolist().count(-1) > 20  # ... and comes back


def test_gd_preset_adam_on_rosenbrock():
    (sgd, adam_small, adam_big, momentum), surface = _preset_runs("Adam on Rosenbrock")
    for run in (sgd, adam_small, adam_big, momentum):
        assert run.loss[30] < 0.5 * run.loss[0]  # everyone drops to the valley floor (loss ~ (1 - x)²) at once
    assert min(sgd.loss[-1], adam_small.loss[-1]) - surface.f_min > 1  # still far along the floor
    assert max(adam_big.loss[-1], momentum.loss[-1]) - surface.f_min < 1e-2


def test_gd_preset_escaping_a_saddle():
    (sgd, momentum, rmsprop, adam), _ = _preset_runs("Escaping a saddle")
    lingers = [int((np.abs(r.trajectory[:, 1]) < 0.1).sum()) for r in (sgd, momentum, adam)]
    assert lingers[0] > 2 * max(lingers[1:])  # plain SGD lingers on the ridge


def test_gd_preset_zig_zag_in_a_narrow_valley():
    (sgd, momentum, nesterov, adam), bowl = _preset_runs("Zig-zag in a narrow valley")
    assert all(_steps_to(sgd, bowl) > _steps_to(r, bowl) for r in (momentum, nesterov, adam))
    steep = np.diff(sgd.trajectory[:20, 1])
    assert (np.sign(steep[1:]) != np.sign(steep[:-1])).sum() >= 10  # SGD zig-zags across the steep direction


def test_gd_preset_a_step_too_far():
    (slow, fast, edge, over), bowl = _preset_runs("A step too far")
    assert 2 / bowl_condition() == pytest.approx(0.2)
    assert over.diverged_at is not None and all(r.diverged_at is None for r in (slow, fast, edge))
    steep = np.diff(edge.trajectory[:, 1])
    assert (np.sign(steep[1:]) != np.sign(steep[:-1])).mean() > 0.9  # just below 0.2: it oscillates


def bowl_condition() -> float:
    from dltl_ui.gd_state import PRESETS

    return PRESETS["A step too far"][1]["cond"]


def test_gd_preset_same_start_different_minima():
    runs, surface = _preset_runs("Same start, different minima")
    assert len({_nearest_minimum(r, surface) for r in runs}) >= 3


def test_gd_preset_rugged_landscape():
    runs, surface = _preset_runs("Rugged landscape")
    ends = [_nearest_minimum(r, surface) for r in runs]
    assert len(set(ends)) == len(runs)  # each in a different dip
    deepest = int(np.argmin(surface.minima_values))
    assert [e == deepest for e in ends] == [False, False, False, True]  # only Adam with η = 1


def test_gd_preset_noisy_gradients():
    (sgd, *_), surface = _preset_runs("Noisy gradients")
    from dltl_core.descend import descend

    still = descend(sgd.config.replace(noise=0.0))
    assert still.loss[-1] - surface.f_min > 0.1  # on the ridge the true gradient never pushes it off
    assert sgd.loss[-1] - surface.f_min < 1e-2  # the noise does


def test_gd_legend_names_the_hyperparameter_that_differs():
    from dltl_ui.gd_view import distinguish

    runs, _ = _preset_runs("Momentum overshoots")
    labels = [label for _, label, _ in distinguish([(i, f"{i + 1}. {r.config.optimizer}", r.config)
                                                      for i, r in enumerate(runs)])]
    assert labels[1].endswith("β 0.9") and labels[2].endswith("β 0.99") and labels[0] == "1. sgd"


# --- legends you can read ---

def test_transfer_split_legend_draws_a_solid_and_a_dashed_stroke():
    import re

    import vl_convert

    from dltl_ui.transfer_charts import curves_by_epoch, curves_frame

    hist = [{"epoch": e, "elapsed": e, "train_acc": 0.5, "val_acc": 0.4, "train_loss": 1, "val_loss": 1}
            for e in (1, 2)]
    svg = vl_convert.vegalite_to_svg(curves_by_epoch(curves_frame({"linear": hist, "finetune": hist})).to_json())
    symbols = re.findall(r'<path transform="translate\(11\.5,11\.5\)" d="M-10,0L10,0"[^>]*>', svg)
    assert len(symbols) == 2
    assert all('stroke="#333333"' in s and "transparent" not in s for s in symbols)
    assert {re.search(r'stroke-dasharray="([^"]*)"', s).group(1) for s in symbols} == {"1,0", "4,2"}


def test_transfer_captions_name_only_the_modes_that_ran():
    from types import SimpleNamespace

    from dltl_ui.transfer_charts import epoch_story, time_story

    hist = [{"val_acc": a} for a in (0.60, 0.85, 0.91, 0.92, 0.92)]
    linear = SimpleNamespace(history=hist, train_seconds=0.8, seconds=5.0, species=list("abcdefghij"))
    story = epoch_story({"linear": linear})
    assert "within 2 points of its best (92%) after 3 of 5 epochs" in story and "scratch" not in story
    scratch = SimpleNamespace(history=hist[:2], val_accuracy=0.14, n_train=300, seconds=120.0,
                              species=list("abcdefghij"))
    assert "from scratch reaches 14% against 10% for guessing" in epoch_story({"linear": linear, "scratch": scratch})
    assert "What to notice" not in time_story({"linear": linear})  # nothing to compare yet
    assert "From scratch 120 s" in time_story({"linear": linear, "scratch": scratch})
    assert epoch_story({}) == ""  # no run, no claim
