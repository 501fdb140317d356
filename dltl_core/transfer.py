"""Transfer learning on bird species: a frozen backbone's features vs fine-tuning vs from scratch.

Three modes, one data split, one report:

- ``linear``: the pretrained backbone stays frozen; its pooled features are
  extracted once (disk cache) and only a linear head is trained, in about a second.
- ``finetune``: a *copy* of the pretrained network gets a new head and is
  trained end to end (or only its last blocks), the backbone with a smaller
  learning rate than the head. The shared backbone is never trained in place.
- ``scratch``: the same architecture from random weights.

Every run reports learning curves with wall-clock time, validation accuracy, a
confusion matrix, per-species accuracy, the mistakes, and a 2-D map of the
features (before and, for the modes that change it, after training).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import timm
import torch
from PIL import Image
from torch import Tensor, nn

from dltl_core.backbones import DEFAULT_BACKBONE, Backbone, create_backbone, imagenet_topk
from dltl_core.birds import BirdSet, load_birds, pretty_name, split_indices
from dltl_core.device import DevicePolicy, get_policy, seed_everything
from dltl_core.features import (FeatureSet, embed_images, extract_features, load_image_tensors,
                                make_batch_transform, pooled_features, train_image_size)
from dltl_core.images import open_rgb
from dltl_core.train import Callback, EpochRecord, StopFlag, TrainConfig, fit, predict

MODES = ("linear", "finetune", "scratch")
MODE_TITLES = {"linear": "Transfer (frozen backbone, linear head)",
               "finetune": "Fine-tuning (whole network)", "scratch": "From scratch (random init)"}

# Per-mode defaults: the linear head trains on cached features (cheap, many epochs);
# the image modes pay a full forward/backward per photo per epoch (few epochs on a CPU).
_DEFAULTS = {
    "linear": {"epochs": 30, "lr": 3e-3, "batch_size": 32},
    "finetune": {"epochs": 4, "lr": 1e-3, "batch_size": 16},
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
        backbone_lr_factor: fine-tuning: the backbone's lr is ``lr * factor``.
        unfreeze_blocks: fine-tuning: train only the last N stages (None = all).
        augment: random crop + flip for the modes that see images.
        image_size: crop size for the image modes (None = the backbone's input size).
        weight_decay: L2 penalty of the optimizer.
        feature_map: ``"pca"`` or ``"tsne"``.
    """

    data: str
    species: str = "10"
    max_per_species: int | None = None
    val_fraction: float = 0.2
    seed: int = 0
    backbone: str = DEFAULT_BACKBONE
    mode: str = "linear"
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    backbone_lr_factor: float = 0.1
    unfreeze_blocks: int | None = None
    augment: bool = True
    image_size: int | None = None
    weight_decay: float = 1e-4
    feature_map: str = "pca"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.feature_map not in ("pca", "tsne", "none"):
            raise ValueError("feature_map must be 'pca', 'tsne' or 'none'")
        if self.max_per_species is not None and self.max_per_species < 2:
            raise ValueError("keep at least 2 photos per species (one to train, one to validate)")
        if self.image_size is not None and not 32 <= self.image_size <= 512:
            raise ValueError(f"image size must be between 32 and 512 pixels, got {self.image_size}")
        if not 0 < self.backbone_lr_factor <= 10:
            raise ValueError("the backbone learning-rate factor must be in (0, 10]")

    def train_config(self, n_train: int) -> TrainConfig:
        """The training core's config for this mode (defaults filled in, batch clamped to the data)."""
        d = _DEFAULTS[self.mode]
        return TrainConfig(epochs=self.epochs or d["epochs"], lr=self.lr or d["lr"],
                           batch_size=max(1, min(self.batch_size or d["batch_size"], n_train)),
                           optimizer="adam", weight_decay=self.weight_decay, seed=self.seed)


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

    def __init__(self, model: nn.Module, frozen: Sequence[str]) -> None:
        super().__init__()
        self.net = model
        self.frozen = list(frozen)
        for name in self.frozen:
            self.net.get_submodule(name).requires_grad_(False)

    def train(self, mode: bool = True) -> "PartlyFrozen":
        super().train(mode)
        for name in self.frozen:
            self.net.get_submodule(name).eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def finetune_model(backbone: Backbone, num_classes: int, unfreeze_blocks: int | None = None
                   ) -> tuple[PartlyFrozen, list[nn.Parameter], list[nn.Parameter]]:
    """A trainable copy of the backbone with a new ``num_classes`` head.

    Args:
        unfreeze_blocks: train only the last N stages of timm's coarse layer groups
            (stem, stages..., head); None trains everything.

    Returns:
        (model, backbone parameters to train, head parameters).
    """
    net = copy.deepcopy(backbone.model)  # the shared backbone stays untouched
    net.reset_classifier(num_classes)
    net.requires_grad_(True)
    head = list(net.get_classifier().parameters())
    frozen: list[str] = []
    if unfreeze_blocks is not None:
        groups = timm.models.group_modules(net, net.group_matcher(coarse=True))
        ordered = [groups[k] for k in sorted(groups)]
        cls = _classifier_name(net)
        body = [g for g in ordered if not all(n.split(".")[0] == cls for n in g)]  # stem, stages
        keep = max(0, min(unfreeze_blocks, len(body)))
        for g in body[: len(body) - keep]:
            frozen += g
    model = PartlyFrozen(net, frozen)
    head_ids = {id(p) for p in head}
    body_params = [p for p in net.parameters() if p.requires_grad and id(p) not in head_ids]
    return model, body_params, head


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
    """Adds wall-clock time to each epoch record and forwards progress to the page."""

    def __init__(self, t0: float, mode: str, epochs: int, progress: ProgressFn | None,
                 on_epoch: Callable[[dict], None] | None, base: float, span: float) -> None:
        self.t0, self.mode, self.epochs = t0, mode, epochs
        self.progress, self.on_epoch = progress, on_epoch
        self.base, self.span = base, span
        self.rows: list[dict[str, Any]] = []

    def on_epoch_end(self, trainer: Any, record: EpochRecord) -> None:
        row = {**record.as_dict(), "elapsed": time.perf_counter() - self.t0, "mode": self.mode}
        self.rows.append(row)
        if self.on_epoch:
            self.on_epoch(row)
        if self.progress:
            self.progress(self.base + self.span * record.epoch / self.epochs,
                          f"{self.mode}: epoch {record.epoch}/{self.epochs}, "
                          f"validation accuracy {record.val_acc:.0%}")


