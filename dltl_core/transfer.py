"""Transfer learning on bird species: a frozen backbone's features vs fine-tuning vs from scratch.

Three modes, one data split, one report:

- ``linear``: the pretrained backbone stays frozen; its pooled features are
  extracted once (disk cache) and only a linear head is trained, in about a second.
- ``finetune``: a *copy* of the pretrained network gets a new head and trains
  its last stages (or, slowly, all of them), the backbone with a smaller learning
  rate than the head. When only the last stages train (``unfreeze_blocks``), the
  frozen early stages run once per photo and their activations are cached on
  disk like the features; the epochs then run only the last stages, and the new
  head starts from the linear probe (LP-FT, Kumar et al., ICLR 2022), so a few
  epochs suffice. The shared backbone is never trained, moved or switched to
  train mode.
- ``scratch``: the same architecture from random weights.

Every run reports learning curves with wall-clock time, validation accuracy, a
confusion matrix, per-species accuracy, the mistakes, and a 2-D map of the
features (before and, for the modes that change it, after training).
"""

from __future__ import annotations

import contextvars
import copy
import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import timm
import torch
from PIL import Image
from torch import Tensor, nn

from dltl_core.backbones import BACKBONES, DEFAULT_BACKBONE, Backbone, create_backbone, imagenet_labels, imagenet_topk
from dltl_core.birds import BirdSet, load_birds, pretty_name, split_indices
from dltl_core.device import DevicePolicy, get_policy, seed_everything
from dltl_core.features import (FeatureSet, embed_images, extract_activations, extract_features, pooled_features,
                                store_features, uncached_photos)
from dltl_core.photos import load_image_tensors, make_batch_transform, train_image_size
from dltl_core.images import open_rgb
from dltl_core.separation import separation as separation_score
from dltl_core.settings import Setting, check, seed_field, setting
from dltl_core.train import Callback, EpochRecord, StopFlag, TrainConfig, fit, predict
from dltl_core.train.config import MAX_EPOCHS

MODES = ("linear", "finetune", "scratch")
FEATURE_MAPS = ("pca", "tsne", "none")
FEATURE_MAP_LABELS = {"pca": "PCA", "tsne": "t-SNE", "none": "none"}
IMAGE_SIZES = (96, 128, 160, 192, 224)  # the page's image-size choices (the core takes 32 to 512)
# The page's default photos (the first 10 species of the default folder, 40 photos each): one
# set shared by every visitor, extracted once per server and then read from the disk cache.
DEFAULT_SPECIES, DEFAULT_CAP = 10, 40
# The page picks species by count: the first k of the folder, alphabetically (at most 50 on a page).
SPECIES_COUNT = Setting("Number of species (first k, alphabetically)", lo=2, hi=50, url="k",
                        noun="number of species")


@dataclass(frozen=True)
class FinetuneDefaults:
    """The one fine-tuning default of the page, the command line and the README.

    The last ``unfreeze_blocks`` stages train on the cached activations of the frozen early
    stages (LP-FT: the new head starts from the linear probe). Chosen from the measurement
    shipped in ``assets/transfer_regimes.json`` (``scripts/transfer_regimes.py``), where it
    is compared with the frozen backbone over seeds and photos per species.

    ``bn_frozen``: the trained stages' BatchNorm keeps its pretrained running statistics.
    Measured on 10 species x 8 training photos (two seeds), updating them from batches of a
    few species cost 2.5 points of validation accuracy on both seeds.
    """

    unfreeze_blocks: int = 2
    epochs: int = 3
    lr: float = 3e-4
    backbone_lr_factor: float = 0.3
    batch_size: int = 32
    label_smoothing: float = 0.0
    bn_frozen: bool = True


FINETUNE = FinetuneDefaults()
# The page's default fine-tuning: the last stage and the final conv train on cached activations.
DEFAULT_UNFREEZE = FINETUNE.unfreeze_blocks
MODE_TITLES = {"linear": "Transfer (frozen backbone, linear head)",
               "finetune": "Fine-tuning (last stages, or end to end)", "scratch": "From scratch (random init)"}

# Per-mode defaults: the linear head trains on cached features (cheap, many epochs);
# the image modes pay a full forward/backward per photo per epoch (few epochs on a CPU).
_DEFAULTS = {
    "linear": {"epochs": 30, "lr": 3e-3, "batch_size": 32},
    "finetune": {"epochs": 4, "lr": 1e-3, "batch_size": 16},
    "finetune_cached": {"epochs": FINETUNE.epochs, "lr": FINETUNE.lr, "batch_size": FINETUNE.batch_size,
                        "label_smoothing": FINETUNE.label_smoothing},
    "scratch": {"epochs": 4, "lr": 1e-3, "batch_size": 16},
}
ProgressFn = Callable[[float, str], None]  # (fraction done in [0, 1], message)


