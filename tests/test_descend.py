"""Descents on 2-D surfaces, checked against torch.optim itself (micrograd-style)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dltl_core import cli
from dltl_core import surfaces as S
from dltl_core.descend import DescentConfig, descend, descend_many, validate
from dltl_core.lessons.learning_rate import REGIMES, compare_schedules, log_grid, lr_sweep, regime_examples
from dltl_core.lr_range import RangeTestConfig, lr_range_test
from dltl_core.optim import create_scheduler, lr_curve

ROOT = Path(__file__).resolve().parent.parent

# Each optimizer built straight from torch.optim, independently of dltl_core.optim's registry.
BY_HAND = {
    "sgd": lambda p, lr: torch.optim.SGD([p], lr=lr),
    "momentum": lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.9),
    "nesterov": lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda p, lr: torch.optim.RMSprop([p], lr=lr),
    "adagrad": lambda p, lr: torch.optim.Adagrad([p], lr=lr),
    "adam": lambda p, lr: torch.optim.Adam([p], lr=lr),
    "adamw": lambda p, lr: torch.optim.AdamW([p], lr=lr),
}
LRS = {"sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "rmsprop": 1e-2, "adagrad": 0.3, "adam": 0.05, "adamw": 0.05}


def by_hand(surface: str, make_opt, start, steps: int, scheduler=None, noise=None) -> np.ndarray:
    """The textbook loop: zero_grad, forward, backward, step. Returns (steps + 1, 2) points."""
    f = S.create_surface(surface)
    p = torch.tensor(start, dtype=torch.float32, requires_grad=True)
    opt = make_opt(p)
    sched = scheduler(opt) if scheduler else None
    points = [p.detach().clone()]
    for k in range(steps):
        opt.zero_grad()
        f(p).backward()
        if noise is not None:
            p.grad += noise[k]
        opt.step()
        if sched:
            sched.step()
        points.append(p.detach().clone())
    return torch.stack(points).double().numpy()


@pytest.mark.parametrize("name", list(BY_HAND))
@pytest.mark.parametrize("surface", ["rosenbrock", "himmelblau", "rugged"])
def test_trajectory_equals_torch_optim_by_hand(name, surface):
    start = S.create_surface(surface).start
    run = descend(DescentConfig(surface=surface, optimizer=name, lr=LRS[name], steps=150, start=start))
    ref = by_hand(surface, lambda p: BY_HAND[name](p, LRS[name]), start, 150)
    assert run.diverged_at is None
    np.testing.assert_array_equal(run.trajectory, ref)
    np.testing.assert_allclose(run.loss, S.create_surface(surface)(torch.tensor(ref)).numpy(), rtol=1e-12)


def test_hyperparameters_reach_the_optimizer():
    run = descend(DescentConfig(surface="bowl", optimizer="momentum", lr=0.02, hyper={"momentum": 0.5}, steps=80))
    ref = by_hand("bowl", lambda p: torch.optim.SGD([p], lr=0.02, momentum=0.5), S.create_surface("bowl").start, 80)
    np.testing.assert_array_equal(run.trajectory, ref)
    other = descend(DescentConfig(surface="bowl", optimizer="momentum", lr=0.02, steps=80))  # default 0.9
    assert not np.allclose(other.trajectory, ref)


def test_lockstep_runs_equal_single_runs():
    configs = [DescentConfig(optimizer=o, lr=lr, steps=200, noise=2.0, seed=s)
               for (o, lr), s in zip([("sgd", 1e-3), ("momentum", 1e-3), ("rmsprop", 1e-2), ("adam", 0.05)], range(4))]
    together = descend_many(configs)
    for config, run in zip(configs, together):
        alone = descend(config)
        np.testing.assert_array_equal(run.trajectory, alone.trajectory)
        assert run.diverged_at == alone.diverged_at


def test_shared_descents_compute_only_what_changed_and_cannot_be_altered(monkeypatch):
    import dltl_core.descend as D

    monkeypatch.setattr(D, "_shared", D.OrderedDict())
    computed = []
    real = D.descend_many
    monkeypatch.setattr(D, "descend_many", lambda cs: computed.append(list(cs)) or real(cs))
    configs = [DescentConfig(optimizer=o, lr=lr, steps=120) for o, lr in [("sgd", 1e-3), ("adam", 0.05)]]
    first = D.descend_shared(configs)
    moved = [configs[0].replace(lr=2e-3), configs[1]]  # one optimizer's learning rate moved
    second = D.descend_shared(moved)
    assert computed == [configs, [moved[0]]]  # the unchanged descent was not run again
    assert second[1] is first[1]
    for run, config in zip(second, moved):
        np.testing.assert_array_equal(run.trajectory, descend(config).trajectory)
    with pytest.raises(ValueError):
        second[1].trajectory[0, 0] = 99.0  # shared between visitors: read-only


def test_gradient_noise_is_seeded_and_added_to_the_gradient():
    config = DescentConfig(surface="saddle", optimizer="sgd", lr=0.05, steps=60, noise=0.3, seed=7)
    noise = torch.randn(60, 2, generator=torch.Generator().manual_seed(7)) * 0.3
    ref = by_hand("saddle", lambda p: torch.optim.SGD([p], lr=0.05), S.create_surface("saddle").start, 60, noise=noise)
    np.testing.assert_allclose(descend(config).trajectory, ref, atol=1e-6)
    assert not np.allclose(descend(config.replace(seed=8)).trajectory, ref)


@pytest.mark.parametrize("schedule", ["step", "cosine", "onecycle", "warmup_cosine"])
def test_schedules_drive_the_learning_rate(schedule):
    config = DescentConfig(surface="bowl", optimizer="sgd", lr=0.15, steps=60, schedule=schedule)
    run = descend(config)
    np.testing.assert_allclose(run.lr, lr_curve(schedule, 0.15, 60))
    ref = by_hand("bowl", lambda p: torch.optim.SGD([p], lr=0.15), S.create_surface("bowl").start, 60,
                  scheduler=lambda opt: create_scheduler(schedule, opt, 60))
    np.testing.assert_array_equal(run.trajectory, ref)
    assert not np.allclose(run.trajectory, descend(config.replace(schedule="constant")).trajectory)
    assert [r.config.schedule for r in compare_schedules(config, ("constant", schedule))] == ["constant", schedule]


def test_divergence_stops_the_trajectory():
    run = descend(DescentConfig(surface="rosenbrock", optimizer="sgd", lr=1e9, steps=100))
    assert run.diverged_at == 1 and run.reason == "left the plotted region"
    assert run.trajectory.shape == (1, 2) and np.isfinite(run.loss).all()
    assert "diverged at step 1" in run.status
    # Just above the stability limit 2/κ of plain gradient descent on a quadratic, it diverges late.
    late = descend(DescentConfig(surface="bowl", optimizer="sgd", lr=0.21, steps=200))
    assert late.diverged_at is not None and late.diverged_at > 3
    assert len(late.trajectory) == late.diverged_at


def test_non_finite_loss_is_divergence():
    # A surface whose loss is NaN in part of its own box: x < 0 (sqrt of a negative number).
    def sqrt_surface(_):
        return S.Surface("sqrt", "sqrt", lambda p: torch.sqrt(p[..., 0]) + p[..., 1] ** 2, (-2.0, 2.0), (-2.0, 2.0),
                         ((0.0, 0.0),), (1.0, 1.0), False, "test")

    S.SURFACES.register("sqrt", sqrt_surface, label="sqrt")
    S.create_surface.cache_clear()
    try:
        run = descend(DescentConfig(surface="sqrt", optimizer="sgd", lr=0.5, steps=50))
    finally:
        S.SURFACES.remove("sqrt")
        S.create_surface.cache_clear()
    assert run.diverged_at is not None and run.reason == "the loss became inf/NaN"
    assert np.isfinite(run.trajectory).all() and np.isfinite(run.loss).all()


@pytest.mark.parametrize("bad, match", [
    (dict(lr=0.0), "learning rate"), (dict(lr=-1.0), "learning rate"), (dict(lr=math.nan), "learning rate"),
    (dict(steps=0), "steps"), (dict(start=(1e30, 0.0)), "outside"), (dict(start=(math.nan, 0.0)), "outside"),
    (dict(surface="nope"), "unknown surface"), (dict(optimizer="nope"), "unknown optimizer"),
    (dict(noise=-1.0), "noise"), (dict(surface="bowl", condition=0.5), "condition"),
])
def test_bad_configs_raise_readable_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        validate(DescentConfig(**bad))
    with pytest.raises(ValueError, match=match):
        descend(DescentConfig(**bad))


@pytest.mark.parametrize("name", list(S.SURFACES))
def test_known_minima_are_minima(name):
    surface = S.create_surface(name)
    for point in surface.minima:
        p = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(surface(p), p)
        assert grad.norm() < 1e-4, (name, point, grad)
        hess = torch.autograd.functional.hessian(surface.fn, p.detach())
        assert torch.linalg.eigvalsh(hess).min() > 0, (name, point)
    # No point of the plotted grid lies below the known global minimum.
    _, _, z = surface.grid(120)
    assert z.min() >= surface.f_min - 1e-9
    assert surface.contains(torch.tensor(surface.start)).item()


def test_rugged_minima_list_is_complete():
    found = S.find_minima(S.rugged, (-4.0, 4.0), (-4.0, 4.0), n=13)
    assert len(found) == len(S.RUGGED_MINIMA)
    for a, b in zip(found, S.RUGGED_MINIMA):
        assert math.dist(a, b) < 1e-3


def test_condition_number_sets_the_stability_limit_of_sgd():
    # Plain gradient descent on ½(x² + κy²) is stable for η < 2/κ: the sweep's cliff is there.
    for kappa in (10.0, 40.0):
        points = lr_sweep(DescentConfig(surface="bowl", optimizer="sgd", steps=100, condition=kappa),
                          log_grid(1e-4, 1.0, 13))
        ok = max(p.lr for p in points if p.diverged_at is None)
        bad = min(p.lr for p in points if p.diverged_at is not None)
        assert ok < 2 / kappa < bad and bad / ok < 1.05


def test_lr_sweep_labels_every_regime():
    points = lr_sweep(DescentConfig(surface="bowl", optimizer="sgd", steps=100), log_grid(1e-5, 10, 25))
    examples = regime_examples(points)
    assert list(examples) == list(REGIMES)
    assert examples["too small"] < examples["good"] < examples["too large"] < examples["divergent"]
    gaps = {p.lr: p.gap for p in points}
    assert gaps[examples["good"]] < gaps[examples["too small"]] and gaps[examples["good"]] < gaps[examples["too large"]]


def test_random_start_is_reproducible_and_inside():
    surface = S.create_surface("himmelblau")
    a, b = surface.random_start(3), surface.random_start(3)
    assert a == b != surface.random_start(4)
    assert surface.contains(torch.tensor(a)).item()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dltl_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_descend_json_matches_the_library():
    # The README's example, in a real subprocess.
    proc = _cli("descend", "--surface", "rosenbrock", "--optimizer", "adam", "--lr", "0.01", "--steps", "300",
                "--start", "-1.5", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["diverged_at"] is None and len(out["trajectory"]) == 301 and len(out["loss"]) == 301
    ref = by_hand("rosenbrock", lambda p: torch.optim.Adam([p], lr=0.01), (-1.5, 2.0), 300)
    np.testing.assert_array_equal(np.array(out["trajectory"]), ref)


def _main(capsys, *args: str) -> tuple[int, dict]:
    """The command line in-process (a subprocess per case would mostly time imports)."""
    code = cli.main(list(args))
    return code, json.loads(capsys.readouterr().out)


def test_cli_divergence_and_bad_input(capsys):
    code, out = _main(capsys, "descend", "--optimizer", "sgd", "--lr", "1e9", "--json")
    assert code == 0 and out["diverged_at"] == 1 and len(out["trajectory"]) == 1
    for args in (["--lr", "0"], ["--steps", "0"], ["--start", "1e300", "0"], ["--start", "nan", "0"],
                 ["--noise", "-1"], ["--hp", "momentum=inf"]):
        code, out = _main(capsys, "descend", *args, "--json")
        assert code == 2 and "error" in out, args
    code, out = _main(capsys, "descend", "--steps", "5", "--hp", "momentum=0.5", "--optimizer", "momentum",
                      "--lr", "0.001", "--json")
    assert code == 0 and len(out["trajectory"]) == 6


def test_lr_range_test_on_digits():
    result = lr_range_test(RangeTestConfig(optimizer="momentum", batch_size=8))
    ratios = result.lr[1:] / result.lr[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)  # exponential growth
    assert result.lr[0] == pytest.approx(1e-4)
    assert abs(result.smooth[0] - math.log(10)) < 0.3  # an untrained 10-class net
    assert result.smooth.min() < 0.7 * result.smooth[0]  # it learned in one pass
    assert result.stopped_at is not None  # and blew up before η reached 10
    assert result.suggested is not None and 1e-3 < result.suggested <= result.lr_at_min < 10
    # Adam's per-coordinate steps make it blow up at a far smaller η.
    adam = lr_range_test(RangeTestConfig(optimizer="adam", batch_size=16))
    assert adam.suggested is not None and adam.suggested < result.suggested
    assert adam.lr_at_min < result.lr_at_min


def test_cli_lr_range_json(capsys):
    code, out = _main(capsys, "lr-range", "--optimizer", "adam", "--batch-size", "32", "--json")
    assert code == 0 and len(out["lr"]) == len(out["loss"]) > 10 and out["suggested"] is not None
    code, out = _main(capsys, "lr-range", "--lr-min", "1", "--lr-max", "0.1", "--json")
    assert code == 2 and "error" in out
