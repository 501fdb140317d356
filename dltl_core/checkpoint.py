"""Trained models students can keep: one file with weights, config, classes, versions, metrics.

Public API::

    make_checkpoint(model, *, architecture, classes, inputs, config, metrics, task) -> dict
    from_transfer(result, config, backbone) -> dict  # a transfer run's whole network
    to_bytes(checkpoint: dict) -> bytes        # e.g. st.download_button("Download this model", ...)
    save(checkpoint: dict, path) -> Path       # atomic (temp file + rename)
    load(source: str | Path | bytes) -> dict   # torch.load(weights_only=True); ValueError if not DLTL
    build_model(checkpoint: dict) -> nn.Module # the architecture rebuilt, weights loaded, eval mode

The file is a plain ``torch.save`` of a dict holding only tensors, strings, numbers,
lists and dicts, so ``torch.load(PATH, weights_only=True)`` opens it anywhere without
running code from the file. Keys:

* ``format`` = ``"dltl-model"``, ``format_version`` = 1
* ``task``: ``"train"`` (an MLP/CNN of ``dltl_core.models``) or ``"transfer"`` (a timm network)
* ``architecture``: ``{"name": ..., "kwargs": {...}}`` to rebuild the network
* ``state_dict``: CPU tensors; ``classes``: class names in output order
* ``inputs``: how to turn a file into the network's input (kind, size, scaling)
* ``config``, ``metrics``: the training configuration and results (JSON-like)
* ``versions``: dltl, torch, torchvision, timm, python; ``created``: UTC time
"""

from __future__ import annotations

import io
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from dltl_core.cache import atomic_write, json_safe

FORMAT = "dltl-model"
FORMAT_VERSION = 1
TASKS = ("train", "transfer")
_REQUIRED = ("format", "format_version", "task", "architecture", "state_dict", "classes", "inputs")


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries a checkpoint depends on (None when not installed)."""
    from dltl_core import __version__

    out: dict[str, str | None] = {"dltl": __version__, "python": platform.python_version()}
    for dist in ("torch", "torchvision", "timm"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def make_checkpoint(model: nn.Module, *, architecture: dict[str, Any], classes: Sequence[str],
                    inputs: dict[str, Any], config: dict[str, Any], metrics: dict[str, Any],
                    task: str = "train") -> dict[str, Any]:
    """Everything needed to rebuild ``model`` and use it, as a ``weights_only``-safe dict.

    Args:
        model: the trained network (left where it is; the weights are copied to the CPU).
        architecture: ``{"name": registered model or timm name, "kwargs": constructor args}``.
        classes: class names in the order of the network's outputs.
        inputs: how a file becomes an input, e.g. ``{"kind": "image", "size": [32, 32],
            "crop": False, "scale": "div255"}``.
        config: the training configuration; ``metrics``: the results worth keeping.
        task: ``"train"`` or ``"transfer"``.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "task": task,
            "architecture": json_safe(dict(architecture)), "state_dict": state, "classes": list(classes),
            "inputs": json_safe(dict(inputs)), "config": json_safe(dict(config)),
            "metrics": json_safe(dict(metrics)), "versions": library_versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def to_bytes(checkpoint: dict[str, Any]) -> bytes:
    """The checkpoint file's bytes (what ``save`` writes), for a download button."""
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    return buf.getvalue()


