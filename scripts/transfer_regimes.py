"""When does fine-tuning pay? Frozen backbone vs fine-tuning vs from scratch, against photos per species.

Measures, on a folder of bird species (one sub-folder per species), the validation accuracy and
the seconds of three regimes, with the page's own code:

- ``linear``: the frozen backbone's pooled features and a linear head (``probe_head``: the
  page's linear mode);
- ``finetune``: the page's fine-tuning, the last stages trained on the cached activations of
  the frozen early stages, the head starting from the linear probe (``finetune_tail``);
- ``scratch``: the same architecture from random weights, trained on the photos (small images
  and few epochs on a CPU: said in the output).

Every seed draws its own stratified split: ``--val-per-species`` photos of each species validate,
and the training sets are nested (the first n of the remaining photos), so the only thing that
changes along the x axis is the number of training photos. Features and activations are
extracted once per species set (disk cache) and the per-run seconds exclude that one-time pass
(recorded separately, with the rate of a full forward pass for calibration).

    .venv/bin/python scripts/transfer_regimes.py --data ../shared/birds/cub100 \\
        --species 10,30 --train 4,8,16,all --seeds 0,1,2 --out assets/transfer_regimes.json

Writes one JSON object (``dltl_core.transfer_regimes`` reads and checks it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dltl_core import transfer as tl  # noqa: E402
from dltl_core.backbones import DEFAULT_BACKBONE, create_backbone  # noqa: E402
from dltl_core.birds import load_birds  # noqa: E402
from dltl_core.device import get_policy  # noqa: E402
from dltl_core.features import extract_activations  # noqa: E402
from dltl_core.photos import load_image_tensors, make_batch_transform, train_image_size  # noqa: E402
from dltl_core.train import fit  # noqa: E402
from dltl_core.transfer_regimes import SCHEMA_VERSION, check  # noqa: E402


def nested_split(labels: Sequence[int], val_per_species: int, seed: int) -> tuple[list[int], dict[int, list[int]]]:
    """(validation rows, each species' remaining rows in a seeded order): train(n) = pool[:n]."""
    gen = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    val, pools = [], {}
    for y in sorted(by_class):
        rows = [by_class[y][int(j)] for j in torch.randperm(len(by_class[y]), generator=gen)]
        val += rows[:val_per_species]
        pools[y] = rows[val_per_species:]
    return sorted(val), pools


def train_rows(pools: dict[int, list[int]], n: int | None) -> list[int]:
    """The first ``n`` rows of each species' pool (None = all of them)."""
    return sorted(r for rows in pools.values() for r in (rows if n is None else rows[:n]))


def _accuracy(res: Any) -> float:
    return float(res.history[-1].val_acc)


def run_linear(cfg: tl.TransferConfig, feats, y, tr, va, k, policy) -> dict[str, Any]:
    t = time.perf_counter()
    probe, acc = tl.probe_head(feats, y, tr, va, cfg, k, policy)
    return {"val_accuracy": float(acc), "seconds": time.perf_counter() - t}, probe


def run_finetune(cfg: tl.TransferConfig, backbone, cut, feats, acts, y, tr, va, k, policy) -> dict[str, Any]:
    t = time.perf_counter()
    probe, probe_acc = tl.probe_head(feats, y, tr, va, cfg, k, policy)  # part of its cost on the page
    _, _, res = tl.finetune_tail(cfg, backbone, cut, probe, acts, y, tr, va, policy)
    return {"val_accuracy": _accuracy(res), "seconds": time.perf_counter() - t, "probe_accuracy": float(probe_acc),
            "epochs": len(res.history), "diverged_at": res.diverged_at}


def run_scratch(cfg: tl.TransferConfig, backbone, images, y, tr, va, k, policy) -> dict[str, Any]:
    t = time.perf_counter()
    model = tl.scratch_model(backbone.name, k, cfg.seed)
    _, crop = train_image_size(backbone.data_config, cfg.image_size)
    transform = make_batch_transform(backbone.data_config, crop, cfg.augment, cfg.seed)
    res = fit(model, (images[tr], y[tr]), (images[va], y[va]), cfg.train_config(len(tr)), policy=policy,
              batch_transform=transform)
    return {"val_accuracy": _accuracy(res), "seconds": time.perf_counter() - t}


def _parse_train(text: str) -> list[int | None]:
    return [None if t.strip() == "all" else int(t) for t in text.split(",")]


def _versions() -> dict[str, str]:
    import timm
    import torchvision
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__}


class SpeciesSet:
    """One species count's photos, extracted once: activations at the cut, pooled features, small images."""

    def __init__(self, args, k: int, backbone, policy, finetune: tl.TransferConfig, scratch: tl.TransferConfig):
        birds = load_birds(args.data, str(k))
        self.k, self.cut = k, tl.cut_index(backbone, finetune.unfreeze_blocks)
        transform, tid = tl.eval_transform(backbone, None)
        t = time.perf_counter()
        self.acts = extract_activations(backbone, birds.files, birds.labels, tl.frozen_part(backbone, self.cut),
                                        f"stages<{self.cut}", transform=transform, transform_id=tid, policy=policy)
        self.feats = tl.pretrained_tail_features(backbone, self.cut, self.acts.features, policy)
        self.extraction = {"species": k, "photos": len(self.acts.files), "seconds": time.perf_counter() - t,
                           "extracted_now": self.acts.extracted, "cost_seconds": self.acts.cost_seconds}
        self.images = None
        if k in args.scratch_species and "scratch" in args.modes:
            self.images, ok, _ = load_image_tensors(self.acts.files, backbone.data_config, scratch.image_size)
            assert len(ok) == len(self.acts.files), "a photo decoded for the features but not as an image"


