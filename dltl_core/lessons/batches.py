"""Mini-batches: what the batch size changes, measured on the current device.

- ``batch_size_sweep``: the same model and epochs for several batch sizes: time
  per epoch, steps per epoch, final validation accuracy.
- ``gradient_spread``: mini-batch gradients scattered around the full-batch
  gradient; the spread shrinks like 1/sqrt(batch size).
- ``epoch_step_counts``: epochs vs steps, as plain counts.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import pandas as pd
import torch
import torch.nn.functional as F

from dltl_core.data import load_digits, split_tensors
from dltl_core.data.digits import DIGITS_VAL_FRACTION
from dltl_core.device import get_policy
from dltl_core.models import create_model
from dltl_core.train import TrainConfig, cpu_threads_for, fit

DEFAULT_BATCH_SIZES = (8, 32, 128, 512)


def _digits(seed: int) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    x, y = load_digits()
    return split_tensors(x, y, DIGITS_VAL_FRACTION, seed=seed)


def epoch_step_counts(n_train: int, batch_sizes: Sequence[int], epochs: int) -> pd.DataFrame:
    """Steps per epoch (ceil(n / b)) and in total, for each batch size.

    Raises:
        ValueError: non-positive sizes, or a batch size above ``n_train``.
    """
    if n_train < 1 or epochs < 1:
        raise ValueError("need at least one training sample and one epoch")
    rows = []
    for b in batch_sizes:
        if not 1 <= b <= n_train:
            raise ValueError(f"batch size {b} must be between 1 and the training-set size {n_train}")
        steps = math.ceil(n_train / b)
        rows.append({"batch_size": b, "steps_per_epoch": steps, "epochs": epochs, "total_steps": steps * epochs,
                     "samples_seen": n_train * epochs, "last_batch": n_train - (steps - 1) * b})
    return pd.DataFrame(rows)


def batch_size_sweep(batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, epochs: int = 5, lr: float = 1e-3,
                     seed: int = 0, progress: Callable[[int, int, int], None] | None = None) -> pd.DataFrame:
    """Train the default MLP on the digits once per batch size, with the same epochs and lr.

    Args:
        batch_sizes: the sizes to try (each at most the training-set size, 1,438).
        epochs: epochs per run.
        lr: Adam's learning rate (the same for every size, on purpose).
        seed: one seed for all runs (same initial weights).
        progress: called as ``progress(i, n, batch_size)`` before run i of n.

    Returns:
        one row per size: batch_size, steps_per_epoch, total_steps, seconds_per_epoch,
        samples_per_second, val_acc, val_loss, train_loss, device.

    Raises:
        ValueError: a batch size outside [1, training-set size], no sizes, bad epochs.
    """
    if not batch_sizes:
        raise ValueError("choose at least one batch size")
    train, val = _digits(seed)
    n = len(train[1])
    epoch_step_counts(n, batch_sizes, epochs)  # validates
    policy = get_policy()
    rows = []
    for i, b in enumerate(batch_sizes):
        if progress is not None:
            progress(i, len(batch_sizes), b)
        res = fit(create_model("mlp", seed=seed), train, val,
                  TrainConfig(epochs=epochs, batch_size=b, lr=lr, seed=seed), policy=policy)
        hist = res.history
        # The first epoch carries one-off costs (allocations, caches): time the others when there are any.
        timed = hist[1:] or hist
        train_time = sum(r.seconds for r in timed) / len(timed)
        rows.append({"batch_size": b, "steps_per_epoch": math.ceil(n / b), "total_steps": math.ceil(n / b) * epochs,
                     "seconds_per_epoch": train_time,
                     "samples_per_second": sum(r.samples_per_second for r in timed) / len(timed),
                     "val_acc": hist[-1].val_acc, "val_loss": hist[-1].val_loss,
                     "train_loss": hist[-1].train_loss, "device": policy.name})
    return pd.DataFrame(rows)


def _flat_grad(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def gradient_spread(batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, draws: int = 48, warmup_epochs: int = 1,
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mini-batch gradients of a (briefly trained) MLP compared with the full-batch gradient g.

    Each mini-batch gradient g_b is placed in a plane: ``along`` = <g_b, g>/|g|^2 (1 means
    "as long as g in g's direction") and ``across`` = its component along the main
    direction in which the smallest batches deviate from g, also in units of |g|.

    Args:
        batch_sizes: mini-batch sizes to sample.
        draws: mini-batches drawn per size (without replacement within a batch).
        warmup_epochs: epochs of training before measuring (0 = at initialisation).
        seed: seeds the model, the warm-up and the draws.

    Returns:
        ``(points, summary)``: points has batch_size, draw, along, across, cosine, rel_error
        (|g_b - g| / |g|); summary has, per size, mean cosine and the rms rel_error, and
        the 1/sqrt(b) prediction scaled to the smallest size.
    """
    if draws < 2:
        raise ValueError("draw at least two mini-batches per size")
    train, val = _digits(seed)
    n = len(train[1])
    epoch_step_counts(n, batch_sizes, 1)
    model = create_model("mlp", seed=seed)
    if warmup_epochs > 0:
        model = fit(model, train, val, TrainConfig(epochs=warmup_epochs, seed=seed),
                    policy=get_policy("cpu")).model
    model = model.cpu().train()
    with cpu_threads_for(model, get_policy("cpu")):
        return _spread(model, train, batch_sizes, draws, seed)


def _spread(model, train, batch_sizes, draws, seed) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(train[1])
    g = _flat_grad(model, *train)
    gn = g.norm()
    unit = g / gn
    gen = torch.Generator().manual_seed(seed)
    grads = {}
    for b in batch_sizes:
        rows = []
        for _ in range(draws):
            idx = torch.randperm(n, generator=gen)[:b]
            rows.append(_flat_grad(model, train[0][idx], train[1][idx]))
        grads[b] = torch.stack(rows)  # (draws, params)
    # The main direction of deviation of the noisiest (smallest) batches, orthogonal to g.
    resid = grads[min(batch_sizes)] - (grads[min(batch_sizes)] @ unit)[:, None] * unit
    direction = torch.linalg.svd(resid, full_matrices=False).Vh[0]
    direction = direction - (direction @ unit) * unit
    direction = direction / direction.norm()
    frames, summary = [], []
    for b, gb in grads.items():
        along = (gb @ unit) / gn
        across = (gb @ direction) / gn
        cosine = F.cosine_similarity(gb, g[None], dim=1)
        rel = (gb - g).norm(dim=1) / gn
        frames.append(pd.DataFrame({"batch_size": b, "draw": range(draws), "along": along.detach().numpy(),
                                    "across": across.detach().numpy(), "cosine": cosine.detach().numpy(),
                                    "rel_error": rel.detach().numpy()}))
        summary.append({"batch_size": b, "mean_cosine": cosine.mean().item(),
                        "rms_rel_error": rel.pow(2).mean().sqrt().item()})
    summary_df = pd.DataFrame(summary)
    b0 = min(batch_sizes)
    ref = summary_df.loc[summary_df.batch_size == b0, "rms_rel_error"].iloc[0]
    # Sampling without replacement: variance shrinks by (n - b) / (n - 1) on top of 1/b.
    summary_df["predicted_rel_error"] = [
        ref * math.sqrt(b0 / b) * math.sqrt(((n - b) / (n - 1)) / ((n - b0) / (n - 1))) for b in summary_df.batch_size]
    return pd.concat(frames, ignore_index=True), summary_df
