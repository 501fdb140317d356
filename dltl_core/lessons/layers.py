"""Fully connected vs convolutional layers on the digits; what the nonlinearity buys.

A layer computes h(Wx + b). A fully connected layer has one weight per
(input, output) pair; a convolution shares a small kernel across positions. The
functions here count those weights, train both kinds under the same budget, show
a trained CNN's first-layer filters and feature maps, and show that a deep
network without nonlinearities is a single linear map.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from torch import nn

from dltl_core.data import load_digits, split_tensors
from dltl_core.models import SmallCNN, count_parameters, create_model
from dltl_core.train import Callback, TrainConfig, evaluate, fit
from dltl_core.train.fit import cpu_threads_for

Progress = Callable[[int, int, str], None]

# Inputs of the course, (channels, height, width).
INPUTS: dict[str, tuple[int, int, int]] = {
    "digits 8x8": (1, 8, 8),
    "MNIST 28x28": (1, 28, 28),
    "CIFAR-10 32x32": (3, 32, 32),
    "ImageNet photo 224x224": (3, 224, 224),
}


def fc_params(in_shape: tuple[int, int, int], out_channels: int) -> int:
    """Weights + biases of a fully connected layer with as many outputs as a same-padded
    convolution with ``out_channels`` channels (C_out x H x W outputs)."""
    c, h, w = in_shape
    n_in, n_out = c * h * w, out_channels * h * w
    return n_in * n_out + n_out


def conv_params(in_shape: tuple[int, int, int], out_channels: int, kernel: int = 3) -> int:
    """Weights + biases of a ``kernel x kernel`` convolution (independent of the image size)."""
    return out_channels * in_shape[0] * kernel * kernel + out_channels


def param_table(out_channels: int = 16, kernel: int = 3) -> pd.DataFrame:
    """One row per input size: parameters of a fully connected vs a convolutional layer
    producing the same number of outputs."""
    rows = []
    for name, shape in INPUTS.items():
        fc, conv = fc_params(shape, out_channels), conv_params(shape, out_channels, kernel)
        rows.append({"input": name, "outputs": out_channels * shape[1] * shape[2],
                     "fully connected": fc, "convolutional": conv, "ratio": fc / conv})
    return pd.DataFrame(rows)


LINEAR_MAP = "One linear map, trained to convergence (L-BFGS)"
DEEP_LINEAR = "MLP, {depth} layers, no nonlinearity"
RELU_MODELS = ("MLP (ReLU)", "CNN (ReLU)")
# L2 penalty of the converged linear map: the digits are linearly separable, so without it the
# weights grow forever and "converged" has no end. 1e-4 was the best of 0, 1e-4, 1e-3 on seeds 0-4.
LINEAR_WEIGHT_DECAY = 1e-4
LBFGS_MAX_ITER = 500  # the linear map converges in about 160 iterations (gradient below 1e-6)


@dataclass
class LayersResult:
    """What the layers page shows.

    Attributes:
        models: one row per model and seed: model, kind, seed, parameters, val_acc, val_loss,
            seconds (the val set is each seed's own 20 %).
        collapsed_acc: accuracy of the deep linear network's product W_L...W_1 used as one layer
            (first seed).
        linear_acc: accuracy of the deep linear network itself (first seed; the same, up to rounding).
        n_val: validation images per seed (the binomial noise of one accuracy).
        epochs: the Adam budget of the trained networks.
        lbfgs_iterations: iterations L-BFGS took for the linear map, one per seed.
        filters: first-layer CNN filters, long form: filter, row, col, weight.
        images: one validation digit per class, long form: digit, row, col, value.
        maps: CNN feature maps of those digits: digit, layer, channel, row, col, value.
    """

    models: pd.DataFrame
    collapsed_acc: float
    linear_acc: float
    n_val: int
    epochs: int
    lbfgs_iterations: list[int]
    filters: pd.DataFrame
    images: pd.DataFrame
    maps: pd.DataFrame

    @property
    def seeds(self) -> list[int]:
        """The seeds the models were trained with."""
        return sorted(set(self.models["seed"]))

    @property
    def noise(self) -> float:
        """Standard error of one validation accuracy (binomial, at the linear map's mean accuracy)."""
        p = float(self.models.loc[self.models.model == LINEAR_MAP, "val_acc"].mean())
        return math.sqrt(max(p * (1 - p), 1e-4) / max(self.n_val, 1))


def fit_linear_map(train: tuple[torch.Tensor, torch.Tensor], seed: int,
                   weight_decay: float = LINEAR_WEIGHT_DECAY) -> tuple[nn.Module, int]:
    """Multinomial logistic regression trained to convergence with full-batch L-BFGS.

    Returns:
        ``(model, iterations)``: one ``nn.Linear`` behind a flatten, and L-BFGS's iteration count.
    """
    x, y = train[0].reshape(len(train[0]), -1).cpu(), train[1].cpu()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(x.shape[1], int(y.max()) + 1))
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=LBFGS_MAX_ITER, tolerance_grad=1e-6,
                            tolerance_change=1e-10, history_size=20, line_search_fn="strong_wolfe")
    weight = model[1].weight

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) + weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    with cpu_threads_for(model):  # a 650-weight model: threads only spin (40 s instead of 1.5 s under load)
        opt.step(closure)
    return model, int(opt.state[weight].get("n_iter", 0))


