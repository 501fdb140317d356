"""Heavy lesson work as job functions for ``dltl_core.job_runner`` (a spawned process each).

Each is a top-level, picklable ``fn(config, report)``; ``report(phase, done, total,
payload)`` feeds the page's progress bar and ETA. The ``expected_seconds_*`` helpers let a
page ask before (or refuse) work that would take minutes.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Sequence

from dltl_core import needs
from dltl_core.job_runner import declare_need

Report = Callable[[str, int, int, "dict | None"], None]

# Rough costs on a 2-core laptop CPU (measured with an idle machine; a busy one is slower).
JOB_START_SECONDS = 2.0  # a spawned worker imports torch before its first step
MODEL_BUILD_SECONDS = 1.0  # building an architecture and its optimizer, per architecture measured
STEP_SECONDS = 4e-4  # one optimizer step of a small MLP: Python and kernel-launch overhead
MLP_FLOPS_PER_SECOND = 1.5e10  # dense matrix products of the MLP lessons
ASK_SECONDS = 20.0  # above this a page asks before starting
REFUSE_SECONDS = 600.0  # above this a page refuses and names the expected time


@declare_need(lambda config: needs.layers())
def layers_job(config: dict[str, Any], report: Report) -> Any:
    """``compare_layers(epochs, seed)`` with a report after every epoch of every model."""
    from dltl_core.lessons.layers import compare_layers

    return compare_layers(epochs=int(config["epochs"]), seed=int(config["seed"]), seeds=int(config.get("seeds", 1)),
                          progress=lambda done, total, label: report(f"training {label}", done, total, None))


def expected_seconds_layers(epochs: int, seeds: int = 1) -> float:
    """About how long ``layers_job`` takes: one probe epoch of each network and one L-BFGS fit,
    timed on this machine, scaled to the budget and corrected by the record of earlier runs
    (``dltl_core.calibration``, kind ``"layers"``)."""
    from dltl_core import calibration

    return calibration.estimate("layers", predicted_seconds_layers(epochs, seeds))


def predicted_seconds_layers(epochs: int, seeds: int = 1) -> float:
    """The uncorrected prediction behind ``expected_seconds_layers`` (what a run is judged against)."""
    epoch_s, linear_s = _layers_probe()
    return JOB_START_SECONDS + int(seeds) * (int(epochs) * epoch_s + linear_s)


@functools.lru_cache(maxsize=1)
def _layers_probe() -> tuple[float, float]:
    """Seconds of one epoch of the three networks together (each trained one real epoch, with
    its validation) and of the L-BFGS linear map, measured once per process on this machine."""
    import time

    from dltl_core.data import load_digits, split_tensors
    from dltl_core.lessons.layers import compare_layers_specs, fit_linear_map
    from dltl_core.models import create_model
    from dltl_core.train import TrainConfig, fit

    train, val = split_tensors(*load_digits(), 0.2, seed=0)
    config = TrainConfig(epochs=1, lr=3e-3, seed=0, schedule="cosine")  # compare_layers' own settings
    t0 = time.perf_counter()
    for _, _, name, kw in compare_layers_specs():
        fit(create_model(name, seed=0, **kw), train, val, config)
    t1 = time.perf_counter()
    fit_linear_map(train, 0)
    return t1 - t0, time.perf_counter() - t1


def _overfit_need(config: Any) -> float:
    """Memory of ``overfit_job``: the MLP's weights (AdamW's copies) and one batch."""
    digits = config.data == "digits"
    return needs.mlp(64 if digits else 2, int(config.depth), int(config.width), 10 if digits else 2,
                     int(config.train_size), int(config.batch_size))


@declare_need(_overfit_need)
def overfit_job(config: Any, report: Report) -> Any:
    """``run_overfit(config)`` with each finished epoch's record as a payload (live curves)."""
    from dltl_core.lessons.overfit import run_overfit
    from dltl_core.train import LambdaCallback

    epochs = int(config.epochs)
    live = LambdaCallback(on_epoch_end=lambda trainer, rec: report("training", rec.epoch, epochs, rec.as_dict()))
    return run_overfit(config, [live])


