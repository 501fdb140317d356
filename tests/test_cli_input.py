"""Command-line bad input: out-of-range values and unwritable outputs are refused before any
work (exit 2, one JSON error), never silently replaced; progress bars never touch stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from dltl_core.cli import main


def _err(argv: list[str], capsys) -> str:
    t0 = time.perf_counter()
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    assert code == 2, out
    assert time.perf_counter() - t0 < 20  # refused up front, not after training
    return json.loads(out)["error"]


@pytest.mark.parametrize("argv, option", [
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--dropout", "1.5"], "--dropout"),
    (["train", "--val-fraction", "1"], "--val-fraction"),
    (["transfer", "--unfreeze-blocks", "-3", "--mode", "finetune"], "--unfreeze-blocks"),
    (["transfer", "--batch-size", "0"], "--batch-size"),
    (["transfer", "--max-per-species", "1"], "--max-per-species"),
    (["search", "--trials", "0"], "--trials"),
    (["search", "--epochs", "0", "--fixed"], "--epochs"),
    (["search", "--max-per-class", "0", "--fixed"], "--max-per-class"),
])
def test_out_of_range_values_are_refused(argv, option, capsys, birds_dir):
    if argv[0] == "transfer":
        argv = [*argv, "--data", str(birds_dir)]
    assert option in _err(argv, capsys)


def test_species_count_beyond_the_folder_is_refused(birds_dir, capsys):
    n = sum(1 for d in birds_dir.iterdir() if d.is_dir())
    msg = _err(["transfer", "--data", str(birds_dir), "--species", "1000"], capsys)
    assert "--species 1000" in msg and str(n) in msg


def test_unfreeze_blocks_outside_finetune_is_refused(birds_dir, capsys):
    assert "finetune" in _err(["transfer", "--data", str(birds_dir), "--unfreeze-blocks", "2"], capsys)


@pytest.mark.parametrize("command", [["train"], ["search", "--fixed"], ["transfer"]])
def test_unwritable_outputs_are_refused_before_training(command, tmp_path, capsys, birds_dir):
    blocker = tmp_path / "plain_file"
    blocker.write_text("not a folder")
    extra = ["--data", str(birds_dir)] if command[0] == "transfer" else []
    for option in ("--results", "--save", "--tensorboard"):
        if option == "--results" and command[0] != "search":
            continue
        if option in ("--save", "--tensorboard") and command[0] == "search":
            continue
        target = blocker / ("out" if option == "--tensorboard" else "out.json")
        msg = _err([*command, *extra, option, str(target)], capsys)
        assert option in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_folder_is_refused(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert "not writable" in _err(["train", "--save", str(ro / "m.pt")], capsys)
    finally:
        ro.chmod(0o700)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dltl_core", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_progress_bar_goes_to_stderr_and_json_stays_one_object():
    out = _cli("train", "--data", "digits", "--epochs", "3", "--progress", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # exactly one JSON object: json.loads fails on anything more
    assert len(result["history"]) == 3
    assert "epoch 3/3" in out.stderr and "img/s" in out.stderr and "100%" in out.stderr


def test_no_bar_without_a_terminal_or_with_quiet(capsys):
    # capsys's stderr is not a terminal: no bar unless --progress, and never with --quiet.
    for extra, drawn in (([], False), (["--progress", "--quiet"], False), (["--progress"], True)):
        assert main(["train", "--data", "digits", "--epochs", "2", "--json", *extra]) == 0
        captured = capsys.readouterr()
        assert ("img/s" in captured.err) is drawn, extra
        json.loads(captured.out)


@pytest.mark.slow
def test_bar_is_drawn_on_a_terminal():
    """Under a pseudo-terminal (as a person runs it), the bar appears without --progress."""
    pty = pytest.importorskip("pty")
    import select

    pid, fd = pty.fork()
    if pid == 0:  # child: stdout/stderr are the terminal
        os.execv(sys.executable, [sys.executable, "-m", "dltl_core", "train", "--data", "digits",
                                  "--epochs", "2"])
    chunks, deadline = [], time.time() + 120
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    os.waitpid(pid, 0)
    text = b"".join(chunks).decode(errors="replace")
    assert "epoch 2/2" in text and "img/s" in text and "best epoch" in text