@dataclass(frozen=True)
class TransferConfig:
    """One transfer-learning run; hashable, so pages cache results by it.

    Attributes:
        data: folder with one sub-folder per species.
        species: a count k (first k species alphabetically) or comma-separated names.
        max_per_species: cap on photos per species (None = all).
        val_fraction: share of each species held out for validation.
        seed: split, initialisation and batch order.
        backbone: a key of ``dltl_core.backbones.BACKBONES``.
        mode: ``linear``, ``finetune`` or ``scratch``.
        epochs, lr, batch_size: None = the mode's default.
        backbone_lr_factor: fine-tuning: the backbone's lr is ``lr * factor`` (None = 0.3 on
            cached activations, else 0.1).
        unfreeze_blocks: fine-tuning: train only the last N stages (None = all, end to end
            on the photos: minutes on a CPU).
        cached: fine-tuning the last stages: train them on the cached activations of the
            frozen stages (the fast way; False pushes every photo through the whole network
            every epoch, e.g. to compare). The activations are computed once from the centre
            crop, so this way trains without augmentation.
        augment: random crop + flip for the modes that see images.
        image_size: crop size for the image modes (None = the backbone's input size).
        weight_decay: L2 penalty of the optimizer.
        feature_map: ``"pca"`` or ``"tsne"``.
        label_smoothing: cross-entropy label smoothing (None = the mode's default).
        bn_frozen: fine-tuning the last stages (cached or not): BatchNorm keeps its pretrained running
            statistics (None = the default, ``FINETUNE.bn_frozen``).
    """

    data: str
    species: str = setting(str(DEFAULT_SPECIES), label="species", help="A count k (the first k species alphabetically) or "
                                                          "comma-separated names.")
    max_per_species: int | None = setting(
        None, label="Photos per species (at most)", lo=2, hi=100_000, ui_lo=5, ui_hi=200, step=5, optional=True,
        kind=int, url="cap", noun="photos per species", help="Fewer photos: faster, and a harder problem.")
    val_fraction: float = setting(0.2, label="validation share", lo=0.0, hi=1.0, positive=True, below=True,
                                  help="Share of each species held out for validation.")
    seed: int = seed_field(label="Seed (split and initialisation)")
    backbone: str = setting(DEFAULT_BACKBONE, label="Pretrained backbone", choices=lambda: list(BACKBONES),
                            url="bb")
    mode: str = setting("linear", label="mode", choices=MODES)
    epochs: int | None = setting(None, label="Epochs", lo=1, hi=MAX_EPOCHS, ui_hi=20, optional=True, kind=int,
                                 noun="number of epochs", help="Passes over the training photos.")
    lr: float | None = setting(None, label="Learning rate (head)", lo=0.0, hi=1e6, positive=True, optional=True,
                               kind=float, ticks=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), noun="learning rate",
                               help="The new head's learning rate.")
    batch_size: int | None = setting(None, label="batch size", lo=1, hi=1024, optional=True, kind=int,
                                     help="Photos per step (1,024 photos at 224 pixels are 600 MB of input).")
    backbone_lr_factor: float | None = setting(
        None, label="Backbone lr factor (fine-tuning)", lo=0.0, hi=10.0, positive=True, optional=True, kind=float,
        ticks=(0.01, 0.03, 0.1, 0.3, 1.0), url="factor", noun="backbone learning-rate factor",
        help="Fine-tuning: the backbone's learning rate is the head's times this.")
    unfreeze_blocks: int | None = setting(
        None, label="Stages to fine-tune", lo=0, hi=50, ui_lo=1, ui_hi=4, optional=True, kind=int, url="unfreeze",
        noun="number of stages to fine-tune", ticks=(1, 2, 3, 4),
        help="Only the last stages change; earlier ones stay frozen.")
    cached: bool = setting(True, label="Last stages on cached activations",
                           help="Fine-tuning the last stages: train them on the frozen stages' cached activations.")
    augment: bool = setting(True, label="Augmentation (random crop, flip) on the photos",
                            help="From scratch and end-to-end fine-tuning: cached activations come from the "
                                 "centre crop of each photo, so training on them is not augmented.")
    image_size: int | None = setting(
        None, label="Image size (pixels)", lo=32, hi=512, optional=True, kind=int, ticks=IMAGE_SIZES, url="size",
        noun="image size", help="The backbone saw 224 px photos; smaller is faster on a CPU.")
    weight_decay: float = setting(1e-4, label="weight decay", lo=0.0, hi=1e6, help="L2 penalty of the optimizer.")
    feature_map: str = setting("pca", label="Feature map", choices=FEATURE_MAPS, labels=FEATURE_MAP_LABELS,
                               url="fmap", noun="feature map")
    label_smoothing: float | None = setting(None, label="label smoothing", lo=0.0, hi=1.0, below=True,
                                            optional=True, kind=float)
    bn_frozen: bool | None = setting(None, label="BatchNorm statistics frozen", optional=True, kind=bool,
                                     noun="BatchNorm choice")

    def __post_init__(self) -> None:
        check(self)  # every setting is declared above: its bounds and choices are the rules

    @property
    def lr_factor(self) -> float:
        """The backbone's share of the head's learning rate (the mode's default if unset)."""
        if self.backbone_lr_factor is not None:
            return self.backbone_lr_factor
        return FINETUNE.backbone_lr_factor if self.uses_cached_activations else 0.1

    @property
    def bn_stats_frozen(self) -> bool:
        """Fine-tuning the last stages: their BatchNorm keeps its pretrained statistics (cached
        or not, so both ways train the same network); end to end it updates them."""
        if self.mode != "finetune" or self.unfreeze_blocks is None:
            return False
        return self.bn_frozen if self.bn_frozen is not None else FINETUNE.bn_frozen

    @property
    def uses_cached_activations(self) -> bool:
        """Fine-tuning only the last stages on cached activations (see ``cached``)."""
        return self.mode == "finetune" and self.cached and self.unfreeze_blocks is not None

    def train_config(self, n_train: int) -> TrainConfig:
        """The training core's config for this mode (defaults filled in, batch clamped to the data)."""
        d = _DEFAULTS["finetune_cached" if self.uses_cached_activations else self.mode]
        return TrainConfig(epochs=self.epochs or d["epochs"], lr=self.lr or d["lr"],
                           batch_size=max(1, min(self.batch_size or d["batch_size"], n_train)),
                           optimizer="adam", weight_decay=self.weight_decay, seed=self.seed,
                           label_smoothing=(self.label_smoothing if self.label_smoothing is not None
                                            else d.get("label_smoothing", 0.0)))


def finetune_default_config(data: str, **changes: Any) -> TransferConfig:
    """The default fine-tuning run (``FINETUNE``) on ``data``, with ``changes`` to its fields."""
    base = {"mode": "finetune", "unfreeze_blocks": FINETUNE.unfreeze_blocks, "epochs": FINETUNE.epochs,
            "lr": FINETUNE.lr, "backbone_lr_factor": FINETUNE.backbone_lr_factor}
    return TransferConfig(data=data, **{**base, **changes})


def finetune_settings(config: TransferConfig) -> dict[str, Any]:
    """What a fine-tuning run of ``config`` trains with (defaults filled in), for provenance."""
    cfg = config.train_config(10**6)
    return {"unfreeze_blocks": config.unfreeze_blocks, "cached_activations": config.uses_cached_activations,
            "epochs": cfg.epochs, "lr": cfg.lr, "backbone_lr_factor": config.lr_factor,
            "batch_size": cfg.batch_size, "label_smoothing": cfg.label_smoothing,
            "weight_decay": cfg.weight_decay, "optimizer": cfg.optimizer,
            "bn_frozen": config.bn_stats_frozen}