# --------------------------------------------------------------------------- runs

def _scaled(progress: ProgressFn | None, lo: float, hi: float) -> Callable[[int, int, str], None] | None:
    if progress is None:
        return None
    return lambda done, total, msg: progress(lo + (hi - lo) * done / max(total, 1), msg)


def load_split(config: TransferConfig) -> tuple[BirdSet, list[int], list[int]]:
    """The chosen photos and the seeded, stratified (train positions, val positions)."""
    birds = load_birds(config.data, config.species, config.max_per_species)
    tr, va = split_indices(birds.labels, config.val_fraction, config.seed)
    return birds, tr, va


def ensure_features(config: TransferConfig, backbone: Backbone, *, policy: DevicePolicy | None = None,
                    progress: Callable[[int, int, str], None] | None = None) -> FeatureSet:
    """Extract (or read from the disk cache) the features a linear run of ``config`` needs.

    A page calls this first, with a progress bar, so the run itself only hits the cache.
    """
    birds = load_birds(config.data, config.species, config.max_per_species)
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
                 should_stop: Callable[[], bool] | None = None) -> TransferResult:
    """Run one mode on the chosen species and report everything the page shows.

    Args:
        config: the run.
        backbone: a loaded backbone (shared, read-only); loaded if None.
        test_data: optional folder with the same species for ``test_accuracy``.
        policy: the device policy (default ``get_policy()``).
        progress: called with (fraction, message) during extraction and training.
        on_epoch: called with each epoch's row (live learning curves).
        should_stop: polled after every step; True stops the training (Stop button).

    Raises:
        ValueError, FileNotFoundError, RuntimeError: bad data folder, species or backbone.
    """
    t0 = time.perf_counter()
    policy = policy or get_policy()
    birds, tr_pos, va_pos = load_split(config)
    backbone = backbone or create_backbone(config.backbone, policy)
    if backbone.name != config.backbone:
        raise ValueError(f"the loaded backbone is {backbone.name}, the config asks for {config.backbone}")
    run = _run_linear if config.mode == "linear" else _run_images
    return run(config, birds, tr_pos, va_pos, backbone, policy, t0, test_data, progress, on_epoch, should_stop)


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
        head={"weight": head.weight.detach().numpy().copy(), "bias": head.bias.detach().numpy().copy()},
        data_config=dict(backbone.data_config))


