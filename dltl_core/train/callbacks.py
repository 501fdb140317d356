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


class YieldWhile(Callback):
    """Pauses the run between steps while ``busy()`` is true: training gives way.

    On a shared server a short run trains in the same process as the other visitors'
    page scripts. Python runs one thread at a time, so without pauses every slider move
    of the class waits behind the training loop (a 3 s run beside five /gd sessions
    nearly tripled their 95th-percentile answer time). Pausing costs the run only wall
    time: the steps, and so the result, are the same.

    Args:
        busy: e.g. "another visitor's script is running"; checked after every step.
        share: the least fraction of the wall time the run keeps for itself while
            ``busy()`` stays true, so a busy class slows the run down but never stops it.
        poll_s: how often ``busy()`` is checked during a pause.

    Attributes:
        waited_s: seconds spent paused so far.
    """

    def __init__(self, busy: Callable[[], bool], share: float = 0.25, poll_s: float = 0.02) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.busy = busy
        self.share = share
        self.poll_s = poll_s
        self.waited_s = 0.0
        self._start = 0.0

    def on_fit_start(self, trainer: "Trainer") -> None:
        self._start = time.perf_counter()
        self.waited_s = 0.0

    def on_train_batch_end(self, trainer: "Trainer", step: int, loss: Tensor) -> None:
        t0 = time.perf_counter()
        ran = t0 - self._start - self.waited_s
        # The longest pause that leaves the run its share: ran / (ran + waited) >= share.
        allowed = ran * (1.0 - self.share) / self.share - self.waited_s
        while allowed > 0 and self.busy():
            time.sleep(min(self.poll_s, allowed))
            now = time.perf_counter()
            allowed -= now - t0
            self.waited_s += now - t0
            t0 = now
