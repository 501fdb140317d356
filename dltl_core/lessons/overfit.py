"""Overfitting and generalization: one configurable run, its learning curves, its boundary.

The data are split once into a fixed validation set and a pool of training
samples; the training-set size knob takes the first ``train_size`` of the pool,
so two runs that differ in that knob (or any other) are judged on the same
validation samples and, under the same seed, start from the same weights.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import torch

from dltl_core.data import SYNTHETIC, load_dataset, train_val_split
from dltl_core.data.digits import DIGITS_TRAIN, DIGITS_VAL_FRACTION
from dltl_core.models import count_parameters, create_model
from dltl_core.settings import check, seed_field, setting
from dltl_core.train import Callback, FitResult, TrainConfig, YieldWhile, fit, predict

DATA_CHOICES: dict[str, str] = {**SYNTHETIC, "digits": "Digits (8x8)"}
POOL_2D = 1000  # points drawn for a 2-D set: 400 validation, up to 600 for training
VAL_2D = 400
DIGITS_POOL = DIGITS_TRAIN  # the digits' training split
WIDTHS = (2, 4, 8, 16, 32, 64, 128, 256, 512)
DECAYS = (0.0, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.3, 0.5, 1.0)
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
# A sensible training-set size per data set (switching data sets restores each one's own).
DEFAULT_TRAIN_SIZE = {"digits": 300}


def pool_size(data: str) -> int:
    """Training samples a data set's pool holds (the validation set is fixed)."""
    return DIGITS_POOL if data == "digits" else POOL_2D - VAL_2D


@dataclass(frozen=True)
class OverfitConfig:
    """One run of the overfitting lesson (hashable: results are cached by it).

    Attributes:
        data: a key of ``DATA_CHOICES``.
        noise: jitter of the 2-D points.
        label_noise: share of training labels flipped (validation labels stay clean).
        train_size: training samples used (the rest of the pool is left out).
        depth: hidden layers (0 = a linear classifier).
        width: units per hidden layer.
        dropout: dropout probability.
        weight_decay: L2 penalty (AdamW's decoupled decay).
        batchnorm: batch normalisation in the hidden layers.
        early_stopping: stop after ``patience`` epochs without a better validation loss.
        patience: epochs of patience.
        epochs: at most this many epochs.
        lr: AdamW's learning rate.
        batch_size: mini-batch size (capped at the training-set size).
        seed: data, split, initial weights, batch order, dropout.
    """

    data: str = setting("moons", label="Data set", noun="data set", choices=lambda: list(DATA_CHOICES),
                        labels=DATA_CHOICES)
    noise: float = setting(0.3, label="Point noise", lo=0.0, hi=1.0, step=0.05, help="Jitter of the 2-D points.")
    label_noise: float = setting(0.0, label="Label noise (training)", lo=0.0, hi=0.5, step=0.05,
                                 help="Share of training labels replaced by a wrong class.")
    train_size: int = setting(80, label="Training-set size", lo=1, hi=DIGITS_POOL, ui_lo=10)
    depth: int = setting(2, label="Hidden layers", lo=0, hi=5, help="0 = a linear classifier.")
    width: int = setting(32, label="Units per layer", lo=1, hi=4096, ticks=WIDTHS)
    dropout: float = setting(0.0, label="Dropout", lo=0.0, hi=0.9, ui_hi=0.7, step=0.05)
    weight_decay: float = setting(0.0, label="Weight decay", lo=0.0, hi=10.0, ticks=DECAYS)
    batchnorm: bool = setting(False, label="Batch norm", widget="checkbox")
    early_stopping: bool = setting(False, label="Early stopping", widget="checkbox")
    patience: int = setting(20, label="Patience", lo=1, hi=1000, ui_hi=100, widget="number")
    epochs: int = setting(150, label="Epochs", lo=1, hi=5000, ui_hi=500)
    lr: float = setting(0.01, label="Learning rate (AdamW)", noun="learning rate", lo=0.0, positive=True,
                        ticks=LRS)
    batch_size: int = setting(32, label="batch size", lo=1, hi=4096, url_state=False)
    seed: int = seed_field(label="Seed")

    def __post_init__(self) -> None:
        check(self, lambda c: {"train_size": f"the training-set size must be between 1 and {pool_size(c.data)} "
                                             f"for {DATA_CHOICES[c.data]}, got {c.train_size}"}
              if c.train_size > pool_size(c.data) else None)

    def replace(self, **changes) -> "OverfitConfig":
        """A copy with some knobs changed."""
        return dataclasses.replace(self, **changes)


