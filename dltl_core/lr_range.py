"""The learning-rate range test on a real network (Smith, 2017; fastai's ``lr_find``).

Train a small MLP on scikit-learn's bundled digits for one pass while the
learning rate grows exponentially from ``lr_min`` to ``lr_max``
(``torch.optim.lr_scheduler.ExponentialLR``, stepped every batch). The loss
first stays flat (η too small), then falls (good η), then blows up (η too
large). A good η is where the smoothed loss falls fastest.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import ExponentialLR

from dltl_core.data.digits import load_digits
from dltl_core.device import get_policy, seed_everything
from dltl_core.models import create_model
from dltl_core.models.mlp import DEPTH, WIDTH
from dltl_core.optim import OPTIMIZERS, create_optimizer
from dltl_core.settings import check, field_from, seed_field, setting

# on_step(step, total, lr, loss) -> True to stop early (a Stop button).
# The batch size's end (1,797 digits: a bigger batch is one step); rates up to 1e6 (it diverges).
MAX_BATCH_SIZE = 1024
LR_HI = 1e6

StepCallback = Callable[[int, int, float, float], "bool | None"]


@dataclass(frozen=True)
class RangeTestConfig:
    """One LR range test.

    Attributes:
        optimizer: a key of ``dltl_core.optim.OPTIMIZERS``.
        lr_min: learning rate of the first batch.
        lr_max: learning rate the last batch would get.
        batch_size: mini-batch size (one pass = ceil(1797 / batch_size) steps).
        depth: hidden layers of the MLP.
        width: units per hidden layer.
        smoothing: weight of the exponential moving average of the loss (0 = none).
        stop_factor: stop once the smoothed loss exceeds this multiple of its minimum.
        seed: seeds the weights and the batch order.
    """

    optimizer: str = setting("momentum", label="optimizer", choices=lambda: list(OPTIMIZERS))
    lr_min: float = setting(1e-4, label="first learning rate", lo=0.0, hi=LR_HI, positive=True, fmt="%g",
                            noun="first learning rate (lr_min)")
    lr_max: float = setting(10.0, label="last learning rate", lo=0.0, hi=LR_HI, positive=True, fmt="%g",
                            noun="last learning rate (lr_max)")
    batch_size: int = setting(8, label="batch size", lo=1, hi=MAX_BATCH_SIZE)
    depth: int = field_from(DEPTH, 2)
    width: int = field_from(WIDTH, 128)
    smoothing: float = setting(0.9, label="loss smoothing", lo=0.0, hi=1.0, below=True, noun="smoothing")
    stop_factor: float = setting(4.0, label="stop factor", lo=1.0, hi=1e6, positive=True)
    seed: int = seed_field()

    def __post_init__(self) -> None:
        check(self, _rules)


def _rules(c: "RangeTestConfig") -> dict[str, str] | None:
    """The range must grow: lr_min below lr_max."""
    if c.lr_min >= c.lr_max:
        return {"lr_max": f"need lr_min < lr_max, got {c.lr_min:g} and {c.lr_max:g}"}
    return None


@dataclass(frozen=True)
class RangeTestResult:
    """What the range test saw.

    Attributes:
        lr: (k,) learning rate of each batch that ran.
        loss: (k,) training loss of each batch.
        smooth: (k,) bias-corrected moving average of the loss.
        suggested: η where the smoothed loss falls fastest against log η (None if it never fell).
        lr_at_min: η of the lowest smoothed loss.
        stopped_at: batch at which the loss blew up (None if the pass finished).
        seconds: wall time.
    """

    lr: np.ndarray
    loss: np.ndarray
    smooth: np.ndarray
    suggested: float | None
    lr_at_min: float
    stopped_at: int | None
    seconds: float

    def as_dict(self) -> dict:
        return {"lr": self.lr.tolist(), "loss": self.loss.tolist(), "smooth": self.smooth.tolist(),
                "suggested": self.suggested, "lr_at_min": self.lr_at_min, "stopped_at": self.stopped_at,
                "seconds": self.seconds}


def suggest_lr(lr: np.ndarray, smooth: np.ndarray) -> float | None:
    """η at the steepest descent of the smoothed loss against log η, before its minimum.

    The slope is a central difference on the whole curve (``np.gradient``), and only the
    points strictly inside ``(first point, minimum)`` compete: at the minimum itself, or at
    the end of a truncated curve, the difference is one-sided and would report the last
    fall into the minimum as the steepest point, so the marker would sit on the lowest loss.

    Args:
        lr: (k,) learning rate of each batch, increasing.
        smooth: (k,) smoothed loss of each batch.

    Returns:
        The suggested η, or None when the loss never fell before its minimum.
    """
    lowest = int(np.argmin(smooth))
    if lowest < 2:
        return None
    slope = np.gradient(smooth, np.log10(lr))
    k = 1 + int(np.argmin(slope[1:lowest]))
    return float(lr[k]) if slope[k] < 0 else None


def range_test_story(result: RangeTestResult) -> str:
    """The "what to notice" sentence, built from what this curve did (each phase only if seen).

    Flat: over the first fifth of the log-η range the smoothed loss moved less than a tenth of
    its total fall. Falling: a suggested η exists. Exploding: the loss blew up (the test
    stopped) or ended above 1.5x its minimum.
    """
    s, lr = result.smooth, np.log10(result.lr)
    if len(s) < 3:
        return ""
    lowest = float(s.min())
    drop = float(s[0] - lowest)
    early = s[lr <= lr[0] + (lr[-1] - lr[0]) / 5]
    phases = []
    if drop > 0 and float(early.max() - early.min()) < 0.1 * drop:
        phases.append("flat at first (η too small)")
    if result.suggested is not None:
        phases.append("then falling: the suggested η (the green line) is where the smoothed loss falls fastest, "
                      "before its minimum" if phases else
                      "falling: the suggested η (the green line) is where the smoothed loss falls fastest, before its minimum")
    if result.stopped_at is not None or float(s[-1]) > 1.5 * lowest:
        phases.append("then exploding (η too large)" if phases else "exploding (η too large)")
    return "What to notice: " + "; ".join(phases) + "." if phases else ""


def lr_range_test(config: RangeTestConfig = RangeTestConfig(), on_step: StepCallback | None = None) -> RangeTestResult:
    """Run the range test (see the module docstring).

    Args:
        config: what to run.
        on_step: called after every batch; returning True stops the test.

    Raises:
        ValueError: a config that cannot run.
    """
    t0 = time.perf_counter()
    policy = get_policy()
    g = seed_everything(config.seed)
    x, y = load_digits()  # (N, 1, 8, 8), (N,)
    x, y = x.to(policy.device), y.to(policy.device)
    model = create_model("mlp", in_features=64, depth=config.depth, width=config.width, seed=config.seed)
    model.to(policy.device).train()
    steps = math.ceil(len(x) / config.batch_size)
    opt = create_optimizer(config.optimizer, model.parameters(), config.lr_min)
    # Multiply η by a constant every batch: lr_min -> lr_max over one pass.
    sched = ExponentialLR(opt, gamma=(config.lr_max / config.lr_min) ** (1.0 / max(steps - 1, 1)))
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(x), generator=g).to(policy.device)

    lrs, losses, smooth = [], [], []
    avg, best, stopped = 0.0, math.inf, None
    for k in range(steps):
        idx = order[k * config.batch_size:(k + 1) * config.batch_size]
        lr = opt.param_groups[0]["lr"]
        # fp32 on every device: a 64-input MLP gains nothing from bf16, and bf16's rounding
        # changed where the loss blows up (on CUDA it no longer blew up before η = 10).
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        value = float(loss.detach())  # one sync per batch: the curve needs every value
        if not math.isfinite(value):
            stopped = k
            break
        avg = config.smoothing * avg + (1 - config.smoothing) * value
        s = avg / (1 - config.smoothing ** (k + 1))  # bias correction, as in Adam
        lrs.append(lr)
        losses.append(value)
        smooth.append(s)
        best = min(best, s)
        if on_step is not None and on_step(k + 1, steps, lr, value):
            break
        if k > 5 and s > config.stop_factor * best:
            stopped = k
            break
    lr_arr, smooth_arr = np.asarray(lrs), np.asarray(smooth)
    if not len(lr_arr):
        raise RuntimeError("the loss was not finite from the first batch on; lower lr_min")
    return RangeTestResult(
        lr=lr_arr, loss=np.asarray(losses), smooth=smooth_arr,
        suggested=suggest_lr(lr_arr, smooth_arr), lr_at_min=float(lr_arr[int(np.argmin(smooth_arr))]),
        stopped_at=stopped, seconds=time.perf_counter() - t0)
