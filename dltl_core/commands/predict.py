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

from dltl_core.commands._common import check_range

NAME = "predict"
HELP = "classify images with a model saved by --save (train); prints the predictions and the accuracy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load", required=True, metavar="PATH", help="model file written by --save")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER",
                        help="image files, folders of images, or a folder with one sub-folder per class")
    parser.add_argument("--top", type=int, default=3, help="classes listed per image (default 3)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")


def _image_size(inputs: dict[str, Any]) -> int | tuple[int, int]:
    h, w = inputs["size"]
    # The training images were centre-cropped to image_size, or resized to (W, H).
    return int(inputs["image_size"]) if inputs.get("crop") else (int(w), int(h))


def _labelled(folder: Path, classes: list[str]) -> list[str]:
    subdirs = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    return [d for d in subdirs if d in classes] if subdirs and set(subdirs) <= set(classes) else []


def _gather(paths: list[str], classes: list[str], size: Any) -> tuple[Any, Any, list[str], list[tuple[str, str]]]:
    """Decode every input: (uint8 images, labels or -1, files, skipped)."""
    import torch

    from dltl_core.data.folder import _decode, load_image_folder  # the decoding training used
    from dltl_core.images import is_image_name

    xs, ys, files, skipped = [], [], [], []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise ValueError(f"no such file or folder: {raw}")
        sub = _labelled(p, classes) if p.is_dir() else []
        if sub:
            s = load_image_folder(p, size=size, classes=sub)
            xs.append(s.x)
            ys.append(torch.tensor([classes.index(sub[int(i)]) for i in s.y], dtype=torch.long))
            files += list(s.files)
            skipped += list(s.skipped)
            continue
        candidates = sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
        for f in candidates:
            if not is_image_name(f.name):
                skipped.append((str(f), "not an image file name (extension)"))
                continue
            out = _decode(str(f), size)
            if isinstance(out, str):
                skipped.append((str(f), out))
                continue
            xs.append(torch.from_numpy(out).permute(2, 0, 1).unsqueeze(0))
            ys.append(torch.tensor([-1]))
            files.append(str(f))
    if not files:
        raise ValueError("no image could be read from the inputs")
    return torch.cat(xs), torch.cat(ys), files, skipped


def run(args: argparse.Namespace) -> dict[str, Any]:
    from dltl_core import checkpoint
    from dltl_core.device import get_policy
    from dltl_core.train import predict

    check_range("--top", args.top, 1)
    check_range("--batch-size", args.batch_size, 1)
    ck = checkpoint.load(args.load)
    inputs = ck["inputs"]
    if ck["task"] != "train" or inputs.get("kind") != "image":
        raise ValueError(f"{args.load}: predict reads image models saved by 'train --data folder' "
                         f"(this one takes {inputs.get('kind')!r} inputs)")
    classes = list(ck["classes"])
    x, y, files, skipped = _gather(args.inputs, classes, _image_size(inputs))
    policy = get_policy()
    model = checkpoint.build_model(ck).to(policy.device)
    probs = predict(model, x, args.batch_size, policy)
    k = min(args.top, len(classes))
    top_p, top_i = probs.topk(k, dim=1)
    rows = []
    for n, f in enumerate(files):
        row = {"file": f, "predicted": classes[int(top_i[n, 0])], "confidence": float(top_p[n, 0]),
               "top": [[classes[int(i)], float(q)] for q, i in zip(top_p[n], top_i[n])]}
        if int(y[n]) >= 0:
            row["true"] = classes[int(y[n])]
        rows.append(row)
    known = y >= 0
    correct = int((top_i[known, 0] == y[known]).sum())
    accuracy = correct / int(known.sum()) if bool(known.any()) else None  # exact: a count over a count
    return {"model": args.load, "classes": classes, "saved_metrics": ck.get("metrics", {}),
            "n": len(files), "labelled": int(known.sum()), "accuracy": accuracy, "predictions": rows,
            "skipped": [{"file": f, "reason": r} for f, r in skipped], "device": policy.name}


def format_text(result: dict[str, Any]) -> str:
    lines = [f"{'file':<48} {'predicted':<20} {'confidence':>10}  true"]
    for r in result["predictions"][:50]:
        lines.append(f"{Path(r['file']).name[-48:]:<48} {r['predicted']:<20} {r['confidence']:>10.3f}  "
                     f"{r.get('true', '')}")
    if result["n"] > 50:
        lines.append(f"... {result['n'] - 50} more (use --json for all)")
    if result["accuracy"] is not None:
        lines.append(f"accuracy {result['accuracy']:.4f} on {result['labelled']} labelled images")
    saved = result["saved_metrics"].get("val_acc")
    if saved is not None:
        lines.append(f"validation accuracy saved with the model: {saved:.4f}")
    if result["skipped"]:
        lines.append(f"{len(result['skipped'])} files skipped")
    return "\n".join(lines)