def expected_seconds_overfit(config: Any) -> float:
    """About how long ``run_overfit(config)`` takes: per epoch a fixed cost, the optimizer
    steps, and forward + backward (~6 FLOPs per weight and sample) over the training set.

    The link ``/overfit?data=digits&train_size=1438&depth=5&width=512&epochs=500`` comes to
    about 5 minutes, as measured on a 2-core machine.
    """
    from dltl_core.lessons.overfit import make_data

    train, _ = make_data(config)
    n, inputs = len(train[1]), int(train[0][0].numel())
    classes = int(train[1].max()) + 1 if n else 2
    widths = [inputs] + [int(config.width)] * int(config.depth) + [classes]
    weights = sum(a * b for a, b in zip(widths, widths[1:]))
    steps = -(-n // max(1, min(int(config.batch_size), n)))
    per_epoch = 0.002 + STEP_SECONDS * steps + 6 * weights * n / MLP_FLOPS_PER_SECOND
    return 0.3 + int(config.epochs) * per_epoch


@declare_need(lambda config: max(needs.arch_measure(n, float(config["width"]), int(config.get("batch_size", 16)))
                                for n in config["names"]))
def measure_job(config: dict[str, Any], report: Report) -> list[dict]:
    """Training and inference throughput of each ``config["names"]`` at ``config["width"]``."""
    from dltl_core.profile import profile_arch

    names, out = list(config["names"]), []
    for i, name in enumerate(names):
        report(f"timing {name}", i, len(names), None)
        start = time.perf_counter()
        out.append(profile_arch(name, float(config["width"]), batch_size=int(config.get("batch_size", 16)),
                                batches=int(config.get("batches", 1))).as_dict())
        out[-1]["seconds"] = time.perf_counter() - start  # each network's own time, for its calibration
        report(f"timed {name}", i + 1, len(names), out[-1])
    return out


def predicted_seconds_measure(flops: float | Sequence[float], batch_size: int = 16,
                              names: Sequence[str] | None = None) -> float:
    """``measure_job``'s cost from this machine's measured FLOP rate: per architecture (``flops``:
    the forward FLOPs per image of each) a model build, two training batches (forward +
    backward, about 3x the forward FLOPs) and two inference batches; plus the worker's start.

    With ``names``, each network's layer count adds the per-layer cost measured here
    (``_layer_seconds``): DenseNet's 366 small layers cost far more than its FLOPs say.
    """
    each = [float(flops)] if isinstance(flops, (int, float)) else [float(f) for f in flops]
    rate = _flops_rate()
    layers = [0.0] * len(each) if names is None else [_leaf_modules(n) * _layer_seconds() * (2 + 2 / 3) for n in names]
    return JOB_START_SECONDS + sum(MODEL_BUILD_SECONDS + 8 * f * batch_size / rate + extra
                                   for f, extra in zip(each, layers))


@functools.lru_cache(maxsize=None)
def _leaf_modules(name: str) -> int:
    """How many layers (modules without children) a network has; the same at every width."""
    from dltl_core.profile import meta_arch

    return sum(1 for m in meta_arch(name).modules() if not any(True for _ in m.children()))


@functools.lru_cache(maxsize=1)
def _layer_seconds() -> float:
    """Seconds of one tiny layer's forward + backward on this machine: the per-layer overhead
    (dispatch, threads waking up) that a FLOP rate does not see. Measured once per process."""
    import torch

    layer = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.BatchNorm2d(8))
    x = torch.randn(16, 8, 8, 8)
    layer(x).sum().backward()  # warm-up
    best = float("inf")
    for _ in range(3):  # the fastest of three: one hiccup does not inflate every estimate
        t0 = time.perf_counter()
        for _ in range(20):
            layer(x).sum().backward()
        best = min(best, time.perf_counter() - t0)
    return best / (20 * 2)


def expected_seconds_measure(flops: float | Sequence[float], batch_size: int = 16,
                             names: Sequence[str] | None = None) -> float:
    """About how long ``measure_job`` takes: the prediction corrected by earlier runs here
    (``dltl_core.calibration``). With ``names`` (one per entry of ``flops``) each network is
    corrected by its own record (kind ``"arch_measure/<name>"``, falling back to all networks'
    ``"arch_measure"``): FLOPs predict a DenseNet's time 16x too low and a ResNet's 1.5x too high
    (measured under load), so one shared factor cannot make both come true."""
    from dltl_core import calibration

    each = [float(flops)] if isinstance(flops, (int, float)) else [float(f) for f in flops]
    if names is None:
        return calibration.estimate("arch_measure", predicted_seconds_measure(each, batch_size))
    start = calibration.estimate("job_start", JOB_START_SECONDS)
    return start + sum(calibration.estimate(arch_kind(n), _one(f, n, batch_size), fallback="arch_measure")
                       for n, f in zip(names, each))


def _one(flops: float, name: str, batch_size: int = 16) -> float:
    """The uncorrected prediction of one network's part of ``measure_job`` (without the start)."""
    return predicted_seconds_measure([flops], batch_size, [name]) - JOB_START_SECONDS


def arch_kind(name: str) -> str:
    """The calibration kind of one network's throughput measurement."""
    return f"arch_measure/{name}"


def record_measure(results: Sequence[dict], flops: Sequence[float], seconds: float, batch_size: int = 16) -> None:
    """Remember what a finished ``measure_job`` took: the whole job (kind ``"arch_measure"``),
    each network's own part (``arch_kind``) and the worker's start (what the networks left)."""
    from dltl_core import calibration

    names = [r.get("name") for r in results if isinstance(r, dict)]
    named = names if len(names) == len(flops) and all(names) else None
    calibration.record("arch_measure", predicted_seconds_measure(list(flops), batch_size, named), seconds)
    timed = 0.0
    for res, f in zip(results, flops):
        if isinstance(res, dict) and res.get("seconds"):
            calibration.record(arch_kind(res["name"]), _one(f, res["name"], batch_size), float(res["seconds"]))
            timed += float(res["seconds"])
    if 0 < timed < seconds:
        calibration.record("job_start", JOB_START_SECONDS, seconds - timed)


@functools.lru_cache(maxsize=1)
def _flops_rate() -> float:
    """FLOPs per second of a small CIFAR ResNet's training step on this machine (once per process)."""
    import time

    import torch

    from dltl_core.archs import create_arch
    from dltl_core.profile import count_flops, meta_arch

    # Width 0.5: big enough that the rate is the convolutions', not Python's (width 0.125 ran at a
    # fraction of the rate the real networks reach, so every estimate came out several times too long).
    model = create_arch("resnet18", width=0.5, seed=0)
    x = torch.randn(16, 3, 32, 32)
    flops = 3 * 16 * count_flops(meta_arch("resnet18", 0.5))  # forward + backward
    model(x).sum().backward()  # warm-up: allocator, kernels
    times = []
    for _ in range(2):  # the faster of two: one scheduling hiccup does not triple the estimate
        t0 = time.perf_counter()
        model(x).sum().backward()
        times.append(time.perf_counter() - t0)
    return flops / max(min(times), 1e-6)


__all__ = ["ASK_SECONDS", "REFUSE_SECONDS", "expected_seconds_layers", "expected_seconds_measure",
           "expected_seconds_overfit", "layers_job", "predicted_seconds_layers",
           "predicted_seconds_measure", "measure_job", "overfit_job", "record_measure", "arch_kind"]
