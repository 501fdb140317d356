"""The architecture registry: named CIFAR-style networks, built by ``create_arch``.

In the spirit of timm's model registry: each family file registers its
variants with ``@register(...)``; pages and the command line refer to them by
name. A ``width`` multiplier scales every layer's channel count, so model size
varies continuously (parameters and FLOPs grow roughly as ``width**2``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from dltl_core.registry import SEED_LOCK, Registry
from dltl_core.settings import Setting, problem


@dataclass(frozen=True)
class Family:
    """What a family of architectures is, for the description panel.

    Attributes:
        name: family name (``ResNet``).
        block: the building block, in words.
        connections: how information skips layers (identity, dense, none).
        preactivation: where BN and ReLU sit relative to the convolutions.
        problem: the problem the design answers.
        paper: the reference paper.
    """

    name: str
    block: str
    connections: str
    preactivation: str
    problem: str
    paper: str


@dataclass(frozen=True)
class ArchInfo:
    """One registered architecture.

    Attributes:
        name: registry key (``resnet18``).
        label: display name (``ResNet-18``).
        family: its ``Family`` description.
        factory: ``factory(num_classes, width) -> nn.Module``.
        depth: weighted layers (conv + linear) at any width.
        reference_acc: CIFAR-10 test accuracy (%) reported by kuangliu/pytorch-cifar
            after 200 epochs, or None when that table has no entry.
        notes: differences from the reference implementation, if any.
    """

    name: str
    label: str
    family: Family
    factory: Callable[[int, float], nn.Module] = field(repr=False)
    depth: int
    reference_acc: float | None = None
    notes: str = ""


# One Registry for the core (warns on a duplicate name): ARCHS[name], `name in ARCHS`, list(ARCHS).
ARCHS: Registry[ArchInfo] = Registry("architecture")


def register(name: str, label: str, family: Family, depth: int, reference_acc: float | None = None,
             notes: str = "") -> Callable[[Callable[[int, float], nn.Module]], Callable[[int, float], nn.Module]]:
    """Decorator adding ``factory(num_classes, width)`` to ``ARCHS`` under ``name``."""

    def wrap(factory: Callable[[int, float], nn.Module]) -> Callable[[int, float], nn.Module]:
        ARCHS.register(name, ArchInfo(name, label, family, factory, depth, reference_acc, notes), label=label)
        return factory

    return wrap


def scaled(channels: int, width: float, multiple: int = 4) -> int:
    """``channels * width`` rounded to a multiple of ``multiple`` (at least ``multiple``).

    Multiples of 4 keep sizes nearly continuous while staying friendly to
    vectorised CPU kernels and GPU tensor cores.
    """
    return max(multiple, int(round(channels * width / multiple)) * multiple)


MAX_WIDTH = 4.0
# The width multiplier, declared once: check_width, SearchSpace.widths and --width / --widths read it.
WIDTH = Setting("width multiplier", lo=0.0, hi=MAX_WIDTH, positive=True, noun="width")


def check_width(width: float) -> float:
    """Validate a width multiplier against ``WIDTH`` (0 < width <= ``MAX_WIDTH``)."""
    message = problem("width", WIDTH, width, float)
    if message:
        raise ValueError(message)
    return float(width)


def create_arch(name: str, num_classes: int = 10, width: float = 1.0, *, seed: int | None = None) -> nn.Module:
    """Build a registered architecture for 32x32 RGB inputs.

    Args:
        name: a key of ``ARCHS`` (see ``list_archs()``).
        num_classes: size of the output layer.
        width: channel multiplier; 1.0 is the published network.
        seed: when given, the initial weights depend only on it (the global RNG is untouched).

    Raises:
        ValueError: unknown name, bad width or class count.
    """
    info = ARCHS.get(name)  # ValueError naming the known architectures
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    width = check_width(width)
    if seed is None:
        return info.factory(int(num_classes), width)
    with SEED_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return info.factory(int(num_classes), width)


def list_archs() -> list[str]:
    """Registered architecture names, in registry order."""
    return list(ARCHS)
