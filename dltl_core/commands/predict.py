"""``python -m dltl_core predict``: reload a saved model and classify images with it.

Example::

    python -m dltl_core train --data folder --folder imgs/train --val-folder imgs/val \\
        --model cnn --epochs 10 --save cnn.pt
    python -m dltl_core predict --load cnn.pt imgs/val --json

A folder with one sub-folder per class (the class names of the model) gives the
accuracy as well; a plain folder or single files give the predictions only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dltl_core.commands._common import add_bounded
from dltl_core.settings import Setting

NAME = "predict"
HELP = "classify images with a model saved by --save (train); prints the predictions and the accuracy"


# Declared once (--help and the checks read them): a forward pass of 4,096 photos at
# 224 pixels is 2.5 GB of input already; no model of the course has 1,000 classes.
TOP = Setting("classes listed", lo=1, hi=1000)
BATCH_SIZE = Setting("images per forward pass", lo=1, hi=4096)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load", required=True, metavar="PATH", help="model file written by --save")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER",
                        help="image files, folders of images, or a folder with one sub-folder per class")
    add_bounded(parser, "--top", TOP, default=3, help="classes listed per image")
    add_bounded(parser, "--batch-size", BATCH_SIZE, default=256, help="images per forward pass")


def _image_size(inputs: dict[str, Any]) -> int | tuple[int, int]:
    h, w = inputs["size"]
    # The training images were centre-cropped to image_size, or resized to (W, H).
    return int(inputs["image_size"]) if inputs.get("crop") else (int(w), int(h))


def _list(paths: list[str], classes: list[str]) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """(file, label or -1) for every input; a folder whose sub-folders are class names is labelled."""
    from dltl_core.images import is_image_name

    items: list[tuple[str, int]] = []
    skipped: list[tuple[str, str]] = []

    def add(files: list[Path], label: int) -> None:
        for f in sorted(files):
            if f.name.startswith("."):
                continue
            if is_image_name(f.name):
                items.append((str(f), label))
            else:
                skipped.append((str(f), "not an image file name (extension)"))

    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise ValueError(f"no such file or folder: {raw}")
        if p.is_file():
            add([p], -1)
            continue
        subdirs = sorted(d.name for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
        if subdirs and set(subdirs) <= set(classes):
            for d in subdirs:
                add([f for f in (p / d).iterdir() if f.is_file()], classes.index(d))
        else:
            add([f for f in p.iterdir() if f.is_file()], -1)
    return items, skipped


def _decode_images(items: list[tuple[str, int]], inputs: dict[str, Any]) -> tuple[Any, list[int], list]:
    """uint8 images for a ``train`` model: decoded exactly as ``load_image_folder`` did in training."""
    import torch

    from dltl_core.data.folder import _decode  # the decoding training used

    size = _image_size(inputs)
    xs, ok, bad = [], [], []
    for i, (f, _) in enumerate(items):
        out = _decode(f, size)
        if isinstance(out, str):
            bad.append((f, out))
        else:
            xs.append(torch.from_numpy(out).permute(2, 0, 1))
            ok.append(i)
    return (torch.stack(xs) if xs else None), ok, bad


def _model_inputs(ck: dict[str, Any], items: list[tuple[str, int]]) -> tuple[Any, list[int], list, Any]:
    """(images, kept positions, skipped, batch transform) for the checkpoint's kind of model."""
    inputs = ck["inputs"]
    if ck["task"] == "train":
        if inputs.get("kind") != "image":
            raise ValueError(f"predict reads image models; this one was trained on {inputs.get('kind')!r} "
                             "(save a model trained with --data folder)")
        x, ok, bad = _decode_images(items, inputs)
        if inputs.get("scale") == "cifar":  # search --fixed networks: CIFAR mean/std normalisation
            from dltl_core.data.cifar import normalize_batch

            return x, ok, bad, normalize_batch
        return x, ok, bad, None
    from dltl_core.photos import load_image_tensors, make_batch_transform

    cfg = inputs["data_config"]
    x, ok, bad = load_image_tensors([f for f, _ in items], cfg, inputs.get("image_size"))
    return x, ok, bad, make_batch_transform(cfg, int(inputs["crop"]), augment=False)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from dltl_core import checkpoint
    from dltl_core.device import get_policy
    from dltl_core.train import predict

    ck = checkpoint.load(args.load)
    classes = list(ck["classes"])
    items, skipped = _list(args.inputs, classes)
    x, ok, bad, transform = _model_inputs(ck, items) if items else (None, [], [], None)
    skipped += list(bad)
    if x is None or not ok:
        raise ValueError("no image could be read from the inputs")
    policy = get_policy()
    model = checkpoint.build_model(ck).to(policy.device)
    probs = predict(model, x, args.batch_size, policy, transform)
    k = min(args.top, len(classes))
    top_p, top_i = probs.topk(k, dim=1)
    rows, correct, labelled = [], 0, 0
    for n, pos in enumerate(ok):
        f, label = items[pos]
        row = {"file": f, "predicted": classes[int(top_i[n, 0])], "confidence": float(top_p[n, 0]),
               "top": [[classes[int(i)], float(q)] for q, i in zip(top_p[n], top_i[n])]}
        if label >= 0:
            row["true"] = classes[label]
            labelled += 1
            correct += int(int(top_i[n, 0]) == label)
        rows.append(row)
    return {"model": args.load, "task": ck["task"], "classes": classes, "saved_metrics": ck.get("metrics", {}),
            "n": len(rows), "labelled": labelled,
            "accuracy": correct / labelled if labelled else None,  # exact: a count over a count
            "predictions": rows, "skipped": [{"file": f, "reason": r} for f, r in skipped],
            "device": policy.name}


def format_text(result: dict[str, Any]) -> str:
    lines = [f"{'file':<48} {'predicted':<20} {'confidence':>10}  true"]
    for r in result["predictions"][:50]:
        lines.append(f"{Path(r['file']).name[-48:]:<48} {r['predicted']:<20} {r['confidence']:>10.3f}  "
                     f"{r.get('true', '')}")
    if result["n"] > 50:
        lines.append(f"... {result['n'] - 50} more (use --json for all)")
    if result["accuracy"] is not None:
        lines.append(f"accuracy {result['accuracy']:.4f} on {result['labelled']} labelled images")
    saved = result["saved_metrics"].get("val_acc", result["saved_metrics"].get("val_accuracy"))
    if saved is not None:
        lines.append(f"validation accuracy saved with the model: {saved:.4f}")
    if result["skipped"]:
        lines.append(f"{len(result['skipped'])} files skipped")
    return "\n".join(lines)
