"""Profile an architecture: parameters, FLOPs, a layer table, measured throughput.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one
32x32 image in eval mode: it counts the matrix multiplications and
convolutions (2 FLOPs per multiply-add), i.e. the work that dominates the time;
batch norm, ReLU and pooling are not counted. Throughput is *measured*: the
training figure is the steady-state epoch speed of the core's own ``fit`` (the
same loop the search trains with), the inference figure that of ``predict``,
both under the device policy (AMP and channels_last on CUDA).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dltl_core import cache
from dltl_core.archs import ARCHS, create_arch
from dltl_core.archs._registry import check_width
from dltl_core.device import DevicePolicy, get_policy
from dltl_core.models import count_parameters as count_params  # one parameter count for the core

INPUT_SHAPE = (3, 32, 32)
_FOLD = (nn.BatchNorm2d, nn.ReLU, nn.Flatten, nn.Dropout)  # folded into the row before them


@dataclass(frozen=True)
class ArchProfile:
    """What ``profile_arch`` measures (the ``arch`` command's JSON).

    Attributes:
        name: registry name.
        width: width multiplier.
        params: number of parameters.
        flops: forward FLOPs per 32x32 image.
        train_images_per_second: steady-state training speed of ``fit`` (None if not measured).
        infer_images_per_second: speed of ``predict`` (None if not measured).
        device: the device policy's name.
        batch_size: batch size of the throughput measurement.
    """

    name: str
    width: float
    params: int
    flops: int
    train_images_per_second: float | None
    infer_images_per_second: float | None
    device: str
    batch_size: int

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def _counted_forward(model: nn.Module, input_shape: tuple[int, ...]) -> FlopCounterMode:
    """One eval-mode forward of a zero image under ``FlopCounterMode``; the counter after it."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=_device_of(model)))
    finally:
        model.train(was_training)
    return counter


def count_flops(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> int:
    """Forward FLOPs for one input of ``input_shape`` (2 per multiply-add), in eval mode."""
    return int(_counted_forward(model, input_shape).get_total_flops())


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.zeros(())).device


def meta_arch(name: str, width: float = 1.0, num_classes: int = 10) -> nn.Module:
    """An architecture on PyTorch's ``meta`` device: shapes only, no memory, no initialisation.

    Enough to count parameters and FLOPs (FlopCounterMode only needs shapes) in
    milliseconds, e.g. for a comparison table of every network at width 1.
    """
    with torch.device("meta"):
        return create_arch(name, num_classes=num_classes, width=width)


def _describe_module(mod: nn.Module) -> str:
    if isinstance(mod, nn.Conv2d):
        k = "x".join(map(str, mod.kernel_size))
        s = f", stride {mod.stride[0]}" if mod.stride[0] != 1 else ""
        return f"Conv {k}, {mod.in_channels}->{mod.out_channels}{s}"
    if isinstance(mod, nn.Linear):
        return f"Linear {mod.in_features}->{mod.out_features}"
    if isinstance(mod, nn.MaxPool2d):
        return "Max-pool 2x2"
    if isinstance(mod, nn.AdaptiveAvgPool2d):
        return "Global average pool"
    if isinstance(mod, nn.BatchNorm2d):
        return "BN"
    kind = type(mod).__name__.lstrip("_")
    if isinstance(mod, nn.Sequential) and len(mod) and all(type(c) is type(mod[0]) for c in mod):
        kind = f"{len(mod)} x {type(mod[0]).__name__}"
    if isinstance(mod, nn.ModuleDict):  # torchvision's _DenseBlock
        kind = f"Dense block: {len(mod)} dense layers"
    return kind


def layer_table(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> list[dict]:
    """One row per block (stem, each residual/dense block, transitions, pools, classifier).

    Rows hold ``name``, ``layer`` (what it is), ``output`` (C x H x W), ``params`` and
    ``flops`` (forward, one image). BN, ReLU and Flatten are folded into the row before
    them, so a VGG stage reads "Conv 3x3 + BN + ReLU".
    """
    rows: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):  # a stage: one row per block inside it
            rows.extend((f"{name}.{sub}", mod) for sub, mod in child.named_children())
        else:
            rows.append((name, child))
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [mod.register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
             for n, mod in rows]
    try:
        counter = _counted_forward(model, input_shape)
    finally:
        for h in hooks:
            h.remove()
    counts = counter.get_flop_counts()
    prefix = type(model).__name__
    table: list[dict] = []
    for name, mod in rows:
        params = count_params(mod)
        flops = int(sum(counts.get(f"{prefix}.{name}", {}).values()))
        parent = name.rsplit(".", 1)[0]
        if isinstance(mod, _FOLD) and table and table[-1]["name"].rsplit(".", 1)[0] == parent:
            extra = {nn.BatchNorm2d: "BN", nn.ReLU: "ReLU"}.get(type(mod))
            if extra:
                table[-1]["layer"] += f" + {extra}"
            table[-1]["params"] += params
            table[-1]["output"] = "x".join(map(str, shapes.get(name, ()))) or table[-1]["output"]
            continue
        table.append({"name": name, "layer": _describe_module(mod),
                      "output": "x".join(map(str, shapes.get(name, ()))), "params": params, "flops": flops})
    return table


def describe(name: str) -> dict:
    """The description panel of an architecture (family text, depth, reference accuracy, notes)."""
    if name not in ARCHS:
        raise ValueError(f"unknown architecture {name!r}; choose from {', '.join(ARCHS)}")
    info = ARCHS[name]
    fam = info.family
    return {"name": info.name, "label": info.label, "family": fam.name, "depth": info.depth,
            "block": fam.block, "connections": fam.connections, "preactivation": fam.preactivation,
            "problem": fam.problem, "paper": fam.paper, "reference_acc": info.reference_acc,
            "notes": info.notes}


def measure_throughput(model: nn.Module, *, batch_size: int = 32, batches: int = 3,
                       policy: DevicePolicy | None = None) -> tuple[float, float]:
    """Training and inference images/s of ``model`` on random 32x32 images.

    Training: two epochs of ``batches`` batches through ``dltl_core.train.fit``; the
    second epoch's speed is reported (the first pays for warm-up: allocator, cuDNN
    autotuning). Inference: ``predict`` on the same images, timed after one warm-up call.
    The model's weights are changed by the training measurement.
    """
    from dltl_core.data.cifar import normalize_batch  # the same on-device transform as training
    from dltl_core.train import TrainConfig, fit, predict

    policy = policy or get_policy()
    n = batch_size * batches
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, *INPUT_SHAPE), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    cfg = TrainConfig(epochs=2, batch_size=batch_size, optimizer="momentum", lr=0.01)
    result = fit(model, (x, y), None, cfg, policy=policy, batch_transform=normalize_batch)
    train_ips = float(result.history[-1].samples_per_second)
    predict(result.model, x[:batch_size], batch_size, policy, normalize_batch)  # warm-up
    if policy.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    predict(result.model, x, batch_size, policy, normalize_batch)
    if policy.device.type == "cuda":
        torch.cuda.synchronize()
    infer_ips = n / max(time.perf_counter() - start, 1e-9)
    return train_ips, infer_ips


