"""Checks shared by the sub-commands: values in range and output paths that can be written.

Every check runs before any training starts and raises one ``ValueError`` naming
the option, so ``cli.main`` answers with exit status 2 and ``{"error": ...}``
instead of a traceback after minutes of work. Nothing is silently clamped.

A config field's option is made by ``add_setting(parser, Config, "epochs")``: its flag,
default, choices and bounds (written into ``--help``, checked while parsing) all come from
the field's ``dltl_core.settings.setting`` declaration, and ``make_config`` turns the
config's own ``SettingsError`` into one message naming the flag. Other size-like options
use ``add_bounded`` with a ``Setting`` (e.g. ``dltl_core.models.mlp.WIDTH``).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from dltl_core.limits import PER_CLASS  # noqa: F401 - re-exported: train and search read it from here
from dltl_core.settings import Setting, SettingsError, defaults_of, field_kind, settings_of

LIST_LENGTH = Setting("values in the list", lo=1, hi=16)  # candidates of one search dimension


def declared(cls: type, name: str) -> Setting:
    """The ``Setting`` of the config field ``cls.name`` (e.g. ``TrainConfig``, ``"epochs"``)."""
    return settings_of(cls)[name]


def with_bounds(s: Setting, **changes: Any) -> Setting:
    """``s`` with some bounds changed (e.g. a lower ``hi`` where a command needs less)."""
    return dataclasses.replace(s, **changes)


def _shown(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def range_text(s: Setting) -> str:
    """``1 to 10,000``: the declared range in words, for ``--help``."""
    low = f"above {_shown(s.lo or 0)}" if s.positive else None if s.lo is None else f"at least {_shown(s.lo)}"
    high = None if s.hi is None else f"{'below' if s.below else 'at most'} {_shown(s.hi)}"
    if s.positive or s.below or None in (s.lo, s.hi):
        return " and ".join(filter(None, (low, high))) or "any number"
    return f"{_shown(s.lo)} to {_shown(s.hi)}"


def _number(text: str, kind: type) -> float:
    """``text`` as a finite number; "1e9" is read as a number so its size can be refused by name."""
    try:
        value = float(str(text).strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    if kind is int and value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return value


def _in_range(s: Setting, value: float, text: str) -> None:
    too_low = (s.positive and value <= (s.lo or 0.0)) or (s.lo is not None and value < s.lo)
    too_high = s.hi is not None and (value >= s.hi if s.below else value > s.hi)
    if too_low or too_high:
        raise argparse.ArgumentTypeError(f"must be {range_text(s)} ({s.label}), got {text}")


def bounded(s: Setting, kind: type = int) -> Callable[[str], Any]:
    """An argparse ``type``: a number of ``kind`` within ``s``'s bounds, else one clear error."""
    def parse(text: str) -> Any:
        value = _number(text, kind)
        _in_range(s, value, str(text).strip())
        return int(value) if kind is int else value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def bounded_list(item: Setting, count: Setting, kind: type = int) -> Callable[[str], tuple]:
    """An argparse ``type``: comma-separated numbers, each within ``item``, as many as ``count``."""
    one = bounded(item, kind)

    def parse(text: str) -> tuple:
        parts = [p for p in str(text).split(",") if p.strip()]
        if not (count.lo or 0) <= len(parts) <= (count.hi or math.inf):
            raise argparse.ArgumentTypeError(f"give {range_text(count)} values ({count.label}), got {len(parts)}")
        return tuple(one(p) for p in parts)

    parse.__name__ = "list"
    return parse


def checked_text(parse: Callable[[str], Any]) -> Callable[[str], str]:
    """An argparse ``type`` that checks ``text`` with ``parse`` and keeps the text itself
    (for options that a library parses later, e.g. ``space_from_args``)."""
    def keep(text: str) -> str:
        parse(text)
        return text

    keep.__name__ = "list"
    return keep


def add_bounded(group: Any, option: str, s: Setting, *, kind: type = int, default: Any = None, help: str = "",
                **kwargs: Any) -> None:
    """``group.add_argument(option)`` for a number within ``s``: the range is in its help."""
    shown = "" if default is None else f", default {default:g}" if isinstance(default, (int, float)) else ""
    bounds = f"{range_text(s)}{shown}"
    # "help (default: all)" becomes "help (default: all; 0 to 50)", not two brackets in a row
    text = f"{help[:-1]}; {bounds})" if help.endswith(")") else f"{help} ({bounds})"
    group.add_argument(option, type=bounded(s, kind), default=default, help=text.lstrip(), **kwargs)


@dataclasses.dataclass(frozen=True)
class Declared:
    """The declaration an option was made from (``action.declared``).

    Attributes:
        cls: the config class.
        name: the field.
        setting: the declaration the option checks (the field's, or a narrower one).
        own_default: the command has its own default (e.g. None: "the recipe's"), said in its help.
    """

    cls: type
    name: str
    setting: Setting
    own_default: bool


