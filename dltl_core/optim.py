"""Named optimizers and learning-rate schedules, all from ``torch.optim``.

A small registry in the spirit of timm's ``create_optimizer``: pages, the
command line and the trainer refer to optimizers and schedules by name, and
this module turns the names into ``torch.optim`` objects. Nothing here updates
weights by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import torch
from torch import nn
from torch.optim import lr_scheduler

from dltl_core.registry import Registry


@dataclass(frozen=True)
class OptimInfo:
    """One optimizer described as data, like timm's ``OptimInfo``.

    Attributes:
        name: registry key (``nesterov``).
        label: display name.
        opt_class: the ``torch.optim`` class that does the work.
        hyper: the hyperparameters this optimizer exposes, with their defaults
            (``beta1``/``beta2`` are passed to torch as ``betas``).
        fixed: constructor arguments that define the variant (``nesterov=True``).
    """

    name: str
    label: str
    opt_class: type[torch.optim.Optimizer]
    hyper: Mapping[str, float] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_momentum(self) -> bool:
        """Whether a one-cycle schedule may cycle this optimizer's momentum (or Adam's beta1)."""
        return self.hyper.get("momentum", 0.0) > 0 or "beta1" in self.hyper

    def __call__(self, params: Iterable[Any], lr: float, **hyper: float) -> torch.optim.Optimizer:
        hp = {**self.hyper, **{k: float(v) for k, v in hyper.items() if k in self.hyper}}
        if "beta1" in hp:
            hp["betas"] = (hp.pop("beta1"), hp.pop("beta2", 0.999))
        return self.opt_class(params, lr=lr, **hp, **self.fixed)


OPTIMIZERS: Registry[OptimInfo] = Registry("optimizer")
for _info in (
    OptimInfo("sgd", "SGD", torch.optim.SGD, {"weight_decay": 0.0}),
    OptimInfo("momentum", "SGD + momentum", torch.optim.SGD, {"momentum": 0.9, "weight_decay": 0.0}),
    OptimInfo("nesterov", "Nesterov", torch.optim.SGD, {"momentum": 0.9, "weight_decay": 0.0},
              {"nesterov": True}),
    OptimInfo("rmsprop", "RMSprop", torch.optim.RMSprop, {"alpha": 0.99, "momentum": 0.0, "weight_decay": 0.0}),
    OptimInfo("adagrad", "Adagrad", torch.optim.Adagrad, {"weight_decay": 0.0}),
    OptimInfo("adam", "Adam", torch.optim.Adam, {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0}),
    OptimInfo("adamw", "AdamW", torch.optim.AdamW, {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01}),
):
    OPTIMIZERS.register(_info.name, _info, label=_info.label)

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
    return OPTIMIZERS.get(name)(params, lr, **hyper)


def param_groups(model: nn.Module, weight_decay: float, *, decay_1d: bool = False) -> list[dict[str, Any]]:
    """Trainable parameters split into a decayed and a non-decayed group.

    As in nanoGPT and timm (``param_groups_weight_decay``): weight decay shrinks the
    weight matrices and convolution kernels, not biases and normalisation scales and
    shifts (1-D tensors). Decaying BatchNorm's scale only fights the next layer's
    weights (the network is invariant to it) and slows training for nothing.

    Args:
        model: the model.
        weight_decay: the decay of the weight group.
        decay_1d: decay 1-D parameters too (the textbook ``weight_decay=`` on every parameter).
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if decay_1d or weight_decay == 0:
        return [{"params": trainable, "weight_decay": weight_decay}]
    decay = [p for p in trainable if p.ndim > 1]
    no_decay = [p for p in trainable if p.ndim <= 1]
    return [g for g in ({"params": decay, "weight_decay": weight_decay},
                        {"params": no_decay, "weight_decay": 0.0}) if g["params"]]


def create_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    *,
    warmup_fraction: float = 0.3,
    step_every_fraction: float = 0.3,
    gamma: float = 0.1,
    final_fraction: float = 0.01,
) -> lr_scheduler.LRScheduler:
    """Build a ``torch.optim.lr_scheduler`` schedule that is stepped once per step.

    Args:
        name: a key of ``SCHEDULES``.
        optimizer: the optimizer whose learning rate it drives (its ``lr`` is the peak/base).
        total_steps: how many times ``scheduler.step()`` will be called.
        warmup_fraction: share of steps spent warming up (``warmup_cosine``, ``onecycle``);
            0.3 is PyTorch's ``OneCycleLR`` default. (A 0.1 share made VGG-11 reach 21% instead
            of 52% in 4 epochs: the rate hits its peak before BatchNorm statistics settle.)
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
        # PyTorch's one-cycle: momentum (Adam's beta1) cycles inversely to η, 0.95 -> 0.85 -> 0.95.
        # Not for optimizers without momentum: cycling would switch momentum on for plain SGD.
        d = optimizer.defaults
        cycle = d.get("momentum", 0) > 0 or "betas" in d
        return lr_scheduler.OneCycleLR(optimizer, max_lr=base, total_steps=total_steps + 1,
                                       pct_start=max(warmup_fraction, 1e-3), cycle_momentum=cycle)
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
