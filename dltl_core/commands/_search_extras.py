"""The search command's terminal extras: progress bars, ``--save`` for ``--fixed``, ``--tensorboard``.

Kept apart from ``commands/search.py`` (shared with the search's owner) so that file only
gains a few calls.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from dltl_core.progress import Progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--save", metavar="PATH", help="with --fixed: write each trained network to PATH "
                                                      "(PATH-<arch>-w<width>.pt when several are trained)")
    parser.add_argument("--tensorboard", metavar="DIR", help="per-epoch scalars and hyperparameters of every "
                                                             "run/trial to DIR/<arch>-w<width> or DIR/trial-<n>")


def check_args(args: argparse.Namespace) -> None:
    from dltl_core.commands._common import writable_dir, writable_file
    from dltl_core.train.tensorboard import tensorboard_available

    if args.save and args.fixed is None:
        raise ValueError("--save goes with --fixed (a search trains many networks: rerun the best with --fixed)")
    writable_file("--save", args.save)
    writable_dir("--tensorboard", args.tensorboard)
    if args.tensorboard and not tensorboard_available():
        raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard")


def save_path(path: str, arch: str, width: float, several: bool) -> Path:
    """``path`` itself for one run, else ``<stem>-<arch>-w<width><suffix>`` beside it."""
    p = Path(path).expanduser()
    return p.with_name(f"{p.stem}-{arch}-w{width:g}{p.suffix or '.pt'}") if several else p


def predecode(args: argparse.Namespace) -> None:
    """Decode the CIFAR-10 folder once with a bar (the first time takes minutes); the search's
    own ``load_data`` then reads the decoded copy from the disk cache."""
    from dltl_core.data.cifar import default_data_dir, load_cifar10

    root = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    if not (root / "train").is_dir():
        return  # torchvision's download draws its own bar
    bar = Progress.from_args(args).count_fn("decoding CIFAR-10", unit="img")
    try:
        load_cifar10(root, max_per_class=args.max_per_class, progress=bar)
    except (OSError, ValueError, RuntimeError):
        pass  # load_data reports the same problem with its own message
    finally:
        bar.close()


def run_fixed_cli(args: argparse.Namespace, archs: Sequence[str], widths: Sequence[float], config: Any,
                  data_spec: Any) -> list[Any]:
    """``search.run_fixed`` with a bar per run, and the models saved / logged as asked."""
    from dltl_core.search import run_fixed

    progress = Progress.from_args(args)
    predecode(args)
    several = len(archs) * len(widths) > 1

    def on_result(result: Any, record: Any) -> None:
        if args.save:
            record.saved = str(_save(result.model, record.arch, record.width, config, record.data, record,
                                     save_path(args.save, record.arch, record.width, several)))
        if args.tensorboard:
            _log(Path(args.tensorboard) / f"{record.arch}-w{record.width:g}", record)

    return run_fixed(archs, widths, config, data_spec, results=args.results, recipe=args.recipe,
                     callbacks=lambda arch, width: [progress.fit_callback(f"{arch} w{width:g}")],
                     on_result=on_result)


def _save(model: Any, arch: str, width: float, config: Any, info: dict[str, Any], record: Any,
          path: Path) -> Path:
    from dltl_core.checkpoint import make_checkpoint, save

    from dltl_core.data.cifar import CLASSES

    n = int(info.get("classes", 10))
    classes = list(CLASSES) if n == len(CLASSES) else [str(i) for i in range(n)]  # folders sort as CLASSES
    metrics = {"val_acc": record.val_acc, "best_val_acc": record.best_val_acc, "best_epoch": record.best_epoch,
               "params": record.params, "flops": record.flops, "wall_seconds": record.wall_seconds,
               "device": record.device}
    ck = make_checkpoint(model, architecture={"name": arch, "family": "arch",
                                              "kwargs": {"width": width, "num_classes": len(classes)}},
                         classes=classes, inputs={"kind": "image", "size": [32, 32], "crop": False,
                                                  "image_size": None, "scale": "cifar"},
                         config={**config.as_dict(), "data": info}, metrics=metrics, task="train")
    return save(ck, path)


def _log(logdir: Path, record: Any) -> None:
    from dltl_core.train.tensorboard import log_history

    hparams = {**record.config, "arch": record.arch, "width": record.width}
    log_history(logdir, record.history, hparams, {"val_acc": record.val_acc, "best_val_acc": record.best_val_acc})


def trial_bar(args: argparse.Namespace, trials: int) -> Any:
    """A bar over this worker's trials; returns (bar, on_trial callback)."""
    progress = Progress.from_args(args)
    bar = progress.bar(total=trials, desc="search", unit="trial")
    if progress.enabled:
        import optuna

        # The bar shows each finished trial; Optuna's INFO lines would tear it apart.
        optuna.logging.set_verbosity(optuna.logging.WARNING)

    def on_trial(summary: dict[str, Any]) -> None:
        acc = summary.get("val_acc")
        bar.set_postfix_str(f"trial {summary['trial']} {summary['state']}"
                            + (f" {acc:.3f}" if isinstance(acc, float) and acc == acc else ""), refresh=False)
        bar.update(1)

    return bar, on_trial


def log_study(args: argparse.Namespace, storage: str, study: str) -> None:
    """Every finished trial of the study to DIR/trial-<n> (TensorBoard), from Optuna's own records."""
    from dltl_core.studies import study_records
    from dltl_core.train.tensorboard import log_history

    for r in study_records(storage, study):
        if r.get("history"):
            hparams = {**(r.get("config") or {}), "arch": r.get("arch"), "width": r.get("width")}
            log_history(Path(args.tensorboard) / f"trial-{r.get('trial')}", r["history"], hparams,
                        {"val_acc": r.get("val_acc"), "best_val_acc": r.get("best_val_acc")})