def measure_seed(args, s: SpeciesSet, seed: int, backbone, policy, finetune, scratch, log) -> list[dict]:
    """Every training size and mode of one species set and one seed."""
    y, k = s.acts.labels, s.k
    va, pools = nested_split(y.tolist(), args.val_per_species, seed)
    runs = []
    for n in args.train:
        tr = train_rows(pools, n)
        row = {"species": k, "seed": seed, "train_per_species": n if n is not None else "all",
               "n_train": len(tr), "n_val": len(va)}
        lin, _ = run_linear(replace(finetune, seed=seed), s.feats, y, tr, va, k, policy)
        done = [{**row, "mode": "linear", **lin}]
        if "finetune" in args.modes:
            done.append({**row, "mode": "finetune", **run_finetune(replace(finetune, seed=seed), backbone, s.cut,
                                                                    s.feats, s.acts.features, y, tr, va, k, policy)})
        if s.images is not None:
            done.append({**row, "mode": "scratch", **run_scratch(replace(scratch, seed=seed), backbone, s.images,
                                                                  y, tr, va, k, policy)})
        log(" ".join(f"{r['mode']} {r['val_accuracy']:.3f} ({r['seconds']:.1f} s)" for r in done)
            + f"  k={k} n={row['train_per_species']} seed={seed}")
        runs += done
    return runs


def full_forward_rate(backbone, files: Sequence[str], policy, n: int = 48) -> float:
    """Photos per second of the whole pretrained network (decode + forward), for calibration:
    the page's time estimates scale with this rate, measured on its own server."""
    from dltl_core.features import _extract_chunk  # the extraction's own batch loop
    t = time.perf_counter()
    _extract_chunk(backbone, list(files[:n]), 32, policy, lambda _: None)
    return n / (time.perf_counter() - t)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--species", default="10,30", help="species counts (first k alphabetically)")
    p.add_argument("--train", default="4,8,16,all", help="training photos per species ('all' = the rest)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--val-per-species", type=int, default=8)
    p.add_argument("--modes", default="linear,finetune,scratch")
    p.add_argument("--finetune", default="", help="overrides of the fine-tuning default, e.g. epochs=10,lr=1e-3")
    p.add_argument("--scratch-size", type=int, default=64, help="from scratch: image size (pixels)")
    p.add_argument("--scratch-epochs", type=int, default=3)
    p.add_argument("--scratch-species", default="10", help="species counts that also train from scratch")
    p.add_argument("--out", default=None, help="write the JSON here (default: stdout)")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.train = _parse_train(args.train)
    args.modes = args.modes.split(",")
    args.scratch_species = [int(k) for k in args.scratch_species.split(",") if k]
    policy = get_policy()
    backbone = create_backbone(DEFAULT_BACKBONE, policy)
    overrides = {kv.split("=")[0]: kv.split("=")[1] for kv in args.finetune.split(",") if kv}
    finetune = tl.finetune_default_config(args.data, **{k: _num(v) for k, v in overrides.items()})
    scratch = tl.TransferConfig(data=args.data, mode="scratch", image_size=args.scratch_size,
                                epochs=args.scratch_epochs)
    started = dt.datetime.now(dt.timezone.utc)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {msg}", file=sys.stderr, flush=True)

    sets = [SpeciesSet(args, int(k), backbone, policy, finetune, scratch) for k in args.species.split(",")]
    rate = full_forward_rate(backbone, load_birds(args.data, "2").files, policy)
    runs, seeds_done = [], []
    for seed in args.seeds:  # seed by seed: after each, the file holds every cell over the seeds so far
        for s in sets:
            runs += measure_seed(args, s, seed, backbone, policy, finetune, scratch, log)
        seeds_done.append(seed)
        write(args, report(args, backbone, policy, finetune, scratch, runs, seeds_done, sets, rate, started, argv))


def report(args, backbone, policy, finetune, scratch, runs, seeds, sets, rate, started, argv) -> dict:
    """The JSON object: the runs so far with their provenance."""
    out = {
        "schema": SCHEMA_VERSION,
        "what": "validation accuracy against training photos per species: frozen backbone + linear head, "
                "fine-tuning (the page's default), from scratch",
        "data": Path(args.data).name, "backbone": backbone.name,
        "split": {"val_per_species": args.val_per_species, "nested_training_sets": True,
                  "how": "per seed, a seeded permutation of each species' photos: the first val_per_species "
                         "validate; train(n) = the next n (all = the rest)"},
        "seeds": seeds,
        "finetune": tl.finetune_settings(finetune),
        "scratch": {"image_size": args.scratch_size, "epochs": args.scratch_epochs, "augment": scratch.augment,
                    "lr": scratch.train_config(1).lr, "species": args.scratch_species},
        "runs": runs, "extraction": [s.extraction for s in sets],
        "calibration": {"full_forward_photos_per_second": rate},
        "device": {"name": policy.device.type, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                   "processor": platform.processor() or platform.machine(), "load_average_at_start": _load_start,
                   "load_average_at_end": list(os.getloadavg())},
        "versions": _versions(),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join(shlex.quote(a) for a in ["scripts/transfer_regimes.py", *(argv or sys.argv[1:])]),
    }
    check(out)
    return out


def write(args, out: dict) -> None:
    text = json.dumps(out, indent=1)
    if args.out:
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(args.out)  # a reader never sees half a file
    else:
        print(text)


def _num(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


_load_start = list(os.getloadavg())

if __name__ == "__main__":
    main()
