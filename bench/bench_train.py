"""The training core's speed: the overfitting page's default run, and ``fit`` vs a bare loop.

- ``overfit_page``: wall time of ``run_overfit`` for the page's default configuration and
  for the three presets (what a visitor waits for on a cache miss, live drawing excluded).
- ``loops``: training samples per second of ``dltl_core.train.fit`` against the textbook
  PyTorch loop (randperm, index, forward, cross-entropy, zero_grad, backward, step) over
  the same model, data, batch size, optimizer and thread count, in the same process. Both
  run without validation; they alternate ``--repeats`` times and the best of each is kept,
  which damps the noise of a shared machine. Target: ``ratio`` (fit / bare) >= 0.9.

On CUDA the same workloads run on the GPU (fit with the device policy: AMP and
channels_last), plus a CNN on 20,000 random 3x32x32 uint8 images.

    python bench/bench_train.py [--repeats 5] [--epochs 5]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dltl_core.data import load_digits, split_tensors  # noqa: E402
from dltl_core.device import get_policy  # noqa: E402
from dltl_core.lessons.overfit import PRESETS, OverfitConfig, run_overfit  # noqa: E402
from dltl_core.models import create_model  # noqa: E402
from dltl_core.train import TrainConfig, cpu_threads_for, fit  # noqa: E402


def bare_loop(model, x, y, epochs: int, batch_size: int, lr: float, device: torch.device, seed: int) -> float:
    """The textbook loop; returns seconds. Data moved to the device once, like fit does."""
    model.to(device).train()
    x, y = x.to(device), y.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    n = len(y)
    uint8 = x.dtype == torch.uint8
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g).to(device)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            xb, yb = x[idx], y[idx]
            if uint8:
                xb = xb.float() / 255
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def compare(name: str, make_model, x, y, epochs: int, batch_size: int, repeats: int, policy) -> dict:
    n = len(y)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=1e-3, seed=0)
    fit_s, bare_s = [], []
    for _ in range(repeats):
        model = make_model()
        t0 = time.perf_counter()
        fit(model, (x, y), None, cfg, policy=policy)
        if policy.device.type == "cuda":
            torch.cuda.synchronize()
        fit_s.append(time.perf_counter() - t0)
        model = make_model()
        with cpu_threads_for(model, policy):  # the same thread policy as fit, for a fair race
            bare_s.append(bare_loop(model, x, y, epochs, batch_size, 1e-3, policy.device, 0))
    samples = n * epochs
    fit_best, bare_best = min(fit_s), min(bare_s)
    return {"workload": name, "samples": samples, "batch_size": batch_size, "epochs": epochs,
            "fit_samples_per_s": round(samples / fit_best), "bare_samples_per_s": round(samples / bare_best),
            "ratio": round(bare_best / fit_best, 3),
            "median_ratio": round(statistics.median(bare_s) / statistics.median(fit_s), 3), "fit_s": [round(s, 3) for s in fit_s],
            "bare_s": [round(s, 3) for s in bare_s]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()
    policy = get_policy()
    out: dict = {"device": policy.name, "torch": torch.__version__, "python": platform.python_version(),
                 "threads": torch.get_num_threads()}

    # Warm-up: the first optimizer in a process imports torch._dynamo (seconds, once).
    run_overfit(OverfitConfig(epochs=2))
    page = {}
    for label, cfg in {"default": OverfitConfig(), **PRESETS}.items():
        t0 = time.perf_counter()
        res = run_overfit(cfg)
        page[label] = {"seconds": round(time.perf_counter() - t0, 3), "epochs": len(res.history),
                       "val_acc": round(res.final["val_acc"], 3)}
    out["overfit_page"] = page

    x, y = load_digits()
    (xt, yt), _ = split_tensors(x, y, 0.2, seed=0)
    loops = [
        compare("MLP 64-128-128-10 on digits", lambda: create_model("mlp", seed=0), xt, yt, args.epochs, 64,
                args.repeats, policy),
        compare("small CNN on digits", lambda: create_model("cnn", seed=0), xt, yt, args.epochs, 64,
                args.repeats, policy),
    ]
    if policy.device.type == "cuda":
        g = torch.Generator().manual_seed(0)
        xi = torch.randint(0, 256, (20_000, 3, 32, 32), dtype=torch.uint8, generator=g)
        yi = torch.randint(0, 10, (20_000,), generator=g)
        loops.append(compare("CNN 64-128-256 on 20k 3x32x32 uint8", lambda: create_model(
            "cnn", in_channels=3, channels=(64, 128, 256), seed=0), xi, yi, args.epochs, 256, args.repeats, policy))
    out["loops"] = loops
    out["min_ratio"] = min(r["ratio"] for r in loops)
    out["min_median_ratio"] = min(r["median_ratio"] for r in loops)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