def profile_arch(name: str, width: float = 1.0, *, measure: bool = True, batch_size: int = 32,
                 batches: int = 3, use_cache: bool = True, cached_only: bool = False) -> ArchProfile:
    """Parameters, FLOPs and (when ``measure``) throughput of one architecture.

    Measured throughputs are cached on disk, keyed by architecture, width, batch,
    device and torch version, so a page or a table asks the machine only once.
    With ``cached_only`` nothing is measured: throughputs come from the cache or stay None.
    """
    width = check_width(width)
    params_flops = meta_arch(name, width)
    params, flops = count_params(params_flops), count_flops(params_flops)
    policy = get_policy()
    train_ips = infer_ips = None
    if measure:
        key = cache.config_key("arch-throughput", 1, name, width, batch_size, batches, policy.name,
                               torch.__version__)
        path = cache.cache_dir() / "throughput" / f"{key}.pt"
        hit = cache.load_tensors(path) if use_cache else None
        if hit is not None:
            train_ips, infer_ips = float(hit["train"]), float(hit["infer"])
        elif not cached_only:
            model = create_arch(name, width=width, seed=0)
            train_ips, infer_ips = measure_throughput(model, batch_size=batch_size, batches=batches,
                                                      policy=policy)
            if use_cache:
                cache.save_tensors(path, {"train": train_ips, "infer": infer_ips})
    return ArchProfile(name, width, params, flops, train_ips, infer_ips, policy.name, batch_size)


def compare_archs(width: float = 1.0) -> list[dict]:
    """Parameters, FLOPs, depth and reference accuracy of every architecture at ``width``."""
    rows = []
    for name, info in ARCHS.items():
        model = meta_arch(name, width)
        rows.append({"name": name, "label": info.label, "family": info.family.name, "depth": info.depth,
                     "params": count_params(model), "flops": count_flops(model),
                     "reference_acc": info.reference_acc})
    return rows
