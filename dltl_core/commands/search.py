"""``python -m dltl_core search``: an Optuna study over a CIFAR architecture's hyperparameters.

Several workers (processes or machines) join one study by running the same
command against one storage URL; ``--trials`` is each worker's share.
``--fixed`` trains each listed architecture once with one configuration instead
(the baseline of a size / accuracy / time comparison).
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from dltl_core.archs import ARCHS
from dltl_core.commands import _search_extras as extras
from dltl_core.archs._registry import MAX_WIDTH
from dltl_core.commands._common import LIST_LENGTH, PER_CLASS, add_bounded, bounded_list, check_range, \
    checked_text, declared, range_text, writable_file
from dltl_core.search import PRUNERS, DataSpec, SearchConfig, run_search, space_from_args
from dltl_core.storage import open_storage
from dltl_core.recipes import RECIPES, get_recipe
from dltl_core.settings import Setting
from dltl_core.train import TrainConfig

NAME = "search"
HELP = "Hyperparameter search (Optuna) over a CIFAR-10 architecture; SQLite or any RDB URL as storage."


# Declared once: --help and the checks read them. 10,000 trials of one study is far past
# where TPE stops improving; 10^12 used to end in a traceback.
TRIALS = Setting("trials", lo=1, hi=10_000)
EPOCHS, BATCH_SIZE = declared(TrainConfig, "epochs"), declared(TrainConfig, "batch_size")
WIDTH = Setting("width multiplier", lo=0.0, hi=MAX_WIDTH, positive=True)
TIMEOUT = Setting("seconds", lo=0.0, hi=30 * 86_400, positive=True)  # 30 days


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="resnet18",
                        help=f"architecture ({', '.join(ARCHS)}); with --fixed a comma list or 'all'")
    add_bounded(parser, "--trials", TRIALS, default=20, help="trials this worker runs")
    parser.add_argument("--storage", default="sqlite:///runs.db",
                        help="Optuna storage: a SQLAlchemy URL (sqlite:///runs.db, "
                             "postgresql://user:pw@host/db) or a SQLite file path")
    parser.add_argument("--study", default=None, help="study name (default <arch>-cifar10)")
    parser.add_argument("--data-dir", default=None,
                        help="CIFAR-10 folder with train/<class>/*.jpg, or where torchvision downloads to "
                             "(default $DLTL_CIFAR_DIR or the cache)")
    add_bounded(parser, "--max-per-class", PER_CLASS, help="use the first N training images of each class "
                                                           "(small CPU demos)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="validation share (default 0.1)")
    parser.add_argument("--recipe", default=None, choices=RECIPES.names(),
                        help="start from a named recipe (dltl_core/recipes.py): 'fast' (GPU minutes), "
                             "'kuangliu' (the published 200 epochs), 'cpu' (a laptop demo); its epochs, "
                             "warm-up, weight averaging... apply unless given here")
    add_bounded(parser, "--epochs", EPOCHS, help="epochs per trial (default: the recipe's, else 10)")
    parser.add_argument("--label-smoothing", type=float, default=None,
                        help="label smoothing (default: the recipe's, else 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, batch order, augmentation")
    parser.add_argument("--sampler-seed", type=int, default=None, help="seed of the TPE sampler")
    parser.add_argument("--pruner", choices=PRUNERS, default="median")
    parser.add_argument("--lr", default=None, help="learning-rate range LOW,HIGH (log scale)")
    parser.add_argument("--weight-decay", default=None, help="weight-decay range LOW,HIGH (log scale)")
    parser.add_argument("--optimizers", default=None, help="comma list, e.g. momentum,nesterov,adamw")
    parser.add_argument("--schedules", default=None, help="comma list, e.g. cosine,onecycle,constant")
    parser.add_argument("--batch-sizes", default=None, type=checked_text(bounded_list(BATCH_SIZE, LIST_LENGTH)),
                        help=f"comma list, e.g. 64,128,256 ({range_text(LIST_LENGTH)} sizes, each "
                             f"{range_text(BATCH_SIZE)})")
    parser.add_argument("--widths", default=None, type=checked_text(bounded_list(WIDTH, LIST_LENGTH, float)),
                        help=f"comma list of width multipliers, e.g. 0.25,0.5,1 ({range_text(LIST_LENGTH)} "
                             f"values, each {range_text(WIDTH)})")
    parser.add_argument("--results", default=None, help="JSON results file to append every run record to")
    add_bounded(parser, "--timeout", TIMEOUT, kind=float, help="start no trial after this many seconds")
    parser.add_argument("--fixed", nargs="?", const="", default=None, metavar="KEY=VALUE,...",
                        help="no search: train each --arch at each --widths once with this TrainConfig "
                             "(e.g. 'optimizer=momentum,lr=0.05,schedule=onecycle,batch_size=64')")
    extras.add_arguments(parser)  # --save, --tensorboard


def _apply_recipe(args: argparse.Namespace) -> None:
    # --fixed "recipe=NAME,..." names the recipe too; the recipe fills what was not given.
    for item in (args.fixed or "").split(","):
        key, _, raw = item.partition("=")
        if key.strip() == "recipe":
            args.recipe = raw.strip()
    base = get_recipe(args.recipe).config if args.recipe else None
    if args.epochs is None:
        args.epochs = base.epochs if base else 10
    if args.label_smoothing is None:
        args.label_smoothing = base.label_smoothing if base else 0.1


def _check_args(args: argparse.Namespace) -> None:
    _apply_recipe(args)
    check_range("--val-fraction", args.val_fraction, 0, 1, low_open=True, high_open=True)
    check_range("--epochs", args.epochs, EPOCHS.lo, EPOCHS.hi)  # a recipe's epochs count too
    check_range("--label-smoothing", args.label_smoothing, 0, 1, high_open=True)
    writable_file("--results", args.results)
    extras.check_args(args)
    if args.fixed is None and args.arch not in ARCHS:
        raise ValueError(f"unknown architecture {args.arch!r}; choose from {', '.join(ARCHS)}")


_FIXED_DEFAULTS = {"optimizer": "momentum", "lr": 0.05, "weight_decay": 5e-4, "schedule": "onecycle",
                   "batch_size": 64}


def _parse_field(key: str, raw: str, kind: str) -> Any:
    raw = raw.strip()
    if "None" in kind and raw.lower() in ("none", "off", ""):
        return None
    if kind.startswith("bool"):
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValueError(f"--fixed: {key} must be true or false, got {raw!r}")
        return raw.lower() in ("true", "1", "yes", "on")
    try:
        return int(raw) if kind.startswith("int") else float(raw) if "float" in kind else raw
    except ValueError as err:
        raise ValueError(f"--fixed: bad value for {key}: {raw!r}") from err


def _fixed_config(text: str, epochs: int, label_smoothing: float, seed: int,
                  recipe: str | None = None) -> TrainConfig:
    """The ``TrainConfig`` of ``--fixed KEY=VALUE,...``: the recipe's (or a plain default), then the keys."""
    types = {f.name: str(f.type) for f in fields(TrainConfig)}
    base = get_recipe(recipe).config.as_dict() if recipe else {**TrainConfig().as_dict(), **_FIXED_DEFAULTS}
    values: dict[str, Any] = {**base, "epochs": epochs, "label_smoothing": label_smoothing, "seed": seed}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, _, raw = item.partition("=")
        key = key.strip()
        if key == "recipe":
            continue
        if key not in types or not raw:
            raise ValueError(f"--fixed: expected KEY=VALUE with KEY recipe or one of {', '.join(types)}, "
                             f"got {item!r}")
        values[key] = _parse_field(key, raw, types[key])
    return TrainConfig(**values)


