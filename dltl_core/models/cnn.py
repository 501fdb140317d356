"""A small convolutional network: two or three conv blocks, then a linear classifier."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from dltl_core.models.registry import register_model


class SmallCNN(nn.Module):
    """conv3x3 -> BN? -> ReLU -> maxpool2, per block; adaptive 2x2 pool; linear head.

    Works for any input of at least 2x2 pixels per block (8x8 digits, 28x28 MNIST,
    32x32 CIFAR): the adaptive pooling fixes the head's input size.

    Args:
        in_channels: image channels (1 for digits/MNIST, 3 for CIFAR).
        num_classes: number of output logits.
        channels: output channels of each conv block.
        dropout: dropout before the linear head.
        batchnorm: BatchNorm2d after each convolution.
        activation: ``relu`` or ``linear`` (no nonlinearity, for the layers lesson).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: Sequence[int] = (16, 32),
                 dropout: float = 0.0, batchnorm: bool = False, activation: str = "relu") -> None:
        super().__init__()
        if not channels or min(channels) < 1:
            raise ValueError("need at least one conv block with >= 1 channel")
        if activation not in ("relu", "linear"):
            raise ValueError("activation must be 'relu' or 'linear'")
        blocks: list[nn.Module] = []
        c_in = in_channels
        for c in channels:
            block = [nn.Conv2d(c_in, c, 3, padding=1, bias=not batchnorm)]
            if batchnorm:
                block.append(nn.BatchNorm2d(c))
            block.append(nn.ReLU() if activation == "relu" else nn.Identity())
            block.append(nn.MaxPool2d(2, ceil_mode=True))  # ceil: 8 -> 4 -> 2 -> 1 never hits 0
            blocks.append(nn.Sequential(*block))
            c_in = c
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * 4, num_classes))

    @property
    def first_conv(self) -> nn.Conv2d:
        """The first convolution (its weights are the filters the layers lesson draws)."""
        return self.features[0][0]

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """The activation after each conv block's nonlinearity (before pooling), for lessons.

        Args:
            x: images (N, C, H, W).

        Returns:
            one tensor (N, channels[i], H_i, W_i) per block.
        """
        maps = []
        for block in self.features:
            for layer in block:
                if isinstance(layer, nn.MaxPool2d):
                    maps.append(x)
                x = layer(x)
        return maps

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> logits (N, num_classes)."""
        return self.head(self.pool(self.features(x)))


@register_model("cnn")
def cnn(**kwargs) -> SmallCNN:
    """The small CNN (see ``SmallCNN`` for arguments)."""
    return SmallCNN(**kwargs)
