"""Peak memory of each heavy visitor action, run as a real job of the job runner.

Each action runs through ``dltl_core.job_runner`` exactly as a page submits it; the runner samples
the job's private memory (``RssAnon + RssShmem``) and resident memory every 50 ms. A long
action is stopped once it has trained ``--steps`` optimizer steps (its peak is reached in the
first steps: the data is decoded, the model built, one forward/backward at full batch done).
The figures feed ``dltl_core.needs`` (the memory each action declares before it starts).

    flock /work/cpu-bench.lock .venv/bin/python bench/bench_job_memory.py --only transfer
    flock /work/cpu-bench.lock .venv/bin/python bench/bench_job_memory.py --only arch

Prints one JSON object and merges it into ``bench/job_memory_results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dltl_core import job_runner  # noqa: E402
from dltl_core.lessons import lesson_jobs as lj  # noqa: E402

BIRDS = os.environ.get("DLTL_BIRDS_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "birds" / "cub100"))
OUT = Path(__file__).with_name("job_memory_results.json")


def idle_job(config: dict, report) -> int:
    """Nothing but the job process's imports (torch): the base every job pays."""
    report("idle", 1, 1)
    return 0


def _run(runner: job_runner.JobRunner, fn, config, *, steps: int, limit_s: float) -> dict:
    """Run one job; stop it after ``steps`` training steps or ``limit_s``; its peaks and state."""
    job = runner.submit(fn, config, seed=0, memory_mb=20_000, seconds=limit_s + 60)
    t0 = time.monotonic()
    while True:
        snap = runner.poll(job)
        if snap.finished:
            break
        trained = snap.phase.startswith(("training", "timing", "timed")) and snap.done >= steps
        if trained or time.monotonic() - t0 > limit_s:
            time.sleep(1.0)  # let the step after the last report run too
            snap = runner.poll(job)
            runner.cancel(job, "measured")
            break
        time.sleep(0.05)
    return {"peak_private_mb": round(snap.peak_mb), "peak_rss_mb": round(snap.peak_rss_mb),
            "state": snap.state, "phase": snap.phase, "done": snap.done, "total": snap.total,
            "seconds": round(time.monotonic() - t0, 1), "error": snap.error if snap.state == job_runner.FAILED else None}


def transfer_cases() -> dict[str, tuple]:
    from dltl_core.transfer import DEFAULT_UNFREEZE, TransferConfig, features_job, transfer_job

    base = TransferConfig(data=BIRDS, species="10", max_per_species=40, seed=0, mode="linear")
    from bench_job_memory import idle_job as idle  # by module name: the job process imports it

    cases: dict[str, tuple] = {"idle": (idle, {}, 1, 120),
                               "transfer_extract_400": (features_job, base, 1, 290)}
    cases["transfer_finetune_cached_224"] = (
        transfer_job, TransferConfig(**{**base.__dict__, "mode": "finetune", "unfreeze_blocks": DEFAULT_UNFREEZE,
                                        "image_size": 224, "epochs": 3}), 20, 200)
    cases["transfer_finetune_full_224"] = (
        transfer_job, TransferConfig(**{**base.__dict__, "mode": "finetune", "unfreeze_blocks": None,
                                        "image_size": 224, "epochs": 3}), 3, 200)
    for size in (224, 160, 96):
        cases[f"transfer_scratch_{size}"] = (
            transfer_job, TransferConfig(**{**base.__dict__, "mode": "scratch", "image_size": size, "epochs": 3}),
            3, 200)
    return cases


def arch_cases() -> dict[str, tuple]:
    cases: dict[str, tuple] = {}
    for name, width in (("resnet18", 1.0), ("vgg16_bn", 1.0), ("densenet121", 1.0), ("resnet34", 2.0)):
        cases[f"arch_{name}_w{width:g}_b16"] = (lj.measure_job, {"names": [name], "width": width,
                                                                 "batch_size": 16, "batches": 1}, 1, 280)
    return cases


def lesson_cases() -> dict[str, tuple]:
    from dltl_core.lessons.overfit import OverfitConfig

    cfg = OverfitConfig(data="digits", train_size=1438, depth=5, width=4096, epochs=500)
    return {"overfit_digits_d5_w4096": (lj.overfit_job, cfg, 20, 60),
            "layers_200_epochs": (lj.layers_job, {"epochs": 200, "seed": 0}, 50, 60)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["transfer", "arch", "lessons"], required=True)
    ap.add_argument("--case", default="", help="run only the cases whose name contains this")
    args = ap.parse_args()
    cases = {"transfer": transfer_cases, "arch": arch_cases, "lessons": lesson_cases}[args.only]()
    runner = job_runner.JobRunner(max_jobs=1, seconds=600, memory_mb=20_000)
    out = {}
    for name, (fn, config, steps, limit_s) in cases.items():
        if args.case in name:
            out[name] = _run(runner, fn, config, steps=steps, limit_s=limit_s)
            print(name, out[name], file=sys.stderr, flush=True)
    runner.shutdown()
    merged = json.loads(OUT.read_text()) if OUT.exists() else {"cases": {}}
    merged["cases"].update(out)
    merged["how"] = ("bench/bench_job_memory.py: each action as a real job, its private memory (RssAnon+RssShmem) "
                     "and RSS sampled every 50 ms, stopped after its first training steps")
    merged["machine"] = {"cores": os.cpu_count(), "python": platform.python_version(),
                         "load": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    import torch
    merged["machine"]["torch"] = torch.__version__
    OUT.write_text(json.dumps(merged, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
