"""The binder: one config class -> widgets, session state and URL state, both ways.

A config dataclass declares each setting once (``dltl_core.settings.setting``: label,
bounds, choices, help, URL name). The binder reads that declaration to

* load the URL into session state on a session's first run, parsed and clamped into the
  widget's range; each bad parameter gives one warning (never an exception);
* draw each field's widget (slider, number input, select box, toggle...) with the
  declared bounds, so a widget can never hold a value the URL or the config refuses;
* build the config from the widgets' values (the config's ``__post_init__`` is the only
  validation: one message per bad field) and write the values back into the URL.

Whole config, default layout (any page, e.g. the results page)::

    cfg = ui.bind(DescentConfig, prefix="gd")        # widgets in declaration order
    if cfg is not None: ...

Own layout (several columns, conditional widgets)::

    b = Binder(LayersView, prefix="ly")              # widget keys ly_<url name>
    b.load()                                          # URL -> session state, once
    epochs = b.widget("epochs", where=col1)
    cfg = b.build()                                   # None, with warnings, if invalid
    b.sync(); b.report()                              # session state -> URL; URL problems

Repeated groups (the four optimizer slots of /gd) take a ``suffix``: URL names and
widget keys become ``lr_2``, ``momentum_2``... Fine-tune settings on the transfer page
or the results page's filters bind the same way: declare a frozen dataclass with
``setting(...)`` fields and call ``ui.bind`` (or ``Binder`` for a custom layout).
"""

from __future__ import annotations

from typing import Any, Iterable

import streamlit as st

from dltl_core.query import parse_value
from dltl_core.settings import Setting, SettingsError, defaults_of, field_kind, settings_of
from dltl_ui.urlstate import UrlState
from dltl_ui.widgets import draw  # widgets know Streamlit's signatures

class Binder:
    """Binds the ``setting`` fields of one config class to widgets, session state and the URL.

    Args:
        cls: a dataclass whose fields are declared with ``dltl_core.settings.setting``.
        prefix: widget-key prefix (``"lr"`` -> key ``lr_steps``); empty for bare keys.
        suffix: added to URL names and keys (``"_2"`` for a repeated group).
        fields: the fields to bind (default: every declared field).
        defaults: overrides of the class defaults for this page.
        url: the page's ``UrlState`` (one per page collects every URL problem).
        omit_default: leave fields that equal their default out of the URL.
    """

    def __init__(self, cls: type, prefix: str = "", suffix: str = "", *, fields: Iterable[str] | None = None,
                 defaults: dict[str, Any] | None = None, url: UrlState | None = None,
                 omit_default: bool = False) -> None:
        self.cls, self.prefix, self.suffix = cls, prefix, suffix
        declared = settings_of(cls)
        self.settings: dict[str, Setting] = {n: declared[n] for n in (fields or declared)}
        self.defaults = {**defaults_of(cls), **(defaults or {})}
        self.url = url if url is not None else UrlState()
        self.omit_default = omit_default
        self.problems: dict[str, str] = {}

    # ------------------------------------------------------------------ names
    def param(self, name: str) -> str:
        """The URL parameter of a field."""
        return (self.settings[name].url or name) + self.suffix

    def key(self, name: str) -> str:
        """The widget / session-state key of a field."""
        base = (self.settings[name].url or name) + self.suffix
        return f"{self.prefix}_{base}" if self.prefix else base

    # ------------------------------------------------------------------ URL -> state
    def parse(self, name: str, raw: str | None) -> Any:
        """The value of ``raw`` for a field, parsed, clamped into the widget range or defaulted.

        The rules are ``dltl_core.query.parse_value``'s (the code export reads links the same
        way). A bad value records one message in ``self.url.problems`` (once per parameter).
        """
        value, problems = parse_value(self.settings[name], field_kind(self.cls, name), self.defaults[name],
                                      self.param(name), raw)
        self.url.problems.extend(problems)
        return value

    def load(self) -> None:
        """First run of a session (or after a widget was dropped): fill session state from the URL."""
        ss = st.session_state
        for name in self.settings:
            key = self.key(name)
            if key not in ss:
                raw = self.url.raw(self.param(name)) if self.settings[name].url_state else None
                ss[key] = self.parse(name, raw)

    # ------------------------------------------------------------------ widgets
    def value(self, name: str) -> Any:
        """The current value of a field (session state, else its default)."""
        return st.session_state.get(self.key(name), self.defaults[name])

    def widget(self, name: str, where: Any = None, **overrides: Any) -> Any:
        """Draw the field's widget from its declaration; returns its value.

        Args:
            name: the field.
            where: a container or column (default: the main area).
            **overrides: passed to the Streamlit widget (``label``, ``disabled``, ``on_change``...).
        """
        return draw(self, name, where if where is not None else st, overrides)

    # ------------------------------------------------------------------ state -> config / URL
    def values(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """Current values of the bound fields (or of ``names``), as the config takes them."""
        out = {}
        for name in names or self.settings:
            v = self.value(name)
            out[name] = tuple(v) if field_kind(self.cls, name) is tuple else v
        return out

    def build(self, warn: bool = True, **extra: Any) -> Any:
        """The config from the widgets (plus ``extra`` fields), or None when it is invalid.

        Each bad field's message is kept in ``self.problems`` and, with ``warn``, shown
        once as a warning.
        """
        try:
            cfg = self.cls(**{**self.values(), **extra})
        except SettingsError as err:
            self.problems = err.problems
        except ValueError as err:
            self.problems = {"": str(err)}
        else:
            self.problems = {}
            return cfg
        if warn:
            for msg in self.problems.values():
                st.warning(msg[:1].upper() + msg[1:] + ".", icon="⚠️")
        return None

    def encoded(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """URL parameters for the current values of ``names`` (default: all URL-kept fields)."""
        out = {}
        for name in names or self.settings:
            if not self.settings[name].url_state:
                continue
            v = self.value(name)
            if self.omit_default and v == self.defaults[name]:
                continue
            out[self.param(name)] = list(v) if isinstance(v, tuple) else v
        return out

    def sync(self, names: Iterable[str] | None = None) -> None:
        """Write the current values into the URL (only what changed)."""
        values = self.encoded(names)
        if self.omit_default:
            self.url.drop(*[self.param(n) for n in (names or self.settings) if self.param(n) not in values])
        self.url.sync(**values)

    def report(self) -> None:
        """Show the URL's problems, one warning per bad parameter."""
        self.url.report()


def bind(cls: type, prefix: str = "", *, where: Any = None, columns: int = 0, **kwargs: Any) -> Any:
    """Bind a whole config in one call: load the URL, draw every widget, build, sync, report.

    Args:
        cls: the config class (fields declared with ``setting``).
        prefix: widget-key prefix.
        where: container for the widgets (default: the main area).
        columns: lay the widgets out in this many columns (0 = one under the other).
        **kwargs: passed to ``Binder``.

    Returns:
        The config, or None when the widgets' values do not make a valid one (warned).
    """
    b = Binder(cls, prefix, **kwargs)
    b.load()
    area = where if where is not None else st
    cols = area.columns(columns) if columns else None
    for i, name in enumerate(b.settings):
        b.widget(name, where=cols[i % columns] if cols else area)
    cfg = b.build()
    b.sync()
    b.report()
    return cfg


__all__ = ["Binder", "bind"]
