"""Fully connected vs convolutional layers on the digits; what the nonlinearity buys.

A layer computes h(Wx + b). A fully connected layer has one weight per
(input, output) pair; a convolution shares a small kernel across positions. The
functions here count those weights, train both kinds under the same budget, show
a trained CNN's first-layer filters and feature maps, and show that a deep
network without nonlinearities is a single linear map.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from torch import nn

from dltl_core.data import load_digits, split_tensors
from dltl_core.models import SmallCNN, count_parameters, create_model
from dltl_core.train import Callback, TrainConfig, evaluate, fit

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


@dataclass
class LayersResult:
    """What the layers page shows.

    Attributes:
        models: one row per model: model, kind, parameters, val_acc, val_loss, seconds.
        collapsed_acc: accuracy of the deep linear network's product W_L...W_1 used as one layer.
        linear_acc: accuracy of the deep linear network itself (the same, up to rounding).
        filters: first-layer CNN filters, long form: filter, row, col, weight.
        images: one validation digit per class, long form: digit, row, col, value.
        maps: CNN feature maps of those digits: digit, layer, channel, row, col, value.
    """

    models: pd.DataFrame
    collapsed_acc: float
    linear_acc: float
    filters: pd.DataFrame
    images: pd.DataFrame
    maps: pd.DataFrame


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


def compare_layers(epochs: int = 10, seed: int = 0, width: int = 128, channels: tuple[int, ...] = (16, 32),
                   depth: int = 3, progress: Progress | None = None) -> LayersResult:
    """Train an MLP, a small CNN, a deep linear MLP and logistic regression on the digits,
    each for ``epochs`` epochs with Adam, and inspect the CNN.

    Args:
        progress: called as ``progress(epochs_done, epochs_total, model_label)`` after each epoch.

    Raises:
        ValueError: bad sizes (see the models and ``TrainConfig``).
    """
    x, y = load_digits()
    train, val = split_tensors(x, y, 0.2, seed=seed)
    config = TrainConfig(epochs=epochs, lr=3e-3, seed=seed)
    specs = [
        ("MLP (ReLU)", "fully connected", "mlp", dict(depth=depth, width=width)),
        ("CNN (ReLU)", "convolutional", "cnn", dict(channels=channels)),
        (f"MLP, {depth} layers, no nonlinearity", "fully connected", "mlp",
         dict(depth=depth, width=width, activation="linear")),
        ("Logistic regression (one linear layer)", "fully connected", "mlp", dict(depth=0)),
    ]
    rows, trained = [], {}
    for i, (label, kind, name, kw) in enumerate(specs):
        model = create_model(name, seed=seed, **kw)
        t0 = time.perf_counter()
        hooks = [_EpochProgress(progress, i * epochs, len(specs) * epochs, label)] if progress else []
        res = fit(model, train, val, config, callbacks=hooks)
        last = res.history[-1]
        rows.append({"model": label, "kind": kind, "parameters": count_parameters(model),
                     "val_acc": last.val_acc, "val_loss": last.val_loss, "seconds": time.perf_counter() - t0})
        trained[label] = res.model
    linear = trained[specs[2][0]]
    linear_loss, linear_acc = evaluate(linear, val)
    collapsed_loss, collapsed_acc = evaluate(collapse_linear(linear), val)

    cnn: SmallCNN = trained[specs[1][0]]  # type: ignore[assignment]
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
    return LayersResult(pd.DataFrame(rows), collapsed_acc, linear_acc, filters, images,
                        pd.concat(map_frames, ignore_index=True))