@dataclass
class TransferResult:
    """What a run produced (plain data, picklable for ``st.cache_data``).

    ``history`` rows hold the training core's epoch records plus ``elapsed``
    (seconds since the run started, feature extraction included) and ``mode``.
    """

    mode: str
    backbone: str
    species: list[str]
    history: list[dict[str, Any]]
    val_accuracy: float
    test_accuracy: float | None
    seconds: float
    images_per_second: float
    skipped: list[tuple[str, str]]
    confusion: list[list[int]]
    per_species: list[dict[str, Any]]
    mistakes: list[dict[str, Any]]
    feature_map: list[dict[str, Any]]
    n_train: int
    n_val: int
    feature_seconds: float
    train_seconds: float
    features_cached: bool
    extraction_cost_seconds: float = 0.0
    interrupted: bool = False
    head: dict[str, np.ndarray] | None = None     # linear mode: weight (k, D), bias (k,)
    model: nn.Module | None = field(default=None, repr=False)  # image modes: the trained copy
    data_config: dict[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    frozen_stages: list[str] = field(default_factory=list)   # fine-tuning: what stayed frozen
    trained_stages: list[str] = field(default_factory=list)  # ... and what trained
    cached_activations: bool = False
    probe_accuracy: float | None = None  # cached fine-tuning: the linear probe its head started from
    # ``dltl_core.separation`` scores of the validation photos: "before" (pretrained), "after" (trained)
    separation: dict[str, dict | None] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The command line's JSON keys."""
        return {"mode": self.mode, "species": self.species, "val_accuracy": self.val_accuracy,
                "test_accuracy": self.test_accuracy, "seconds": self.seconds,
                "images_per_second": self.images_per_second, "skipped_files": len(self.skipped)}


# --------------------------------------------------------------------------- models

class PartlyFrozen(nn.Module):
    """A timm model whose first stages are frozen: no gradients, BatchNorm kept in eval mode.

    Without the eval override, ``model.train()`` would let the frozen BatchNorm
    layers keep updating their running statistics from small batches.
    """

    def __init__(self, model: nn.Module, frozen: Sequence[str], bn_frozen: bool = False) -> None:
        super().__init__()
        self.net = model
        self.frozen = list(frozen)
        self.bn_frozen = bn_frozen  # the trained stages' BatchNorm keeps its statistics too
        for name in self.frozen:
            self.net.get_submodule(name).requires_grad_(False)

    def train(self, mode: bool = True) -> "PartlyFrozen":
        super().train(mode)
        for name in self.frozen:
            self.net.get_submodule(name).eval()
        if self.bn_frozen:
            for m in self.net.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def finetune_model(backbone: Backbone, num_classes: int, unfreeze_blocks: int | None = None
                   ) -> tuple[PartlyFrozen, list[nn.Parameter], list[nn.Parameter]]:
    """A trainable copy of the backbone with a new ``num_classes`` head.

    Args:
        unfreeze_blocks: train only the last N of the network's stages (``feature_stages``:
            stem, stages..., final conv; timm's coarse layer groups for other architectures);
            the new head always trains. None trains everything.

    Returns:
        (model, backbone parameters to train, head parameters).
    """
    net = copy.deepcopy(backbone.model)  # the shared backbone stays untouched
    net.reset_classifier(num_classes)
    net.requires_grad_(True)
    head = list(net.get_classifier().parameters())
    frozen: list[str] = []
    if unfreeze_blocks is not None:
        frozen = _frozen_names(net, unfreeze_blocks)
    model = PartlyFrozen(net, frozen)
    head_ids = {id(p) for p in head}
    body_params = [p for p in net.parameters() if p.requires_grad and id(p) not in head_ids]
    return model, body_params, head


def feature_stages(net: nn.Module) -> list[nn.Module] | None:
    """The network's feature stages in forward order (stem, each stage of timm's coarse
    layer groups, final conv); ``net.forward_head`` follows them.

    Running them in turn equals ``net.forward_features``. Returns None for architectures
    whose forward is not such a chain (e.g. a ViT's tokens): they fine-tune on the photos.
    The returned containers only reference ``net``'s modules; nothing is copied or changed.
    """
    from timm.models.convnext import ConvNeXt
    from timm.models.efficientnet import EfficientNet
    from timm.models.resnet import ResNet

    if getattr(net, "grad_checkpointing", False):
        return None
    if isinstance(net, EfficientNet):
        return [nn.Sequential(net.conv_stem, net.bn1), *net.blocks, nn.Sequential(net.conv_head, net.bn2)]
    if isinstance(net, ResNet):
        return [nn.Sequential(net.conv1, net.bn1, net.act1, net.maxpool),
                net.layer1, net.layer2, net.layer3, net.layer4]
    if isinstance(net, ConvNeXt):
        return [net.stem, *net.stages, net.norm_pre]
    return None


def stage_names(net: nn.Module) -> list[str]:
    """Readable names of ``feature_stages(net)`` for the page (empty if unsupported)."""
    stages = feature_stages(net) or []
    return ["stem"] + [f"stage {i}" for i in range(1, len(stages) - 1)] + ["final conv"] if stages else []


class TailNet(nn.Module):
    """The trainable last stages and head of ``net``, fed the frozen stages' activations.

    It shares its parameters with ``net`` (a fine-tuning copy): after training on
    cached activations, ``net`` itself is the fine-tuned network for photos.
    """

    def __init__(self, net: nn.Module, cut: int, bn_frozen: bool = False) -> None:
        super().__init__()
        self.net = net
        self.cut = cut
        self.bn_frozen = bn_frozen
        self.stages = nn.ModuleList(feature_stages(net)[cut:])

    def train(self, mode: bool = True) -> "TailNet":
        """With ``bn_frozen``, BatchNorm keeps its pretrained statistics (its scale and shift
        still train): small batches of a few species would otherwise drag the running means
        away from what the probe-initialised head was fitted to."""
        super().train(mode)
        if self.bn_frozen:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def features(self, a: Tensor) -> Tensor:
        """Pooled features (B, D) from the activations ``a`` at the cut."""
        for stage in self.stages:
            a = stage(a)
        return self.net.forward_head(a, pre_logits=True)

    def forward(self, a: Tensor) -> Tensor:
        return self.net.get_classifier()(self.features(a))


def frozen_part(backbone: Backbone, cut: int) -> nn.Module:
    """The shared backbone's first ``cut`` stages as one module (references, not copies:
    run it only in inference mode; it is never trained, moved or put in train mode)."""
    return nn.Sequential(*feature_stages(backbone.model)[:cut])


def cut_index(backbone: Backbone, unfreeze_blocks: int) -> int | None:
    """Index of the first trainable stage, or None if the architecture is unsupported."""
    stages = feature_stages(backbone.model)
    if stages is None:
        return None
    return len(stages) - max(0, min(unfreeze_blocks, len(stages)))


def _frozen_names(net: nn.Module, unfreeze_blocks: int) -> list[str]:
    """Sub-module names of all but the last ``unfreeze_blocks`` stages: ``feature_stages`` where
    supported (so the cached activations are exactly the frozen part's output), else timm's
    coarse layer groups (stem, stages...)."""
    stages = feature_stages(net)
    if stages is not None:
        names = {id(m): n for n, m in net.named_modules()}
        cut = len(stages) - max(0, min(unfreeze_blocks, len(stages)))
        # A stage that is one of the net's modules is frozen by name; a wrapper (the stem's
        # Sequential) by its children's names.
        return [names[id(m)] for st in stages[:cut] for m in ([st] if id(st) in names else st.children())]
    groups = timm.models.group_modules(net, net.group_matcher(coarse=True))
    ordered = [groups[k] for k in sorted(groups)]
    cls = _classifier_name(net)
    body = [g for g in ordered if not all(n.split(".")[0] == cls for n in g)]  # stem, stages
    keep = max(0, min(unfreeze_blocks, len(body)))
    return [n for g in body[: len(body) - keep] for n in g]


def _classifier_name(net: nn.Module) -> str:
    return net.pretrained_cfg.get("classifier", "classifier").split(".")[0]


def scratch_model(backbone_name: str, num_classes: int, seed: int) -> nn.Module:
    """The same architecture, random initial weights (seeded)."""
    seed_everything(seed)
    return timm.create_model(backbone_name, pretrained=False, num_classes=num_classes)


def _linear_head(in_features: int, num_classes: int, seed: int) -> nn.Linear:
    seed_everything(seed)
    return nn.Linear(in_features, num_classes)


# --------------------------------------------------------------------------- reports

def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], k: int) -> list[list[int]]:
    """``m[i][j]`` = photos of species i predicted as species j."""
    m = np.zeros((k, k), dtype=int)
    for t, p in zip(y_true, y_pred):
        m[int(t), int(p)] += 1
    return m.tolist()


