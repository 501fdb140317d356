"""PreActResNet-18 for 32x32 images (He et al., "Identity Mappings", 2016).

The pre-activation block moves BN and ReLU *before* each convolution, so the
skip path is a pure identity from the input to the output of the network: no
ReLU or BN ever sits on it. torchvision has no pre-activation block, hence this
short definition.
"""

from __future__ import annotations

from torch import Tensor, nn

from dltl_core.archs._registry import Family, register, scaled

PREACT = Family(
    name="PreActResNet",
    block="Pre-activation block: BN -> ReLU -> 3x3 conv -> BN -> ReLU -> 3x3 conv, added to the input.",
    connections="Identity skips, with nothing after the addition; a 1x1 conv (no BN) on the skip when "
                "the resolution or channel count changes.",
    preactivation="Pre-activation: BN and ReLU come before each convolution, so the sum x + F(x) is "
                  "passed on untouched; a final BN -> ReLU precedes pooling.",
    problem="In the original ResNet a ReLU after each addition still blocks the signal path. With a "
            "clean identity path, any layer's signal reaches any deeper layer (and gradients flow back) "
            "directly, which eases optimisation of very deep nets and regularises a little.",
    paper="He, Zhang, Ren, Sun. Identity Mappings in Deep Residual Networks. ECCV 2016.",
)


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice, plus the input: (N,C,H,W) -> (N,P,H/s,W/s)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or inplanes != planes:
            self.shortcut = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(x))
        # The projection (when any) takes the pre-activated input, as in the paper.
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + skip


class PreActResNet(nn.Module):
    """A pre-activation ResNet with a 3x3 stem for 32x32 inputs."""

    def __init__(self, layers: list[int], num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        widths = [scaled(c, width) for c in (64, 128, 256, 512)]
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)  # no BN: the first block starts with one
        stages, inplanes = [], widths[0]
        for i, (planes, blocks) in enumerate(zip(widths, layers)):
            mods = [PreActBlock(inplanes, planes, 1 if i == 0 else 2)]
            mods += [PreActBlock(planes, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*mods))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.head = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))  # (N, 512w, 4, 4)
        return self.fc(self.head(x))


@register("preact_resnet18", "PreActResNet-18", PREACT, depth=18, reference_acc=95.11,
          notes="Includes the final BN-ReLU of the paper (kuangliu/pytorch-cifar omits it: 1,024 fewer "
                "parameters).")
def preact_resnet18(num_classes: int = 10, width: float = 1.0) -> nn.Module:
    """PreActResNet-18: 2 pre-activation blocks per stage (about 11.2 M parameters)."""
    return PreActResNet([2, 2, 2, 2], num_classes, width)