def depth_claims(result: LayersResult) -> list[str]:
    """The sentences the bars support, computed from them (empty when a model is missing).

    The deep linear net is compared with the converged linear map (the same family of
    functions); each ReLU network with that map, seed by seed. A lead is claimed only when
    every seed shows it and its mean exceeds one standard error of an accuracy.
    """
    m = result.models
    deep = next((name for name in m.model.unique() if "no nonlinearity" in name), None)
    if deep is None or LINEAR_MAP not in set(m.model):
        return []
    acc = m.pivot_table(index="seed", columns="model", values="val_acc")
    noise, n = result.noise, len(acc)
    seeds = f"{n} seed{'s' if n > 1 else ''}"
    gap = acc[deep] - acc[LINEAR_MAP]
    if abs(gap.mean()) <= 2 * noise:
        out = [f"The deep linear network is within noise of the converged linear map "
               f"({gap.mean() * 100:+.1f} points on average over {seeds}; one accuracy's noise is "
               f"±{noise * 100:.1f}): stacking linear layers adds nothing."]
    else:
        out = [f"The deep linear network is {gap.mean() * 100:+.1f} points from the converged linear map over "
               f"{seeds}: it has not converged on this budget (it computes no more than one linear map)."]
    for relu in (r for r in RELU_MODELS if r in acc):
        lead = acc[relu] - acc[LINEAR_MAP]
        span = f"{lead.min() * 100:+.1f} to {lead.max() * 100:+.1f} points" if n > 1 else f"{lead.iloc[0] * 100:+.1f} points"
        if lead.min() > 0 and lead.mean() > noise:
            out.append(f"The {relu} beats the best linear map on every one of {seeds} ({span}): "
                       "the nonlinearity pays.")
        else:
            out.append(f"The {relu}'s lead over the best linear map is within noise here ({span} over {seeds}).")
    return out