def per_species_accuracy(confusion: list[list[int]], species: Sequence[str]) -> list[dict[str, Any]]:
    """Accuracy and count of each species, from the confusion matrix."""
    out = []
    for i, row in enumerate(confusion):
        n = sum(row)
        out.append({"species": pretty_name(species[i]), "accuracy": row[i] / n if n else float("nan"), "n": n})
    return out


def feature_map(features: Tensor, labels: Sequence[int], species: Sequence[str], files: Sequence[str],
                method: str = "pca", stage: str = "before", seed: int = 0) -> list[dict[str, Any]]:
    """A 2-D map of feature vectors (PCA or t-SNE from scikit-learn), one row per photo."""
    if method == "none" or len(features) < 3:
        return []
    x = features.double().numpy()
    if method == "tsne":
        from sklearn.manifold import TSNE
        xy = TSNE(2, perplexity=min(30.0, max(2.0, (len(x) - 1) / 3)), init="pca",
                  random_state=seed).fit_transform(x)
    else:
        from sklearn.decomposition import PCA
        xy = PCA(2, random_state=seed).fit_transform(x)
    return [{"x": float(a), "y": float(b), "species": pretty_name(species[int(t)]), "file": str(f),
             "stage": stage} for (a, b), t, f in zip(xy, labels, files)]


def _mistakes(probs: Tensor, y: Tensor, files: Sequence[str], species: Sequence[str], limit: int = 24
              ) -> list[dict[str, Any]]:
    conf, pred = probs.max(1)
    wrong = (pred != y).nonzero().flatten().tolist()
    wrong.sort(key=lambda i: -float(conf[i]))  # the most confident mistakes first
    return [{"file": str(files[i]), "true": pretty_name(species[int(y[i])]),
             "predicted": pretty_name(species[int(pred[i])]), "confidence": float(conf[i])}
            for i in wrong[:limit]]


class _Curve(Callback):
    """Adds wall-clock time to each epoch record and forwards progress (with an ETA) to the page."""

    def __init__(self, t0: float, mode: str, epochs: int, progress: ProgressFn | None,
                 on_epoch: Callable[[dict], None] | None, base: float, span: float) -> None:
        self.t0, self.mode, self.epochs = t0, mode, epochs
        self.progress, self.on_epoch = progress, on_epoch
        self.base, self.span = base, span
        self.rows: list[dict[str, Any]] = []
        self._fit_t0 = self._last = 0.0

    def on_fit_start(self, trainer: Any) -> None:
        self._fit_t0 = self._last = time.perf_counter()

    def _report(self, done: float, msg: str) -> None:
        """``done``: epochs finished (fractional); the ETA extrapolates the time so far."""
        if not self.progress:
            return
        spent = time.perf_counter() - self._fit_t0
        eta = f" · about {math.ceil(spent / done * (self.epochs - done))} s left" if 0 < done < self.epochs else ""
        self.progress(self.base + self.span * done / self.epochs, msg + eta)

    def on_train_batch_end(self, trainer: Any, step: int, loss: Tensor) -> None:
        now = time.perf_counter()
        if now - self._last < 0.5:  # the bar needs no more than 2 updates/s
            return
        self._last = now
        steps = max(trainer.steps_per_epoch, 1)
        report = _REPORT.get()
        if report:
            report("training", step, steps * self.epochs)
        in_epoch = step - (trainer.epoch - 1) * steps
        self._report(trainer.epoch - 1 + in_epoch / steps,
                     f"{self.mode}: epoch {trainer.epoch}/{self.epochs}, step {in_epoch}/{steps}")

    def on_epoch_end(self, trainer: Any, record: EpochRecord) -> None:
        row = {**record.as_dict(), "elapsed": time.perf_counter() - self.t0, "mode": self.mode,
               "complete": not trainer.should_stop}
        self.rows.append(row)
        if self.on_epoch:
            self.on_epoch(row)
        report = _REPORT.get()
        if report:
            report("training", trainer.global_step, max(trainer.steps_per_epoch, 1) * self.epochs, row)
        self._report(record.epoch, f"{self.mode}: epoch {record.epoch}/{self.epochs} done, "
                     f"validation accuracy {record.val_acc:.0%}")


