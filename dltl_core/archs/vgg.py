"""VGG-11 and VGG-16 with batch norm for 32x32 images, from torchvision's ``make_layers``.

Five stages of 3x3 convs (each followed by BN and ReLU) and 2x2 max-pools
take (N,3,32,32) to (N,512w,1,1); the CIFAR version (kuangliu/pytorch-cifar)
replaces ImageNet VGG's three 4096-wide fully connected layers by one linear
layer, which is why VGG-16 here has 15 M parameters instead of 138 M.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.vgg import make_layers

from dltl_core.archs._registry import Family, register, scaled

VGG = Family(
    name="VGG",
    block="Plain stack: 3x3 conv -> BN -> ReLU, repeated; a 2x2 max-pool halves the resolution after "
          "each stage while the channels double (64 -> 512).",
    connections="None: a plain feed-forward chain, every layer sees only the previous one.",
    preactivation="Post-activation: conv, then BN, then ReLU (batch norm was added later than the "
                  "paper; without it VGG-16 is hard to train from scratch).",
    problem="Depth with small filters: two stacked 3x3 convs see as far as one 5x5 (three as a 7x7) "
            "with fewer parameters and more nonlinearity. The plain chain is the baseline the later "
            "designs improve on: deeper plain nets stop improving, and most of the compute sits in "
            "wide late layers.",
    paper="Simonyan, Zisserman. Very Deep Convolutional Networks for Large-Scale Image Recognition. "
          "ICLR 2015.",
)

CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class CifarVGG(nn.Module):
    """VGG-BN features and one linear classifier for 32x32 inputs."""

    def __init__(self, cfg: list[int | str], num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        cfg = [c if c == "M" else scaled(int(c), width) for c in cfg]
        self.features = make_layers(cfg, batch_norm=True)  # (N, 512w, 1, 1)
        self.fc = nn.Linear(int(cfg[-2]), num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).flatten(1))


@register("vgg11_bn", "VGG-11 (BN)", VGG, depth=9,
          notes="8 convs and 1 linear layer (ImageNet VGG-11 has 3 linear layers).")
def vgg11_bn(num_classes: int = 10, width: float = 1.0) -> nn.Module:
    """VGG-11 with batch norm (about 9.2 M parameters)."""
    return CifarVGG(CFG["vgg11"], num_classes, width)


@register("vgg16_bn", "VGG-16 (BN)", VGG, depth=14, reference_acc=92.64,
          notes="13 convs and 1 linear layer (ImageNet VGG-16 has 3 linear layers).")
def vgg16_bn(num_classes: int = 10, width: float = 1.0) -> nn.Module:
    """VGG-16 with batch norm (about 14.7 M parameters)."""
    return CifarVGG(CFG["vgg16"], num_classes, width)
