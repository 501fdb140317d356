"""Benchmark of the transfer-learning core; prints one JSON object.

    .venv/bin/python bench/bench_transfer.py [--data DIR] [--images 160] [--full-epochs N]
        [--reuse-cache] [--no-page-memory]

Measures, in one process and on the same photos:
- feature-extraction throughput of ``dltl_core.features.extract_features`` (cache off; decode
  workers as on this machine) against a bare timm loop (PIL decode + timm eval transform +
  forward_features / forward_head(pre_logits)), interleaved rounds, median of each:
  ``ratio`` >= 1 is the target (>= 1,500 photos/s on an H100/H200);
- the one-time extraction of the 10 default species (first linear run) and the cached run;
- the page's default fine-tuning (last stage + final conv on cached activations, LP-FT, 3
  epochs), activations not yet cached: its time as a ratio to that one-time extraction
  (target <= 3) and its validation accuracy beside the linear probe's (target: at least it);
- optionally (``--full-epochs``; default 2 on CUDA, 0 on a CPU) end-to-end fine-tuning and
  from scratch on the photos, with their training throughput;
- resident memory of a fresh process doing the page's work (AppTest of pages/30_transfer.py
  with the default backbone), split into anonymous memory and mapped library files.
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


def _bare_loop_device(backbone, files: list[str], batch_size: int, policy) -> float:
    """The bare loop with the batch copied to the backbone's device (CUDA runs)."""
    import torch
    from PIL import Image

    model, transform = backbone.model, backbone.transform
    device = next(model.parameters()).device
    t0 = time.perf_counter()
    with torch.inference_mode(), policy.autocast():
        for i in range(0, len(files), batch_size):
            x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files[i:i + batch_size]])
            model.forward_head(model.forward_features(x.to(device)), pre_logits=True).float().cpu()
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


def _extraction(backbone, policy, files, labels, rounds: int) -> dict:
    """Interleaved rounds of the bare timm loop and ``extract_features`` on the same files."""
    from dltl_core.photos import decode_workers

    bs = 16 if policy.device.type == "cpu" else 64
    bare_fn = _bare_loop if policy.device.type == "cpu" else (
        lambda b, f, n: _bare_loop_device(b, f, n, policy))
    bare_fn(backbone, files[:bs], bs)  # warm-up (and the worker processes' first start)
    _ours(backbone, files[:2 * bs], labels[:2 * bs], bs)
    bare, ours = [], []
    for i in range(rounds):  # alternate which goes first: machine-load drift hits both alike
        if i % 2:
            ours.append(_ours(backbone, files, labels, bs))
        bare.append(bare_fn(backbone, files, bs))
        if not i % 2:
            ours.append(_ours(backbone, files, labels, bs))
        print(f"round {i + 1}: bare {bare[-1]:.1f}/s, dltl {ours[-1]:.1f}/s", file=sys.stderr)
    return {"images": len(files), "batch_size": bs, "decode_workers": decode_workers(policy),
            "bare_timm_images_per_second": round(statistics.median(bare), 2),
            "dltl_images_per_second": round(statistics.median(ours), 2),
            "ratio": round(statistics.median(ours) / statistics.median(bare), 3),
            "rounds_bare": [round(v, 2) for v in bare], "rounds_dltl": [round(v, 2) for v in ours]}


def _linear_and_finetune(backbone, policy, data: str) -> dict:
    """One-time extraction (first linear run), cached run, then the page's default fine-tuning."""
    from dltl_core.transfer import DEFAULT_UNFREEZE, TransferConfig, run_transfer

    cfg = TransferConfig(data=data, species="10", max_per_species=40)
    t0 = time.perf_counter()
    first = run_transfer(cfg, backbone=backbone, policy=policy)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = run_transfer(cfg, backbone=backbone, policy=policy)
    out = {"linear": {
        "species": len(second.species), "n_train": second.n_train, "n_val": second.n_val,
        "val_accuracy": round(second.val_accuracy, 4), "first_run_seconds": round(first_s, 2),
        "first_run_extracted": not first.features_cached,
        "extraction_seconds": round(first.extraction_cost_seconds, 2),
        "cached_run_seconds": round(time.perf_counter() - t0, 3), "cached": second.features_cached,
        "head_train_seconds": round(second.train_seconds, 3)}}
    ft_cfg = TransferConfig(data=data, species="10", max_per_species=40, mode="finetune",
                            unfreeze_blocks=DEFAULT_UNFREEZE, feature_map="pca")
    t0 = time.perf_counter()
    ft = run_transfer(ft_cfg, backbone=backbone, policy=policy)
    ft_s = time.perf_counter() - t0
    ext = max(first.extraction_cost_seconds, 1e-9)
    out["finetune_default"] = {
        "what": f"last {DEFAULT_UNFREEZE} stages on cached activations (LP-FT), "
                f"{len(ft.history)} epochs, {ft.n_train} training photos",
        "seconds": round(ft_s, 2), "activations_extracted": not ft.features_cached,
        "frozen_pass_and_probe_seconds": round(ft.feature_seconds, 2),
        "train_seconds": round(ft.train_seconds, 2),
        "ratio_to_extraction": round(ft_s / ext, 3),
        "val_accuracy": round(ft.val_accuracy, 4), "linear_probe_val_accuracy": round(ft.probe_accuracy, 4),
        "at_least_linear": ft.val_accuracy >= second.val_accuracy - 1e-9,
        "val_curve": [round(h["val_acc"], 3) for h in ft.history],
        "train_images_per_second": round(ft.images_per_second, 1)}
    out["page_flow"] = _page_flow(backbone, policy, data, ft_cfg)
    return out


