"""``python -m dltl_core arch``: parameters, FLOPs and measured throughput of an architecture."""

from __future__ import annotations

import argparse
from typing import Any

from dltl_core.archs import ARCHS, create_arch
from dltl_core.profile import compare_archs, describe, layer_table, profile_arch
from dltl_core.progress import Progress

NAME = "arch"
HELP = "Profile a CIFAR architecture: parameters, FLOPs per image, training/inference images per second."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="resnet18", help=f"architecture: {', '.join(ARCHS)} (or 'all')")
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier (default 1.0)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the throughput measurement")
    parser.add_argument("--batches", type=int, default=3, help="batches per timed epoch")
    parser.add_argument("--no-measure", action="store_true", help="skip the throughput measurement")
    parser.add_argument("--layers", action="store_true", help="include the layer table and description")
    parser.add_argument("--no-cache", action="store_true", help="measure again even if a cached figure exists")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.batch_size < 2 or args.batches < 1:
        raise ValueError("the batch size must be at least 2 and the batch count at least 1")
    if args.name == "all":
        return {"width": args.width, "archs": compare_archs(args.width)}
    if args.name not in ARCHS:
        raise ValueError(f"unknown architecture {args.name!r}; choose from {', '.join(ARCHS)}, all")
    measure = not args.no_measure
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
