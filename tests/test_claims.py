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
    from dltl_ui.gd.state import OFF, PRESETS, SLOTS, hyper_defaults

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
    from dltl_ui.gd.state import PRESETS

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
    from dltl_ui.gd.view import distinguish

    runs, _ = _preset_runs("Momentum overshoots")
    labels = [label for _, label, _ in distinguish([(i, f"{i + 1}. {r.config.optimizer}", r.config)
                                                      for i, r in enumerate(runs)])]
    assert labels[1].endswith("β 0.9") and labels[2].endswith("β 0.99") and labels[0] == "1. sgd"


# --- legends you can read ---

def test_transfer_split_legend_draws_a_solid_and_a_dashed_stroke():
    import re

    import vl_convert

    from dltl_ui.transfer.charts import curves_by_epoch, curves_frame

    hist = [{"epoch": e, "elapsed": e, "train_acc": 0.5, "val_acc": 0.4, "train_loss": 1, "val_loss": 1}
            for e in (1, 2)]
    svg = vl_convert.vegalite_to_svg(curves_by_epoch(curves_frame({"linear": hist, "finetune": hist})).to_json())
    symbols = re.findall(r'<path transform="translate\(11\.5,11\.5\)" d="M-10,0L10,0"[^>]*>', svg)
    assert len(symbols) == 2
    assert all('stroke="#333333"' in s and "transparent" not in s for s in symbols)
    assert {re.search(r'stroke-dasharray="([^"]*)"', s).group(1) for s in symbols} == {"1,0", "4,2"}


def test_transfer_captions_name_only_the_modes_that_ran():
    from types import SimpleNamespace

    from dltl_ui.transfer.charts import epoch_story, time_story

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


# --- /batches: the five captions, from the sweep and the gradient spread the page shows ---

@pytest.fixture(scope="module")
def batches_defaults():
    from dltl_core.lessons.batches import batch_size_sweep, gradient_spread
    from dltl_ui.views import BatchesView

    d = BatchesView()
    return d, batch_size_sweep(d.sizes, epochs=d.epochs), *gradient_spread(d.sizes)


def test_batches_captions_hold_at_the_defaults(batches_defaults):
    from dltl_core.lessons import batches_claims as bc
    from dltl_ui.views import BATCHES_N_TRAIN

    d, res, points, summary = batches_defaults
    small, large = res.iloc[0], res.iloc[-1]
    ratio = small.seconds_per_epoch / large.seconds_per_epoch
    speed = bc.speed_claim(res)
    assert f"{small.seconds_per_epoch:.3g} s" in speed and f"{large.seconds_per_epoch:.3g} s" in speed
    assert (f"{ratio:.0f}× faster" in speed) == (ratio >= 1.5)
    assert "180 at b = 8 and 3 at b = 512" in bc.steps_claim(res, BATCHES_N_TRAIN)  # ⌈1438/8⌉, ⌈1438/512⌉
    # Accuracy: the largest batch against the best, with a 2-SE test on 359 validation images.
    best = res.loc[res.val_acc.idxmax()]
    se = lambda p: math.sqrt(p * (1 - p) / 359)  # noqa: E731
    behind = best.val_acc - large.val_acc > 2 * math.hypot(se(best.val_acc), se(large.val_acc))
    acc = bc.accuracy_claim(res, d.epochs)
    assert behind and f"reach {large.val_acc:.1%} against {best.val_acc:.1%}" in acc  # 5 epochs: b = 512 lags
    # Spread: the rms distance from g shrinks with the batch; the error follows 1/√b within 25%.
    dist = np.hypot(points.along - 1, points.across).pow(2).groupby(points.batch_size).mean() ** 0.5
    assert dist.is_monotonic_decreasing and "small batches scatter" in bc.scatter_claim(points)
    off = (summary.rms_rel_error / summary.predicted_rel_error - 1).abs().max()
    assert off <= 0.25 and "about half the noise" in bc.noise_claim(summary)


