"""DenseNet-121 and a narrow DenseNet for 32x32 images, from torchvision's dense blocks.

Inside a dense block every layer receives the concatenation of all earlier
feature maps and adds ``k`` (the growth rate) new channels; transitions halve
the channels (1x1 conv) and the resolution (2x2 average pool). The CIFAR stem is
a single 3x3 conv with ``2k`` channels (no 7x7 conv, no max-pool), as in
kuangliu/pytorch-cifar: (N,3,32,32) -> blocks at 32, 16, 8, 4 pixels.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn
from torchvision.models.densenet import _DenseBlock, _Transition

from dltl_core.archs._registry import Family, register

DENSENET = Family(
    name="DenseNet",
    block="Dense layer (bottleneck): BN -> ReLU -> 1x1 conv (4k channels) -> BN -> ReLU -> 3x3 conv "
          "(k new channels), concatenated to everything before it.",
    connections="Dense connections: inside a block each layer sees the concatenated outputs of all "
                "earlier layers (L(L+1)/2 connections); transitions (BN-ReLU-1x1 conv-avg pool) halve "
                "the channels and resolution between blocks.",
    preactivation="Pre-activation: BN and ReLU before every convolution, and a final BN-ReLU before "
                  "pooling.",
    problem="Feature reuse and gradient flow with few parameters: instead of re-learning features, each "
            "layer adds only k channels and reads all earlier ones, so a 121-layer net has ~7 M parameters "
            "and every layer gets a short path to the loss.",
    paper="Huang, Liu, van der Maaten, Weinberger. Densely Connected Convolutional Networks. CVPR 2017.",
)


class CifarDenseNet(nn.Module):
    """DenseNet-BC with a 3x3 stem for 32x32 inputs.

    Args:
        block_config: dense layers per block (``(6, 12, 24, 16)`` for DenseNet-121).
        growth_rate: k, channels each dense layer adds (the width multiplier scales it).
        num_classes: outputs.
        reduction: channel compression of the transitions.
    """

    def __init__(self, block_config: tuple[int, ...], growth_rate: int, num_classes: int = 10,
                 reduction: float = 0.5) -> None:
        super().__init__()
        channels = 2 * growth_rate
        self.stem = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        stages: dict[str, nn.Module] = {}
        for i, layers in enumerate(block_config, start=1):
            stages[f"block{i}"] = _DenseBlock(layers, channels, bn_size=4, growth_rate=growth_rate, drop_rate=0.0)
            channels += layers * growth_rate
            if i < len(block_config):
                out = int(channels * reduction)
                stages[f"trans{i}"] = _Transition(channels, out)
                channels = out
        self.features = nn.Sequential(OrderedDict(stages))
        self.head = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(self.stem(x))  # (N, C, 4, 4)
        return self.fc(self.head(x))


def _growth(k: int, width: float) -> int:
    return max(2, int(round(k * width)))


@register("densenet121", "DenseNet-121", DENSENET, depth=121, reference_acc=95.04)
def densenet121(num_classes: int = 10, width: float = 1.0) -> nn.Module:
    """DenseNet-121 (k=32): 6, 12, 24, 16 dense layers per block (about 7.0 M parameters)."""
    return CifarDenseNet((6, 12, 24, 16), _growth(32, width), num_classes)


@register("densenet_cifar", "DenseNet-121 (k=12)", DENSENET, depth=121,
          notes="kuangliu's `densenet_cifar`: DenseNet-121's depth with growth rate 12 instead of 32.")
def densenet_cifar(num_classes: int = 10, width: float = 1.0) -> nn.Module:
    """The narrow DenseNet: same blocks, growth rate 12 (about 1.0 M parameters)."""
    return CifarDenseNet((6, 12, 24, 16), _growth(12, width), num_classes)