def save(checkpoint: dict[str, Any], path: str | Path) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (a reader never sees half a file)."""
    data = to_bytes(checkpoint)
    return atomic_write(Path(path).expanduser(), lambda tmp: tmp.write_bytes(data))


def load(source: str | Path | bytes) -> dict[str, Any]:
    """Read a DLTL model file (path or bytes) without running any code from it.

    Raises:
        ValueError: missing file, not a torch file, a torch file that needs code to load
            (``weights_only`` refuses it), or a torch file that is not a DLTL model.
    """
    name = "the uploaded file" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"no model file at {name}")
        fh: Any = path
    else:
        fh = io.BytesIO(source)
    try:
        ck = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - pickle/zip/unpickler errors of every kind: one message
        # Not a torch file, a damaged one, or one that would run code to load (weights_only refuses it).
        raise ValueError(f"{name} is not a DLTL model file (expected a file written by --save)") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT or any(k not in ck for k in _REQUIRED):
        raise ValueError(f"{name} is not a DLTL model file (saved with --save or 'Download this model')")
    if ck["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{name} was written by a newer DLTL (format {ck['format_version']}); update DLTL")
    if ck["task"] not in TASKS:
        raise ValueError(f"{name}: unknown model kind {ck['task']!r}")
    return ck


def build_model(checkpoint: dict[str, Any]) -> nn.Module:
    """The network of ``checkpoint`` with its weights, in eval mode on the CPU.

    Raises:
        ValueError: the architecture is unknown here or the weights do not fit it.
    """
    arch = checkpoint["architecture"]
    kwargs = dict(arch.get("kwargs", {}))
    try:
        if checkpoint["task"] == "train" and arch.get("family") == "arch":
            from dltl_core.archs import create_arch  # a CIFAR architecture of search --fixed

            model = create_arch(arch["name"], **kwargs)
        elif checkpoint["task"] == "train":
            from dltl_core.models import create_model

            for key, value in kwargs.items():  # JSON-like lists back to the tuples the models take
                if isinstance(value, list):
                    kwargs[key] = tuple(value)
            model = create_model(arch["name"], **kwargs)
        else:
            import timm

            model = timm.create_model(arch["name"], pretrained=False, **kwargs)
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except (RuntimeError, TypeError, KeyError, ValueError) as err:
        raise ValueError(f"the saved weights do not fit the architecture {arch.get('name')!r}: "
                         f"{str(err).splitlines()[0][:200]}") from None
    return model.eval()


def from_transfer(result: Any, config: Any, backbone: Any) -> dict[str, Any]:
    """The checkpoint of a ``dltl_core.transfer.run_transfer`` result: the whole network as one
    timm model (linear mode: the backbone with the trained head as its classifier).

    Args:
        result: the ``TransferResult``; config: its ``TransferConfig``;
        backbone: the ``Backbone`` the run used (read only: the network is a copy).
    """
    import copy

    from dltl_core.photos import train_image_size

    if result.model is not None:
        net = getattr(result.model, "net", result.model)  # finetune wraps the timm model (PartlyFrozen)
    else:
        net = copy.deepcopy(backbone.model).cpu()
        weight, bias = (torch.as_tensor(result.head[k]) for k in ("weight", "bias"))
        net.reset_classifier(weight.shape[0])
        with torch.no_grad():  # pooled pre-logits features -> the trained linear head, as in training
            net.get_classifier().weight.copy_(weight)
            net.get_classifier().bias.copy_(bias)
    _, crop = train_image_size(result.data_config, result.image_size)
    inputs = {"kind": "photo", "data_config": dict(result.data_config), "image_size": result.image_size,
              "crop": crop}
    metrics = {k: getattr(result, k) for k in ("val_accuracy", "test_accuracy", "n_train", "n_val", "seconds")}
    settings = {k: v for k, v in vars(config).items() if k != "feature_map"}
    return make_checkpoint(net, architecture={"name": result.backbone,
                                              "kwargs": {"num_classes": len(result.species)}},
                           classes=result.species, inputs=inputs, config=settings, metrics=metrics,
                           task="transfer")


def describe(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A short JSON-safe summary (no tensors) of a loaded checkpoint."""
    return {"task": checkpoint["task"], "architecture": checkpoint["architecture"],
            "classes": checkpoint["classes"], "inputs": checkpoint["inputs"],
            "metrics": checkpoint.get("metrics", {}), "versions": checkpoint.get("versions", {}),
            "created": checkpoint.get("created")}
