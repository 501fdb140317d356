"""What a training run is: a frozen config, and what it produces (records, result)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from dltl_core.optim import OPTIMIZERS, SCHEDULES
from dltl_core.settings import check, seed_field, setting

# Upper bounds, declared once on the fields below (the command line's --help and checks read
# them): 10,000 epochs is 50x the longest published CIFAR recipe; a batch above 65,536 is
# more than the largest training set of the course (MNIST's 60,000) in one step.
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
MAX_LR = 100.0  # the widgets' and links' end; the core accepts any finite positive rate (it diverges)


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

    epochs: int = setting(20, label="number of epochs", lo=1, hi=MAX_EPOCHS, help="Passes over the training set.")
    batch_size: int = setting(64, label="batch size", lo=1, hi=MAX_BATCH_SIZE, help="Samples per optimizer step.")
    optimizer: str = setting("adam", label="optimizer", choices=lambda: list(OPTIMIZERS))
    lr: float = setting(1e-3, label="learning rate", lo=0.0, ui_hi=MAX_LR, positive=True, fmt="%g",
                        help="The (peak) learning rate.")
    momentum: float = setting(0.9, label="momentum", lo=0.0, hi=1.0, help="Momentum of the SGD family.")
    weight_decay: float = setting(0.0, label="weight decay", lo=0.0, ui_hi=MAX_LR, fmt="%g", help="L2 penalty.")
    schedule: str = setting("constant", label="schedule", choices=lambda: list(SCHEDULES))
    label_smoothing: float = setting(0.0, label="label smoothing", lo=0.0, hi=1.0, below=True,
                                     help="Cross-entropy label smoothing.")
    patience: int | None = setting(None, label="early-stopping patience", lo=1, hi=MAX_EPOCHS, optional=True,
                                   kind=int, noun="patience",
                                   help="Early stopping after this many epochs without a lower validation loss (off unless given).")
    seed: int = seed_field()
    warmup: float = setting(0.3, label="warm-up share", lo=0.0, hi=1.0, below=True, help="Share of the steps warming up.")
    decay_1d: bool = setting(False, label="decay 1-D parameters", help="Weight decay on biases and norm scales.")
    ema_epochs: float | None = setting(None, label="EMA time constant", noun="EMA time constant", lo=0.0, hi=MAX_EPOCHS, positive=True,
                                       optional=True, kind=float, help="Weight average over this many epochs.")
    compile: bool = setting(False, label="torch.compile", help="Compile the forward pass (CUDA only).")

    def __post_init__(self) -> None:
        check(self)  # every field is declared: bounds and choices are its rules

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
