"""/arch as plain PyTorch: the architecture at the page's width, its parameters and FLOPs.

The script defines the network exactly as ``dltl_core/archs/`` does (same classes, same
torchvision blocks), counts its parameters, counts its forward FLOPs with
``torch.utils.flop_counter.FlopCounterMode`` on one 32x32 image as ``dltl_core.profile``
does, and times a few training and inference batches (machine-dependent figures).
"""

from __future__ import annotations

from typing import Mapping

from dltl_core.archs import ARCHS
from dltl_core.codegen import _cifar
from dltl_core.codegen._views import arch_view
from dltl_core.codegen.script import Script, code, md
from dltl_core.query import encode_query, read_query

_SPEED = '''\
# Speed (this machine only): a few training steps and inference batches of random images.
device = os.environ.get("DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
model = model.to(device)
x = torch.randn(16, 3, 32, 32, device=device)
y = torch.randint(0, 10, (16,), device=device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def sync() -> None:
    if device == "cuda":
        torch.cuda.synchronize()


for step in range(3):  # the first step pays for warm-up; time the last two
    if step == 1:
        sync()
        start = time.perf_counter()
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
sync()
print(f"training images per second ({device}): {2 * 16 / (time.perf_counter() - start):.1f}")
model.eval()
with torch.no_grad():
    model(x)
    sync()
    start = time.perf_counter()
    model(x)
    sync()
print(f"inference images per second ({device}): {16 / (time.perf_counter() - start):.1f}")'''


def build(params: Mapping[str, str]) -> Script:
    """The /arch page's script for the link ``params``."""
    view = arch_view()
    values, problems = read_query(view, params)
    name, width = values["arch"], float(values["width"])
    info = ARCHS[name]
    fam = info.family
    cells = (
        md(f"""
        ## {info.label} at width {width:g}

        **Block.** {fam.block}

        **Connections.** {fam.connections}

        The width multiplier $w$ scales every layer's channel count, so parameters and FLOPs
        grow roughly as $w^2$. *{fam.paper}*
        """),
        code(_cifar.arch_imports(name)),
        md("### The network\nThe same definition as the page's (torchvision's blocks, a 3x3 stem for 32x32 images)."),
        code(_cifar.arch_definition(name)),
        code(_cifar.arch_build(name, width)),
        md("### Parameters and FLOPs\n"
           "A 3x3 convolution from $C_{in}$ to $C_{out}$ channels on an $H\\times W$ map has "
           "$9\\,C_{in}C_{out}$ weights and costs $2\\cdot 9\\,C_{in}C_{out}HW$ FLOPs."),
        code(_cifar.size_and_work()),
        md("### Throughput\nMeasured on your machine, so it differs from the page's figure."),
        code(_SPEED),
    )
    query = _cifar.query_string(encode_query(view, {"arch": name, "width": width}))
    return Script("arch", f"{info.label} at width {width:g}: size and work", query, cells, tuple(problems))
