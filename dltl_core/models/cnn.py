"""A small convolutional network: two or three conv blocks, then a linear classifier."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from dltl_core.models.budget import FLOAT_BYTES, check_fits
from dltl_core.models.registry import register_model
from dltl_core.settings import Setting

# The bounds of the CNN's size, declared once (the model and the command line read them).
# Each block halves the image, so 8 blocks already bring 256 pixels down to 1.
CHANNELS = Setting("channels per block", lo=1, hi=1024, noun="number of channels of a block")
BLOCKS = Setting("conv blocks", lo=1, hi=8, noun="number of conv blocks")


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
        channels = tuple(int(c) for c in channels)
        if not BLOCKS.lo <= len(channels) <= BLOCKS.hi:
            raise ValueError(f"need {BLOCKS.lo:g} to {BLOCKS.hi:g} conv blocks, got {len(channels)}")
        if not all(CHANNELS.lo <= c <= CHANNELS.hi for c in channels):
            raise ValueError(f"each block needs {CHANNELS.lo:g} to {CHANNELS.hi:g} channels, got {list(channels)}")
        if torch.get_default_device().type != "meta":  # a meta model (counted, not built) takes no memory
            check_fits(FLOAT_BYTES * cnn_parameters(in_channels, num_classes, channels),
                       "storing this CNN's weights", "choose fewer channels")
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


def cnn_parameters(in_channels: int, num_classes: int, channels: Sequence[int]) -> int:
    """The number of weights and biases of ``SmallCNN(in_channels, num_classes, channels)``."""
    total, c_in = 0, int(in_channels)
    for c in channels:
        total += 9 * c_in * int(c) + 3 * int(c)  # kernel, then bias or BN's scale and shift (an upper bound)
        c_in = int(c)
    return total + 4 * c_in * int(num_classes) + int(num_classes)


@register_model("cnn")
def cnn(**kwargs) -> SmallCNN:
    """The small CNN (see ``SmallCNN`` for arguments)."""
    return SmallCNN(**kwargs)