def _check_memory(archs: list[str], widths: Any, batch_size: int) -> None:
    """The widest network with the largest batch must fit in the free memory: refused before any
    image is decoded (a trial that runs out of memory hours into a study loses its work)."""
    from dltl_core.commands.arch import check_memory

    for arch in archs:
        if arch in ARCHS:
            check_memory(arch, max(widths), batch_size, "training",
                         "use smaller --batch-sizes or --widths (or batch_size in --fixed)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    _check_args(args)  # before any data is read or trained: exit 2 at once on bad input
    data = DataSpec(args.data_dir, args.max_per_class, args.val_fraction)
    space = space_from_args(args.lr, args.weight_decay, args.optimizers, args.schedules, args.batch_sizes,
                            args.widths)
    if args.fixed is not None:
        archs = list(ARCHS) if args.arch == "all" else [a.strip() for a in args.arch.split(",") if a.strip()]
        config = _fixed_config(args.fixed, args.epochs, args.label_smoothing, args.seed, args.recipe)
        widths = space.widths if args.widths else (1.0,)
        _check_memory(archs, widths, config.batch_size)
        records = extras.run_fixed_cli(args, archs, widths, config, data)  # run_fixed + bars, --save
        return {"mode": "fixed", "recipe": args.recipe, "config": config.as_dict(), "results": args.results,
                "runs": [{"arch": r.arch, "width": r.width, "val_acc": r.val_acc, "test_acc": r.test_acc,
                          "test_acc_tta": r.test_acc_tta, "params": r.params,
                          "flops": r.flops, "wall_seconds": r.wall_seconds, "state": r.state,
                          "saved": getattr(r, "saved", None)}
                         for r in records]}
    _check_memory([args.arch], space.widths, max(space.batch_sizes))
    cfg = SearchConfig(arch=args.arch, trials=args.trials, storage=args.storage, study_name=args.study,
                       data=data, epochs=args.epochs, label_smoothing=args.label_smoothing, seed=args.seed,
                       sampler_seed=args.sampler_seed, pruner=args.pruner, space=space, results=args.results,
                       timeout=args.timeout, recipe=args.recipe)
    # Last of the checks (it creates the study file): a bad URL or an unreachable server is a
    # ValueError within seconds, before any image is decoded.
    open_storage(args.storage, timeout=5)
    extras.predecode(args)
    bar, on_trial = extras.trial_bar(args, args.trials)
    try:
        out = run_search(cfg, on_trial=on_trial)
    finally:
        bar.close()
    if args.tensorboard:
        extras.log_study(args, cfg.storage, cfg.name)
    return {"mode": "search", **out}


def format_text(result: dict[str, Any]) -> str:
    if result["mode"] == "fixed":
        def pct(v: Any) -> str:
            return f"{100 * v:.1f}%" if v is not None else "-"

        lines = [f"{'arch':<18}{'width':>6}{'params':>12}{'val acc':>9}{'test':>8}{'test+TTA':>9}{'seconds':>9}"]
        for r in result["runs"]:
            lines.append(f"{r['arch']:<18}{r['width']:>6}{r['params']:>12,}{pct(r['val_acc']):>9}"
                         f"{pct(r.get('test_acc')):>8}{pct(r.get('test_acc_tta')):>9}{r['wall_seconds']:>9.1f}"
                         + ("  diverged" if r.get("state") == "diverged" else ""))
        return "\n".join(lines)
    lines = [f"study {result['study']} in {result['storage']}: {result['trials_run']} trial(s) run here, "
             f"{result['study_trials']} in the study"]
    for t in result["trials"]:
        acc = f"{100 * t['val_acc']:.1f}%" if t["val_acc"] is not None else "-"
        lines.append(f"  trial {t['trial']:>3} {t['state']:<9} {acc:>7}  {t['params']}")
    if result["best"]:
        lines.append(f"best: trial {result['best']['trial']}, {100 * result['best']['val_acc']:.1f}% "
                     f"with {result['best']['params']}")
    return "\n".join(lines)
