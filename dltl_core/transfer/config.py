"""What a transfer run is: its settings (``TransferConfig``), the modes and the per-mode defaults.

One place holds every default the page, the command line, the exported code and the README
quote (``FINETUNE``, ``_DEFAULTS``), so they cannot drift apart; the runs only read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dltl_core.backbones import BACKBONES, DEFAULT_BACKBONE
from dltl_core.settings import Setting, check, seed_field, setting
from dltl_core.train import TrainConfig
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

# Per-mode defaults: the linear head trains on cached features (cheap, many epochs);
# the image modes pay a full forward/backward per photo per epoch (few epochs on a CPU).
_DEFAULTS = {
    "linear": {"epochs": 30, "lr": 3e-3, "batch_size": 32},
    "finetune": {"epochs": 4, "lr": 1e-3, "batch_size": 16},
    "finetune_cached": {"epochs": FINETUNE.epochs, "lr": FINETUNE.lr, "batch_size": FINETUNE.batch_size,
                        "label_smoothing": FINETUNE.label_smoothing},
    "scratch": {"epochs": 4, "lr": 1e-3, "batch_size": 16},
}


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
