"""Named training recipes for the assignment: a whole ``TrainConfig`` under one name.

A recipe is data, like timm's optimizer table: the hyperparameters that make a
CIFAR-10 network reach its published accuracy, plus how it is judged (flip
test-time augmentation). Students pick one by name on the command line
(``search --recipe fast`` or ``--fixed recipe=fast``) and on the pages, then
change single fields on top of it.

- ``fast``: a short, strong schedule for GPU minutes. The ingredients of
  KellerJordan/cifar10-airbench (Nesterov, label smoothing, warm-up, large
  batches, weight averaging, flip test-time augmentation) on a standard network.
- ``kuangliu``: the long published recipe of kuangliu/pytorch-cifar (SGD with
  momentum, 200 epochs of cosine annealing, weight decay on every parameter),
  behind the reference accuracies the Results page shows.
- ``cpu``: a few epochs that a laptop finishes in minutes, for demos.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from dltl_core.registry import Registry
from dltl_core.train import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """One named recipe.

    Attributes:
        name: registry key (``fast``).
        label: display name.
        config: the training hyperparameters (epochs, batch size, optimizer, schedule...).
        tta: report the accuracy with flip test-time augmentation as well.
        about: what the recipe is for and where it comes from, in one paragraph.
    """

    name: str
    label: str
    config: TrainConfig
    tta: bool
    about: str

    def train_config(self, **overrides: Any) -> TrainConfig:
        """The recipe's ``TrainConfig`` with some fields changed (validated again)."""
        return replace(self.config, **overrides)


RECIPES: Registry[Recipe] = Registry("recipe")
for _r in (
    Recipe("fast", "Fast (GPU minutes)",
           TrainConfig(epochs=30, batch_size=512, optimizer="nesterov", lr=0.2, momentum=0.9,
                       weight_decay=5e-4, schedule="onecycle", warmup=0.25, label_smoothing=0.1,
                       ema_epochs=2.0),
           tta=True,
           about="30 epochs at batch 512: Nesterov momentum, one-cycle with a 25% warm-up, label "
                 "smoothing 0.1, weight decay 5e-4 on weights only (not biases or BatchNorm), an "
                 "average of the weights over the last ~2 epochs, and flip test-time augmentation. "
                 "ResNet-18 trains at about 1 s per epoch on an H200 (measured), so about half a minute; "
                 "the accuracy this recipe reaches has not been measured on a GPU yet."),
    Recipe("kuangliu", "kuangliu/pytorch-cifar (200 epochs)",
           TrainConfig(epochs=200, batch_size=128, optimizer="momentum", lr=0.1, momentum=0.9,
                       weight_decay=5e-4, schedule="cosine", warmup=0.0, label_smoothing=0.0,
                       decay_1d=True),
           tta=False,
           about="The published long recipe behind the reference table: SGD with momentum 0.9, lr "
                 "0.1, batch 128, weight decay 5e-4 on every parameter, cosine annealing over 200 "
                 "epochs, random crop and flip. Hours per network on one GPU."),
    Recipe("cpu", "CPU demo (minutes)",
           TrainConfig(epochs=8, batch_size=128, optimizer="nesterov", lr=0.1, momentum=0.9,
                       weight_decay=5e-4, schedule="onecycle", warmup=0.3, label_smoothing=0.1),
           tta=True,
           about="8 epochs of the fast recipe's ingredients at batch 128 (no weight averaging: too "
                 "few steps), for narrow networks on a few thousand images on a laptop."),
):
    RECIPES.register(_r.name, _r, label=_r.label)


def get_recipe(name: str) -> Recipe:
    """The recipe ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    return RECIPES.get(name)
