"""ResNet-18/34 for 32x32 images, from torchvision's ``BasicBlock``.

The ImageNet ResNet starts with a 7x7 stride-2 conv and a max-pool, which would
shrink a 32x32 image to 8x8 before the first block. The CIFAR variant (He et al.
2016, as in kuangliu/pytorch-cifar) keeps a single 3x3 conv stem, so the four
stages see 32, 16, 8 and 4 pixels: (N,3,32,32) -> (N,64w,32,32) -> ... -> (N,512w,4,4).
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from dltl_core.archs._registry import Family, register, scaled

RESNET = Family(
    name="ResNet",
    block="Basic block: 3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, added to the block's input, then ReLU.",
    connections="Identity skip connections around every block (a 1x1 conv + BN on the skip when the "
                "block halves the resolution or changes the channel count).",
    preactivation="Post-activation: BN and ReLU come after each convolution; the ReLU after the addition "
                  "sits on the skip path.",
    problem="Degradation: deeper plain networks train *worse* than shallower ones. Learning a residual "
            "F(x) added to x makes the identity easy to represent and lets gradients flow through the "
            "skips, so 18, 34 or 150 layers all train.",
    paper="He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016.",
)


class CifarResNet(nn.Module):
    """A ResNet of basic blocks with a 3x3 stem for 32x32 inputs.

    Args:
        layers: blocks per stage (``[2, 2, 2, 2]`` for ResNet-18).
        num_classes: outputs.
        width: channel multiplier (stage widths ``64w, 128w, 256w, 512w``).
    """

    def __init__(self, layers: list[int], num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        widths = [scaled(c, width) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages, inplanes = [], widths[0]
        for i, (planes, blocks) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2
            stages.append(self._stage(inplanes, planes, blocks, stride))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    @staticmethod
    def _stage(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        mods = [BasicBlock(inplanes, planes, stride, downsample)]
        mods += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)                      # (N, 64w, 32, 32)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 512w, 4, 4)
        return self.fc(self.pool(x).flatten(1))


@register("resnet18", "ResNet-18", RESNET, depth=18, reference_acc=93.02)
def resnet18(num_classes: int = 10, width: float = 1.0) -> nn.Module:
    """ResNet-18: 2 basic blocks per stage (about 11.2 M parameters at width 1)."""
    return CifarResNet([2, 2, 2, 2], num_classes, width)


@register("resnet34", "ResNet-34", RESNET, depth=34)
def resnet34(num_classes: int = 10, width: float = 1.0) -> nn.Module:
    """ResNet-34: 3, 4, 6, 3 basic blocks per stage (about 21.3 M parameters at width 1)."""
    return CifarResNet([3, 4, 6, 3], num_classes, width)