# --------------------------------------------------------------------------- runs

# The job runner's ``report(phase, done, total, payload)`` of the run in this thread (see
# ``transfer_job``): a context variable, so runs in other threads never see it.
_REPORT: contextvars.ContextVar[Callable[..., None] | None] = contextvars.ContextVar("dltl_report", default=None)


def _scaled(progress: ProgressFn | None, lo: float, hi: float) -> Callable[[int, int, str], None] | None:
    """A (done, total, message) callback of one phase: the page's bar from ``lo`` to ``hi``,
    and the job runner's report with the phase name (the message up to its colon)."""
    report = _REPORT.get()
    if progress is None and report is None:
        return None

    def step(done: int, total: int, msg: str) -> None:
        if progress:
            progress(lo + (hi - lo) * done / max(total, 1), msg)
        if report:
            report(msg.split(":")[0], done, total)

    return step


def load_split(config: TransferConfig) -> tuple[BirdSet, list[int], list[int]]:
    """The chosen photos and the seeded, stratified (train positions, val positions)."""
    birds = load_birds(config.data, config.species, config.max_per_species)
    tr, va = split_indices(birds.labels, config.val_fraction, config.seed)
    return birds, tr, va


def ensure_features(config: TransferConfig, backbone: Backbone, *, policy: DevicePolicy | None = None,
                    progress: Callable[[int, int, str], None] | None = None) -> FeatureSet:
    """Extract (or read from the disk cache) the features a linear run of ``config`` needs.

    A page calls this first, with a progress bar, so the run itself only hits the cache.
    Where the architecture allows (``feature_stages``), missing features come from one pass
    that also caches the frozen stages' activations of the default fine-tuning: the pooled
    features are the pretrained last stages run on them, and a later fine-tuning click then
    pays only for its epochs.
    """
    birds = load_birds(config.data, config.species, config.max_per_species)
    cut = cut_index(backbone, DEFAULT_UNFREEZE)
    if cut is not None and uncached_photos(backbone, birds.files, birds.labels):
        policy = policy or get_policy()
        acts = extract_activations(backbone, birds.files, birds.labels, frozen_part(backbone, cut),
                                   f"stages<{cut}", policy=policy, progress=progress, what="extracting features")
        store_features(backbone, birds.files, birds.labels, acts,
                       pretrained_tail_features(backbone, cut, acts.features, policy))
    return extract_features(backbone, birds.files, birds.labels, policy=policy, progress=progress)


def _test_set(config: TransferConfig, species: Sequence[str], test_data: str | Path) -> BirdSet:
    """The same species from another folder (photos the training never saw)."""
    test = load_birds(test_data, list(species))
    if list(test.species) != list(species):
        raise ValueError("the test folder must hold the same species folders")
    return test


def run_transfer(config: TransferConfig, *, backbone: Backbone | None = None,
                 test_data: str | Path | None = None, policy: DevicePolicy | None = None,
                 progress: ProgressFn | None = None, on_epoch: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 report: Callable[..., None] | None = None) -> TransferResult:
    """Run one mode on the chosen species and report everything the page shows.

    Args:
        config: the run.
        backbone: a loaded backbone (shared, read-only); loaded if None.
        test_data: optional folder with the same species for ``test_accuracy``.
        policy: the device policy (default ``get_policy()``).
        progress: called with (fraction, message) during extraction and training.
        on_epoch: called with each epoch's row (live learning curves).
        should_stop: polled after every step; True stops the training (Stop button).
        report: a job runner's ``report(phase, done, total, payload=None)``: phase counts,
            and each finished epoch's row as a payload.

    Raises:
        ValueError, FileNotFoundError, RuntimeError: bad data folder, species or backbone.
    """
    t0 = time.perf_counter()
    policy = policy or get_policy()
    birds, tr_pos, va_pos = load_split(config)
    backbone = backbone or create_backbone(config.backbone, policy)
    if backbone.name != config.backbone:
        raise ValueError(f"the loaded backbone is {backbone.name}, the config asks for {config.backbone}")
    if config.mode == "linear":
        run = _run_linear
    elif config.uses_cached_activations and cut_index(backbone, config.unfreeze_blocks) is not None:
        run = _run_cached
    else:
        run = _run_images
    token = _REPORT.set(report)
    try:
        return run(config, birds, tr_pos, va_pos, backbone, policy, t0, test_data, progress, on_epoch,
                   should_stop)
    finally:
        _REPORT.reset(token)


def transfer_job(config: TransferConfig, report: Callable[..., None]) -> TransferResult:
    """One run as a job of ``dltl_core.job_runner`` (its own process): ``fn(config, report)``.

    The process loads its own backbone (the server's shared one never leaves the
    server process); ``report`` gets each phase's counts and every finished epoch's
    row as a payload, so a stopped job still leaves its learning curve behind.
    """
    report("loading the pretrained backbone", 0, 0)
    backbone = create_backbone(config.backbone)
    return run_transfer(config, backbone=backbone, report=report)


def features_job(config: TransferConfig, report: Callable[..., None]) -> int:
    """Feature extraction of ``config``'s photos as a job (fills the disk cache); returns
    the number of photos extracted now (0 when another visitor's run had done it)."""
    report("loading the pretrained backbone", 0, 0)
    backbone = create_backbone(config.backbone)
    fs = ensure_features(config, backbone, progress=lambda d, t, m: report(m.split(":")[0], d, t))
    return fs.extracted


def _callbacks(curve: _Curve, should_stop: Callable[[], bool] | None) -> list[Callback]:
    return [curve] + ([StopFlag(should_stop)] if should_stop else [])


