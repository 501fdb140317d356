"""Named optimizers and learning-rate schedules, all from ``torch.optim``.

A small registry in the spirit of timm's ``create_optimizer``: pages, the
command line and the trainer refer to optimizers and schedules by name, and
this module turns the names into ``torch.optim`` objects. Nothing here updates
weights by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch.optim import lr_scheduler


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build one named optimizer.

    Attributes:
        label: display name.
        factory: builds the optimizer from ``(params, lr, hp)``.
        hyper: the hyperparameters this optimizer exposes, with defaults.
    """

    label: str
    factory: Callable[[Any, float, dict[str, float]], torch.optim.Optimizer]
    hyper: dict[str, float]


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(
        "SGD", lambda p, lr, h: torch.optim.SGD(p, lr=lr, weight_decay=h.get("weight_decay", 0.0)),
        {"weight_decay": 0.0}),
    "momentum": OptimizerSpec(
        "SGD + momentum",
        lambda p, lr, h: torch.optim.SGD(p, lr=lr, momentum=h.get("momentum", 0.9),
                                         weight_decay=h.get("weight_decay", 0.0)),
        {"momentum": 0.9, "weight_decay": 0.0}),
    "nesterov": OptimizerSpec(
        "Nesterov",
        lambda p, lr, h: torch.optim.SGD(p, lr=lr, momentum=h.get("momentum", 0.9), nesterov=True,
                                         weight_decay=h.get("weight_decay", 0.0)),
        {"momentum": 0.9, "weight_decay": 0.0}),
    "rmsprop": OptimizerSpec(
        "RMSprop",
        lambda p, lr, h: torch.optim.RMSprop(p, lr=lr, alpha=h.get("alpha", 0.99),
                                             momentum=h.get("momentum", 0.0),
                                             weight_decay=h.get("weight_decay", 0.0)),
        {"alpha": 0.99, "momentum": 0.0, "weight_decay": 0.0}),
    "adagrad": OptimizerSpec(
        "Adagrad", lambda p, lr, h: torch.optim.Adagrad(p, lr=lr, weight_decay=h.get("weight_decay", 0.0)),
        {"weight_decay": 0.0}),
    "adam": OptimizerSpec(
        "Adam",
        lambda p, lr, h: torch.optim.Adam(p, lr=lr, betas=(h.get("beta1", 0.9), h.get("beta2", 0.999)),
                                          weight_decay=h.get("weight_decay", 0.0)),
        {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0}),
    "adamw": OptimizerSpec(
        "AdamW",
        lambda p, lr, h: torch.optim.AdamW(p, lr=lr, betas=(h.get("beta1", 0.9), h.get("beta2", 0.999)),
                                           weight_decay=h.get("weight_decay", 0.01)),
        {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01}),
}

SCHEDULES: dict[str, str] = {
    "constant": "Constant",
    "step": "Step decay",
    "exponential": "Exponential decay",
    "cosine": "Cosine annealing",
    "onecycle": "One-cycle",
    "warmup_cosine": "Linear warm-up, then cosine",
}


def create_optimizer(name: str, params: Iterable[Any], lr: float, **hyper: float) -> torch.optim.Optimizer:
    """Build a ``torch.optim`` optimizer by name.

    Args:
        name: a key of ``OPTIMIZERS`` (``sgd``, ``momentum``, ``nesterov``, ``rmsprop``,
            ``adagrad``, ``adam``, ``adamw``).
        params: tensors or parameter-group dicts, as ``torch.optim`` takes them.
        lr: the learning rate η (> 0).
        **hyper: optimizer hyperparameters (see ``OPTIMIZERS[name].hyper``); unknown
            ones are ignored so one config can drive several optimizers.

    Raises:
        ValueError: unknown name or a non-positive learning rate.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"the learning rate must be a positive number, got {lr}")
    spec = OPTIMIZERS[name]
    hp = {k: float(v) for k, v in hyper.items() if k in spec.hyper}
    return spec.factory(params, lr, hp)


def create_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    *,
    warmup_fraction: float = 0.1,
    step_every_fraction: float = 0.3,
    gamma: float = 0.1,
    final_fraction: float = 0.01,
) -> lr_scheduler.LRScheduler:
    """Build a ``torch.optim.lr_scheduler`` schedule that is stepped once per step.

    Args:
        name: a key of ``SCHEDULES``.
        optimizer: the optimizer whose learning rate it drives (its ``lr`` is the peak/base).
        total_steps: how many times ``scheduler.step()`` will be called.
        warmup_fraction: share of steps for the linear warm-up (``warmup_cosine``, ``onecycle``).
        step_every_fraction: ``step`` decays by ``gamma`` every this share of the steps.
        gamma: decay factor of ``step``.
        final_fraction: ``exponential``/``cosine`` end at this fraction of the base rate.
    """
    total_steps = max(1, int(total_steps))
    if name == "constant":
        return lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(1, round(step_every_fraction * total_steps)),
                                   gamma=gamma)
    if name == "exponential":
        return lr_scheduler.ExponentialLR(optimizer, gamma=final_fraction ** (1.0 / total_steps))
    base = [g["lr"] for g in optimizer.param_groups]
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=min(base) * final_fraction)
    if name == "onecycle":
        # cycle_momentum=False: a schedule changes η only (cycling would switch momentum on for plain SGD).
        return lr_scheduler.OneCycleLR(optimizer, max_lr=base, total_steps=total_steps + 1,
                                       pct_start=max(warmup_fraction, 1e-3), cycle_momentum=False)
    if name == "warmup_cosine":
        warm = max(1, round(warmup_fraction * total_steps))
        return lr_scheduler.SequentialLR(
            optimizer,
            [lr_scheduler.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warm),
             lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warm),
                                            eta_min=min(base) * final_fraction)],
            milestones=[warm],
        )
    raise ValueError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")


def lr_curve(name: str, lr: float, steps: int, **kwargs: float) -> list[float]:
    """The learning rate at each of ``steps`` steps under a schedule (for charts)."""
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr)
    sched = create_scheduler(name, opt, steps, **kwargs)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out
