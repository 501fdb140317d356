"""Name -> model factory, in the spirit of timm's ``create_model``."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make a model factory available to ``create_model`` under ``name``."""
    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _MODELS[name] = factory
        return factory
    return wrap


def list_models() -> list[str]:
    """The registered model names."""
    return sorted(_MODELS)


def create_model(name: str, *, seed: int | None = None, **kwargs) -> nn.Module:
    """Build a registered model.

    Args:
        name: a name from ``list_models()`` (``mlp``, ``cnn``).
        seed: when given, the initial weights depend only on it (the global RNG
            state is left untouched), so two runs with one seed start identically.
        **kwargs: the model's own arguments.

    Raises:
        ValueError: unknown name or bad arguments.
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(list_models())}")
    if seed is None:
        return _MODELS[name](**kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _MODELS[name](**kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
