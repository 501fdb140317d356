"""Benchmark of the transfer-learning core; prints one JSON object.

    .venv/bin/python bench/bench_transfer.py [--data DIR] [--images 160] [--finetune-epochs 2]

Measures, in one process and on the same photos:
- feature-extraction throughput of ``dltl_core.features.extract_features`` (cache off)
  against a bare timm loop (PIL decode + timm eval transform + forward_features /
  forward_head(pre_logits)), interleaved rounds, median of each: ``ratio`` >= 0.9 is the target;
- the second, cached linear run on 10 species (target < 2 s);
- resident memory of a fresh process doing the page's work (AppTest of pages/30_transfer.py
  with the default backbone), split into anonymous memory and mapped library files;
- 10-species validation accuracy of the linear head, and of fine-tuning / from scratch
  with the page's default settings (image size 160, a few epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _bare_loop(backbone, files: list[str], batch_size: int) -> float:
    """Photos/s of the plain timm way: decode, transform, stack, forward."""
    import torch
    from PIL import Image

    model, transform = backbone.model, backbone.transform
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(files), batch_size):
            x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files[i:i + batch_size]])
            model.forward_head(model.forward_features(x), pre_logits=True)
    return len(files) / (time.perf_counter() - t0)


def _ours(backbone, files: list[str], labels: list[int], batch_size: int) -> float:
    from dltl_core.features import extract_features

    t0 = time.perf_counter()
    fs = extract_features(backbone, files, labels, batch_size=batch_size, use_cache=False)
    assert len(fs.files) == len(files)
    return len(files) / (time.perf_counter() - t0)


_PAGE_MEMORY = r"""
import json, sys
from streamlit.testing.v1 import AppTest
def status():
    out = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) / 1024
    return out
import torch, timm, streamlit  # noqa: E401
base = status()
at = AppTest.from_file(sys.argv[1], default_timeout=600)
at.run(); at.switch_page("pages/30_transfer.py"); at.run()
assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
after = status()
print(json.dumps({"after_imports_mb": base, "after_page_mb": after, "metrics": [m.value for m in at.metric]}))
"""


def page_memory() -> dict:
    """RSS of a fresh process that imports the stack, then renders the page (features cached)."""
    out = subprocess.run([sys.executable, "-c", _PAGE_MEMORY, str(ROOT / "streamlit_app.py")],
                         capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(), timeout=900)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not line:
        return {"error": out.stderr[-2000:]}
    return json.loads(line[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="bird folder (default: DLTL_BIRDS_DIR or ../shared/birds/cub100)")
    parser.add_argument("--images", type=int, default=160, help="photos for the throughput comparison")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--finetune-epochs", type=int, default=2, help="0 skips fine-tuning and scratch")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--fresh-cache", action="store_true", help="use a new temporary DLTL_CACHE_DIR")
    args = parser.parse_args()
    if args.fresh_cache:
        os.environ["DLTL_CACHE_DIR"] = tempfile.mkdtemp(prefix="dltl-bench-")

    import torch

    from dltl_core.backbones import create_backbone
    from dltl_core.birds import default_birds_dir, load_birds
    from dltl_core.device import get_policy
    from dltl_core.transfer import TransferConfig, run_transfer

    data = args.data or default_birds_dir()
    policy = get_policy()
    result: dict = {"device": policy.name, "torch_threads": torch.get_num_threads(), "data": str(data)}
    backbone = create_backbone(policy=policy)
    birds = load_birds(data, 10)
    step = max(1, len(birds.files) // args.images)
    files = list(birds.files[::step])[: args.images]
    labels = list(birds.labels[::step])[: args.images]
    bs = 16 if policy.device.type == "cpu" else 64

    # Throughput: warm up once, then interleave rounds so machine-load drift hits both alike.
    _bare_loop(backbone, files[:bs], bs)
    bare, ours = [], []
    for i in range(args.rounds):  # alternate which goes first
        if i % 2:
            ours.append(_ours(backbone, files, labels, bs))
        bare.append(_bare_loop(backbone, files, bs))
        if not i % 2:
            ours.append(_ours(backbone, files, labels, bs))
        print(f"round {i + 1}: bare {bare[-1]:.1f}/s, dltl {ours[-1]:.1f}/s", file=sys.stderr)
    result["extraction"] = {
        "images": len(files), "batch_size": bs,
        "bare_timm_images_per_second": round(statistics.median(bare), 2),
        "dltl_images_per_second": round(statistics.median(ours), 2),
        "ratio": round(statistics.median(ours) / statistics.median(bare), 3),
        "rounds_bare": [round(v, 2) for v in bare], "rounds_dltl": [round(v, 2) for v in ours],
    }

    cfg = TransferConfig(data=str(data), species="10")
    t0 = time.perf_counter()
    first = run_transfer(cfg, backbone=backbone, policy=policy)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = run_transfer(cfg, backbone=backbone, policy=policy)
    result["linear"] = {
        "species": len(second.species), "n_train": second.n_train, "n_val": second.n_val,
        "val_accuracy": round(second.val_accuracy, 4), "first_run_seconds": round(first_s, 2),
        "first_run_extracted": not first.features_cached,
        "cached_run_seconds": round(time.perf_counter() - t0, 3), "cached": second.features_cached,
        "head_train_seconds": round(second.train_seconds, 3),
    }

    if args.finetune_epochs > 0:
        for mode in ("finetune", "scratch"):
            c = TransferConfig(data=str(data), species="10", mode=mode, epochs=args.finetune_epochs,
                               image_size=args.image_size, feature_map="none")
            r = run_transfer(c, backbone=backbone, policy=policy)
            result[mode] = {"epochs": args.finetune_epochs, "image_size": args.image_size,
                            "val_accuracy": round(r.val_accuracy, 4), "train_seconds": round(r.train_seconds, 1),
                            "images_per_second": round(r.images_per_second, 2),
                            "val_curve": [round(h["val_acc"], 3) for h in r.history]}

    result["page_memory"] = page_memory()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