def _run_linear(config, birds, tr_pos, va_pos, backbone, policy, t0, test_data, progress, on_epoch,
                should_stop) -> TransferResult:
    k = len(birds.species)
    fs = extract_features(backbone, birds.files, birds.labels, policy=policy,
                          progress=_scaled(progress, 0.0, 0.85))
    feature_seconds = time.perf_counter() - t0
    row_of = {f: i for i, f in enumerate(fs.files)}  # files that decoded
    tr = [row_of[birds.files[p]] for p in tr_pos if birds.files[p] in row_of]
    va = [row_of[birds.files[p]] for p in va_pos if birds.files[p] in row_of]
    if not tr:
        raise ValueError("no photo could be decoded for training")
    x, y = fs.features, fs.labels
    cfg = config.train_config(len(tr))
    head = _linear_head(x.shape[1], k, config.seed)
    curve = _Curve(t0, "linear", cfg.epochs, progress, on_epoch, 0.85, 0.15)
    t1 = time.perf_counter()
    res = fit(head, (x[tr], y[tr]), (x[va], y[va]) if va else None, cfg, policy=policy,
              callbacks=_callbacks(curve, should_stop))
    train_seconds = time.perf_counter() - t1
    head = res.model
    probs = predict(head, x[va], policy=policy) if va else torch.zeros(0, k)
    yv = y[va]
    pred = probs.argmax(1) if va else torch.zeros(0, dtype=torch.long)
    val_acc = float((pred == yv).float().mean()) if va else float("nan")
    test_acc = None
    skipped = list(birds.skipped) + fs.skipped
    if test_data is not None:
        test = _test_set(config, birds.species, test_data)
        tfs = extract_features(backbone, test.files, test.labels, policy=policy)
        tp = predict(head, tfs.features, policy=policy).argmax(1)
        test_acc = float((tp == tfs.labels).float().mean()) if len(tp) else float("nan")
    conf = confusion_matrix(yv.tolist(), pred.tolist(), k)
    head = head.cpu().eval()
    return TransferResult(
        mode="linear", backbone=backbone.name, species=list(birds.species), history=curve.rows,
        val_accuracy=val_acc, test_accuracy=test_acc, seconds=time.perf_counter() - t0,
        images_per_second=fs.images_per_second, skipped=skipped, confusion=conf,
        per_species=per_species_accuracy(conf, birds.species),
        mistakes=_mistakes(probs, yv, [fs.files[i] for i in va], birds.species),
        feature_map=feature_map(x, y.tolist(), birds.species, fs.files, config.feature_map, "before",
                                config.seed),
        n_train=len(tr), n_val=len(va), feature_seconds=feature_seconds, train_seconds=train_seconds,
        features_cached=fs.extracted == 0, extraction_cost_seconds=fs.cost_seconds,
        interrupted=res.interrupted,
        separation={"before": separation_score(x, y, tr, va) if config.feature_map != "none" else None},
        head={"weight": head.weight.detach().numpy().copy(), "bias": head.bias.detach().numpy().copy()},
        data_config=dict(backbone.data_config))


# --------------------------------------------------------------------------- fine-tuning on cached activations

def eval_transform(backbone: Backbone, image_size: int | None) -> tuple[Callable, str]:
    """(the backbone's eval transform at ``image_size``, its identity for cache keys)."""
    native = backbone.data_config["input_size"][-1]
    if image_size is None or image_size == native:
        return backbone.transform, backbone.transform_id
    cfg = {**backbone.data_config, "input_size": (3, image_size, image_size)}
    t = timm.data.create_transform(**cfg, is_training=False)
    return t, repr(t)


@torch.inference_mode()
def pretrained_tail_features(backbone: Backbone, cut: int, acts: Tensor, policy: DevicePolicy,
                             batch_size: int = 64) -> Tensor:
    """The shared network's own last stages on cached activations: its pooled features (N, D).

    Equals ``pooled_features`` on the photos (the stages run in turn); inference only,
    on the model's own device.
    """
    stages = feature_stages(backbone.model)[cut:]
    device = next(backbone.model.parameters()).device
    out = []
    for i in range(0, len(acts), batch_size):
        a = acts[i:i + batch_size].to(device)
        if policy.channels_last:
            a = a.contiguous(memory_format=torch.channels_last)
        with policy.autocast():
            for stage in stages:
                a = stage(a)
            out.append(backbone.model.forward_head(a, pre_logits=True).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, backbone.num_features)


def probe_head(feats: Tensor, y: Tensor, tr: list[int], va: list[int], config: TransferConfig,
                k: int, policy: DevicePolicy) -> tuple[nn.Linear, float | None]:
    """The linear probe on the pretrained features (the page's linear mode, trained the same way);
    the fine-tuned head starts from it (LP-FT). Returns (head, last epoch's validation accuracy)."""
    from dataclasses import replace
    cfg = replace(config, mode="linear", epochs=None, lr=None, batch_size=None).train_config(len(tr))
    head = _linear_head(feats.shape[1], k, config.seed)
    res = fit(head, (feats[tr], y[tr]), (feats[va], y[va]) if va else None, cfg, policy=policy)
    acc = res.history[-1].val_acc if va and res.history else None
    return res.model.cpu(), acc


def _cached_split(config, birds, backbone, policy, cut, progress) -> tuple[FeatureSet, list[int], list[int]]:
    transform, tid = eval_transform(backbone, config.image_size)
    acts = extract_activations(backbone, birds.files, birds.labels, frozen_part(backbone, cut),
                               f"stages<{cut}", transform=transform, transform_id=tid, policy=policy,
                               progress=_scaled(progress, 0.0, 0.3))
    return acts, *_rows(birds, acts.files, config)


def _rows(birds: BirdSet, files: Sequence[str], config: TransferConfig) -> tuple[list[int], list[int]]:
    tr_pos, va_pos = split_indices(birds.labels, config.val_fraction, config.seed)
    row_of = {f: i for i, f in enumerate(files)}  # files that decoded
    tr = [row_of[birds.files[p]] for p in tr_pos if birds.files[p] in row_of]
    va = [row_of[birds.files[p]] for p in va_pos if birds.files[p] in row_of]
    if not tr:
        raise ValueError("no photo could be decoded for training")
    return tr, va


def finetune_tail(config: TransferConfig, backbone: Backbone, cut: int, probe: nn.Linear, x: Tensor, y: Tensor,
                  tr: Sequence[int], va: Sequence[int], policy: DevicePolicy,
                  callbacks: Sequence[Callback] = ()) -> tuple[PartlyFrozen, TailNet, Any]:
    """LP-FT on cached activations: a copy's stages from ``cut`` on and a new head (started from
    ``probe``) train on the activations ``x`` of the frozen stages (rows ``tr``; ``va`` validates).

    The page, the command line and ``scripts/transfer_regimes.py`` all fine-tune through here.

    Returns:
        (the fine-tuned copy, its ``TailNet`` view, the training core's ``FitResult``).
    """
    model, body, head = finetune_model(backbone, len(probe.bias), config.unfreeze_blocks)
    with torch.no_grad():
        model.net.get_classifier().weight.copy_(probe.weight)
        model.net.get_classifier().bias.copy_(probe.bias)
    tail = TailNet(model.net, cut, bn_frozen=config.bn_stats_frozen)
    cfg = config.train_config(len(tr))
    groups = [g for g in ({"params": body, "lr": cfg.lr * config.lr_factor},
                          {"params": head, "lr": cfg.lr}) if g["params"]]
    tr, va = list(tr), list(va)
    res = fit(tail, (x[tr], y[tr]), (x[va], y[va]) if va else None, cfg, policy=policy,
              callbacks=list(callbacks), param_groups=groups)
    return model, tail, res