def _run_images(config, birds, tr_pos, va_pos, backbone, policy, t0, test_data, progress, on_epoch,
                should_stop) -> TransferResult:
    k = len(birds.species)
    x_all, ok, bad = load_image_tensors(birds.files, backbone.data_config, config.image_size,
                                        progress=_scaled(progress, 0.0, 0.1))
    row_of = {p: i for i, p in enumerate(ok)}  # listing position -> row of x_all
    y_all = torch.tensor([birds.labels[p] for p in ok], dtype=torch.long)
    files = [birds.files[p] for p in ok]
    tr = [row_of[p] for p in tr_pos if p in row_of]
    va = [row_of[p] for p in va_pos if p in row_of]
    if not tr:
        raise ValueError("no photo could be decoded for training")
    _, crop = train_image_size(backbone.data_config, config.image_size)
    transform = make_batch_transform(backbone.data_config, crop, config.augment, config.seed)
    cfg = config.train_config(len(tr))
    if config.mode == "finetune":
        model, body, head = finetune_model(backbone, k, config.unfreeze_blocks)
        groups = [{"params": body, "lr": cfg.lr * config.backbone_lr_factor}, {"params": head, "lr": cfg.lr}]
        groups = [g for g in groups if g["params"]]
        net = model.net
    else:
        model = net = scratch_model(backbone.name, k, config.seed)
        groups = None
    feature_seconds = time.perf_counter() - t0
    curve = _Curve(t0, config.mode, cfg.epochs, progress, on_epoch, 0.1, 0.8)
    t1 = time.perf_counter()
    res = fit(model, (x_all[tr], y_all[tr]), (x_all[va], y_all[va]) if va else None, cfg,
              policy=policy, callbacks=_callbacks(curve, should_stop), batch_transform=transform,
              param_groups=groups)
    train_seconds = time.perf_counter() - t1
    model.eval()
    yv = y_all[va]
    probs = predict(model, x_all[va], batch_size=32, policy=policy, batch_transform=transform) if va \
        else torch.zeros(0, k)
    pred = probs.argmax(1) if va else torch.zeros(0, dtype=torch.long)
    val_acc = float((pred == yv).float().mean()) if va else float("nan")
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
    if config.feature_map != "none":
        # Before: the pretrained features (cached); after: the trained network's features.
        fs = extract_features(backbone, files, y_all.tolist(), policy=policy)
        fmap = feature_map(fs.features, fs.labels.tolist(), birds.species, fs.files, config.feature_map,
                           "before", config.seed)
        after = embed_images(net, x_all, transform, batch_size=32, policy=policy)
        fmap += feature_map(after, y_all.tolist(), birds.species, files, config.feature_map, "after",
                            config.seed)
    conf = confusion_matrix(yv.tolist(), pred.tolist(), k)
    epochs_done = len(res.history)
    sps = (np.mean([r.samples_per_second for r in res.history]) if epochs_done else float("nan"))
    if progress:
        progress(1.0, f"{config.mode}: done")
    return TransferResult(
        mode=config.mode, backbone=backbone.name, species=list(birds.species), history=curve.rows,
        val_accuracy=val_acc, test_accuracy=test_acc, seconds=time.perf_counter() - t0,
        images_per_second=float(sps), skipped=list(birds.skipped) + list(bad), confusion=conf,
        per_species=per_species_accuracy(conf, birds.species),
        mistakes=_mistakes(probs, yv, [files[i] for i in va], birds.species),
        feature_map=fmap, n_train=len(tr), n_val=len(va), feature_seconds=feature_seconds,
        train_seconds=train_seconds, features_cached=True, interrupted=res.interrupted,
        model=model.cpu().eval(), data_config=dict(backbone.data_config), image_size=config.image_size)


# --------------------------------------------------------------------------- predict

@torch.inference_mode()
def predict_photo(backbone: Backbone, result: TransferResult, photo: str | Path | bytes | Image.Image,
                  k: int = 5) -> dict[str, list[tuple[str, float]]]:
    """Top-k species of the trained model beside the backbone's original ImageNet top-k.

    Raises:
        dltl_core.images.ImageError: the photo cannot be decoded.
    """
    img = photo if isinstance(photo, Image.Image) else open_rgb(photo)
    k_species = min(k, len(result.species))
    device = next(backbone.model.parameters()).device
    if result.head is not None:
        x = backbone.transform(img).unsqueeze(0).to(device)  # (1, 3, H, W)
        f = pooled_features(backbone.model, x).float().cpu()  # (1, D)
        logits = f @ torch.from_numpy(result.head["weight"]).T + torch.from_numpy(result.head["bias"])
        probs = logits.softmax(1)[0]
    elif result.model is not None:
        from torchvision.transforms import functional as TF
        stored, crop = train_image_size(result.data_config, result.image_size)
        interp = TF.InterpolationMode(result.data_config.get("interpolation", "bilinear"))
        u8 = TF.pil_to_tensor(TF.center_crop(TF.resize(img, stored, interpolation=interp), [stored, stored]))
        xb = make_batch_transform(result.data_config, crop, False)(u8.unsqueeze(0), False)
        probs = result.model.cpu().eval()(xb).float().softmax(1)[0]
    else:
        raise ValueError("this result has no trained model to predict with")
    top = probs.topk(k_species)
    species = [(pretty_name(result.species[int(i)]), float(p)) for p, i in zip(top.values, top.indices)]
    return {"species": species, "imagenet": imagenet_topk(backbone, img, k)}


def compare_modes(base: TransferConfig, modes: Sequence[str] = MODES, **kwargs: Any) -> dict[str, TransferResult]:
    """Run several modes on the same split (same seed) for a side-by-side comparison."""
    from dataclasses import replace
    return {m: run_transfer(replace(base, mode=m), **kwargs) for m in modes}
