"""The command line: discovered sub-commands, --help, --json on every one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dltl_core.cli import build_parser, main

COMMANDS = sorted(build_parser()[1])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dltl_core", *args], capture_output=True, text=True,
                          timeout=300)


def test_help_lists_every_subcommand():
    out = _cli("--help")
    assert out.returncode == 0
    assert COMMANDS, "at least one sub-command is discovered"
    for name in COMMANDS:
        assert name in out.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_every_subcommand_has_help_and_json(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    assert "--json" in capsys.readouterr().out


def test_bad_input_is_json_error_not_traceback(capsys):
    """A command whose input is wrong answers with {"error": ...} and exit status 2."""
    code = main(["descend", "--surface", "rosenbrock", "--lr", "0", "--json"])
    out = capsys.readouterr().out
    assert code == 2
    assert "error" in json.loads(out)
