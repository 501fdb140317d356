"""Progress of a transfer run: the learning curve with wall-clock time, the page's bar and the
job runner's reports (one context variable per thread, so concurrent runs never mix).
"""

from __future__ import annotations

import contextvars
import math
import time
from typing import Any, Callable

from torch import Tensor

from dltl_core.train import Callback, EpochRecord, StopFlag

ProgressFn = Callable[[float, str], None]  # (fraction done in [0, 1], message)

# The job runner's ``report(phase, done, total, payload)`` of the run in this thread (see
# ``transfer_job``): a context variable, so runs in other threads never see it.
_REPORT: contextvars.ContextVar[Callable[..., None] | None] = contextvars.ContextVar("dltl_report", default=None)


def _scaled(progress: ProgressFn | None, lo: float, hi: float) -> Callable[[int, int, str], None] | None:
    """A (done, total, message) callback of one phase: the page's bar from ``lo`` to ``hi``,
    and the job runner's report with the phase name (the message up to its colon)."""
    report = _REPORT.get()
    if progress is None and report is None:
        return None

    def step(done: int, total: int, msg: str) -> None:
        if progress:
            progress(lo + (hi - lo) * done / max(total, 1), msg)
        if report:
            report(msg.split(":")[0], done, total)

    return step


class _Curve(Callback):
    """Adds wall-clock time to each epoch record and forwards progress (with an ETA) to the page."""

    def __init__(self, t0: float, mode: str, epochs: int, progress: ProgressFn | None,
                 on_epoch: Callable[[dict], None] | None, base: float, span: float) -> None:
        self.t0, self.mode, self.epochs = t0, mode, epochs
        self.progress, self.on_epoch = progress, on_epoch
        self.base, self.span = base, span
        self.rows: list[dict[str, Any]] = []
        self._fit_t0 = self._last = 0.0

    def on_fit_start(self, trainer: Any) -> None:
        self._fit_t0 = self._last = time.perf_counter()

    def _report(self, done: float, msg: str) -> None:
        """``done``: epochs finished (fractional); the ETA extrapolates the time so far."""
        if not self.progress:
            return
        spent = time.perf_counter() - self._fit_t0
        eta = f" · about {math.ceil(spent / done * (self.epochs - done))} s left" if 0 < done < self.epochs else ""
        self.progress(self.base + self.span * done / self.epochs, msg + eta)

    def on_train_batch_end(self, trainer: Any, step: int, loss: Tensor) -> None:
        now = time.perf_counter()
        if now - self._last < 0.5:  # the bar needs no more than 2 updates/s
            return
        self._last = now
        steps = max(trainer.steps_per_epoch, 1)
        report = _REPORT.get()
        if report:
            report("training", step, steps * self.epochs)
        in_epoch = step - (trainer.epoch - 1) * steps
        self._report(trainer.epoch - 1 + in_epoch / steps,
                     f"{self.mode}: epoch {trainer.epoch}/{self.epochs}, step {in_epoch}/{steps}")

    def on_epoch_end(self, trainer: Any, record: EpochRecord) -> None:
        row = {**record.as_dict(), "elapsed": time.perf_counter() - self.t0, "mode": self.mode,
               "complete": not trainer.should_stop}
        self.rows.append(row)
        if self.on_epoch:
            self.on_epoch(row)
        report = _REPORT.get()
        if report:
            report("training", trainer.global_step, max(trainer.steps_per_epoch, 1) * self.epochs, row)
        self._report(record.epoch, f"{self.mode}: epoch {record.epoch}/{self.epochs} done, "
                     f"validation accuracy {record.val_acc:.0%}")


def _callbacks(curve: _Curve, should_stop: Callable[[], bool] | None) -> list[Callback]:
    return [curve] + ([StopFlag(should_stop)] if should_stop else [])