def _run_cached(config, birds, tr_pos, va_pos, backbone, policy, t0, test_data, progress, on_epoch,
                should_stop) -> TransferResult:
    k, cut = len(birds.species), cut_index(backbone, config.unfreeze_blocks)
    acts, tr, va = _cached_split(config, birds, backbone, policy, cut, progress)
    x, y = acts.features, acts.labels
    if progress:
        progress(0.3, "training the linear probe that the new head starts from")
    before = pretrained_tail_features(backbone, cut, x, policy)
    probe, probe_acc = probe_head(before, y, tr, va, config, k, policy)
    feature_seconds = time.perf_counter() - t0
    curve = _Curve(t0, "finetune", config.train_config(len(tr)).epochs, progress, on_epoch, 0.35, 0.55)
    t1 = time.perf_counter()
    model, tail, res = finetune_tail(config, backbone, cut, probe, x, y, tr, va, policy,
                                     _callbacks(curve, should_stop))
    train_seconds = time.perf_counter() - t1
    tail.eval()
    probs = predict(tail, x[va], batch_size=64, policy=policy) if va else torch.zeros(0, k)
    test_acc = _cached_test_accuracy(config, birds, backbone, policy, cut, tail, test_data)
    if progress:
        progress(0.92, "drawing the feature map")
    after = _tail_features(tail, x)
    fmap = _before_after_map(config, birds, before, after, y, acts.files)
    sep = {"before": separation_score(before, y, tr, va), "after": separation_score(after, y, tr, va)}
    names = stage_names(backbone.model)
    return _image_result(config, birds, backbone, t0, curve, res, probs, y[va], tr, va, acts.files,
                         fmap, feature_seconds, train_seconds, test_acc, acts.skipped, model,
                         frozen_stages=names[:cut], trained_stages=names[cut:] + ["new head"],
                         cached_activations=True, probe_accuracy=probe_acc, separation=sep,
                         features_cached=acts.extracted == 0, progress=progress)