def test_batches_captions_change_when_the_numbers_disagree(batches_defaults):
    from dltl_core.lessons import batches_claims as bc

    d, res, points, summary = batches_defaults
    caught_up = res.assign(val_acc=res.val_acc.max())  # long training: every size at the best accuracy
    assert "within noise" in bc.accuracy_claim(caught_up, 30) and "too few" not in bc.accuracy_claim(caught_up, 30)
    gpu = res.assign(seconds_per_epoch=0.01)  # a device where the step overhead does not dominate
    assert "about the same" in bc.speed_claim(gpu) and "faster" not in bc.speed_claim(gpu)
    off = summary.assign(rms_rel_error=summary.rms_rel_error.iloc[0])  # noise that does not shrink
    assert "half the noise" not in bc.noise_claim(off) and "departs" in bc.noise_claim(off)
    assert bc.speed_claim(res.iloc[:1]) == "" and bc.accuracy_claim(res.iloc[:0], 5) == ""  # no data, no claim


# --- /arch: where the parameters and the FLOPs sit, for every network ---

@pytest.mark.parametrize("width, names", [
    (1.0, ("resnet18", "densenet121", "vgg16_bn")),  # one of each family, at the page's default width
    pytest.param(0.125, None, marks=pytest.mark.slow),  # every network (about 20 s)
    pytest.param(1.0, None, marks=pytest.mark.slow)])
def test_arch_layer_claim_names_the_measured_shares(width, names):
    import pandas as pd

    from dltl_core import arch_claims, profile

    for name in names or pd.DataFrame(profile.compare_archs(width)).name:
        t = pd.DataFrame(profile.layer_table(profile.meta_arch(name, width)))
        big = t[t.output.str.fullmatch(r"\d+x32x32")]  # the input's resolution
        claim = arch_claims.layer_claim(t)
        flops, params = big.flops.sum() / t.flops.sum(), big.params.sum() / t.params.sum()
        assert claim.startswith("What to notice: the blocks on 32×32 maps"), (name, claim)
        assert flops > params, name  # the lesson holds for every network: large maps cost FLOPs, not weights
        assert arch_claims._pct(flops) in claim and arch_claims._pct(params) in claim, (name, claim)
    # The old fixed sentence said the 4x4 stage holds most parameters: not for DenseNet (8x8) or VGG (2x2).
    for name, side in (("resnet18", "4×4"), ("densenet121", "8×8"), ("vgg16_bn", "2×2")):
        t = pd.DataFrame(profile.layer_table(profile.meta_arch(name, width)))
        assert f"those on {side} maps hold" in arch_claims.layer_claim(t), name


def test_arch_size_claim_names_the_most_and_least_work_per_parameter():
    import pandas as pd

    from dltl_core import arch_claims, profile
    from dltl_ui.views import ArchView

    table = pd.DataFrame(profile.compare_archs(ArchView.width))
    per = (table.flops / table.params).set_axis(table.label)
    claim = arch_claims.size_claim(table)
    assert per.idxmax() == "DenseNet-121" and per.idxmin() == "VGG-11 (BN)"
    assert f"DenseNet-121 does the most work for its size ({per.max():.0f} FLOPs" in claim
    assert f"VGG-11 (BN) the least ({per.min():.0f})" in claim
    assert arch_claims.size_claim(table.iloc[:1]) == ""


# --- /lr: regimes, sweep and schedules ---

def _lr_sweep(surface: str = "bowl", optimizer: str = "sgd"):
    from dltl_core.descend import DescentConfig
    from dltl_core.lessons.learning_rate import log_grid, lr_sweep, regime_examples
    from dltl_ui.lr.view import SWEEP

    points = lr_sweep(DescentConfig(surface=surface, optimizer=optimizer, steps=LrView.steps), log_grid(*SWEEP))
    return points, regime_examples(points)


