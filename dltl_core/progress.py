"""Progress bars for the command line: tqdm on stderr, with phase, rate and ETA.

Public API::

    Progress(enabled: bool | None = None, *, quiet=False, force=False, stream=None)
    Progress.from_args(args)                    # reads --quiet / --progress
    p.bar(total=None, desc="", unit="it")       # a tqdm bar (a silent one when disabled)
    p.phases(names)                             # one bar stepping through named phases
    p.fraction_fn(desc)                         # -> fn(fraction, message) (transfer's progress)
    p.count_fn(desc, unit)                      # -> fn(done, total[, message]) (decoding, downloads)
    p.fit_callback(desc)                        # -> FitProgress, a dltl_core.train Callback
    eta_text(done, total, started)              # " · 35 photos/s · about 8 s left" (CLI and pages)

A bar is drawn only where a person can see it: stderr is a terminal, or ``--progress``
asks for it anyway (logs, tests); ``--quiet`` always turns it off. stdout is never
written to, so ``--json`` keeps exactly one JSON object there.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from typing import IO, Any, Callable, Iterator, Sequence

from tqdm import tqdm

from dltl_core.train.callbacks import Callback


def bar_wanted(*, quiet: bool = False, force: bool = False, stream: IO[str] | None = None) -> bool:
    """Whether to draw: never with ``quiet``, always with ``force``, else when ``stream`` is a tty."""
    if quiet:
        return False
    if force:
        return True
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def _columns(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


class Progress:
    """Factory of progress bars sharing one on/off decision and one stream (stderr)."""

    def __init__(self, enabled: bool | None = None, *, quiet: bool = False, force: bool = False,
                 stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = bar_wanted(quiet=quiet, force=force, stream=self.stream) if enabled is None else enabled

    @classmethod
    def from_args(cls, args: Any) -> "Progress":
        """From parsed command-line options ``--quiet`` and ``--progress`` (missing = off)."""
        return cls(quiet=bool(getattr(args, "quiet", False)), force=bool(getattr(args, "progress", False)))

    def bar(self, total: float | None = None, desc: str = "", unit: str = "it", **kw: Any) -> tqdm:
        """A tqdm bar on stderr; ``disable`` when bars are off (every method still works)."""
        # dynamic_ncols follows a resized terminal; a terminal of unknown size (0 columns: a
        # bare pty, `script`, some CI runners) would get an empty bar, so it gets 120 columns.
        sized = _columns(self.stream) > 0
        kw.setdefault("dynamic_ncols", sized)
        kw.setdefault("ncols", None if sized else 120)
        kw.setdefault("nrows", None if sized else 20)  # tqdm hides bars beyond 0 rows
        return tqdm(total=total, desc=desc, unit=unit, file=self.stream, disable=not self.enabled,
                    mininterval=0.2, leave=True, **kw)

    def phases(self, names: Sequence[str], desc: str = "", tick: float | None = None) -> "PhaseBar":
        """One bar that steps through named phases (work without a finer count).

        Args:
            tick: redraw every this many seconds, so the elapsed time moves during a long phase.
        """
        return PhaseBar(self.bar(total=len(names), desc=desc, unit="phase"), names, desc,
                        tick if self.enabled else None)

    def fraction_fn(self, desc: str = "") -> "FractionBar":
        """A ``fn(fraction, message)`` callback (0..1) drawing one bar in per mille."""
        return FractionBar(self.bar(total=1000, desc=desc, unit="‰",
                                    bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                               "[{elapsed}<{remaining}]{postfix}"), desc)

    def count_fn(self, desc: str = "", unit: str = "it") -> "CountBar":
        """A ``fn(done, total[, message])`` callback, e.g. images decoded or bytes downloaded."""
        return CountBar(self.bar(desc=desc, unit=unit, unit_scale=unit == "B"))

    def fit_callback(self, desc: str = "train") -> "FitProgress":
        """A ``fit`` callback: one bar over all optimizer steps, loss and accuracy per epoch."""
        return FitProgress(self, desc)


@contextlib.contextmanager
def library_bars_off(off: bool = True) -> Iterator[None]:
    """Within the block, turn off the bars other libraries draw (torchvision and Hugging
    Face downloads); the environment is restored afterwards.

    tqdm reads ``TQDM_*`` variables as defaults for options a caller leaves unset, so
    bars created with an explicit ``disable`` (ours) are unaffected.
    """
    names = ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")
    before = {n: os.environ.get(n) for n in names}
    if off:
        os.environ.update({n: "1" for n in names})
    try:
        yield
    finally:
        for n, v in before.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


class PhaseBar:
    """Steps a bar through named phases: ``with p.phases([...]) as ph: ph.next(); ...``."""

    def __init__(self, bar: tqdm, names: Sequence[str], desc: str, tick: float | None = None) -> None:
        self.bar, self.names, self.desc, self.i = bar, list(names), desc, -1
        self._done = threading.Event()
        self._ticker = None
        if tick:
            self._ticker = threading.Thread(target=self._tick, args=(tick,), daemon=True, name="dltl-bar-tick")
            self._ticker.start()

    def _tick(self, every: float) -> None:
        while not self._done.wait(every):
            self.bar.refresh()

    def next(self) -> None:
        """Finish the current phase (if any) and show the next one's name."""
        if self.i >= 0:
            self.bar.update(1)
        self.i += 1
        if self.i < len(self.names):
            self.bar.set_description(f"{self.desc}: {self.names[self.i]}" if self.desc else self.names[self.i])

    def close(self) -> None:
        """Stop the ticking and close the bar."""
        self._done.set()
        if self._ticker is not None:
            self._ticker.join()
        self.bar.close()

    def __enter__(self) -> "PhaseBar":
        self.next()
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None and self.i < len(self.names):
            self.bar.update(len(self.names) - self.bar.n)
        self.close()


