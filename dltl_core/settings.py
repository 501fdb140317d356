"""Settings declared once: a config dataclass's fields carry their bounds, choices and labels.

A field declared with ``setting(...)`` says everything the rest of the program needs
to know about it: its label and help for a widget, its URL parameter name, its bounds
or its allowed choices. ``check(self)`` in the dataclass's ``__post_init__`` validates
every declared field against that declaration, so a config that exists is valid:

    @dataclass(frozen=True)
    class Knobs:
        lr: float = setting(0.01, label="learning rate η", lo=0.0, hi=100.0, help="The step size.")
        opt: str = setting("sgd", label="optimizer", choices=OPTIMIZERS.names)

        def __post_init__(self) -> None:
            check(self, lambda c: {"lr": "the learning rate must be positive"} if c.lr <= 0 else None)

A bad field gives one clear message (``SettingsError.problems`` maps each bad field to
its message); the Streamlit binder (``dltl_ui.binder``) builds widgets, session state and
URL state from the same declaration. This module never imports Streamlit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

Choices = Sequence[Any] | Callable[[], Sequence[Any]]


@dataclass(frozen=True)
class Setting:
    """What one config field is, for validation, widgets and the URL.

    Attributes:
        label: widget label and the field's name in messages (``"learning rate η"``).
        lo: smallest allowed value (numbers), inclusive.
        hi: largest allowed value (numbers), inclusive.
        ui_lo: the widget's (and the URL's) lower end where the core accepts more (default ``lo``).
        ui_hi: the widget's (and the URL's) upper end where the core accepts more (default ``hi``):
            a learning rate of 1e9 is valid for the core (it diverges) but not for a slider.
        step: widget step.
        choices: allowed values, or a callable returning them (e.g. a registry's ``names``);
            for a tuple-typed field, the allowed items of the tuple.
        ticks: the values a ``select_slider`` offers for a number (validation uses ``lo``/``hi``;
            a URL value between ticks snaps to the nearest one).
        labels: display text of a choice (a callable or a mapping).
        help: widget tooltip.
        url: URL parameter name (default: the field name).
        widget: ``slider``, ``number``, ``select``, ``select_slider``, ``radio``, ``toggle``,
            ``checkbox``, ``multiselect`` (default: from the type and the declaration).
        fmt: printf-style number format for the widget (``"%.3f"``).
        positive: the value must be above ``lo`` (exclusive), e.g. a learning rate above 0
            while its widget starts at 0.
        below: the value must be below ``hi`` (exclusive), e.g. a share in [0, 1).
        noun: how a bad choice is named in messages (``unknown surface 'x'``); default the field name.
        url_state: whether the field is kept in the URL at all.
        optional: None is allowed too ("not given": the mode's default, off); numbers are
            then checked against the bounds.
        kind: the field's scalar type when its default does not say it (an optional field
            whose default is None: ``int``, ``float``).
    """

    label: str
    lo: float | None = None
    hi: float | None = None
    ui_lo: float | None = None
    ui_hi: float | None = None
    step: float | None = None
    choices: Choices | None = None
    ticks: tuple[float, ...] | None = None
    labels: Callable[[Any], str] | Mapping[Any, str] | None = None
    help: str | None = None
    url: str | None = None
    widget: str | None = None
    fmt: str | None = None
    positive: bool = False
    below: bool = False
    noun: str | None = None
    url_state: bool = True
    optional: bool = False
    kind: type | None = None

    @property
    def widget_range(self) -> tuple[float | None, float | None]:
        """The range widgets and the URL offer."""
        return (self.lo if self.ui_lo is None else self.ui_lo, self.hi if self.ui_hi is None else self.ui_hi)

    def options(self) -> list[Any]:
        """The allowed choices, resolved (a registry may have grown since declaration)."""
        if self.choices is None:
            return []
        return list(self.choices() if callable(self.choices) else self.choices)

    def label_of(self, value: Any) -> str:
        """Display text of one choice."""
        if callable(self.labels):
            return str(self.labels(value))
        if isinstance(self.labels, Mapping):
            return str(self.labels.get(value, value))
        return str(value)


def setting(default: Any, **declaration: Any) -> Any:
    """A dataclass field with its ``Setting`` declaration (see the module docstring).

    Args:
        default: the field's default (immutable: numbers, strings, tuples).
        **declaration: ``Setting``'s attributes.
    """
    return dataclasses.field(default=default, metadata={"setting": Setting(**declaration)})


def like(cls: type, name: str, default: Any = dataclasses.MISSING, **changes: Any) -> Any:
    """A field declared like ``cls.name`` (same label, bounds, help...) with some changes.

    One declaration serves a page's view config and the core config it builds, e.g. the
    /gd page's ``steps`` (0 allowed: nothing moves) from ``DescentConfig.steps``.
    """
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    s = dataclasses.replace(f.metadata["setting"], **changes)
    return dataclasses.field(default=f.default if default is dataclasses.MISSING else default,
                             metadata={"setting": s})


# The one seed declaration of every page and command (``seed: int = seed_field()``): torch,
# NumPy and Python's random all take any seed in [0, 2^31 - 1]; widgets and links offer 0-9999.
SEED = Setting("seed", lo=0, hi=2**31 - 1, ui_hi=9999, step=1, widget="number",
               help="Seeds the split, the initial weights and the batch order: the same seed gives the same run.")


def field_from(s: Setting, default: Any, **changes: Any) -> Any:
    """A dataclass field declared by an existing ``Setting`` (a model's ``WIDTH``), with some changes."""
    return dataclasses.field(default=default, metadata={"setting": dataclasses.replace(s, **changes)})


def seed_field(default: int = 0, **changes: Any) -> Any:
    """A ``seed`` field declared by ``SEED`` (``changes``: e.g. its label on a page)."""
    return field_from(SEED, default, **changes)


def settings_of(cls_or_obj: Any) -> dict[str, Setting]:
    """The declared fields of a config class (or instance), in declaration order."""
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(cls_or_obj) if "setting" in f.metadata}


def defaults_of(cls: type) -> dict[str, Any]:
    """Each declared field's default value."""
    return {f.name: f.default for f in dataclasses.fields(cls) if "setting" in f.metadata}


class SettingsError(ValueError):
    """A config that cannot exist; ``problems`` maps each bad field to one message."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(self.problems.values()))


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def problem(name: str, s: Setting, value: Any, kind: type) -> str | None:
    """The message for one field value against its declaration, or None when it is fine."""
    what = "the " + (s.noun or s.label[:1].lower() + s.label[1:])
    if value is None and s.optional:
        return None
    if kind is tuple and s.lo is not None and isinstance(value, tuple):
        # a tuple of numbers (a search space's candidates): every item within the bounds
        item = int if s.step == 1 else float
        return next(filter(None, (problem(name, s, v, item) for v in value)), None)
    if kind is bool:
        return None if isinstance(value, bool) else f"{what} must be true or false, got {value!r}"
    if kind in (int, float):
        x = _num(value)
        if x is None or not math.isfinite(x):
            return f"{what} must be a finite number, got {value!r}"
        if kind is int and x != int(x):
            return f"{what} must be a whole number, got {value!r}"
        if s.positive and x <= (s.lo or 0.0):
            return f"{what} must be a positive number, got {value:g}"
        if s.below and s.hi is not None and x >= s.hi:
            return f"{what} must be at least {s.lo or 0:g} and below {s.hi:g}, got {value:g}"
        if s.lo is not None and s.hi is not None and not s.lo <= x <= s.hi:
            return f"{what} must be between {s.lo:g} and {s.hi:g}, got {value:g}"
        if s.lo is not None and x < s.lo:
            return f"{what} must be at least {s.lo:g}, got {value:g}"
        if s.hi is not None and x > s.hi:
            return f"{what} must be at most {s.hi:g}, got {value:g}"
        return None
    options = s.options()
    if not options:
        return None
    items = value if isinstance(value, tuple) else (value,)
    bad = [v for v in items if v not in options]
    if bad:
        return f"unknown {s.noun or name} {bad[0]!r}; choose from {', '.join(map(str, options))}"
    return None


def field_kind(cls: Any, name: str) -> type:
    """The scalar type of a declared field: bool, int, float, str or tuple."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    declared = f.metadata.get("setting")
    if declared is not None and declared.kind is not None:
        return declared.kind
    default = f.default
    return type(default) if isinstance(default, (bool, int, float, str, tuple)) else str


Rules = Callable[[Any], Mapping[str, str] | None]


def check(obj: Any, rules: Rules | None = None) -> None:
    """Validate every declared field of ``obj``; call it from ``__post_init__``.

    Args:
        obj: the config instance.
        rules: the class's own rules beyond bounds and choices: ``rules(obj)`` returns
            field -> message for what is wrong. A field that already fails its declaration
            keeps that one message; when declared fields are bad, a rule that trips over
            them (TypeError/ValueError) is skipped.

    Raises:
        SettingsError: one message per bad field.
    """
    found: dict[str, str] = {}
    for name, s in settings_of(obj).items():
        msg = problem(name, s, getattr(obj, name), field_kind(obj, name))
        if msg:
            found[name] = msg
    if rules is not None:
        try:
            extra = dict(rules(obj) or {})
        except (TypeError, ValueError, OverflowError):
            if not found:
                raise
            extra = {}
        for name, msg in extra.items():
            found.setdefault(name, msg)
    if found:
        raise SettingsError(found)


__all__ = ["SEED", "Setting", "SettingsError", "seed_field", "check", "defaults_of", "field_from", "field_kind", "like", "problem", "setting",
           "settings_of"]
