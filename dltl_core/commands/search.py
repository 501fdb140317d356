"""``python -m dltl_core search``: an Optuna study over a CIFAR architecture's hyperparameters.

Several workers (processes or machines) join one study by running the same
command against one storage URL; ``--trials`` is each worker's share.
``--fixed`` trains each listed architecture once with one configuration instead
(the baseline of a size / accuracy / time comparison).
"""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from typing import Any

from dltl_core.archs import ARCHS
from dltl_core.commands import _search_extras as extras
from dltl_core.commands._common import LIST_LENGTH, add_config, add_setting, bounded_list, checked_text, declared, \
    make_config, range_text, writable_file
from dltl_core.search import DataSpec, SearchConfig, SearchSpace, run_search
from dltl_core.settings import defaults_of
from dltl_core.storage import open_storage
from dltl_core.recipes import get_recipe
from dltl_core.train import TrainConfig

NAME = "search"
HELP = "Hyperparameter search (Optuna) over a CIFAR-10 architecture; SQLite or any RDB URL as storage."


# Declared once, on SearchConfig, DataSpec and SearchSpace: --help, the checks and the configs read them.
TRIALS, EPOCHS, TIMEOUT = (declared(SearchConfig, n) for n in ("trials", "epochs", "timeout"))
BATCH_SIZE, WIDTH = declared(SearchSpace, "batch_sizes"), declared(SearchSpace, "widths")
DEFAULTS = defaults_of(SearchConfig)  # without a recipe: its epochs and label smoothing
# An option per config field where the two names differ.
FLAGS = {"study_name": "--study", "data_dir": "--data-dir", "max_per_class": "--max-per-class"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default=DEFAULTS["arch"],
                        help=f"architecture ({', '.join(ARCHS)}); with --fixed a comma list or 'all'")
    add_config(parser, SearchConfig, ("trials", "storage"))
    add_setting(parser, SearchConfig, "study_name", "--study", help="study name (default <arch>-cifar10)")
    add_setting(parser, DataSpec, "data_dir", "--data-dir",
                help="CIFAR-10 folder with train/<class>/*.jpg, or where torchvision downloads to "
                     "(default $DLTL_CIFAR_DIR or the cache)")
    add_config(parser, DataSpec, ("max_per_class", "val_fraction"))
    add_setting(parser, SearchConfig, "recipe",
                help="start from a named recipe (dltl_core/recipes.py): 'fast' (GPU minutes), "
                     "'kuangliu' (the published 200 epochs), 'cpu' (a laptop demo); its epochs, "
                     "warm-up, weight averaging... apply unless given here")
    add_setting(parser, SearchConfig, "epochs", default=None,
                help=f"epochs per trial (default: the recipe's, else {DEFAULTS['epochs']})")
    add_setting(parser, SearchConfig, "label_smoothing", default=None,
                help=f"label smoothing (default: the recipe's, else {DEFAULTS['label_smoothing']:g})")
    add_config(parser, SearchConfig, ("seed", "sampler_seed", "pruner"))
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
    add_setting(parser, SearchConfig, "results", help="JSON results file to append every run record to")
    add_setting(parser, SearchConfig, "timeout")
    parser.add_argument("--fixed", nargs="?", const="", default=None, metavar="KEY=VALUE,...",
                        help="no search: train each --arch at each --widths once with this TrainConfig "
                             "(e.g. 'optimizer=momentum,lr=0.05,schedule=onecycle,batch_size=64')")
    extras.add_arguments(parser)  # --save, --tensorboard


def space_from_args(lr: str | None = None, weight_decay: str | None = None, optimizers: str | None = None,
                    schedules: str | None = None, batch_sizes: str | None = None,
                    widths: str | None = None) -> SearchSpace:
    """A ``SearchSpace`` from comma-separated command-line strings (None keeps the default)."""
    base = SearchSpace()

    def floats(s: str) -> tuple[float, ...]:
        try:
            return tuple(float(v) for v in s.split(",") if v.strip())
        except ValueError as err:
            raise ValueError(f"expected comma-separated numbers, got {s!r}") from err

    def rng(s: str, what: str) -> tuple[float, float]:
        v = floats(s)
        if len(v) != 2:
            raise ValueError(f"{what} needs LOW,HIGH, got {s!r}")
        return v[0], v[1]

    kw: dict[str, Any] = {}
    if lr:
        kw["lr"] = rng(lr, "the learning-rate range")
    if weight_decay:
        kw["weight_decay"] = rng(weight_decay, "the weight-decay range")
    if optimizers:
        kw["optimizers"] = tuple(v.strip() for v in optimizers.split(",") if v.strip())
    if schedules:
        kw["schedules"] = tuple(v.strip() for v in schedules.split(",") if v.strip())
    if batch_sizes:
        kw["batch_sizes"] = tuple(int(v) for v in floats(batch_sizes))
    if widths:
        kw["widths"] = floats(widths)
    return replace(base, **kw)


def _apply_recipe(args: argparse.Namespace) -> None:
    # --fixed "recipe=NAME,..." names the recipe too; the recipe fills what was not given.
    for item in (args.fixed or "").split(","):
        key, _, raw = item.partition("=")
        if key.strip() == "recipe":
            args.recipe = raw.strip()
    base = get_recipe(args.recipe).config if args.recipe else None
    if args.epochs is None:
        args.epochs = base.epochs if base else DEFAULTS["epochs"]
    if args.label_smoothing is None:
        args.label_smoothing = base.label_smoothing if base else DEFAULTS["label_smoothing"]


def _check_args(args: argparse.Namespace) -> None:
    _apply_recipe(args)
    make_config(SearchConfig, epochs=args.epochs, label_smoothing=args.label_smoothing)  # a recipe's count too
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
    return make_config(TrainConfig, {"epochs": "--epochs", "label_smoothing": "--label-smoothing", "seed": "--seed"},
                       other="--fixed", **values)


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
    data = make_config(DataSpec, FLAGS, data_dir=args.data_dir, max_per_class=args.max_per_class,
                       val_fraction=args.val_fraction)
    space = make_config(space_from_args, lr=args.lr, weight_decay=args.weight_decay, optimizers=args.optimizers,
                        schedules=args.schedules, batch_sizes=args.batch_sizes, widths=args.widths)
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
    cfg = make_config(SearchConfig, {**FLAGS, "arch": "--arch"}, arch=args.arch, trials=args.trials,
                      storage=args.storage, study_name=args.study, data=data, epochs=args.epochs,
                      label_smoothing=args.label_smoothing, seed=args.seed, sampler_seed=args.sampler_seed,
                      pruner=args.pruner, space=space, results=args.results, timeout=args.timeout,
                      recipe=args.recipe)
    _check_memory([args.arch], space.widths, max(space.batch_sizes))
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
