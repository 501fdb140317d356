"""The /batches measurements as job functions, and how long they take on this machine.

The batch-size sweep trains one MLP per batch size; with batch size 1 and 30 epochs that
is 65,000 optimizer steps, a minute or two of CPU. A page runs a measurement in its own
process only when ``expected_seconds_*`` says it is short (``LINK_SECONDS``); a longer one
waits for a click that shows the expected time and runs as a job of ``dltl_core.job_runner``
(its own process, progress, Stop, cancelled when the tab closes).

The expected times come from a calibration on this machine (``calibration``): two short
fits of the same MLP on the same digits, timed now, give the cost of one optimizer step
and of one epoch's fixed part. It is redone every ``CALIBRATION_TTL`` seconds, so a
machine that got busier gives longer estimates.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

Report = Callable[[str, int, int, "dict | None"], None]

LINK_SECONDS = 3.0  # at most this much work starts from a link alone, in the server process
CALIBRATION_TTL = 600.0  # seconds a calibration stays valid
GRADIENT_DRAWS = 48  # mini-batches per size in ``gradient_spread`` (its default)
_lock = threading.Lock()
_cached: tuple[float, "Calibration"] | None = None


@dataclass(frozen=True)
class Calibration:
    """Measured costs of the /batches MLP on the digits, on this machine now.

    Attributes:
        step_s: seconds of one optimizer step (small batch: overhead-bound).
        epoch_s: seconds of an epoch's fixed part (a full-batch step, the validation).
        n_train: training samples of the digits split.
    """

    step_s: float
    epoch_s: float
    n_train: int

    def epoch_seconds(self, batch_size: int) -> float:
        """One epoch at ``batch_size``: the fixed part and ceil(n / b) - 1 more steps."""
        return self.epoch_s + (math.ceil(self.n_train / batch_size) - 1) * self.step_s


def _timed_fit(train: Any, val: Any, batch_size: int) -> float:
    from dltl_core.device import get_policy
    from dltl_core.models import create_model
    from dltl_core.train import TrainConfig, fit

    t0 = time.perf_counter()
    fit(create_model("mlp", seed=0), train, val, TrainConfig(epochs=1, batch_size=batch_size, seed=0),
        policy=get_policy())
    return time.perf_counter() - t0


def _measure() -> Calibration:
    from dltl_core.lessons.batches import _digits

    train, val = _digits(0)
    n = len(train[1])
    small = 32
    # The fastest of two tries of each: the first carries one-off costs (threads, caches).
    t_small = min(_timed_fit(train, val, small) for _ in range(2))
    t_full = min(_timed_fit(train, val, n) for _ in range(2))
    step_s = max((t_small - t_full) / (math.ceil(n / small) - 1), 1e-5)
    return Calibration(step_s=step_s, epoch_s=max(t_full, 1e-3), n_train=n)


def calibration() -> Calibration:
    """This machine's costs, measured at most every ``CALIBRATION_TTL`` seconds (about 0.2 s)."""
    global _cached
    with _lock:  # a class opening the page at once measures once
        if _cached is None or time.monotonic() - _cached[0] > CALIBRATION_TTL:
            _cached = (time.monotonic(), _measure())
        return _cached[1]


def expected_seconds_sweep(batch_sizes: Sequence[int], epochs: int, cal: Calibration | None = None) -> float:
    """About how long ``batch_size_sweep(batch_sizes, epochs)`` takes here."""
    cal = cal or calibration()
    return sum(int(epochs) * cal.epoch_seconds(int(b)) for b in batch_sizes)


def expected_seconds_spread(batch_sizes: Sequence[int], draws: int = GRADIENT_DRAWS,
                            cal: Calibration | None = None) -> float:
    """About how long ``gradient_spread(batch_sizes)`` takes here: a warm-up epoch, then
    ``draws`` gradients per size, each a step's overhead plus its share of a full pass."""
    cal = cal or calibration()
    per_sample = cal.epoch_s / cal.n_train
    return cal.epoch_seconds(64) + sum(draws * (cal.step_s + int(b) * per_sample) for b in batch_sizes)


@dataclass(frozen=True)
class SweepPlan:
    """What ``sweep_job`` measures: the batch sizes and the epochs per size."""

    sizes: tuple[int, ...]
    epochs: int


def _steps(n: int, sizes: Sequence[int], epochs: int) -> list[int]:
    return [math.ceil(n / int(b)) * int(epochs) for b in sizes]


def sweep_job(plan: SweepPlan, report: Report) -> Any:
    """``batch_size_sweep`` one size at a time; each finished size's row is a payload, and the
    progress counts optimizer steps (batch size 1 is most of the work, not a tenth of it)."""
    import pandas as pd

    from dltl_core.lessons.batches import _digits, batch_size_sweep

    n = len(_digits(0)[0][1])
    steps = _steps(n, plan.sizes, plan.epochs)
    total, done, rows = sum(steps), 0, []
    for b, s in zip(plan.sizes, steps):
        report(f"training with batch size {b}", done, total, None)
        row = batch_size_sweep((int(b),), epochs=int(plan.epochs)).iloc[0].to_dict()
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}  # plain, picklable
        done += s
        report(f"trained batch size {b}", done, total, row)
        rows.append(row)
    return pd.DataFrame(rows)


def spread_job(sizes: tuple[int, ...], report: Report) -> Any:
    """``gradient_spread(sizes)``: (points, summary)."""
    from dltl_core.lessons.batches import gradient_spread

    report("sampling mini-batch gradients", 0, 1, None)
    out = gradient_spread(tuple(int(b) for b in sizes))
    report("sampled", 1, 1, None)
    return out


__all__ = ["Calibration", "LINK_SECONDS", "SweepPlan", "calibration", "expected_seconds_spread",
           "expected_seconds_sweep", "spread_job", "sweep_job"]
