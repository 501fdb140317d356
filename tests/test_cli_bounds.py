"""Command-line sizes are bounded by their declarations: the bound is in --help, a value past it
is one clear line with exit status 2 before any work, and in-bound values whose model would not
fit in memory are refused up front. The cases measured in issue 15 each have a test here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dltl_core.cli import build_parser, main
from dltl_core.commands import arch as arch_cmd
from dltl_core.commands import lr_range as lr_cmd
from dltl_core.commands import predict as predict_cmd
from dltl_core.commands import search as search_cmd
from dltl_core.commands import train as train_cmd
from dltl_core.commands import transfer as transfer_cmd
from dltl_core.commands._common import PER_CLASS, declared, range_text
from dltl_core.data.synthetic import POINTS, make_2d
from dltl_core.descend import DescentConfig
from dltl_core.models import create_model
from dltl_core.models.cnn import BLOCKS, CHANNELS
from dltl_core.models.mlp import DEPTH, WIDTH
from dltl_core.settings import Setting
from dltl_core.train import TrainConfig

# (command, option, its declaration): every size-like option of every sub-command.
SIZED = [
    ("train", "--n", POINTS), ("train", "--depth", DEPTH), ("train", "--width", WIDTH),
    ("train", "--epochs", declared(TrainConfig, "epochs")),
    ("train", "--batch-size", declared(TrainConfig, "batch_size")),
    ("train", "--image-size", train_cmd.IMAGE_SIZE), ("train", "--max-per-class", PER_CLASS),
    ("train", "--train-size", train_cmd.SAMPLES), ("train", "--patience", train_cmd.PATIENCE),
    ("transfer", "--epochs", transfer_cmd.EPOCHS), ("transfer", "--batch-size", transfer_cmd.BATCH_SIZE),
    ("transfer", "--max-per-species", transfer_cmd.PER_SPECIES),
    ("transfer", "--unfreeze-blocks", transfer_cmd.UNFREEZE), ("transfer", "--image-size", transfer_cmd.IMAGE_SIZE),
    ("arch", "--width", arch_cmd.WIDTH), ("arch", "--batch-size", arch_cmd.BATCH_SIZE),
    ("arch", "--batches", arch_cmd.BATCHES),
    ("search", "--trials", search_cmd.TRIALS), ("search", "--epochs", search_cmd.EPOCHS),
    ("search", "--max-per-class", PER_CLASS), ("search", "--timeout", search_cmd.TIMEOUT),
    ("descend", "--steps", declared(DescentConfig, "steps")),
    ("lr-range", "--batch-size", lr_cmd.BATCH_SIZE), ("lr-range", "--depth", DEPTH),
    ("lr-range", "--width", WIDTH),
    ("predict", "--top", predict_cmd.TOP), ("predict", "--batch-size", predict_cmd.BATCH_SIZE),
]
REQUIRED = {"predict": ["--load", "m.pt", "x.png"]}  # what a command needs beside the option


def _help(command: str, option: str) -> str:
    """The help text of one option, as ``--help`` prints it (unwrapped)."""
    parser, _ = build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    action = next(a for a in sub._actions if option in a.option_strings)
    assert " ".join(action.help.split()) in " ".join(sub.format_help().split())
    return action.help


def _parse(command: str, *extra: str):
    parser, _ = build_parser(command)
    return parser.parse_args([command, *REQUIRED.get(command, []), *extra])


def _refusal(argv: list[str], capsys) -> str:
    t0 = time.perf_counter()
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    assert code == 2, out
    assert time.perf_counter() - t0 < 20  # refused up front, not after loading or training
    message = json.loads(out)["error"]
    assert "\n" not in message and "Traceback" not in message and "allocat" not in message.lower()
    return message


def _above(s: Setting) -> str:
    return str(int(s.hi) + 1 if float(s.hi).is_integer() else s.hi * 2)


@pytest.mark.parametrize("command, option, s", SIZED, ids=[f"{c} {o}" for c, o, _ in SIZED])
def test_help_states_the_declared_range(command, option, s):
    assert range_text(s) in _help(command, option)


@pytest.mark.parametrize("command, option, s", SIZED, ids=[f"{c} {o}" for c, o, _ in SIZED])
def test_the_declared_bound_is_the_limit(command, option, s, capsys):
    """The upper bound itself parses; just past it is refused naming the option and the bound."""
    hi = int(s.hi) if float(s.hi).is_integer() else s.hi
    assert getattr(_parse(command, option, str(hi)), option.lstrip("-").replace("-", "_")) == hi
    message = _refusal([command, *REQUIRED.get(command, []), option, _above(s)], capsys)
    assert option in message and range_text(s) in message


@pytest.mark.parametrize("argv, option, s", [
    (["train", "--data", "moons", "--n", "1000000000"], "--n", POINTS),
    (["train", "--depth", "1000000"], "--depth", DEPTH),
    (["train", "--width", "1e9"], "--width", WIDTH),
    (["train", "--model", "cnn", "--channels", "100000,100000"], "--channels", CHANNELS),
    (["arch", "--batch-size", "1e9"], "--batch-size", arch_cmd.BATCH_SIZE),
    (["search", "--trials", "1e12"], "--trials", search_cmd.TRIALS),
], ids=["n 1e9", "depth 1e6", "width 1e9", "channels 1e5", "arch batch 1e9", "trials 1e12"])
def test_measured_failures_are_one_clear_line(argv, option, s, capsys):
    message = _refusal(argv, capsys)
    assert option in message and range_text(s) in message


def test_too_many_conv_blocks_are_refused(capsys):
    blocks = ",".join(["8"] * (int(BLOCKS.hi) + 1))
    message = _refusal(["train", "--model", "cnn", "--channels", blocks], capsys)
    assert "--channels" in message and range_text(BLOCKS) in message


def test_the_core_reads_the_same_bounds():
    """Past the bound the core refuses too (a page or a script gets the same limit)."""
    with pytest.raises(ValueError, match="number of points must be between"):
        make_2d("moons", n=int(POINTS.hi) + 1)
    with pytest.raises(ValueError, match="hidden layers"):
        create_model("mlp", depth=int(DEPTH.hi) + 1)
    with pytest.raises(ValueError, match=str(int(CHANNELS.hi))):
        create_model("cnn", channels=(int(CHANNELS.hi) + 1,))
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=int(declared(TrainConfig, "epochs").hi) + 1)


@pytest.mark.parametrize("argv", [
    ["train", "--depth", "100", "--width", "8192"],
    ["train", "--depth", "40", "--width", "8192"],
    ["arch", "--name", "densenet121", "--width", "4", "--batch-size", "4096"],
    ["search", "--arch", "densenet121", "--batch-sizes", "65536", "--widths", "4"],
    ["lr-range", "--depth", "100", "--width", "8192"],
], ids=["mlp weights", "mlp training", "arch batch", "search space", "lr-range"])
def test_in_bound_sizes_that_cannot_fit_are_refused_before_allocating(argv, capsys):
    """Each value is within its bound; together they need tens of GB (counted, not allocated)."""
    message = _refusal(argv, capsys)
    assert re.search(r"needs about [\d.]+ GB; this machine has [\d.]+ [GM]B free", message), message


def test_the_memory_budget_follows_the_machine(monkeypatch, capsys):
    """With the operator's cap at 200 MB a 4,096-wide MLP (67 M weights, 1 GB to train) is refused;
    the default MLP still trains."""
    monkeypatch.setenv("DLTL_MEMORY_MB", "200")
    message = _refusal(["train", "--depth", "4", "--width", "4096"], capsys)
    assert "200 MB free" in message and "--width" in message
    assert main(["train", "--epochs", "1", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"] > 0


@pytest.mark.parametrize("argv, option, where", [
    (["train", "--save", "/sys/x.pt"], "--save", Path("/sys/x.pt")),
    (["train", "--tensorboard", "/proc/tb"], "--tensorboard", Path("/proc/tb")),
    (["search", "--results", "/proc/x.json", "--storage", "sqlite:///{tmp}/s.db"], "--results",
     Path("/proc/x.json")),
    (["search", "--fixed", "--save", "/sys/x.pt"], "--save", Path("/sys/x.pt")),
], ids=["train save /sys", "train tensorboard /proc", "search results /proc", "search save /sys"])
def test_outputs_that_cannot_be_written_are_refused_before_any_work(argv, option, where, tmp_path, capsys):
    """Even as root (``os.access`` says yes), a folder that takes no file is refused at once."""
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    message = _refusal(argv, capsys)
    assert option in message and "cannot write" in message
    assert not where.exists()


def test_a_parse_refusal_is_one_line_without_usage():
    out = subprocess.run([sys.executable, "-m", "dltl_core", "train", "--depth", "1000000"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "usage:" not in out.stderr, out.stderr
    assert "--depth" in lines[0] and range_text(DEPTH) in lines[0]