@torch.inference_mode()
def _tail_features(tail: TailNet, x: Tensor, batch_size: int = 64) -> Tensor:
    tail.eval()
    device = next(tail.parameters()).device
    return torch.cat([tail.features(x[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(x), batch_size)]) if len(x) else torch.zeros(0)


def _cached_test_accuracy(config, birds, backbone, policy, cut, tail, test_data) -> float | None:
    if test_data is None:
        return None
    test = _test_set(config, birds.species, test_data)
    transform, tid = eval_transform(backbone, config.image_size)
    ta = extract_activations(backbone, test.files, test.labels, frozen_part(backbone, cut), f"stages<{cut}",
                             transform=transform, transform_id=tid, policy=policy)
    tp = predict(tail, ta.features, batch_size=64, policy=policy).argmax(1) if len(ta.files) else None
    return float((tp == ta.labels).float().mean()) if tp is not None else float("nan")


def _before_after_map(config, birds, before, after, y, files) -> list[dict[str, Any]]:
    if config.feature_map == "none":
        return []
    return (feature_map(before, y.tolist(), birds.species, files, config.feature_map, "before", config.seed)
            + feature_map(after, y.tolist(), birds.species, files, config.feature_map, "after", config.seed))


def _image_result(config, birds, backbone, t0, curve, res, probs, yv, tr, va, files, fmap, feature_seconds,
                  train_seconds, test_acc, bad, model, progress=None, **extra) -> TransferResult:
    """The report of an image mode (fine-tuning or scratch) from its fit and predictions."""
    k = len(birds.species)
    pred = probs.argmax(1) if len(va) else torch.zeros(0, dtype=torch.long)
    val_acc = float((pred == yv).float().mean()) if len(va) else float("nan")
    conf = confusion_matrix(yv.tolist(), pred.tolist(), k)
    sps = np.mean([r.samples_per_second for r in res.history]) if res.history else float("nan")
    if progress:
        progress(1.0, f"{config.mode}: done")
    extra.setdefault("features_cached", True)
    return TransferResult(
        mode=config.mode, backbone=backbone.name, species=list(birds.species), history=curve.rows,
        val_accuracy=val_acc, test_accuracy=test_acc, seconds=time.perf_counter() - t0,
        images_per_second=float(sps), skipped=list(birds.skipped) + list(bad), confusion=conf,
        per_species=per_species_accuracy(conf, birds.species),
        mistakes=_mistakes(probs, yv, [files[i] for i in va], birds.species),
        feature_map=fmap, n_train=len(tr), n_val=len(va), feature_seconds=feature_seconds,
        train_seconds=train_seconds, interrupted=res.interrupted,
        model=model.cpu().eval(), data_config=dict(backbone.data_config), image_size=config.image_size,
        **extra)


def _run_images(config, birds, tr_pos, va_pos, backbone, policy, t0, test_data, progress, on_epoch,
                should_stop) -> TransferResult:
    """Fine-tuning end to end (or scratch): every photo through the whole network every epoch."""
    k = len(birds.species)
    x_all, ok, bad = load_image_tensors(birds.files, backbone.data_config, config.image_size,
                                        progress=_scaled(progress, 0.0, 0.1))
    files = [birds.files[p] for p in ok]
    y_all = torch.tensor([birds.labels[p] for p in ok], dtype=torch.long)
    tr, va = _rows(birds, files, config)
    _, crop = train_image_size(backbone.data_config, config.image_size)
    transform = make_batch_transform(backbone.data_config, crop, config.augment, config.seed)
    cfg = config.train_config(len(tr))
    names = stage_names(backbone.model)
    if config.mode == "finetune":
        model, body, head = finetune_model(backbone, k, config.unfreeze_blocks)
        model.bn_frozen = config.bn_stats_frozen
        groups = [{"params": body, "lr": cfg.lr * config.lr_factor}, {"params": head, "lr": cfg.lr}]
        groups = [g for g in groups if g["params"]]
        net = model.net
        n_frozen = len(names) - min(config.unfreeze_blocks, len(names)) if config.unfreeze_blocks is not None else 0
        stages = {"frozen_stages": names[:n_frozen], "trained_stages": names[n_frozen:] + ["new head"]}
    else:
        model = net = scratch_model(backbone.name, k, config.seed)
        groups, stages = None, {"trained_stages": names + ["new head"]}
    feature_seconds = time.perf_counter() - t0
    curve = _Curve(t0, config.mode, cfg.epochs, progress, on_epoch, 0.1, 0.8)
    t1 = time.perf_counter()
    res = fit(model, (x_all[tr], y_all[tr]), (x_all[va], y_all[va]) if va else None, cfg,
              policy=policy, callbacks=_callbacks(curve, should_stop), batch_transform=transform,
              param_groups=groups)
    train_seconds = time.perf_counter() - t1
    model.eval()
    probs = predict(model, x_all[va], batch_size=32, policy=policy, batch_transform=transform) if va \
        else torch.zeros(0, k)
    test_acc = None
    if test_data is not None:
        test = _test_set(config, birds.species, test_data)
        xt, okt, _ = load_image_tensors(test.files, backbone.data_config, config.image_size)
        yt = torch.tensor([test.labels[p] for p in okt], dtype=torch.long)
        tp = predict(model, xt, batch_size=32, policy=policy, batch_transform=transform).argmax(1)
        test_acc = float((tp == yt).float().mean()) if len(tp) else float("nan")
    if progress:
        progress(0.92, "drawing the feature map")
    fmap: list[dict[str, Any]] = []
    sep: dict[str, dict | None] = {}
    if config.feature_map != "none":
        # Before: the pretrained features (cached); after: the trained network's features.
        fs = extract_features(backbone, files, y_all.tolist(), policy=policy)
        after = embed_images(net, x_all, transform, 32, policy)
        fmap = _before_after_map(config, birds, fs.features, after, y_all, files)
        sep = {"before": separation_score(fs.features, y_all, tr, va), "after": separation_score(after, y_all, tr, va)}
    return _image_result(config, birds, backbone, t0, curve, res, probs, y_all[va], tr, va, files, fmap,
                         feature_seconds, train_seconds, test_acc, bad, model, progress=progress, separation=sep,
                         **stages)


# --------------------------------------------------------------------------- predict

# ImageNet-1k bird classes, checked against timm's class list (``imagenet_labels()``):
# 7-24 (cock ... great grey owl), 80-100 (black grouse ... black swan), 127-146 (white stork ... albatross).
IMAGENET_BIRDS = frozenset([*range(7, 25), *range(80, 101), *range(127, 147)])
# Below this top probability the head is guessing among the species it knows: on the bird
# photos, trained species' held-out photos mostly score above it, other species' mostly below.
UNKNOWN_BELOW = 0.75


@torch.inference_mode()
def _species_probs(backbone: Backbone, result: TransferResult, img: Image.Image) -> Tensor:
    if result.head is not None:
        device = next(backbone.model.parameters()).device  # the shared model's own device
        x = backbone.transform(img).unsqueeze(0).to(device)  # (1, 3, H, W)
        f = pooled_features(backbone.model, x).float().cpu()  # (1, D)
        logits = f @ torch.from_numpy(result.head["weight"]).T + torch.from_numpy(result.head["bias"])
        return logits.softmax(1)[0]
    if result.model is not None:
        from torchvision.transforms import functional as TF
        stored, crop = train_image_size(result.data_config, result.image_size)
        interp = TF.InterpolationMode(result.data_config.get("interpolation", "bilinear"))
        u8 = TF.pil_to_tensor(TF.center_crop(TF.resize(img, stored, interpolation=interp), [stored, stored]))
        xb = make_batch_transform(result.data_config, crop, False)(u8.unsqueeze(0), False)
        model = result.model  # the result's own copy, already in eval mode: neither moved nor switched
        return model(xb.to(next(model.parameters()).device)).float().softmax(1)[0].cpu()
    raise ValueError("this result has no trained model to predict with")


def predict_photo(backbone: Backbone, result: TransferResult, photo: str | Path | bytes | Image.Image,
                  k: int = 5) -> dict[str, Any]:
    """Top-k species of the trained model beside the backbone's original ImageNet top-k.

    Returns:
        ``species`` and ``imagenet``: (label, probability) pairs, most probable first;
        ``imagenet_bird``: whether the ImageNet top-1 is one of ImageNet's bird classes;
        ``unknown``: a plain sentence when the photo probably shows none of the trained
        species (low top probability, or not a bird for ImageNet), else None.

    Raises:
        dltl_core.images.ImageError: the photo cannot be decoded.
    """
    img = photo if isinstance(photo, Image.Image) else open_rgb(photo)
    probs = _species_probs(backbone, result, img)
    top = probs.topk(min(k, len(result.species)))  # sorted, most probable first
    species = [(pretty_name(result.species[int(i)]), float(p)) for p, i in zip(top.values, top.indices)]
    imagenet = imagenet_topk(backbone, img, k)
    labels = imagenet_labels_index()
    bird = labels.get(imagenet[0][0]) in IMAGENET_BIRDS
    unknown = None
    if not bird:
        unknown = (f"This does not look like a bird to the pretrained network (its ImageNet guess: "
                   f"{imagenet[0][0].split(',')[0]}), so the species bars are meaningless here.")
    elif species[0][1] < UNKNOWN_BELOW:
        unknown = (f"The best match, {species[0][0]}, has only {species[0][1]:.0%}; the head must split "
                   f"100% among the {len(result.species)} species it knows, even for a bird it has never "
                   "seen.")
    return {"species": species, "imagenet": imagenet, "imagenet_bird": bird, "unknown": unknown}


@functools.lru_cache(maxsize=1)
def imagenet_labels_index() -> dict[str, int]:
    """ImageNet label -> class index (timm's class descriptions)."""
    return {label: i for i, label in enumerate(imagenet_labels())}


def compare_modes(base: TransferConfig, modes: Sequence[str] = MODES, **kwargs: Any) -> dict[str, TransferResult]:
    """Run several modes on the same split (same seed) for a side-by-side comparison."""
    from dataclasses import replace
    return {m: run_transfer(replace(base, mode=m), **kwargs) for m in modes}
