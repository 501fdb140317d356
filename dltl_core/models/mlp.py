"""A multi-layer perceptron: ``depth`` hidden layers h(Wx + b), then a linear classifier."""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from dltl_core.models.registry import register_model

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
        if depth < 0 or width < 1 or in_features < 1 or num_classes < 2:
            raise ValueError("need depth >= 0, width >= 1, in_features >= 1 and num_classes >= 2")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
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


@register_model("mlp")
def mlp(**kwargs) -> MLP:
    """The MLP (see ``MLP`` for arguments)."""
    return MLP(**kwargs)