def flag_of(name: str) -> str:
    """The option of a config field: ``batch_size`` is ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _default_text(default: Any) -> str:
    if default is None:
        return ""
    return f"default {default:g}" if isinstance(default, (int, float)) and not isinstance(default, bool) \
        else f"default {default}"


def add_setting(group: Any, cls: type, name: str, flag: str | None = None, *, default: Any = dataclasses.MISSING,
                help: str | None = None, setting: Setting | None = None, **kwargs: Any) -> None:
    """``group.add_argument`` for the config field ``cls.name``, all from its declaration.

    The flag (``flag_of(name)`` unless given), the default, the choices, the type and the
    bounds (written into the help and checked while parsing) are the declaration's.

    Args:
        group: a parser or argument group.
        cls: the config class (``TrainConfig``).
        name: the field.
        flag: the option, when it is not ``flag_of(name)``.
        default: a command's own default (``None``: "the mode's default"); the declaration's otherwise.
        help: the help text before the bounds (default: the declaration's help or label).
        setting: a narrower declaration of the same field (``with_bounds``), e.g. a batch cap.
        **kwargs: more ``add_argument`` arguments (``metavar``).
    """
    s = setting or settings_of(cls)[name]
    kind = field_kind(cls, name)
    value = defaults_of(cls)[name] if default is dataclasses.MISSING else default
    text = (help or s.help or s.label).rstrip(".")
    options = s.options()
    number = kind in (int, float) and not options
    extra = "; ".join(filter(None, (range_text(s) if number else "", _default_text(value))))
    if extra:  # "help (default: all)" becomes "help (default: all; 0 to 50)", not two brackets
        text = f"{text[:-1]}; {extra})" if text.endswith(")") else f"{text} ({extra})"
    if options:
        kwargs["choices"] = options
    elif number:
        kwargs["type"] = bounded(s, kind)
    action = group.add_argument(flag or flag_of(name), default=value, help=text, **kwargs)
    # What it was made from, for tests/test_declarations.py (every option equals its declaration).
    action.declared = Declared(cls, name, s, default is not dataclasses.MISSING)


def add_config(group: Any, cls: type, fields: Iterable[str], flags: Mapping[str, str] | None = None) -> None:
    """``add_setting`` for each of ``fields`` of ``cls`` (``flags``: options that differ from the field name)."""
    for name in fields:
        add_setting(group, cls, name, (flags or {}).get(name))


def make_config(cls: Callable[..., Any], flags: Mapping[str, str] | None = None, *, other: str | None = None,
                **values: Any) -> Any:
    """``cls(**values)``; the config's ``SettingsError`` becomes one ``ValueError`` naming the flag.

    ``cli.main`` reports that as one line with exit status 2, before any work.

    Args:
        cls: the config class (or a function that builds one from the same keywords).
        flags: field -> option where it is not ``flag_of(field)``.
        other: the option of every field not in ``flags`` (``--fixed`` for its KEY=VALUE list).
        **values: the fields.
    """
    try:
        return cls(**values)
    except SettingsError as err:
        name, message = next(iter(err.problems.items()))
        raise ValueError(f"{(flags or {}).get(name, other or flag_of(name))}: {message}") from None


def check_range(option: str, value: Any, low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> None:
    """Refuse ``value`` outside [low, high] (``None`` values are "not given" and pass).

    Args:
        option: the option as the user typed it, e.g. ``"--batch-size"``.
        low, high: bounds; ``None`` means unbounded on that side.
        low_open, high_open: exclude the bound itself.
    """
    if value is None:
        return
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "" if low is None else f"{'above' if low_open else 'at least'} {low:g}"
        hi = "" if high is None else f"{'below' if high_open else 'at most'} {high:g}"
        raise ValueError(f"{option} must be {' and '.join(filter(None, (lo, hi)))}, got {value}")


def _probe(option: str, path: str, folder: Path) -> None:
    """Create and remove a file in ``folder``: the only sure test that it takes files.

    ``os.access`` says yes to root everywhere, also in ``/proc`` and ``/sys`` where no
    file can be created; the write then failed after the whole training run.
    """
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dltl-probe-"):
            pass
    except OSError:
        raise ValueError(f"{option} {path}: cannot write files in {folder}") from None


def writable_file(option: str, path: str | None) -> Path | None:
    """Check that ``path`` can be written as a file (its folder exists and takes files).

    Returns:
        the absolute path, or None when the option was not given.
    """
    if path is None:
        return None
    p = Path(path).expanduser().absolute()
    if p.is_dir():
        raise ValueError(f"{option} {path}: is a folder, expected a file name")
    if not p.parent.is_dir():
        raise ValueError(f"{option} {path}: the folder {p.parent} does not exist")
    # The file is written next to itself and renamed (atomic), so the folder must be writable.
    if not os.access(p.parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"{option} {path}: not writable")
    _probe(option, path, p.parent)
    return p


def writable_dir(option: str, path: str | None) -> Path | None:
    """Check that ``path`` is (or can be created as) a writable folder; nothing is created here.

    Returns:
        the absolute path, or None when the option was not given.
    """
    if path is None:
        return None
    p = Path(path).expanduser().absolute()
    if p.exists():
        if not p.is_dir():
            raise ValueError(f"{option} {path}: exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ValueError(f"{option} {path}: not writable")
        _probe(option, path, p)
        return p
    parent = p.parent
    while not parent.exists():  # created with parents=True later: the first existing one decides
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: cannot create a folder under {parent}")
    _probe(option, path, parent)
    return p