def test_lr_regimes_and_sweep_captions_hold_at_the_defaults_and_for_momentum():
    from dltl_core import lr_claims

    points, ex = _lr_sweep(LrView.surface, LrView.opt)
    assert ex["divergent"] / ex["good"] < lr_claims.JUST_BELOW and "just below" in lr_claims.regimes_claim(ex)
    good = sorted(p.lr for p in points if p.regime == "good")
    first_bad = min(p.lr for p in points if p.diverged_at is not None)
    assert all(p.diverged_at is not None for p in points if p.lr >= first_bad)  # a cliff: diverged from there on
    claim = lr_claims.sweep_claim(points)
    assert f"from η = {good[0]:.3g} to {good[-1]:.3g}" in claim and f"cliff at η = {first_bad:.3g}" in claim
    assert math.log10(good[-1] / good[0]) < 0.5  # not "a wide valley", as the old caption said for SGD
    points, ex = _lr_sweep(LrView.surface, "momentum")
    ratio = ex["divergent"] / ex["good"]
    assert ratio > 10 and f"{ratio:.0f}× below the divergent one" in lr_claims.regimes_claim(ex)
    assert lr_claims.regimes_claim({"good": 0.1}) == "What to notice: no learning rate in the sweep diverged."


def test_lr_schedule_captions_name_the_schedules_that_settled():
    from dltl_core import lr_claims
    from dltl_core.descend import DescentConfig
    from dltl_core.lessons.learning_rate import compare_schedules
    from dltl_core.optim import SCHEDULES
    from dltl_core.surfaces import create_surface

    d = LrView()
    names = tuple(d.scheds)
    labels = [SCHEDULES[n] for n in names]
    runs = compare_schedules(DescentConfig(surface=d.surface, optimizer=d.opt, steps=d.steps, lr=d.lr,
                                           noise=d.noise), names)
    f_min = create_surface(d.surface).f_min
    ends = {n: float(np.mean(r.loss[-d.steps // 10:]) - f_min) for n, r in zip(names, runs)}
    assert all(ends[n] < 0.5 * ends["constant"] for n in names if n != "constant")  # at the defaults, all do
    claim = lr_claims.schedules_loss_claim(runs, names, labels, f_min)
    assert f"constant η stays {ends['constant']:.3g} above" in claim and "do not" not in claim
    first = {n: np.linalg.norm(np.diff(r.trajectory[:4], axis=0), axis=1).mean() for n, r in zip(names, runs)}
    warm = [SCHEDULES[n] for n in names if first[n] < 0.5 * first["constant"]]
    assert set(warm) == {"One-cycle", "Linear warm-up, then cosine"}
    assert lr_claims._names(warm) + " take first steps" in lr_claims.schedules_map_claim(runs, names, labels)
    # A diverged constant run: no comparison is claimed.
    bad = compare_schedules(DescentConfig(surface="rosenbrock", optimizer="sgd", steps=d.steps, lr=d.lr), names)
    assert "What to notice" not in lr_claims.schedules_loss_claim(bad, names, labels, 0.0)


# --- /overfit: the verdict under the learning curves ---

def _overfit_claim(preset: str) -> tuple[object, str]:
    from dltl_core.lessons.overfit import PRESETS, run_overfit
    from dltl_core.lessons.overfit_claims import overfit_claim

    res = run_overfit(PRESETS[preset])
    return res, overfit_claim(res)


def test_overfit_verdict_at_the_good_fit_and_overfit_presets():
    res, claim = _overfit_claim("overfit")
    val = res.history.val_loss
    assert val.iloc[-1] > 1.2 * val.min() and res.final["train_acc"] == 1.0
    assert "this run overfits" in claim and "bends around them" in claim and "more than noise" in claim
    res, claim = _overfit_claim("good fit")
    assert res.history.val_loss.iloc[-1] <= 1.2 * res.history.val_loss.min()
    assert "overfits" not in claim and "did not turn up" in claim and "within noise" in claim


@pytest.mark.slow
def test_overfit_verdict_at_the_underfit_preset():
    _, claim = _overfit_claim("underfit")  # 150 epochs of a linear model: about 12 s
    assert "overfits" not in claim and "within noise" in claim


def test_each_network_is_corrected_by_its_own_record(tmp_path, monkeypatch):
    from dltl_core.lessons import lesson_jobs as jobs

    path = tmp_path / "calibration.json"
    monkeypatch.setattr(calibration, "_path", lambda: path)
    monkeypatch.setattr(jobs, "_flops_rate", lambda: 1e9)  # the prediction's own probes are not under test
    monkeypatch.setattr(jobs, "_layer_seconds", lambda: 1e-3)
    flops = [1.1e9, 2.5e8]
    per = [jobs._one(f, n) for f, n in zip(flops, ("resnet18", "densenet_cifar"))]
    assert per[1] - jobs.MODEL_BUILD_SECONDS - 8 * 16 * flops[1] / 1e9 > 6 * (
        per[0] - jobs.MODEL_BUILD_SECONDS - 8 * 16 * flops[0] / 1e9)  # DenseNet's layers: 366 against ResNet's 59
    # A measurement where DenseNet took 16x its prediction and ResNet 0.6x, the worker 6 s to start.
    took = [0.6 * per[0], 16 * per[1]]
    results = [{"name": "resnet18", "seconds": took[0]}, {"name": "densenet_cifar", "seconds": took[1]}]
    jobs.record_measure(results, flops, sum(took) + 6.0)
    assert calibration.factor(jobs.arch_kind("resnet18")) == pytest.approx(0.6)
    assert calibration.factor(jobs.arch_kind("densenet_cifar")) == pytest.approx(16)
    assert calibration.factor("job_start") == pytest.approx(6.0 / jobs.JOB_START_SECONDS)
    again = jobs.expected_seconds_measure(flops, names=["resnet18", "densenet_cifar"])
    assert again == pytest.approx(6.0 + sum(took))  # the same work, now predicted as it went
    # A network never measured here falls back to the record of all of them (the whole job's ratio).
    vgg = jobs.expected_seconds_measure([3e8], names=["vgg11_bn"])
    whole = calibration.factor("arch_measure")
    assert whole == pytest.approx((sum(took) + 6.0) / (jobs.JOB_START_SECONDS + sum(per)))
    assert vgg == pytest.approx(6.0 + whole * jobs._one(3e8, "vgg11_bn"))


def test_gd_default_view_bears_out_the_rosenbrock_caption():
    """The page opens on Rosenbrock with four optimizers: "finding the curved valley is easy;
    following its flat floor to (1, 1) is hard" must hold for the runs it shows then."""
    from dltl_core.codegen import parse_link
    from dltl_core.codegen.gd import read_settings
    from dltl_core.descend import descend_many
    from dltl_core.surfaces import create_surface

    settings = read_settings(parse_link(""))
    runs = descend_many([c for _, _, c in settings.slots])
    surface = create_surface(runs[0].config.surface)
    assert surface.name == "rosenbrock" and "flat floor" in surface.about and len(runs) == 4
    start = runs[0].loss[0] - surface.f_min
    for run in runs:  # the valley: every run loses most of its loss early (the floor is ~(1 - x)^2)
        assert run.diverged_at is None
        assert run.loss[60] - surface.f_min < 0.5 * start, run.config.optimizer
    # the floor: after the page's 300 steps no run is at (1, 1) yet
    assert min(run.loss[-1] for run in runs) - surface.f_min > 1e-3


def test_beale_gradients_range_over_orders_of_magnitude():
    import torch

    from dltl_core.surfaces import create_surface

    surface = create_surface("beale")
    assert "orders of magnitude" in surface.about
    xs = torch.linspace(*surface.xlim, 60)
    ys = torch.linspace(*surface.ylim, 60)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2).requires_grad_()
    surface.fn(grid).sum().backward()
    norms = grid.grad.norm(dim=1)
    assert norms.max() / norms.median() > 100 and norms.median() / norms.min() > 100
