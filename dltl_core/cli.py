"""Command line of the core: one sub-command per module in ``dltl_core.commands``.

A command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> dict``. With ``--json`` the returned dict is printed as one JSON
object on stdout; without it, ``format_text(result)`` (if the module has one) or
an indented JSON rendering is printed. Modules are discovered, so adding a
command never means editing this file.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.util
import json
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from dltl_core import commands as _commands_pkg


def _literal_names(path: str) -> dict[str, str]:
    """Top-level ``NAME = "..."`` / ``HELP = "..."`` string constants of a module's source."""
    found: dict[str, str] = {}
    for node in ast.parse(Path(path).read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            found[node.targets[0].id] = node.value.value
    return found


def _catalogue() -> dict[str, tuple[str, str]]:
    """{command: (module name, help)} of every command module, read from source without importing
    it: ``--help`` and one command then import only what that command needs (no timm, optuna,
    pandas for ``train``)."""
    out: dict[str, tuple[str, str]] = {}
    for info in sorted(pkgutil.iter_modules(_commands_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        full = f"{_commands_pkg.__name__}.{info.name}"
        spec = importlib.util.find_spec(full)
        consts = _literal_names(spec.origin) if spec and spec.origin else {}
        if "NAME" not in consts or "HELP" not in consts:  # not literal: ask the module itself
            module = importlib.import_module(full)
            if not all(hasattr(module, a) for a in ("NAME", "HELP", "add_arguments", "run")):
                continue
            consts = {"NAME": module.NAME, "HELP": module.HELP}
        out[consts["NAME"]] = (full, consts["HELP"])
    return out


def _discover(only: str | None = None) -> dict[str, ModuleType]:
    """Import the command modules (all, or just ``only``), keyed by command name."""
    found: dict[str, ModuleType] = {}
    for name, (full, _) in _catalogue().items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(full)
        if all(hasattr(module, attr) for attr in ("NAME", "HELP", "add_arguments", "run")):
            found[module.NAME] = module
    return found


class UsageError(Exception):
    """A command line argparse refuses; ``main`` reports it as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's refusals as one line (``{"error": ...}`` with --json), not usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    """The top-level parser with one sub-parser per discovered command.

    Args:
        only: build this command's options only (the others are listed with their help);
            None builds every command (imports them all).
    """
    parser = _Parser(
        prog="python -m dltl_core",
        description="DLTL core: the deep-learning teaching dashboard's work, from a terminal.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = _discover(only)
    for name, (_, help_text) in _catalogue().items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        module = modules.get(name)
        if module is None:
            continue
        module.add_arguments(p)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--progress", action="store_true",
                       help="draw the progress bar on stderr even when it is not a terminal")
    return parser, modules


def _command_in(argv: Sequence[str]) -> str:
    """The sub-command named in ``argv`` ('' when none): the first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), "")


def _error(args: argparse.Namespace | None, message: str, as_json: bool = False) -> int:
    if as_json or (args is not None and args.json):
        print(json.dumps({"error": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return 2


OUT_OF_MEMORY = "ran out of memory: choose smaller sizes (each option's --help gives its bounds)"


def _is_allocation_failure(text: str) -> bool:
    """Whether an error's text is an allocator's (CPU ``DefaultCPUAllocator`` or CUDA's OOM)."""
    low = text.lower()
    return "can't allocate memory" in low or "out of memory" in low or "defaultcpuallocator" in low


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, print its result. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = build_parser(_command_in(argv))
    try:
        args = parser.parse_args(argv)
    except UsageError as err:  # checked while parsing: nothing was loaded yet
        return _error(None, str(err), as_json="--json" in argv)
    if not args.command:
        parser.print_help()
        return 0
    from dltl_core.cache import json_safe  # these import torch: not needed for --help
    from dltl_core.progress import Progress, library_bars_off

    module = modules[args.command]
    quiet = not Progress.from_args(args).enabled  # --quiet or no terminal: no download bars either
    try:
        # stdout carries the result only: stray prints of libraries (e.g. a download's
        # "Downloading ...") go to stderr, so --json stays exactly one JSON object.
        with contextlib.redirect_stdout(sys.stderr), library_bars_off(quiet):
            result = module.run(args)
    except MemoryError:
        return _error(args, OUT_OF_MEMORY)
    except (ValueError, OSError, RuntimeError) as err:
        # Bad input is reported, not dumped as a traceback; an allocator's text is not for people.
        text = str(err) or type(err).__name__
        return _error(args, OUT_OF_MEMORY if _is_allocation_failure(text) else text)
    except KeyboardInterrupt:
        _error(args, "interrupted")
        return 130
    if args.json:
        print(json.dumps(json_safe(result)))
    elif hasattr(module, "format_text"):
        print(module.format_text(result))
    else:
        print(json.dumps(json_safe(result), indent=2))
    return 0
