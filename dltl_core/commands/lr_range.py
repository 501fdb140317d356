"""``python -m dltl_core lr-range``: the learning-rate range test on the digits with a small MLP.

Example::

    python -m dltl_core lr-range --optimizer sgd --lr-min 1e-4 --lr-max 10 --json
"""

from __future__ import annotations

import argparse

from dltl_core.commands._common import add_config, declared, make_config
from dltl_core.lr_range import RangeTestConfig, lr_range_test

BATCH_SIZE = declared(RangeTestConfig, "batch_size")
# RangeTestConfig's fields this command sets: options, defaults and bounds are the declarations'.
FIELDS = ("optimizer", "lr_min", "lr_max", "batch_size", "depth", "width", "seed")

NAME = "lr-range"
HELP = "LR range test: grow η exponentially over one pass of the digits, print loss against η"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config(parser, RangeTestConfig, FIELDS)


def _check_memory(args: argparse.Namespace) -> None:
    """Training the MLP (weights, gradients, optimizer state, a batch) must fit in free memory."""
    from dltl_core.models import create_model
    from dltl_core.models.budget import check_fits, meta_activations, training_bytes

    params, acts = meta_activations(lambda: create_model("mlp", in_features=64, depth=args.depth,
                                                         width=args.width), (64,))
    check_fits(training_bytes(params, acts, args.batch_size), f"training this MLP ({params:,} parameters)",
               "use a smaller --depth or --width")


def run(args: argparse.Namespace) -> dict:
    config = make_config(RangeTestConfig, **{k: getattr(args, k) for k in FIELDS})
    _check_memory(args)
    return lr_range_test(config).as_dict()


def format_text(result: dict) -> str:
    lines = [f"{len(result['lr'])} batches in {result['seconds']:.2f} s"]
    every = max(1, len(result["lr"]) // 12)
    for k in range(0, len(result["lr"]), every):
        lines.append(f"  η = {result['lr'][k]:10.3g}   loss = {result['loss'][k]:.4f}   "
                     f"smoothed = {result['smooth'][k]:.4f}")
    s = result["suggested"]
    lines.append(f"suggested η ≈ {s:.3g}" if s is not None else "no clear suggestion (the loss never fell)")
    lines.append(f"lowest smoothed loss at η ≈ {result['lr_at_min']:.3g}")
    return "\n".join(lines)
