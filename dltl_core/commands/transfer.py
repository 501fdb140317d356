"""``python -m dltl_core transfer``: transfer learning on a folder of bird species."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from dltl_core.backbones import BACKBONES, DEFAULT_BACKBONE
from dltl_core.birds import default_birds_dir
from dltl_core.commands._common import PER_CLASS, add_bounded, check_range, declared, with_bounds, \
    writable_dir, writable_file
from dltl_core.settings import Setting
from dltl_core.train.config import TrainConfig
from dltl_core.progress import Progress
from dltl_core.train.tensorboard import tensorboard_available
from dltl_core.transfer import FINETUNE, MODES, _DEFAULTS

if TYPE_CHECKING:
    from dltl_core.transfer import TransferConfig

NAME = "transfer"
HELP = "Classify bird species with a pretrained backbone: linear head, fine-tuning or from scratch."


# Declared once: --help and the checks read them. TransferConfig checks the same image
# size and stage range; a batch above 1,024 photos at 224 pixels is 600 MB of input alone.
EPOCHS = declared(TrainConfig, "epochs")
BATCH_SIZE = with_bounds(declared(TrainConfig, "batch_size"), hi=1024)
PER_SPECIES = with_bounds(PER_CLASS, lo=2, label="photos per species")
UNFREEZE = Setting("stages", lo=0, hi=50)
IMAGE_SIZE = Setting("pixels", lo=32, hi=512)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="folder with one sub-folder per species (default: $DLTL_BIRDS_DIR)")
    parser.add_argument("--species", default="10",
                        help="a count k (first k species alphabetically; 2 to the folder's species) "
                             "or comma-separated names")
    parser.add_argument("--mode", choices=MODES, default="linear")
    parser.add_argument("--backbone", choices=list(BACKBONES), default=DEFAULT_BACKBONE)
    add_bounded(parser, "--max-per-species", PER_SPECIES, help="cap on photos per species")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    add_bounded(parser, "--epochs", EPOCHS,
                help=f"epochs (default: {_DEFAULTS['linear']['epochs']} linear, {FINETUNE.epochs} fine-tuning, "
                     f"{_DEFAULTS['finetune']['epochs']} end to end, {_DEFAULTS['scratch']['epochs']} scratch)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"default: {_DEFAULTS['linear']['lr']:g} linear, {FINETUNE.lr:g} fine-tuning "
                             f"(the backbone x {FINETUNE.backbone_lr_factor:g}), {_DEFAULTS['finetune']['lr']:g} "
                             f"end to end and scratch")
    add_bounded(parser, "--batch-size", BATCH_SIZE, help="mini-batch size (default: the mode's)")
    add_bounded(parser, "--unfreeze-blocks", UNFREEZE,
                help=f"fine-tuning: train only the last N stages, on the cached activations of the "
                     f"frozen ones (default: {FINETUNE.unfreeze_blocks}, the page's default)")
    parser.add_argument("--end-to-end", action="store_true",
                        help="fine-tuning: train every stage on the photos, with augmentation (minutes on a CPU)")
    parser.add_argument("--no-augment", action="store_true", help="no random crop/flip")
    add_bounded(parser, "--image-size", IMAGE_SIZE, help="crop size for finetune/scratch (default: the backbone's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-data", default=None,
                        help="folder with the same species sub-folders: reports test_accuracy")
    parser.add_argument("--save", metavar="PATH", help="write the trained network (backbone + head) to PATH "
                                                       "(python -m dltl_core predict --load PATH PHOTOS)")
    parser.add_argument("--tensorboard", metavar="DIR", help="write per-epoch scalars and hyperparameters to DIR")


def check_args(args: argparse.Namespace, data: str) -> None:
    """Refuse out-of-range values and unwritable outputs before any photo is decoded."""
    check_range("--lr", args.lr, 0, low_open=True)
    check_range("--val-fraction", args.val_fraction, 0, 1, low_open=True, high_open=True)
    if (args.unfreeze_blocks is not None or args.end_to_end) and args.mode != "finetune":
        raise ValueError("--unfreeze-blocks and --end-to-end apply to --mode finetune only")
    if args.unfreeze_blocks is not None and args.end_to_end:
        raise ValueError("--end-to-end trains every stage: leave out --unfreeze-blocks")
    if args.image_size is not None and args.mode == "linear":
        raise ValueError("--image-size applies to --mode finetune or scratch (linear uses the backbone's size)")
    species = str(args.species).strip()
    if species.isdigit():
        from dltl_core.birds.folder import species_with_photos

        available, _ = species_with_photos(data)
        if not 2 <= int(species) <= len(available):
            raise ValueError(f"--species {species}: the folder has {len(available)} species with photos; "
                             f"choose a count from 2 to {len(available)}")
    writable_file("--save", args.save)
    writable_dir("--tensorboard", args.tensorboard)
    if args.tensorboard and not tensorboard_available():
        raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard")


def config_from_args(args: argparse.Namespace, data: str) -> "TransferConfig":
    """The run the arguments ask for; ``--mode finetune`` alone is the page's default (``FINETUNE``)."""
    from dltl_core.transfer import TransferConfig

    unfreeze = args.unfreeze_blocks
    if args.mode == "finetune" and unfreeze is None and not args.end_to_end:
        unfreeze = FINETUNE.unfreeze_blocks  # the one default of the page and the command line
    return TransferConfig(
        data=str(data), species=str(args.species), max_per_species=args.max_per_species,
        val_fraction=args.val_fraction, seed=args.seed, backbone=args.backbone, mode=args.mode,
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, unfreeze_blocks=unfreeze,
        augment=not args.no_augment, image_size=args.image_size, feature_map="none")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from dltl_core.backbones import create_backbone
    from dltl_core.transfer import run_transfer

    data = args.data or default_birds_dir()
    if data is None:
        raise ValueError("no bird folder: pass --data DIR (one sub-folder per species) or set DLTL_BIRDS_DIR")
    check_args(args, str(data))
    config = config_from_args(args, str(data))
    backbone = create_backbone(args.backbone)
    bar = Progress.from_args(args).fraction_fn()  # the messages name the mode and phase
    try:
        result = run_transfer(config, backbone=backbone, test_data=args.test_data, progress=bar)
    finally:
        bar.close()
    out = result.summary()
    out.update({"backbone": result.backbone, "n_train": result.n_train, "n_val": result.n_val,
                "features_cached": result.features_cached,
                "skipped": [{"file": f, "reason": r} for f, r in result.skipped]})
    if args.tensorboard:
        from dltl_core.train.tensorboard import log_history

        hparams = {k: v for k, v in config.__dict__.items() if k not in ("data", "feature_map")}
        log_history(args.tensorboard, result.history, hparams,
                    {"val_accuracy": result.val_accuracy, "test_accuracy": result.test_accuracy})
    if args.save:
        out["saved"] = _save(args, config, result, backbone)
    return out


def _save(args: argparse.Namespace, config: Any, result: Any, backbone: Any) -> str:
    from dltl_core.checkpoint import from_transfer, save

    return str(save(from_transfer(result, config, backbone), args.save))


def format_text(result: dict[str, Any]) -> str:
    test = "" if result["test_accuracy"] is None else f", test accuracy {result['test_accuracy']:.1%}"
    return (f"{result['mode']} on {len(result['species'])} species with {result['backbone']}: "
            f"validation accuracy {result['val_accuracy']:.1%}{test} in {result['seconds']:.1f} s "
            f"({result['images_per_second']:.1f} photos/s), {result['skipped_files']} files skipped"
            + (f"\nmodel saved to {result['saved']}" if result.get("saved") else ""))
