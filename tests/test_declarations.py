"""One declaration per setting (issue 18): every command-line option, widget range and URL name
made from a config field equals that field's ``setting(...)`` declaration.

Everything is found by introspection: the configs by walking the packages for dataclasses with
declared fields, the options from ``dltl_core.cli.build_parser`` (``add_setting`` marks each
option with the declaration it was made from), the widgets from the page binders. No value is
listed by hand; the few options that are deliberately not made from a declaration are named
with the reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import dltl_core
import dltl_ui
from dltl_core.cli import build_parser
from dltl_core.commands._common import range_text
from dltl_core.search import SearchSpace
from dltl_core.settings import SEED, Setting, SettingsError, defaults_of, field_kind, settings_of
from dltl_core.transfer import TransferConfig

ROOT = Path(dltl_core.__file__).resolve().parents[1]
# Where a bound must never be typed again: the views and the command line.
SURFACES = [*(ROOT / "pages").glob("*.py"), *(ROOT / "dltl_ui").rglob("*.py"),
            *(ROOT / "dltl_core" / "commands").glob("*.py")]
# search --lr/--weight-decay/--optimizers/... are comma lists parsed by space_from_args into a
# SearchSpace, whose declarations check them (make_config names the flag); search --arch takes a
# comma list or 'all' with --fixed, so it cannot be the declaration's choice (its default is).
NOT_FROM_A_DECLARATION = {("search", f.name) for f in dataclasses.fields(SearchSpace)} | {("search", "arch")}


def _configs() -> list[type]:
    """Every dataclass with declared fields in dltl_core and dltl_ui (modules walked, not listed)."""
    found: dict[str, type] = {}
    for pkg in (dltl_core, dltl_ui):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if info.name.endswith("__main__") or ".codegen" in info.name:
                continue
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if (isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__
                        and settings_of(obj)):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


@pytest.fixture(scope="module")
def configs() -> list[type]:
    return _configs()


@pytest.fixture(scope="module")
def commands() -> dict[str, argparse.ArgumentParser]:
    parser, _ = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


def _declared(commands):
    return [(c, a, a.declared) for c, p in commands.items() for a in p._actions if hasattr(a, "declared")]


def _required(cls: type) -> dict:
    """Values for the fields a config requires that are not settings (TransferConfig's folder)."""
    return {f.name: "x" for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


def test_the_main_configs_declare_every_setting(configs):
    names = {c.__name__ for c in configs}
    assert {"TrainConfig", "TransferConfig", "RangeTestConfig", "SearchConfig", "SearchSpace", "DataSpec",
            "DescentConfig", "OverfitConfig", "TransferView", "GdView"} <= names
    for cls in configs:
        if cls.__module__.startswith("dltl_ui"):
            continue  # a view may keep page-only fields (the /gd start point) undeclared
        plain = [f.name for f in dataclasses.fields(cls) if "setting" not in f.metadata
                 and not (dataclasses.is_dataclass(f.type) or f.name in ("data", "space", "hyper", "start"))]
        assert not plain, f"{cls.__name__}: fields validated by hand, not declared: {plain}"


def test_every_seed_is_the_one_seed_declaration(configs):
    for cls in configs:
        for name, s in settings_of(cls).items():
            if name.endswith("seed"):
                assert (s.lo, s.hi, s.widget_range) == (SEED.lo, SEED.hi, SEED.widget_range), f"{cls.__name__}.{name}"


def test_each_cli_default_is_its_declarations(commands):
    options = _declared(commands)
    assert len(options) >= 40  # train, transfer, search, lr-range and descend make theirs from declarations
    for command, action, d in options:
        where = f"{command} {action.option_strings[0]}"
        assert d.setting == settings_of(d.cls)[d.name], where
        if d.own_default:  # "the mode's" / "the recipe's": the help says which
            assert "default" in action.help, where
        else:
            assert action.default == defaults_of(d.cls)[d.name], where


def test_each_cli_choice_list_is_its_declarations(commands):
    for command, action, d in _declared(commands):
        if d.setting.options():
            assert list(action.choices) == d.setting.options(), f"{command} {action.option_strings[0]}"


def _ends(s: Setting, kind: type) -> tuple[list[float], list[float]]:
    """(values the declaration accepts at its ends, values just outside them)."""
    inside, outside = [], []
    if s.lo is not None:
        below = s.lo - (1 if kind is int else max(abs(s.lo), 1) * 1e-3)
        outside.append(s.lo if s.positive else below)
        if not s.positive:
            inside.append(s.lo)
    if s.hi is not None:
        outside.append(s.hi if s.below else s.hi + (1 if kind is int else max(abs(s.hi), 1) * 1e-3))
        if not s.below:
            inside.append(s.hi)
    return inside, outside


def test_each_cli_bound_is_its_declarations(commands):
    """The option accepts exactly what the config accepts at both ends, and says the range."""
    checked = 0
    for command, action, d in _declared(commands):
        kind = field_kind(d.cls, d.name)
        if kind not in (int, float) or d.setting.options():
            continue
        where = f"{command} {action.option_strings[0]}"
        assert range_text(d.setting) in " ".join(action.help.split()), where
        inside, outside = _ends(d.setting, kind)
        for v in inside:
            parsed = action.type(str(int(v) if kind is int else v))
            try:  # the config takes it too (a rule across fields may refuse the mix, naming another)
                d.cls(**{**_required(d.cls), d.name: parsed})
            except SettingsError as err:
                assert d.name not in err.problems, where
        for v in outside:
            with pytest.raises(argparse.ArgumentTypeError):
                action.type(str(int(v) if kind is int else v))
            with pytest.raises(SettingsError) as err:
                d.cls(**{**_required(d.cls), d.name: kind(v)})
            assert d.name in err.value.problems, where
        checked += 1
    assert checked >= 25


def test_options_of_a_config_field_are_made_from_its_declaration(commands):
    """An option whose name is a declared field of a config its command uses is made by
    ``add_setting`` (so its default and bounds cannot drift), apart from the named exceptions."""
    parser, modules = build_parser()
    for command, sub in commands.items():
        used = [v for v in vars(modules[command]).values()
                if isinstance(v, type) and dataclasses.is_dataclass(v) and settings_of(v)]
        declared = {n for cls in used for n in settings_of(cls)}
        for action in sub._actions:
            if action.dest in declared and (command, action.dest) not in NOT_FROM_A_DECLARATION:
                assert hasattr(action, "declared"), f"{command} {action.option_strings} is typed by hand"


def test_search_arch_default_is_the_declarations(commands):
    arch = next(a for a in commands["search"]._actions if a.dest == "arch")
    assert arch.default == defaults_of(importlib.import_module("dltl_core.search").SearchConfig)["arch"]


def test_the_transfer_page_binds_its_settings_from_transfer_config():
    """Widget ranges, ticks, labels and URL names of /transfer are TransferConfig's; the old links'
    parameters (k, cap, seed) keep their names and widget keys."""
    from dltl_ui.transfer import train as tt
    from dltl_ui.binder import Binder
    from dltl_ui.urlstate import UrlState

    b = Binder(tt.TransferView, "tl", url=UrlState())
    core = settings_of(TransferConfig)
    shared = [n for n in b.settings if n in core]
    assert len(shared) >= 8
    for name in shared:
        mine, theirs = b.settings[name], core[name]
        assert dataclasses.replace(mine, optional=False, kind=None) == \
            dataclasses.replace(theirs, optional=False, kind=None), name
        assert b.param(name) == (theirs.url or name) and b.key(name) == f"tl_{theirs.url or name}"
    assert {"k", "cap", "seed"} <= {b.param(n) for n in b.settings}
    for name, value in defaults_of(tt.TransferView).items():  # every page default is a valid core value
        if name in core:
            TransferConfig(data="x", **{name: value})


def _numbers(x: float) -> list[str]:
    """How a bound may be typed: ``200``, ``200.0``, ``2e2``... (integral values also as ints)."""
    out = {repr(float(x)), f"{x:g}"}
    if float(x).is_integer():
        out.add(str(int(x)))
    return [re.escape(t) for t in out]


def _bound_pairs(configs) -> dict[tuple[float, float], str]:
    """(lo, hi) of every core declaration and its widget range, with a field that has it."""
    pairs: dict[tuple[float, float], str] = {}
    for cls in configs:
        if not cls.__module__.startswith("dltl_core"):
            continue
        for name, s in settings_of(cls).items():
            for lo, hi in ((s.lo, s.hi), s.widget_range):
                # (0, 1) is any share, fraction or probability: too common a pair to mean a copy
                if lo is not None and hi is not None and (lo, hi) != (0, 1) and hi > lo:
                    pairs.setdefault((lo, hi), f"{cls.__name__}.{name}")
    return pairs


def _typed_pairs(text: str, lo: float, hi: float):
    """Where ``lo, hi`` is typed as a widget's or a link reader's range (``st.slider("...", 5, 200``,
    ``url.int("cap", 40, 5, 200)``). (A command's own ``Setting`` for an option that is no config
    field, e.g. predict's ``--top``, may share a small range by chance: those are not searched.)"""
    for a in _numbers(lo):
        for b in _numbers(hi):
            yield from re.finditer(rf"(slider|number_input|\.int|\.float)\([^\n]{{0,120}}?(?<![\w.]){a}\s*,\s*{b}"
                                   rf"(?![\w.])", text)


def test_no_declared_bound_is_typed_again_in_the_views_or_commands(configs):
    """A declared field's range (e.g. photos per species 5 to 200) typed again in a page, a
    dltl_ui module or a command is a second truth that can drift."""
    pairs = _bound_pairs(configs)
    assert len(pairs) >= 20
    hits = []
    for path in SURFACES:
        text = path.read_text(encoding="utf-8")
        for (lo, hi), owner in pairs.items():
            for m in _typed_pairs(text, lo, hi):
                line = text[: m.start()].count("\n") + 1
                hits.append(f"{path.relative_to(ROOT)}:{line}: {lo:g}, {hi:g} of {owner}")
    assert not hits, "\n".join(hits)


def test_the_bound_search_finds_a_typed_range():
    """The search above would have caught the old transfer page (its cap slider, typed twice)."""
    old = 'cap = st.slider("Photos per species (at most)", 5, 200, url.int("cap", tt.DEFAULT_CAP, 5, 200), step=5)'
    assert len(list(_typed_pairs(old, 5, 200))) == 2
    assert len(list(_typed_pairs('seed = st.number_input("Seed", 0, 9999, key="tl_seed")', 0, 9999))) == 1
    assert not list(_typed_pairs("BATCH_OPTIONS = (1, 4, 8)", 1, 4))


def test_no_hand_check_repeats_a_declared_option(commands):
    """``check_range("--x", ...)`` for an option made from a declaration would be a second rule."""
    for command, sub in commands.items():
        declared = {o for a in sub._actions if hasattr(a, "declared") for o in a.option_strings}
        module = ROOT / "dltl_core" / "commands" / f"{command.replace('-', '_')}.py"
        text = module.read_text(encoding="utf-8")
        again = [o for o in re.findall(r'check_range\("(--[\w-]+)"', text) if o in declared]
        assert not again, f"{command}: {again}"
