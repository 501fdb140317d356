"""Name -> model factory, in the spirit of timm's ``create_model`` (one ``Registry``)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from dltl_core.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def register_model(name: str, **meta: object) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make a model factory available to ``create_model`` under ``name``."""
    return MODELS.register(name, **meta)


def list_models() -> list[str]:
    """The registered model names."""
    return sorted(MODELS.names())


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
    return MODELS.create(name, seed=seed, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
