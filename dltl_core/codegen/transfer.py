"""/transfer as plain PyTorch: frozen EfficientNet-Lite0 features, a linear head, then fine-tuning.

The script follows the page on the student's own bird folder: the same species, photos per
species, seed and split (``dltl_core/birds/``), the same pretrained backbone and
preprocessing (``dltl_core/backbones.py``), the same head training (Adam, seed, batches:
``dltl_core/transfer.py`` through ``dltl_core/train/fit.py``) and the page's default
fine-tuning of the last stages on the frozen stages' activations (LP-FT).
"""

from __future__ import annotations

from typing import Mapping

from dltl_core.codegen import _birds
from dltl_core.codegen.script import Cell, Script, code, md


def cells(s: _birds.BirdSettings) -> tuple[Cell, ...]:
    """The script's cells for settings ``s`` (shared with the transfer-learning lab)."""
    return (
        code(_birds.imports()),
        md("## 1 · The photos\nOne folder per species; the page's choice of species, photos and seed, "
           "and its seeded split per species into training and validation photos."),
        code(_birds.settings(s)),
        code(_birds.photos()),
        md("## 2 · The pretrained backbone $\\phi$\nA network trained on ImageNet's 1.2 million photos, "
           "used frozen: its weights do not change."),
        code(_birds.backbone(s)),
        md("## 3 · Features\nEach photo becomes the backbone's pooled feature vector $\\phi(x)$, computed once."),
        code(_birds.features(s)),
        md("## 4 · Transfer: a linear head on the frozen features\n"
           "$\\hat y = \\mathrm{softmax}(W\\,\\phi(x) + b)$, trained with the cross-entropy "
           "$L = -\\frac1N\\sum_i \\log \\hat y_{i, y_i}$ and Adam; only $W$ and $b$ learn."),
        code(_birds.linear_head()),
        md("## 5 · Fine-tuning the last stages\nA copy of the network trains its last stages too, with a "
           "smaller learning rate than the new head, which starts from the linear probe (LP-FT). The early "
           "stages stay frozen, so their activations are computed once (step 3)."),
        code(_birds.finetune(s)),
        *_full_note(s),
    )


def _full_note(s: _birds.BirdSettings) -> tuple[Cell, ...]:
    """Where the script and the page part: end-to-end fine-tuning trains on augmented photos."""
    if s.view.way != "full":
        return ()
    return (md("**Note.** This link fine-tunes end to end (`ft_way=full`). The page trains every stage on the "
               "photos" + (" with random crops and flips" if s.view.augment else "") + " at "
               f"{s.view.image_size} pixels; this script trains every stage on the centre-cropped photos "
               "computed once in step 3, so its numbers are close to the page's, not equal."),)


def build(params: Mapping[str, str]) -> Script:
    """The /transfer page's script for the link ``params``."""
    s, problems = _birds.read_settings(params)
    return Script("transfer", "Transfer learning on birds: frozen backbone, linear head, fine-tuning",
                  s.query(), cells(s), tuple(problems))
