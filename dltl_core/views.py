"""The settings of each page, declared once (``dltl_core.settings``): label, bounds, URL name.

``dltl_ui.binder.Binder`` turns each class into widgets, session state and URL state. Core
configs (``DescentConfig``, ``OverfitConfig``) carry their own declarations; these classes
hold what a page shows beyond them, reusing the core's declarations with ``like``. They live
in the core (no Streamlit) so the code export (``dltl_core.codegen``) reads a link with the
very declarations the widgets use; ``dltl_ui.views`` re-exports them for the pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from dltl_core.archs import ARCHS
from dltl_core.descend import DescentConfig
from dltl_core.lessons.overfit import KNOBS
from dltl_core.optim import SCHEDULES
from dltl_core.data.digits import DIGITS_TRAIN
from dltl_core.settings import check, like, seed_field, setting

SCHED_KEYS = tuple(SCHEDULES)
BATCHES_N_TRAIN = DIGITS_TRAIN  # the digits' training split (1,438 images)
BATCH_OPTIONS = (1, 4, 8, 16, 32, 64, 128, 256, 512, BATCHES_N_TRAIN)
ARCH_WIDTHS = (0.125, 0.25, 0.375, 0.5, 0.75, 1.0, 1.5, 2.0)
MAX_CLASSES = 6


@dataclass(frozen=True)
class ClassroomView:
    """Classroom mode (``?classroom=1``): kept on reload and in shared links."""

    classroom: bool = setting(False, label="Classroom mode",
                              help="For the projector: bigger type and charts, explanatory text hidden, "
                                   "sidebar collapsed. Kept in the link (?classroom=1).")


@dataclass(frozen=True)
class LrView:
    """The /lr page: regimes, schedules and the range test (``?surface=&opt=&steps=...``)."""

    surface: str = like(DescentConfig, "surface", "bowl")
    opt: str = like(DescentConfig, "optimizer", "sgd", label="Optimizer")
    steps: int = like(DescentConfig, "steps", 100, lo=0, hi=1000, step=10)
    lr: float = like(DescentConfig, "lr", 0.15, label="base η", step=0.01,
                     help="The peak learning rate each schedule scales.")
    noise: float = like(DescentConfig, "noise", 2.0, step=0.1,
                        help="Noise on every gradient, as with mini-batches: a constant η keeps bouncing in it.")
    scheds: tuple = setting(SCHED_KEYS, label="Schedules", choices=SCHED_KEYS, labels=SCHEDULES)
    rt_opt: str = like(DescentConfig, "optimizer", "momentum", label="Optimizer ")
    bs: int = setting(8, label="batch size", lo=4, hi=256, ticks=(4, 8, 16, 32, 64, 128, 256))


@dataclass(frozen=True)
class LossView:
    """The /loss page: classes, target, temperature and the logits z0..z5."""

    k: int = setting(3, label="Number of classes", lo=2, hi=MAX_CLASSES)
    target: int = setting(0, label="True class (one-hot target)", lo=0, hi=MAX_CLASSES - 1)
    T: float = setting(1.0, label="Temperature T", lo=0.1, hi=5.0, step=0.1)
    z0: float = setting(2.0, label="Logit z0", lo=-8.0, hi=8.0, step=0.1)
    z1: float = setting(1.0, label="Logit z1", lo=-8.0, hi=8.0, step=0.1)
    z2: float = setting(0.1, label="Logit z2", lo=-8.0, hi=8.0, step=0.1)
    z3: float = setting(-1.0, label="Logit z3", lo=-8.0, hi=8.0, step=0.1)
    z4: float = setting(0.5, label="Logit z4", lo=-8.0, hi=8.0, step=0.1)
    z5: float = setting(-0.5, label="Logit z5", lo=-8.0, hi=8.0, step=0.1)

    def __post_init__(self) -> None:
        check(self, lambda c: {"target": f"the true class must be below {c.k}, got {c.target}"}
              if c.target >= c.k else None)

    @property
    def logits(self) -> list[float]:
        """The first ``k`` logits."""
        return [getattr(self, f"z{i}") for i in range(self.k)]


@dataclass(frozen=True)
class LayersView:
    """The /layers page: convolution width, training budget, the digit to inspect."""

    channels: int = setting(16, label="Output channels of the convolution (3×3 kernel)", lo=1, hi=128)
    epochs: int = setting(30, label="Epochs of Adam for every network", lo=1, hi=40)
    seed: int = seed_field(label="First seed")
    seeds: int = setting(3, label="Seeds", lo=1, hi=5,
                         help="Every model is trained once per seed (its own split and initial weights): "
                              "a lead is claimed only when every seed shows it.")
    digit: int = setting(3, label="Digit to look at", lo=0, hi=9)


@dataclass(frozen=True)
class BatchesView:
    """The /batches page: the batch sizes compared and the epochs."""

    sizes: tuple = setting((8, 32, 128, 512), label="Batch sizes", choices=BATCH_OPTIONS,
                           labels=lambda b: f"{b} (full batch)" if b == BATCHES_N_TRAIN else str(b))
    extra: int = setting(0, label="Another size (0 = none)", lo=0, hi=BATCHES_N_TRAIN, widget="number",
                         help=f"Any size from 1 to the {BATCHES_N_TRAIN:,} training images.")
    epochs: int = setting(5, label="Epochs", lo=1, hi=30)


@dataclass(frozen=True)
class CompareView:
    """The /overfit page's second run: on or off, and which knob differs."""

    compare: bool = setting(False, label="Train a second run that differs in one knob")
    knob: str = setting("dropout", label="Knob", choices=tuple(KNOBS), labels=KNOBS)


@dataclass(frozen=True)
class ArchView:
    """The /arch page: which architecture, at which width."""

    arch: str = setting("resnet18", label="Architecture", choices=lambda: list(ARCHS),
                        labels=lambda n: ARCHS[n].label)
    width: float = setting(1.0, label="Width multiplier", lo=ARCH_WIDTHS[0], hi=ARCH_WIDTHS[-1], ticks=ARCH_WIDTHS,
                           help="Scales the channels of every layer (1 = the published network).")


ALL_VIEWS = (ClassroomView, LrView, LossView, LayersView, BatchesView, CompareView, ArchView)

__all__ = ["ALL_VIEWS", "ARCH_WIDTHS", "ArchView", "BATCHES_N_TRAIN", "BATCH_OPTIONS", "BatchesView",
           "ClassroomView", "CompareView", "LayersView", "LossView", "LrView", "MAX_CLASSES"]
