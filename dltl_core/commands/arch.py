"""``python -m dltl_core arch``: parameters, FLOPs and measured throughput of an architecture."""

from __future__ import annotations

import argparse
from typing import Any

from dltl_core.archs import ARCHS, create_arch
from dltl_core.archs._registry import WIDTH
from dltl_core.commands._common import add_bounded
from dltl_core.models.budget import check_fits, free_bytes_on, meta_activations, training_bytes
from dltl_core.profile import INPUT_SHAPE, compare_archs, describe, layer_table, profile_arch
from dltl_core.progress import Progress
from dltl_core.settings import Setting

NAME = "arch"
HELP = "Profile a CIFAR architecture: parameters, FLOPs per image, training/inference images per second."


# Declared once: --help and the checks read them (WIDTH is the architectures' own, create_arch
# checks it too). A timed epoch of 100 batches of 4,096 32x32 images is already minutes on a
# GPU; the memory of the batch is checked as well.
BATCH_SIZE = Setting("images per batch", lo=2, hi=4096)
BATCHES = Setting("batches per timed epoch", lo=1, hi=100)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="resnet18", help=f"architecture: {', '.join(ARCHS)} (or 'all')")
    add_bounded(parser, "--width", WIDTH, kind=float, default=1.0, help="width multiplier")
    add_bounded(parser, "--batch-size", BATCH_SIZE, default=32, help="batch size of the throughput measurement")
    add_bounded(parser, "--batches", BATCHES, default=3, help="batches per timed epoch")
    parser.add_argument("--no-measure", action="store_true", help="skip the throughput measurement")
    parser.add_argument("--layers", action="store_true", help="include the layer table and description")
    parser.add_argument("--no-cache", action="store_true", help="measure again even if a cached figure exists")


def check_memory(name: str, width: float, batch_size: int, what: str = "timing",
                 advice: str = "use a smaller --batch-size or --width, or --no-measure") -> None:
    """Refuse training ``name`` whose batch would not fit in the free memory (counted on the
    meta device, nothing allocated: weights, gradients, momentum, the batch's activations)."""
    from dltl_core.device import get_policy

    params, acts = meta_activations(lambda: create_arch(name, width=width), INPUT_SHAPE)
    check_fits(training_bytes(params, acts, batch_size),
               f"{what} {name} at width {width:g} with batches of {batch_size}", advice,
               available=free_bytes_on(get_policy().device))


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.name == "all":
        return {"width": args.width, "archs": compare_archs(args.width)}
    if args.name not in ARCHS:
        raise ValueError(f"unknown architecture {args.name!r}; choose from {', '.join(ARCHS)}, all")
    measure = not args.no_measure
    if measure:
        check_memory(args.name, args.width, args.batch_size)
    what = "FLOPs and throughput (2 short training epochs + inference)" if measure else "FLOPs"
    # profile_arch has no step hook: the bar names the phase and its clock keeps ticking.
    with Progress.from_args(args).phases([what], desc=args.name, tick=1.0):
        prof = profile_arch(args.name, args.width, measure=measure, batch_size=args.batch_size,
                            batches=args.batches, use_cache=not args.no_cache)
    out = prof.as_dict()
    if args.layers:
        out["description"] = describe(args.name)
        out["layers"] = layer_table(create_arch(args.name, width=args.width))
    return out


def format_text(result: dict[str, Any]) -> str:
    if "archs" in result:
        lines = [f"{'architecture':<18}{'params':>14}{'MFLOPs':>10}  reference"]
        for r in result["archs"]:
            ref = f"{r['reference_acc']:.2f}%" if r["reference_acc"] else "-"
            lines.append(f"{r['label']:<18}{r['params']:>14,}{r['flops'] / 1e6:>10.1f}  {ref}")
        return "\n".join(lines)
    tr, inf = result["train_images_per_second"], result["infer_images_per_second"]
    lines = [f"{result['name']} (width {result['width']}) on {result['device']}",
             f"  parameters       {result['params']:,}",
             f"  FLOPs / image    {result['flops'] / 1e6:,.1f} M",
             f"  training         {tr:,.1f} images/s" if tr else "  training         not measured",
             f"  inference        {inf:,.1f} images/s" if inf else "  inference        not measured"]
    for row in result.get("layers", []):
        lines.append(f"    {row['name']:<18} {row['layer']:<44}{row['output']:>12}{row['params']:>12,}")
    return "\n".join(lines)
