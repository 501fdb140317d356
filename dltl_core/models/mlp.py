"""A multi-layer perceptron: ``depth`` hidden layers h(Wx + b), then a linear classifier."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from dltl_core.models.budget import FLOAT_BYTES, check_fits
from dltl_core.models.registry import register_model
from dltl_core.settings import Setting, problem

# The bounds of the MLP's size, declared once: the model, the command line (their --help
# and checks) read them. 100 layers of 8,192 units is far beyond the lessons' needs, and
# the total size is checked against the free memory anyway (``check_fits``).
DEPTH = Setting("hidden layers", lo=0, hi=100, noun="number of hidden layers")
WIDTH = Setting("units per hidden layer", lo=1, hi=8192, noun="number of units per hidden layer")
DROPOUT = Setting("dropout probability", lo=0.0, hi=1.0, below=True)  # 1 would drop every unit

# "linear" means no nonlinearity: the whole network is then one linear map.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "linear": nn.Identity,
}


class MLP(nn.Module):
    """Fully connected network on flattened inputs.

    Args:
        in_features: input size after flattening (64 for 8x8 digits, 2 for 2-D points).
        num_classes: number of output logits.
        depth: number of hidden layers (0 = logistic regression).
        width: units per hidden layer.
        activation: a key of ``ACTIVATIONS``.
        dropout: dropout probability after each hidden activation.
        batchnorm: BatchNorm1d between each hidden linear layer and its activation.
    """

    def __init__(self, in_features: int = 64, num_classes: int = 10, depth: int = 2, width: int = 128,
                 activation: str = "relu", dropout: float = 0.0, batchnorm: bool = False) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
        for name, s, value in (("depth", DEPTH, depth), ("width", WIDTH, width)):
            msg = problem(name, s, value, int)
            if msg:
                raise ValueError(msg)
        if in_features < 1 or num_classes < 2:
            raise ValueError("need in_features >= 1 and num_classes >= 2")
        # Before any layer is allocated: depth x width² can be tens of GB.
        if torch.get_default_device().type != "meta":  # a meta model (counted, not built) takes no memory
            check_fits(FLOAT_BYTES * mlp_parameters(in_features, num_classes, depth, width),
                       "storing this MLP's weights", "choose a smaller depth or width")
        msg = problem("dropout", DROPOUT, dropout, float)
        if msg:
            raise ValueError(msg)
        layers: list[nn.Module] = [nn.Flatten()]  # (N, ...) -> (N, in_features)
        n_in = in_features
        for _ in range(depth):
            layers.append(nn.Linear(n_in, width, bias=not batchnorm))  # BN has its own shift
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            n_in = width
        layers.append(nn.Linear(n_in, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(N, ...) -> logits (N, num_classes)."""
        return self.net(x)


def mlp_parameters(in_features: int, num_classes: int, depth: int, width: int) -> int:
    """The number of weights and biases of ``MLP(in_features, num_classes, depth, width)``
    (with batch norm: one bias fewer and two norm parameters more per unit; counted as without)."""
    sizes = [int(in_features)] + [int(width)] * int(depth) + [int(num_classes)]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


@register_model("mlp")
def mlp(**kwargs) -> MLP:
    """The MLP (see ``MLP`` for arguments)."""
    return MLP(**kwargs)
