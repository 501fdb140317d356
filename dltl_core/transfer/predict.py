"""Predicting one photo with a trained transfer result, beside the backbone's own ImageNet guess
(and a plain warning when the photo shows none of the trained species).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from dltl_core.backbones import Backbone, imagenet_labels, imagenet_topk
from dltl_core.birds import pretty_name
from dltl_core.features import pooled_features
from dltl_core.images import open_rgb
from dltl_core.photos import make_batch_transform, train_image_size
from dltl_core.transfer.result import TransferResult

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