class FractionBar:
    """Adapter for callbacks reporting ``(fraction, message)``."""

    def __init__(self, bar: tqdm, desc: str) -> None:
        self.bar, self.desc = bar, desc

    def __call__(self, fraction: float, message: str = "") -> None:
        target = int(round(1000 * min(max(fraction, 0.0), 1.0)))
        if message:
            self.bar.set_description_str(f"{self.desc}: {message}" if self.desc else message, refresh=False)
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        else:
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class CountBar:
    """Adapter for callbacks reporting ``(done, total[, message])``."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar

    def __call__(self, done: int, total: int | None = None, message: str = "") -> None:
        if total and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()
        if message:
            self.bar.set_postfix_str(message, refresh=False)
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class FitProgress(Callback):
    """tqdm over a ``fit`` run: steps done of epochs x steps, samples/s, ETA, and the last
    epoch's losses and accuracies. The loss tensor is never read per step (no sync)."""

    def __init__(self, progress: Progress, desc: str = "train") -> None:
        self.progress, self.desc = progress, desc
        self.bar: tqdm | None = None
        self.batch_size = 1

    def on_fit_start(self, trainer: Any) -> None:
        cfg = trainer.config
        self.batch_size = cfg.batch_size
        total = cfg.epochs * trainer.steps_per_epoch * cfg.batch_size
        self.bar = self.progress.bar(total=total, desc=f"{self.desc} epoch 1/{cfg.epochs}", unit="img",
                                     unit_scale=True)

    def on_train_batch_end(self, trainer: Any, step: int, loss: Any) -> None:
        if self.bar is not None:
            self.bar.update(self.batch_size)

    def on_epoch_end(self, trainer: Any, record: Any) -> None:
        if self.bar is None:
            return
        # Short, so the numbers survive a narrow terminal (tqdm cuts the line's end).
        post = [f"loss={record.train_loss:.3f}"]
        for key in ("val_loss", "val_acc"):
            value = getattr(record, key, None)
            if value is not None and value == value:  # NaN without validation
                post.append(f"{key}={value:.3f}")
        self.bar.set_postfix_str(" ".join(post), refresh=False)
        epochs = trainer.config.epochs
        self.bar.set_description(f"{self.desc} epoch {min(record.epoch + 1, epochs)}/{epochs}")

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def close_all(*bars: Any) -> None:
    """Close every bar-like object given (None ignored)."""
    for b in bars:
        if b is not None:
            b.close()


ProgressFn = Callable[..., None]


def eta_text(done: int, total: int, started: float) -> str:
    """`` · 35 photos/s · about 8 s left`` once a rate is known (empty before)."""
    elapsed = time.perf_counter() - started
    if done <= 0 or elapsed <= 0 or done >= total:
        return ""
    rate = done / elapsed
    return f" · {rate:.0f} photos/s · about {math.ceil((total - done) / rate)} s left"
