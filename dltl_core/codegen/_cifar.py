"""Code text shared by the CIFAR exporters (/arch, /results): the network, its size, its work.

The network's definition is the core's own (``dltl_core/archs/``), copied into the script
with ``inspect.getsource``: what the student reads is what the page measured, and a change
of an architecture reaches its exported code. Only torch and torchvision are imported.
"""

from __future__ import annotations

import functools
import inspect
from urllib.parse import urlencode

from dltl_core.archs import ARCHS
from dltl_core.archs import densenet, preact_resnet, resnet, vgg
from dltl_core.archs._registry import scaled

# Registry name -> (module, class, constructor arguments as code; `width` is a variable of the
# script). Every registered architecture must be here: tests/test_codegen_arch.py checks it.
BUILDERS: dict[str, tuple[object, str, str]] = {
    "resnet18": (resnet, "CifarResNet", "[2, 2, 2, 2], num_classes=10, width=width"),
    "resnet34": (resnet, "CifarResNet", "[3, 4, 6, 3], num_classes=10, width=width"),
    "preact_resnet18": (preact_resnet, "PreActResNet", "[2, 2, 2, 2], num_classes=10, width=width"),
    "densenet121": (densenet, "CifarDenseNet", "(6, 12, 24, 16), max(2, int(round(32 * width))), num_classes=10"),
    "densenet_cifar": (densenet, "CifarDenseNet", "(6, 12, 24, 16), max(2, int(round(12 * width))), num_classes=10"),
    "vgg11_bn": (vgg, "CifarVGG", "CFG['vgg11'], num_classes=10, width=width"),
    "vgg16_bn": (vgg, "CifarVGG", "CFG['vgg16'], num_classes=10, width=width"),
}

# What each family's definition needs from torch/torchvision (the script's imports).
_IMPORTS = {
    resnet: "from torchvision.models.resnet import BasicBlock  # the same basic block as torchvision's ResNet",
    preact_resnet: "",
    densenet: "from collections import OrderedDict\n"
              "from torchvision.models.densenet import _DenseBlock, _Transition  # torchvision's dense blocks",
    vgg: "from torchvision.models.vgg import make_layers  # torchvision's VGG stages (conv-BN-ReLU, max-pool)",
}


def query_string(params: dict[str, str]) -> str:
    """A canonical query string from encoded parameters."""
    return urlencode(params, safe=",")


@functools.lru_cache(maxsize=None)
def _source(obj: object) -> str:
    return inspect.getsource(obj)  # type: ignore[arg-type]


def arch_imports(name: str) -> str:
    """The import lines the architecture's definition needs."""
    module = BUILDERS[name][0]
    base = "import time\n\nimport torch\nfrom torch import Tensor, nn\nfrom torch.utils.flop_counter import FlopCounterMode"
    extra = _IMPORTS[module]
    return base + ("\n" + extra if extra else "")


def arch_definition(name: str) -> str:
    """The architecture's classes (and the width rounding), as the core defines them."""
    module, cls, _ = BUILDERS[name]
    parts = [_source(scaled)]
    if module is vgg:
        parts.append("CFG = " + repr(vgg.CFG))
    if module is preact_resnet:
        parts.append(_source(preact_resnet.PreActBlock))
    parts.append(_source(getattr(module, cls)))
    return "\n\n".join(p.strip("\n") for p in parts)


def arch_build(name: str, width: float, *, seed: int = 0) -> str:
    """Code making ``model``: the architecture at ``width`` with seeded initial weights."""
    _, cls, args = BUILDERS[name]
    return (f"width = {width!r}  # the width multiplier: every layer's channels x {width:g}\n"
            f"torch.manual_seed({seed})  # the initial weights depend only on the seed\n"
            f"model = {cls}({args})  # {ARCHS[name].label}")


def size_and_work() -> str:
    """Code printing ``model``'s parameter count and forward FLOPs for one 32x32 image."""
    return '''\
# Size: every weight and bias is a parameter.
params = sum(p.numel() for p in model.parameters())
# Work: FlopCounterMode counts the convolutions and matrix products of one forward pass of
# one 32x32 image in eval mode (2 FLOPs per multiply-add; BN, ReLU and pooling not counted).
model.eval()
with torch.no_grad(), FlopCounterMode(display=False) as counter:
    model(torch.zeros(1, 3, 32, 32))
flops = counter.get_total_flops()
model.train()
print(f"parameters: {params}")
print(f"FLOPs per image: {flops}")'''


__all__ = ["BUILDERS", "arch_build", "arch_definition", "arch_imports", "query_string", "size_and_work"]
