"""Named callbacks: how progress leaves the loop (Lightning-Fabric style), never globals.

Every hook is optional. Any hook may set ``trainer.should_stop = True``: the run
then ends after the current step (the epoch is recorded as far as it got) and
``FitResult.interrupted`` is set. That is how a page's Stop button works.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from torch import Tensor

if TYPE_CHECKING:
    from dltl_core.train.config import EpochRecord, FitResult
    from dltl_core.train.fit import Trainer


class Callback:
    """Base class; override the hooks you need."""

    def on_fit_start(self, trainer: "Trainer") -> None:
        """Before the first epoch (model, optimizer and data are on the device)."""

    def on_train_batch_end(self, trainer: "Trainer", step: int, loss: Tensor) -> None:
        """After each optimizer step. ``loss`` is the batch loss tensor, still on the
        device: calling ``.item()`` synchronises, so do it sparingly."""

    def on_epoch_end(self, trainer: "Trainer", record: "EpochRecord") -> None:
        """After each epoch's validation."""

    def on_fit_end(self, trainer: "Trainer", result: "FitResult") -> None:
        """After the run (best weights already restored)."""


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda t, r: ...)``."""

    def __init__(self, on_fit_start: Callable | None = None, on_train_batch_end: Callable | None = None,
                 on_epoch_end: Callable | None = None, on_fit_end: Callable | None = None) -> None:
        for name, fn in (("on_fit_start", on_fit_start), ("on_train_batch_end", on_train_batch_end),
                         ("on_epoch_end", on_epoch_end), ("on_fit_end", on_fit_end)):
            if fn is not None:
                setattr(self, name, fn)


class StopFlag(Callback):
    """Stops the run when ``should_stop()`` returns True (checked after every step).

    Args:
        should_stop: e.g. ``lambda: st.session_state.get("stop")`` in a page, or an
            ``threading.Event().is_set``.
        every: check every this many steps (the check may be costly).
    """

    def __init__(self, should_stop: Callable[[], bool], every: int = 1) -> None:
        self.should_stop = should_stop
        self.every = max(1, every)

    def on_train_batch_end(self, trainer: "Trainer", step: int, loss: Tensor) -> None:
        if step % self.every == 0 and self.should_stop():
            trainer.should_stop = True


class TimeLimit(Callback):
    """Stops the run after ``seconds`` of wall time (a budget for shared servers)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._start = 0.0

    def on_fit_start(self, trainer: "Trainer") -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: "Trainer", step: int, loss: Tensor) -> None:
        if time.perf_counter() - self._start > self.seconds:
            trainer.should_stop = True


class History(Callback):
    """Collects the records as they come (a live chart can read ``records``)."""

    def __init__(self) -> None:
        self.records: list[EpochRecord] = []

    def on_epoch_end(self, trainer: "Trainer", record: "EpochRecord") -> None:
        self.records.append(record)
