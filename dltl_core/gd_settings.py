"""The /gd page's settings, declared once: the view and the four optimizer slots.

Every widget of the page has a key that is also its URL parameter; slot 1 of the four
optimizer slots has bare names (``/gd?lr=0.42``), slots 2-4 a suffix (``lr_2``,
``momentum_3``...). Plain declarations (no Streamlit): the page's binders
(``dltl_ui.gd.state``) and the code export (``dltl_core.codegen.gd``) read a link with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from dltl_core.descend import MAX_STEPS, DescentConfig
from dltl_core.optim import OPTIMIZERS
from dltl_core.settings import defaults_of, like, setting, settings_of

SLOTS = 4
OFF = "off"


def _opt_label(k: str) -> str:
    return "— off —" if k == OFF else OPTIMIZERS[k].label


@dataclass(frozen=True)
class GdView:
    """What the /gd page shows besides the optimizers (declared once: widgets, URL, bounds)."""

    surface: str = like(DescentConfig, "surface")
    condition: float = like(DescentConfig, "condition")
    steps: int = like(DescentConfig, "steps", lo=0)  # 0: nothing moves, the landscape is still drawn
    noise: float = like(DescentConfig, "noise")
    rand: bool = setting(False, label="Random start", help="A start drawn from the seed below, reproducible.")
    seed: int = like(DescentConfig, "seed")
    x0: float = setting(-1.5, label="start w₁", lo=-5.0, hi=5.0, step=0.001, fmt="%.3f")
    y0: float = setting(2.0, label="start w₂", lo=-5.0, hi=5.0, step=0.001, fmt="%.3f")
    at: int = setting(300, label="Show the descent up to step", lo=0, hi=MAX_STEPS,
                      help="Scrub through the descent; every step is already computed.")


@dataclass(frozen=True)
class SlotConfig:
    """One optimizer slot of /gd: torch.optim's hyperparameters with their widget bounds."""

    opt: str = setting("sgd", label="optimizer", choices=lambda: [*OPTIMIZERS, OFF], labels=_opt_label)
    lr: float = like(DescentConfig, "lr", 0.001)
    momentum: float = setting(0.9, label="momentum β", lo=0.0, hi=0.999, step=0.01, fmt="%.2f")
    alpha: float = setting(0.99, label="RMS decay α", lo=0.5, hi=0.9999, step=0.001, fmt="%.3f")
    beta1: float = setting(0.9, label="β₁ (momentum)", lo=0.0, hi=0.999, step=0.01, fmt="%.2f")
    beta2: float = setting(0.999, label="β₂ (RMS decay)", lo=0.5, hi=0.9999, step=0.0001, fmt="%.4f")
    weight_decay: float = setting(0.0, label="weight decay", lo=0.0, hi=1.0, step=0.01, fmt="%.2f")


HYPER = ("momentum", "alpha", "beta1", "beta2", "weight_decay")
SHORT = {"momentum": "β", "alpha": "α", "beta1": "β₁", "beta2": "β₂", "weight_decay": "wd"}
SLOT_OPTS = ("sgd", "momentum", "rmsprop", "adam")
SLOT_LRS = (0.001, 0.001, 0.01, 0.05)
# Session-state defaults by widget key, from GdView's declarations (not typed again here).
DEFAULTS: dict = {(settings_of(GdView)[n].url or n): v for n, v in defaults_of(GdView).items()
                  if n in ("surface", "condition", "steps", "noise", "rand", "seed")}


def sfx(i: int) -> str:
    """URL/widget-key suffix of optimizer slot i: slot 1 has none (``/gd?lr=0.42``)."""
    return "" if i == 0 else f"_{i + 1}"


def hyper_defaults(name: str) -> dict[str, float]:
    """The widgets' defaults for an optimizer: torch.optim's own (as in dltl_core.optim)."""
    base = {h: getattr(SlotConfig, h) for h in HYPER}
    return {**base, **(OPTIMIZERS[name].hyper if name in OPTIMIZERS else {})}


for _i, (_opt, _lr) in enumerate(zip(SLOT_OPTS, SLOT_LRS)):
    DEFAULTS.update({"opt" + sfx(_i): _opt, "lr" + sfx(_i): _lr})
    DEFAULTS.update({h + sfx(_i): v for h, v in hyper_defaults(_opt).items()})


__all__ = ["DEFAULTS", "GdView", "HYPER", "OFF", "SHORT", "SLOTS", "SLOT_LRS", "SLOT_OPTS", "SlotConfig",
           "hyper_defaults", "sfx"]
