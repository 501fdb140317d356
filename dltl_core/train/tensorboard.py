"""TensorBoard logs of training runs (``torch.utils.tensorboard``; needs the ``tensorboard`` package).

Public API::

    tensorboard_available() -> bool
    TensorBoardLogger(logdir, hparams=None)      # a fit Callback: per-epoch scalars, hparams at the end
    log_history(logdir, rows, hparams, metrics)  # the same for a finished run's history rows

Open the logs with ``tensorboard --logdir DIR``. Scalars: ``loss/train``, ``loss/val``,
``accuracy/train``, ``accuracy/val``, ``lr``, ``seconds/epoch`` per epoch; the run's
hyperparameters and final metrics go to the HPARAMS tab.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

from dltl_core.train.callbacks import Callback

_SCALARS = (("train_loss", "loss/train"), ("val_loss", "loss/val"), ("train_acc", "accuracy/train"),
            ("val_acc", "accuracy/val"), ("lr", "lr"), ("seconds", "seconds/epoch"))


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can write (the ``tensorboard`` package is installed)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _writer(logdir: str | Path) -> Any:
    if not tensorboard_available():
        raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    Path(logdir).mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(logdir))


def _hparam_value(v: Any) -> Any:
    # The HPARAMS tab takes numbers, strings and booleans; anything else becomes text.
    if isinstance(v, bool) or isinstance(v, (int, float, str)):
        return v
    return "none" if v is None else str(v)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _write_row(writer: Any, row: dict[str, Any], step: int) -> None:
    for key, tag in _SCALARS:
        if _finite(row.get(key)):
            writer.add_scalar(tag, float(row[key]), step)


def _write_hparams(writer: Any, hparams: dict[str, Any], metrics: dict[str, Any]) -> None:
    clean = {k: _hparam_value(v) for k, v in hparams.items()}
    final = {f"hparam/{k}": float(v) for k, v in metrics.items() if _finite(v)}
    if clean and final:
        writer.add_hparams(clean, final, run_name=".")  # "." = beside the scalars, one run


class TensorBoardLogger(Callback):
    """Writes each epoch's record to ``logdir``; the hyperparameters and best metrics at the end.

    Args:
        logdir: the run's folder (created if missing).
        hparams: hyperparameters to show in the HPARAMS tab (default: the TrainConfig).
    """

    def __init__(self, logdir: str | Path, hparams: dict[str, Any] | None = None) -> None:
        self.logdir = Path(logdir)
        self.hparams = hparams
        self.writer: Any = None

    def on_fit_start(self, trainer: Any) -> None:
        self.writer = _writer(self.logdir)

    def on_epoch_end(self, trainer: Any, record: Any) -> None:
        if self.writer is not None:
            _write_row(self.writer, record.as_dict(), record.epoch)
            self.writer.flush()

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        if self.writer is None:
            return
        hparams = self.hparams if self.hparams is not None else trainer.config.as_dict()
        _write_hparams(self.writer, hparams, {"best_val_acc": result.best_val_acc,
                                              "best_epoch": result.best_epoch})
        self.writer.close()
        self.writer = None


def log_history(logdir: str | Path, rows: Iterable[dict[str, Any]], hparams: dict[str, Any],
                metrics: dict[str, Any]) -> Path:
    """Write a finished run (rows with ``epoch`` and the keys above) to ``logdir``."""
    writer = _writer(logdir)
    try:
        for i, row in enumerate(rows, start=1):
            _write_row(writer, row, int(row.get("epoch", i)))
        _write_hparams(writer, hparams, metrics)
    finally:
        writer.close()
    return Path(logdir)