def collapse_linear(model: nn.Module) -> nn.Linear:
    """The single linear layer equal to an MLP without nonlinearities (and without BN/dropout):
    W = W_L ... W_1, b = W_L ... W_2 b_1 + ... + b_L."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    w, b = linears[0].weight.detach(), linears[0].bias.detach()
    for lin in linears[1:]:
        w, b = lin.weight.detach() @ w, lin.weight.detach() @ b + lin.bias.detach()
    out = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        out.weight.copy_(w)
        out.bias.copy_(b)
    return nn.Sequential(nn.Flatten(), out)


def _long(t: torch.Tensor, names: tuple[str, ...]) -> pd.DataFrame:
    idx = torch.cartesian_prod(*[torch.arange(s) for s in t.shape]).reshape(-1, t.ndim)
    data = {n: idx[:, i].numpy() for i, n in enumerate(names)}
    data["value"] = t.reshape(-1).float().numpy()
    return pd.DataFrame(data)


class _EpochProgress(Callback):
    """Reports ``progress(done, total, label)`` after every epoch of every model."""

    def __init__(self, progress: Progress, offset: int, total: int, label: str) -> None:
        self.progress, self.offset, self.total, self.label = progress, offset, total, label

    def on_epoch_end(self, trainer, record) -> None:  # noqa: D102
        self.progress(self.offset + record.epoch, self.total, self.label)


def compare_layers_specs(width: int = 128, channels: tuple[int, ...] = (16, 32),
                         depth: int = 3) -> list[tuple[str, str, str, dict]]:
    """(label, kind, model name, model kwargs) of the three networks trained with Adam."""
    return [
        ("MLP (ReLU)", "fully connected", "mlp", dict(depth=depth, width=width)),
        ("CNN (ReLU)", "convolutional", "cnn", dict(channels=channels)),
        (DEEP_LINEAR.format(depth=depth), "fully connected", "mlp", dict(depth=depth, width=width, activation="linear")),
    ]


def compare_layers(epochs: int = 30, seed: int = 0, seeds: int = 3, width: int = 128,
                   channels: tuple[int, ...] = (16, 32), depth: int = 3,
                   progress: Progress | None = None) -> LayersResult:
    """Train an MLP, a small CNN and a deep linear MLP on the digits for ``epochs`` epochs of
    Adam (cosine decay, so the last epoch is not a noisy snapshot), and a linear map to
    convergence with L-BFGS, once per seed ``seed, seed + 1, ...``; inspect the first CNN.

    Args:
        seeds: how many seeds (each its own split, initial weights and batch order).
        progress: called as ``progress(epochs_done, epochs_total, model_label)`` after each epoch.

    Raises:
        ValueError: bad sizes (see the models and ``TrainConfig``).
    """
    if not 1 <= seeds <= 10:
        raise ValueError(f"the number of seeds must be between 1 and 10, got {seeds}")
    x, y = load_digits()
    specs = compare_layers_specs(width, channels, depth)
    rows, first, iterations, total = [], {}, [], seeds * len(specs) * epochs
    for j, s in enumerate(range(seed, seed + seeds)):
        train, val = split_tensors(x, y, 0.2, seed=s)
        config = TrainConfig(epochs=epochs, lr=3e-3, seed=s, schedule="cosine")
        for i, (label, kind, name, kw) in enumerate(specs):
            model = create_model(name, seed=s, **kw)
            t0 = time.perf_counter()
            offset = (j * len(specs) + i) * epochs
            hooks = [_EpochProgress(progress, offset, total, label)] if progress else []
            res = fit(model, train, val, config, callbacks=hooks)
            last = res.history[-1]
            rows.append({"model": label, "kind": kind, "seed": s, "parameters": count_parameters(model),
                         "val_acc": last.val_acc, "val_loss": last.val_loss, "seconds": time.perf_counter() - t0})
            if j == 0:
                first[label] = res.model
        t0 = time.perf_counter()
        lin, its = fit_linear_map(train, s)
        loss, acc = evaluate(lin, val)
        iterations.append(its)
        rows.append({"model": LINEAR_MAP, "kind": "fully connected", "seed": s, "parameters": count_parameters(lin),
                     "val_acc": acc, "val_loss": loss, "seconds": time.perf_counter() - t0})
        if j == 0:
            first_val = val
    val = first_val
    linear = first[specs[2][0]]
    linear_loss, linear_acc = evaluate(linear, val)
    collapsed_loss, collapsed_acc = evaluate(collapse_linear(linear), val)

    cnn: SmallCNN = first[specs[1][0]]  # type: ignore[assignment]
    filters = _long(cnn.first_conv.weight.detach()[:, 0].cpu(), ("filter", "row", "col"))
    filters = filters.rename(columns={"value": "weight"})
    # One validation example of each digit.
    picks = [int((val[1] == d).nonzero()[0]) for d in range(10)]
    imgs = val[0][picks].cpu()
    with torch.no_grad():
        cnn.eval()
        maps = cnn.feature_maps(imgs.to(next(cnn.parameters()).device))
    images = _long(imgs[:, 0], ("digit", "row", "col"))
    map_frames = [_long(m.cpu(), ("digit", "channel", "row", "col")).assign(layer=i + 1) for i, m in enumerate(maps)]
    return LayersResult(pd.DataFrame(rows), collapsed_acc, linear_acc, len(val[1]), epochs, iterations,
                        filters, images, pd.concat(map_frames, ignore_index=True))
