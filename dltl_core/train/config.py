"""What a training run is: a frozen config, and what it produces (records, result)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from dltl_core.optim import OPTIMIZERS, SCHEDULES
from dltl_core.settings import check, setting

# Upper bounds, declared once on the fields below (the command line's --help and checks read
# them): 10,000 epochs is 50x the longest published CIFAR recipe; a batch above 65,536 is
# more than the largest training set of the course (MNIST's 60,000) in one step.
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one run; hashable, so pages can cache results by it.

    Attributes:
        epochs: passes over the training set (1 to ``MAX_EPOCHS``).
        batch_size: samples per optimizer step (1 to ``MAX_BATCH_SIZE``, at most the
            training-set size).
        optimizer: a key of ``dltl_core.optim.OPTIMIZERS``.
        lr: the (peak) learning rate.
        momentum: momentum of the SGD-family optimizers.
        weight_decay: L2 penalty (decoupled for AdamW), >= 0.
        schedule: a key of ``dltl_core.optim.SCHEDULES``, stepped every optimizer step.
        label_smoothing: cross-entropy label smoothing in [0, 1).
        patience: early stopping: stop after this many epochs without a lower
            validation loss and restore the best epoch's weights; None = off.
        seed: seeds dropout and the mini-batch order (the initial weights are seeded
            by ``create_model(seed=...)``).
        warmup: share of the steps spent warming the rate up (``onecycle``,
            ``warmup_cosine``); 0.3 is PyTorch's ``OneCycleLR`` default.
        decay_1d: apply weight decay to 1-D parameters (biases, norm scales) too; off by
            default, as in nanoGPT and timm (see ``dltl_core.optim.param_groups``).
        ema_epochs: keep an exponential moving average of the weights with this time
            constant in epochs (from the end of warm-up), validate it and return it;
            None = off. Averaging the last epochs' weights smooths SGD's noise.
        compile: ``torch.compile`` the model's forward (CUDA only; ignored elsewhere,
            where compilation would cost more than it saves).
    """

    epochs: int = setting(20, label="number of epochs", lo=1, hi=MAX_EPOCHS)
    batch_size: int = setting(64, label="batch size", lo=1, hi=MAX_BATCH_SIZE)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    label_smoothing: float = 0.0
    patience: int | None = None
    seed: int = 0
    warmup: float = 0.3
    decay_1d: bool = False
    ema_epochs: float | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        check(self)  # the declared fields: epochs and batch size within their bounds
        self._check_rest()

    def _check_rest(self) -> None:
        """The fields validated by hand (issue 18 moves them to ``setting``)."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"the learning rate must be a positive number, got {self.lr}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"early-stopping patience must be at least 1 epoch, got {self.patience}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"the warm-up share must be in [0, 1), got {self.warmup}")
        if self.ema_epochs is not None and not (self.ema_epochs > 0 and math.isfinite(self.ema_epochs)):
            raise ValueError(f"the EMA time constant must be a positive number of epochs, got {self.ema_epochs}")

    def as_dict(self) -> dict[str, Any]:
        """The config as a plain dict (for JSON, URLs and cache keys)."""
        return asdict(self)


@dataclass
class EpochRecord:
    """One epoch of history. Validation values are NaN when there is no validation set.

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean training loss over the epoch's steps (weights changing meanwhile).
        val_loss: validation loss after the epoch.
        train_acc: training accuracy over the epoch's steps.
        val_acc: validation accuracy after the epoch.
        lr: learning rate of the epoch's last step (first parameter group).
        seconds: wall time of the epoch, validation included.
        samples_per_second: training samples per second (training steps only).
        elapsed: seconds since the start of the fit at the end of this epoch (for
            accuracy-against-time charts).
    """

    epoch: int
    train_loss: float
    val_loss: float
    train_acc: float
    val_acc: float
    lr: float
    seconds: float
    samples_per_second: float
    elapsed: float = math.nan

    def as_dict(self) -> dict[str, float]:
        """The record as a JSON-ready dict (NaN stays NaN; the CLI turns it into null)."""
        return asdict(self)


@dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
        history: one record per completed (or interrupted) epoch.
        best_epoch: 1-based epoch with the lowest validation loss (the last epoch if
            there is no validation set); 0 if no epoch ran.
        best_val_acc: validation accuracy at ``best_epoch`` (NaN without validation).
        diverged_at: epoch at which the loss became inf/NaN, exploded, or the network
            collapsed to chance (training stopped there, the history up to it is kept),
            else None.
        stopped_early: early stopping ended the run.
        interrupted: a callback asked to stop (a Stop button).
        seconds: wall time of the whole fit.
        model: the trained model; with the best epoch's weights when ``patience`` is set,
            the averaged weights when ``ema_epochs`` is set.
        diverged_reason: why the run counts as diverged, in words ("" when it did not).
    """

    history: list[EpochRecord]
    best_epoch: int
    best_val_acc: float
    diverged_at: int | None
    stopped_early: bool
    interrupted: bool
    seconds: float
    model: nn.Module
    diverged_reason: str = ""

    def history_dicts(self) -> list[dict[str, float]]:
        """The history as a list of dicts (ready for ``pandas.DataFrame``)."""
        return [r.as_dict() for r in self.history]
