"""Command line of the core: one sub-command per module in ``dltl_core.commands``.

A command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> dict``. With ``--json`` the returned dict is printed as one JSON
object on stdout; without it, ``format_text(result)`` (if the module has one) or
an indented JSON rendering is printed. Modules are discovered, so adding a
command never means editing this file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import pkgutil
import sys
from types import ModuleType
from typing import Any, Sequence

from dltl_core import commands as _commands_pkg
from dltl_core.cache import json_safe
from dltl_core.progress import Progress, library_bars_off


def _discover() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(_commands_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_commands_pkg.__name__}.{info.name}")
        if all(hasattr(module, attr) for attr in ("NAME", "HELP", "add_arguments", "run")):
            found[module.NAME] = module
    return found


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    """The top-level parser with one sub-parser per discovered command."""
    parser = argparse.ArgumentParser(
        prog="python -m dltl_core",
        description="DLTL core: the deep-learning teaching dashboard's work, from a terminal.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = _discover()
    for name, module in modules.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--progress", action="store_true",
                       help="draw the progress bar on stderr even when it is not a terminal")
    return parser, modules


def _error(args: argparse.Namespace, message: str) -> int:
    if args.json:
        print(json.dumps({"error": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, print its result. Returns the exit code."""
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    module = modules[args.command]
    quiet = not Progress.from_args(args).enabled  # --quiet or no terminal: no download bars either
    try:
        # stdout carries the result only: stray prints of libraries (e.g. a download's
        # "Downloading ...") go to stderr, so --json stays exactly one JSON object.
        with contextlib.redirect_stdout(sys.stderr), library_bars_off(quiet):
            result = module.run(args)
    except (ValueError, OSError, RuntimeError) as err:
        # Bad input is reported, not dumped as a traceback.
        return _error(args, str(err) or type(err).__name__)
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
