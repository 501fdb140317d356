"""``python -m dltl_core descend``: one optimizer on one 2-D surface, from a start point.

Example::

    python -m dltl_core descend --surface rosenbrock --optimizer adam --lr 0.01 \\
        --steps 300 --start -1.5 2 --json
"""

from __future__ import annotations

import argparse

from dltl_core.commands._common import add_config, make_config
from dltl_core.descend import DescentConfig, descend
from dltl_core.optim import OPTIMIZERS
from dltl_core.surfaces import create_surface

NAME = "descend"
HELP = "run a torch.optim optimizer on a 2-D loss surface and print its trajectory"


def _hyper(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from err


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config(parser, DescentConfig, ("surface", "optimizer", "lr", "steps"))
    parser.add_argument("--start", type=float, nargs=2, metavar=("X", "Y"),
                        help="start point (default: the surface's demo start)")
    add_config(parser, DescentConfig, ("schedule", "noise", "seed", "condition"))
    parser.add_argument("--hp", type=_hyper, action="append", default=[], metavar="NAME=VALUE",
                        help="optimizer hyperparameter, e.g. --hp momentum=0.95 (repeatable)")


def run(args: argparse.Namespace) -> dict:
    config = make_config(
        DescentConfig, {"hyper": "--hp"}, surface=args.surface, optimizer=args.optimizer, lr=args.lr,
        hyper=tuple(args.hp), steps=args.steps, start=tuple(args.start) if args.start else None, seed=args.seed,
        noise=args.noise, schedule=args.schedule, condition=args.condition)
    result = descend(config)
    out = {k: v for k, v in result.as_dict().items() if k != "lr"}
    out["surface"] = create_surface(config.surface, config.condition).label
    out["optimizer"] = OPTIMIZERS[config.optimizer].label
    return out


def format_text(result: dict) -> str:
    traj, loss = result["trajectory"], result["loss"]
    lines = [f"{result['optimizer']} on {result['surface']}: {len(traj) - 1} steps"]
    every = max(1, (len(traj) - 1) // 10)
    for k in list(range(0, len(traj), every)) + ([len(traj) - 1] if (len(traj) - 1) % every else []):
        x, y = traj[k]
        lines.append(f"  step {k:5d}  ({x: .5f}, {y: .5f})  f = {loss[k]:.6g}")
    if result["diverged_at"] is not None:
        lines.append(f"diverged at step {result['diverged_at']} ({result['reason']})")
    return "\n".join(lines)
