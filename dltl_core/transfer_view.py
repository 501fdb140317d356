"""The transfer page's settings, declared from ``TransferConfig`` (no Streamlit).

The page's binder (``dltl_ui.transfer.train.view_binder``) makes its widgets and link
parameters from ``TransferView``; the code export (``dltl_core.codegen.transfer``) reads
a link with the same class, so a shared link and its exported script always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from dltl_core.settings import field_from, like, setting
from dltl_core.transfer import DEFAULT_CAP, DEFAULT_SPECIES, FINETUNE, SPECIES_COUNT, TransferConfig
from dltl_core.transfer import IMAGE_SIZES as TRANSFER_SIZES

WAYS = ("cached", "full")  # fine-tune the last stages on cached activations, or every stage on the photos


@dataclass(frozen=True)
class TransferView:
    """The page's settings, declared from ``TransferConfig`` (bounds, labels, URL names) with the
    page's defaults (``FINETUNE``, the shared default photos); the binder makes widgets and links."""

    k: int = field_from(SPECIES_COUNT, DEFAULT_SPECIES)
    max_per_species: int = like(TransferConfig, "max_per_species", DEFAULT_CAP, optional=False, kind=None)
    seed: int = like(TransferConfig, "seed")
    epochs: int = like(TransferConfig, "epochs", FINETUNE.epochs, optional=False, kind=None)
    image_size: int = like(TransferConfig, "image_size", max(TRANSFER_SIZES), optional=False, kind=None)
    lr: float = like(TransferConfig, "lr", FINETUNE.lr, optional=False, kind=None)
    way: str = setting(WAYS[0], label="Fine-tuning", choices=WAYS, widget="radio", url="ft_way")
    backbone_lr_factor: float = like(TransferConfig, "backbone_lr_factor", FINETUNE.backbone_lr_factor,
                                     optional=False, kind=None)
    unfreeze_blocks: int = like(TransferConfig, "unfreeze_blocks", FINETUNE.unfreeze_blocks, optional=False,
                                kind=None)
    augment: bool = like(TransferConfig, "augment")


PHOTOS = ("k", "max_per_species", "seed")  # the photo settings (section 1 of the page)
FINETUNING = ("epochs", "image_size", "lr", "way", "backbone_lr_factor", "unfreeze_blocks", "augment")



__all__ = ["FINETUNING", "PHOTOS", "TransferView", "WAYS"]
