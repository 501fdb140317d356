"""The assignment's recipes per architecture: accuracy and time of ``fit``, against a plain loop.

For each architecture, in one process on one device:

* ``fit`` trains it with a named recipe (``dltl_core.recipes``); the record gives the
  epochs, the seconds per epoch and the accuracy on held-out images (the official
  test set when ``<data_dir>/test/`` exists, else the last ``--holdout`` training
  images of each class, which the training never sees);
* a plain PyTorch loop trains the same network from the same weights with the same
  optimizer, peak rate, batch size, epochs and augmentation, written the textbook way
  (``torch.optim``, ``OneCycleLR``/``CosineAnnealingLR`` with PyTorch's defaults, weight
  decay on every parameter, no averaging, no TTA); ``fit_minus_plain`` is the
  accuracy difference in points;
* on CUDA, ``compile_speedup`` is the steady-state epoch time of eager ``fit`` divided
  by that of ``fit`` with ``torch.compile`` (first, compiling epoch excluded).

    python bench/bench_recipe.py                                   # CPU: small defaults, minutes
    python bench/bench_recipe.py --recipe fast --archs all --width 1 --max-per-class 5000   # a GPU

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dltl_core.archs import ARCHS, create_arch  # noqa: E402
from dltl_core.data.cifar import CifarAugment, load_cifar10  # noqa: E402
from dltl_core.device import DevicePolicy, get_policy  # noqa: E402
from dltl_core.optim import create_optimizer  # noqa: E402
from dltl_core.recipes import get_recipe  # noqa: E402
from dltl_core.search import DataSpec, load_test  # noqa: E402
from dltl_core.train import TrainConfig, evaluate, fit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
Data = tuple[torch.Tensor, torch.Tensor]


def data(data_dir: Path, per_class: int, holdout: int) -> tuple[Data, Data, str]:
    """Training images and the held-out set (the official test set when present)."""
    full = load_cifar10(data_dir)
    test = load_test(DataSpec(str(data_dir)), full.classes)
    tr, te = [], []
    for c in range(len(full.classes)):
        idx = torch.nonzero(full.y == c).flatten()
        tr.append(idx[:min(per_class, len(idx) - (0 if test is not None else holdout))])
        te.append(idx[-holdout:])
    train = full.x[torch.cat(tr)], full.y[torch.cat(tr)]
    if test is not None:
        return train, test, "official test set"
    return train, (full.x[torch.cat(te)], full.y[torch.cat(te)]), f"last {holdout} training images per class"


def plain_loop(arch: str, width: float, cfg: TrainConfig, train: Data, policy: DevicePolicy) -> torch.nn.Module:
    """The textbook loop with the recipe's optimizer, rate, batch, epochs and augmentation."""
    model = create_arch(arch, width=width, seed=cfg.seed).to(policy.device)
    if policy.channels_last:
        model = model.to(memory_format=torch.channels_last)
    torch.manual_seed(cfg.seed)
    opt = create_optimizer(cfg.optimizer, model.parameters(), cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)
    x, y = train[0].to(policy.device), train[1].to(policy.device)
    steps = cfg.epochs * math.ceil(len(y) / cfg.batch_size)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
             if cfg.schedule == "onecycle" else torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps))
    aug = CifarAugment(seed=cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(y), generator=gen).to(policy.device)
        for start in range(0, len(y), cfg.batch_size):
            idx = perm[start:start + cfg.batch_size]
            if len(idx) < 2:
                continue  # BatchNorm needs two samples
            xb = aug(x[idx], True)
            if policy.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with policy.autocast():
                loss = F.cross_entropy(model(xb).float(), y[idx], label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def one_arch(arch: str, args: argparse.Namespace, cfg: TrainConfig, train: Data, test: Data,
             policy: DevicePolicy) -> dict:
    aug = CifarAugment(seed=cfg.seed)
    model = create_arch(arch, width=args.width, seed=cfg.seed)
    result = fit(model, train, None, cfg, policy=policy, batch_transform=aug)
    per_epoch = [r.seconds for r in result.history]
    out = {"arch": arch, "epochs": len(result.history), "seconds": round(result.seconds, 2),
           "seconds_per_epoch": round(sum(per_epoch[1:] or per_epoch) / max(1, len(per_epoch[1:] or per_epoch)), 3),
           "diverged": result.diverged_reason or None,
           "test_acc": evaluate(model, test, 512, policy, aug)[1],
           "test_acc_tta": evaluate(model, test, 512, policy, aug, tta=True)[1]}
    if not args.no_plain:
        plain = plain_loop(arch, args.width, cfg, train, policy)
        out["plain_test_acc"] = evaluate(plain, test, 512, policy, aug)[1]
        out["fit_minus_plain"] = round(100 * (out["test_acc"] - out["plain_test_acc"]), 2)
    if policy.device.type == "cuda" and not args.no_compile:
        eager = out["seconds_per_epoch"]
        few = replace(cfg, epochs=min(cfg.epochs, 3), compile=True)
        comp = fit(create_arch(arch, width=args.width, seed=cfg.seed), train, None, few, policy=policy,
                   batch_transform=aug)
        out["compile_seconds_per_epoch"] = round(min(r.seconds for r in comp.history[1:] or comp.history), 3)
        out["compile_speedup"] = round(eager / out["compile_seconds_per_epoch"], 3)
    return out


def main() -> None:
    policy = get_policy()
    gpu = policy.device.type == "cuda"
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", default="fast" if gpu else "cpu")
    p.add_argument("--archs", default="all" if gpu else "vgg11_bn,resnet18")
    p.add_argument("--width", type=float, default=1.0 if gpu else 0.125)
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--max-per-class", type=int, default=5000 if gpu else 300)
    p.add_argument("--holdout", type=int, default=100)
    p.add_argument("--no-plain", action="store_true", help="skip the plain-loop comparison")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement (CUDA)")
    p.add_argument("--data-dir", default=os.environ.get("DLTL_CIFAR_DIR", str(ROOT.parent / "shared" / "cifar10")))
    args = p.parse_args()
    recipe = get_recipe(args.recipe)
    cfg = recipe.config if args.epochs is None else replace(recipe.config, epochs=args.epochs)
    train, test, held = data(Path(args.data_dir), args.max_per_class, args.holdout)
    if cfg.batch_size > len(train[1]):
        cfg = replace(cfg, batch_size=len(train[1]) // 4)
    archs = list(ARCHS) if args.archs == "all" else args.archs.split(",")
    rows = [one_arch(a, args, cfg, train, test, policy) for a in archs]
    print(json.dumps({"bench": "recipe", "device": policy.name, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "load_average": os.getloadavg()[0],
                      "recipe": args.recipe, "config": cfg.as_dict(), "width": args.width,
                      "train_images": len(train[1]), "held_out": held, "held_out_images": len(test[1]),
                      "archs": rows}, indent=1))


if __name__ == "__main__":
    main()