def _page_flow(backbone, policy, data: str, ft_cfg) -> dict:
    """What the page does, in a new cache: ``ensure_features`` (one pass: features + the default
    fine-tuning's activations), then the fine-tune click (LP + epochs on the cached activations)."""
    from dltl_core.transfer import ensure_features, run_transfer

    os.environ["DLTL_CACHE_DIR"] = tempfile.mkdtemp(prefix="dltl-bench-page-")
    t0 = time.perf_counter()
    fs = ensure_features(ft_cfg, backbone, policy=policy)
    ext = time.perf_counter() - t0
    t0 = time.perf_counter()
    ft = run_transfer(ft_cfg, backbone=backbone, policy=policy)
    ft_s = time.perf_counter() - t0
    return {"extraction_seconds": round(ext, 2), "photos": len(fs.files),
            "extraction_images_per_second": round(len(fs.files) / ext, 2),
            "finetune_seconds": round(ft_s, 2), "ratio_to_extraction": round(ft_s / ext, 3),
            "activations_extracted_again": not ft.features_cached, "val_accuracy": round(ft.val_accuracy, 4)}


def _full_modes(backbone, policy, data: str, epochs: int, image_size: int) -> dict:
    """End-to-end fine-tuning and from scratch on the photos (every photo through the network)."""
    from dltl_core.transfer import TransferConfig, run_transfer

    out = {}
    for mode in ("finetune", "scratch"):
        c = TransferConfig(data=data, species="10", max_per_species=40, mode=mode, epochs=epochs,
                           image_size=image_size, feature_map="none")
        r = run_transfer(c, backbone=backbone, policy=policy)
        out[f"{mode}_end_to_end"] = {
            "epochs": epochs, "image_size": image_size, "val_accuracy": round(r.val_accuracy, 4),
            "train_seconds": round(r.train_seconds, 1), "images_per_second": round(r.images_per_second, 2),
            "val_curve": [round(h["val_acc"], 3) for h in r.history]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="bird folder (default: DLTL_BIRDS_DIR or ../shared/birds/cub100)")
    parser.add_argument("--images", type=int, default=160, help="photos for the throughput comparison")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--full-epochs", type=int, default=None,
                        help="end-to-end fine-tuning and scratch epochs (default 2 on CUDA, 0 = skip on a CPU)")
    parser.add_argument("--image-size", type=int, default=160, help="image size of the end-to-end runs")
    parser.add_argument("--reuse-cache", action="store_true",
                        help="keep DLTL_CACHE_DIR (default: a new temporary one, so the one-time "
                        "extraction and the frozen pass are really measured)")
    parser.add_argument("--no-page-memory", action="store_true", help="skip the page-memory measurement")
    args = parser.parse_args()
    if not args.reuse_cache:
        os.environ["DLTL_CACHE_DIR"] = tempfile.mkdtemp(prefix="dltl-bench-")

    import torch

    from dltl_core.backbones import create_backbone
    from dltl_core.birds import default_birds_dir, load_birds
    from dltl_core.device import get_policy

    data = str(args.data or default_birds_dir())
    policy = get_policy()
    result: dict = {"device": policy.name, "torch_threads": torch.get_num_threads(),
                    "cpu_cores": len(os.sched_getaffinity(0)), "data": data,
                    "load_average_start": list(os.getloadavg())}
    backbone = create_backbone(policy=policy)
    birds = load_birds(data, 10)
    step = max(1, len(birds.files) // args.images)
    files, labels = list(birds.files[::step])[: args.images], list(birds.labels[::step])[: args.images]
    if policy.device.type == "cuda":  # enough photos to measure a GPU: all 100 species
        many = load_birds(data, 100)
        files, labels = list(many.files), list(many.labels)
    result["extraction"] = _extraction(backbone, policy, files, labels, args.rounds)
    result.update(_linear_and_finetune(backbone, policy, data))
    full = args.full_epochs if args.full_epochs is not None else (2 if policy.device.type == "cuda" else 0)
    if full > 0:
        result.update(_full_modes(backbone, policy, data, full, args.image_size))
    if not args.no_page_memory:
        result["page_memory"] = page_memory()
    result["load_average_end"] = list(os.getloadavg())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