# The lecture's three regimes on the same data (noisy moons, 80 training points).
PRESETS: dict[str, OverfitConfig] = {
    # A straight line cannot follow the moons: both losses stay high, no gap.
    "underfit": OverfitConfig(depth=0, epochs=150),
    # A small network with strong weight decay: both losses fall and stay close.
    "good fit": OverfitConfig(depth=2, width=16, weight_decay=0.5, epochs=150),
    # A big network, no regularisation, long training: train loss -> 0, validation loss climbs.
    "overfit": OverfitConfig(depth=3, width=128, epochs=200),
}

# Knobs a side-by-side comparison may change, with the label the page shows.
KNOBS: dict[str, str] = {
    "dropout": "Dropout", "weight_decay": "Weight decay", "batchnorm": "Batch norm",
    "early_stopping": "Early stopping", "train_size": "Training-set size", "width": "Width",
    "depth": "Depth", "label_noise": "Label noise",
}


@dataclass
class OverfitResult:
    """What the page charts.

    Attributes:
        config: the run's configuration.
        history: one row per epoch: epoch, train_loss, val_loss, train_acc, val_acc, lr, seconds.
        best_epoch: epoch with the lowest validation loss (where early stopping would roll back to).
        stopped_early: early stopping ended the run.
        diverged_at: epoch where the loss blew up, else None.
        interrupted: stopped from the outside (Stop button).
        gap_loss: validation minus training loss at the end (the generalization gap).
        gap_acc: training minus validation accuracy at the end.
        final: the kept model's ``{"train_acc", "val_acc", "train_loss", "val_loss"}``.
        boundary: for 2-D data, a grid (x1, x2, p) of the predicted probability of class 1.
        points: for 2-D data, the points (x1, x2, label, split).
        parameters: number of weights of the model.
        train_samples, val_samples: sizes of the two sets.
        seconds: wall time of the training.
        paused_s: of ``seconds``, the time the run paused to let other visitors' pages run
            (a ``YieldWhile`` callback on a shared server).
    """

    config: OverfitConfig
    history: pd.DataFrame
    best_epoch: int
    stopped_early: bool
    diverged_at: int | None
    interrupted: bool
    gap_loss: float
    gap_acc: float
    final: dict[str, float]
    boundary: pd.DataFrame | None
    points: pd.DataFrame | None
    parameters: int
    train_samples: int
    val_samples: int
    seconds: float
    paused_s: float = 0.0


