"""Do the /arch time estimates come true? Announced "about N s" against what the job then took.

    flock /work/cpu-bench.lock .venv/bin/python bench/bench_estimates.py [--width 1.0] [--names resnet18,densenet121]

Runs in a fresh cache folder (no calibration record, no cached throughput), through the same
job runner and the same calls as the page (``lesson_jobs.expected_seconds_measure`` before,
``measure_job`` in a worker process, ``record_measure`` after):

1. **first**: every network's "Measure throughput" estimate on a machine that has measured
   nothing yet, then the job; the page records the outcome, as it does after a click;
2. **calibrated**: the cached throughputs removed, every network again (its estimate now
   corrected by the first run's record);
3. **all**: "Measure the unmeasured architectures" for all of them in one job.

For each: announced seconds, actual seconds, actual / announced. The issue's goal: every ratio
within [1/1.5, 1.5]. Prints one JSON object and writes ``--out`` (default
``bench/estimates_results.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = 1.5


def _run(runner, names: list[str], width: float) -> tuple[float, list[dict]]:
    from dltl_core.lessons import lesson_jobs as lj

    job = runner.submit(lj.measure_job, {"names": names, "width": width, "batch_size": 16, "batches": 1})
    final = runner.wait(job, timeout=900)
    if final.error or final.result is None:
        raise SystemExit(f"measure_job failed for {names}: {final.error}")
    return float(final.seconds), list(final.result)


def _row(name: str, announced: float, actual: float) -> dict:
    ratio = actual / announced
    return {"name": name, "announced_s": round(announced, 2), "actual_s": round(actual, 2),
            "ratio": round(ratio, 2), "within_goal": 1 / GOAL <= ratio <= GOAL}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=float, default=1.0, help="the /arch width multiplier (page default 1)")
    parser.add_argument("--names", default="", help="comma-separated architectures (default: all)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "estimates_results.json"))
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="dltl-estimates-")
    os.environ["DLTL_CACHE_DIR"] = tmp  # before the core reads it: no record, no cached figure
    from dltl_core import cache
    from dltl_core.job_runner import JobRunner
    from dltl_core.lessons import lesson_jobs as lj
    from dltl_core.profile import compare_archs

    flops = {r["name"]: float(r["flops"]) for r in compare_archs(args.width)}
    names = [n for n in args.names.split(",") if n] or list(flops)
    runner = JobRunner(max_jobs=1)
    load_before = os.getloadavg()[0]
    out: dict = {"width": args.width, "load_before": round(load_before, 2), "goal_ratio": GOAL}
    try:
        for phase in ("first", "calibrated"):
            rows = []
            shutil.rmtree(cache.cache_dir() / "throughput", ignore_errors=True)
            for name in names:
                announced = lj.expected_seconds_measure([flops[name]], names=[name])
                actual, result = _run(runner, [name], args.width)
                lj.record_measure(result, [flops[name]], actual)  # what the page does after a run
                rows.append(_row(name, announced, actual))
                print(phase, rows[-1], flush=True)
            out[phase] = rows
        shutil.rmtree(cache.cache_dir() / "throughput", ignore_errors=True)
        announced = lj.expected_seconds_measure([flops[n] for n in names], names=names)
        actual, _ = _run(runner, names, args.width)
        out["all"] = _row("+".join(names) if len(names) < 4 else f"all {len(names)}", announced, actual)
        print("all", out["all"], flush=True)
    finally:
        runner.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_after"] = round(os.getloadavg()[0], 2)
    out["goal_met"] = {phase: all(r["within_goal"] for r in out[phase]) for phase in ("first", "calibrated")}
    out["goal_met"]["all"] = out["all"]["within_goal"]
    out["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = json.dumps(out, indent=1)
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
