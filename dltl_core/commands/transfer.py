"""``python -m dltl_core transfer``: transfer learning on a folder of bird species."""

from __future__ import annotations

import argparse
from typing import Any

from dltl_core.birds import default_birds_dir
from dltl_core.commands._common import add_config, add_setting, declared, make_config, writable_dir, writable_file
from dltl_core.progress import Progress
from dltl_core.train.tensorboard import tensorboard_available
from dltl_core.transfer import FINETUNE, _DEFAULTS, TransferConfig

NAME = "transfer"
HELP = "Classify bird species with a pretrained backbone: linear head, fine-tuning or from scratch."


# Declared once, on TransferConfig's fields: --help, the parse-time checks and the config read them.
EPOCHS = declared(TransferConfig, "epochs")
BATCH_SIZE = declared(TransferConfig, "batch_size")
PER_SPECIES = declared(TransferConfig, "max_per_species")
UNFREEZE = declared(TransferConfig, "unfreeze_blocks")
IMAGE_SIZE = declared(TransferConfig, "image_size")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="folder with one sub-folder per species (default: $DLTL_BIRDS_DIR)")
    add_config(parser, TransferConfig, ("species", "mode", "backbone"))
    add_setting(parser, TransferConfig, "max_per_species", help="cap on photos per species (default: all)")
    add_setting(parser, TransferConfig, "val_fraction")
    add_setting(parser, TransferConfig, "epochs",
                help=f"epochs (default: {_DEFAULTS['linear']['epochs']} linear, {FINETUNE.epochs} fine-tuning, "
                     f"{_DEFAULTS['finetune']['epochs']} end to end, {_DEFAULTS['scratch']['epochs']} scratch)")
    add_setting(parser, TransferConfig, "lr",
                help=f"learning rate (default: {_DEFAULTS['linear']['lr']:g} linear, {FINETUNE.lr:g} fine-tuning "
                     f"(the backbone x {FINETUNE.backbone_lr_factor:g}), {_DEFAULTS['finetune']['lr']:g} "
                     f"end to end and scratch)")
    add_setting(parser, TransferConfig, "batch_size", help="mini-batch size (default: the mode's)")
    add_setting(parser, TransferConfig, "unfreeze_blocks",
                help=f"fine-tuning: train only the last N stages, on the cached activations of the "
                     f"frozen ones (default: {FINETUNE.unfreeze_blocks}, the page's default)")
    parser.add_argument("--end-to-end", action="store_true",
                        help="fine-tuning: train every stage on the photos, with augmentation (minutes on a CPU)")
    parser.add_argument("--no-augment", action="store_true", help="no random crop/flip")
    add_setting(parser, TransferConfig, "image_size", help="crop size for finetune/scratch (default: the backbone's)")
    add_setting(parser, TransferConfig, "seed")
    parser.add_argument("--test-data", default=None,
                        help="folder with the same species sub-folders: reports test_accuracy")
    parser.add_argument("--save", metavar="PATH", help="write the trained network (backbone + head) to PATH "
                                                       "(python -m dltl_core predict --load PATH PHOTOS)")
    parser.add_argument("--tensorboard", metavar="DIR", help="write per-epoch scalars and hyperparameters to DIR")


def check_args(args: argparse.Namespace, data: str) -> None:
    """Refuse out-of-range values and unwritable outputs before any photo is decoded."""
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


def config_from_args(args: argparse.Namespace, data: str) -> TransferConfig:
    """The run the arguments ask for; ``--mode finetune`` alone is the page's default (``FINETUNE``)."""
    unfreeze = args.unfreeze_blocks
    if args.mode == "finetune" and unfreeze is None and not args.end_to_end:
        unfreeze = FINETUNE.unfreeze_blocks  # the one default of the page and the command line
    return make_config(
        TransferConfig, {"augment": "--no-augment"}, data=str(data), species=str(args.species), max_per_species=args.max_per_species,
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