def make_data(cfg: OverfitConfig) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The run's (train, val) tensors: a fixed validation set, the first ``train_size`` of the pool.

    Raises:
        ValueError: unknown data set or a training size outside what the pool holds.
    """
    if cfg.data in SYNTHETIC:
        ds = load_dataset(cfg.data, n=POOL_2D, noise=cfg.noise, seed=cfg.seed)
        val_fraction = VAL_2D / POOL_2D
    else:
        ds = load_dataset(cfg.data)
        val_fraction = DIGITS_VAL_FRACTION
    tr, va = train_val_split(len(ds.y), val_fraction, seed=cfg.seed)
    tr = tr[: cfg.train_size]  # the config checked the size against the pool
    x_tr, y_tr = ds.x[tr], ds.y[tr].clone()
    if cfg.label_noise > 0:  # noise in the training labels only: validation measures the truth
        g = torch.Generator().manual_seed(cfg.seed + 1)
        flip = torch.randperm(len(y_tr), generator=g)[: int(round(cfg.label_noise * len(y_tr)))]
        classes = int(ds.y.max()) + 1
        y_tr[flip] = (y_tr[flip] + torch.randint(1, classes, (len(flip),), generator=g)) % classes
    return (x_tr, y_tr), (ds.x[va], ds.y[va])


def _grid(x: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lo, hi = x.min(0).values - 0.3, x.max(0).values + 0.3
    g1 = torch.linspace(float(lo[0]), float(hi[0]), steps)
    g2 = torch.linspace(float(lo[1]), float(hi[1]), steps)
    a, b = torch.meshgrid(g1, g2, indexing="xy")
    return a.reshape(-1), b.reshape(-1), torch.stack([a.reshape(-1), b.reshape(-1)], 1)


def decision_boundary(model: torch.nn.Module, x: torch.Tensor, steps: int = 60) -> pd.DataFrame:
    """P(class 1) of ``model`` on a ``steps x steps`` grid covering the 2-D points ``x``."""
    a, b, grid = _grid(x, steps)
    probs = predict(model, grid, batch_size=4096)[:, 1]
    return pd.DataFrame({"x1": a.numpy(), "x2": b.numpy(), "p": probs.numpy()})


def run_overfit(cfg: OverfitConfig, callbacks: Sequence[Callback] = (), boundary_steps: int = 60) -> OverfitResult:
    """Train the configured MLP and collect curves, gap and (for 2-D data) the boundary.

    Args:
        cfg: the run.
        callbacks: passed to ``fit`` (live curves, Stop buttons).
        boundary_steps: grid resolution of the decision boundary.

    Raises:
        ValueError: bad knobs (see ``make_data``, ``TrainConfig``, ``MLP``).
    """
    train, val = make_data(cfg)
    num_classes = int(max(train[1].max(), val[1].max())) + 1
    model = create_model("mlp", in_features=int(train[0][0].numel()), num_classes=num_classes,
                         depth=cfg.depth, width=cfg.width, dropout=cfg.dropout, batchnorm=cfg.batchnorm,
                         seed=cfg.seed)
    config = TrainConfig(epochs=cfg.epochs, batch_size=min(cfg.batch_size, len(train[1])), optimizer="adamw",
                         lr=cfg.lr, weight_decay=cfg.weight_decay,
                         patience=cfg.patience if cfg.early_stopping else None, seed=cfg.seed)
    result: FitResult = fit(model, train, val, config, callbacks=callbacks)
    history = pd.DataFrame(result.history_dicts())
    final = {"train_acc": math.nan, "val_acc": math.nan, "train_loss": math.nan, "val_loss": math.nan}
    gap_loss = gap_acc = math.nan
    if result.history:
        last = result.history[-1]
        gap_loss, gap_acc = last.val_loss - last.train_loss, last.train_acc - last.val_acc
        kept = result.history[result.best_epoch - 1] if (cfg.early_stopping and result.best_epoch) else last
        final = {"train_acc": kept.train_acc, "val_acc": kept.val_acc,
                 "train_loss": kept.train_loss, "val_loss": kept.val_loss}
    boundary = points = None
    if train[0].ndim == 2 and train[0].shape[1] == 2 and result.diverged_at is None:
        boundary = decision_boundary(result.model, torch.cat([train[0], val[0]]), boundary_steps)
        points = pd.concat([
            pd.DataFrame({"x1": t[0][:, 0].numpy(), "x2": t[0][:, 1].numpy(), "label": t[1].numpy(), "split": s})
            for t, s in ((train, "train"), (val, "validation"))], ignore_index=True)
    return OverfitResult(cfg, history, result.best_epoch, result.stopped_early, result.diverged_at,
                         result.interrupted, gap_loss, gap_acc, final, boundary, points,
                         count_parameters(result.model), len(train[1]), len(val[1]), result.seconds,
                         sum(cb.waited_s for cb in callbacks if isinstance(cb, YieldWhile)))

