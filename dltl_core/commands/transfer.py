"""``python -m dltl_core transfer``: transfer learning on a folder of bird species."""

from __future__ import annotations

import argparse
from typing import Any

from dltl_core.backbones import BACKBONES, DEFAULT_BACKBONE
from dltl_core.birds import default_birds_dir
from dltl_core.transfer import MODES, TransferConfig, run_transfer

NAME = "transfer"
HELP = "Classify bird species with a pretrained backbone: linear head, fine-tuning or from scratch."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="folder with one sub-folder per species (default: $DLTL_BIRDS_DIR)")
    parser.add_argument("--species", default="10",
                        help="a count k (first k species alphabetically) or comma-separated names")
    parser.add_argument("--mode", choices=MODES, default="linear")
    parser.add_argument("--backbone", choices=list(BACKBONES), default=DEFAULT_BACKBONE)
    parser.add_argument("--max-per-species", type=int, default=None, help="cap on photos per species")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=None, help="default: 30 linear, 4 image modes")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--unfreeze-blocks", type=int, default=None,
                        help="fine-tuning: train only the last N stages (default: all)")
    parser.add_argument("--no-augment", action="store_true", help="no random crop/flip")
    parser.add_argument("--image-size", type=int, default=None,
                        help="crop size for finetune/scratch (default: the backbone's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-data", default=None,
                        help="folder with the same species sub-folders: reports test_accuracy")


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = args.data or default_birds_dir()
    if data is None:
        raise ValueError("no bird folder: pass --data DIR (one sub-folder per species) or set DLTL_BIRDS_DIR")
    config = TransferConfig(
        data=str(data), species=str(args.species), max_per_species=args.max_per_species,
        val_fraction=args.val_fraction, seed=args.seed, backbone=args.backbone, mode=args.mode,
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, unfreeze_blocks=args.unfreeze_blocks,
        augment=not args.no_augment, image_size=args.image_size, feature_map="none")
    result = run_transfer(config, test_data=args.test_data)
    out = result.summary()
    out.update({"backbone": result.backbone, "n_train": result.n_train, "n_val": result.n_val,
                "features_cached": result.features_cached,
                "skipped": [{"file": f, "reason": r} for f, r in result.skipped]})
    return out


def format_text(result: dict[str, Any]) -> str:
    test = "" if result["test_accuracy"] is None else f", test accuracy {result['test_accuracy']:.1%}"
    return (f"{result['mode']} on {len(result['species'])} species with {result['backbone']}: "
            f"validation accuracy {result['val_accuracy']:.1%}{test} in {result['seconds']:.1f} s "
            f"({result['images_per_second']:.1f} photos/s), {result['skipped_files']} files skipped")
