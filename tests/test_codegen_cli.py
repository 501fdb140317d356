"""``python -m dltl_core code PAGE [--query ...] [--notebook FILE]``, in-process through ``main``."""

from __future__ import annotations

import json

import nbformat

from dltl_core.cli import main
from dltl_core.codegen import export
from tests.codegen_util import printed, run_script

QUERY = "surface=bowl&cond=20&steps=40&opt=adam&lr=0.1&opt_2=off&opt_3=off&opt_4=off"


def _code(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["code", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_prints_runnable_code_for_gd(capsys):
    rc, out, _ = _code(capsys, "gd", "--query", QUERY)
    assert rc == 0
    assert out == export("gd", QUERY).source().rstrip("\n") + "\n"
    assert "import dltl" not in out and "from dltl" not in out
    got = printed(run_script(out))
    assert set(got) == {"opt1 final loss", "opt1 final w1", "opt1 final w2", "opt1 loss at step 40"}
    assert got["opt1 final loss"] < 0.5 * 20 * 2.0 ** 2  # Adam went downhill from the start


def test_a_whole_link_gives_the_same_script_as_its_query(capsys):
    _, by_query, _ = _code(capsys, "gd", "--query", QUERY)
    _, by_link, _ = _code(capsys, f"http://localhost:8501/gd?{QUERY}")
    _, by_link_option, _ = _code(capsys, "gd", "--query", f"http://localhost:8501/gd?{QUERY}")
    assert by_query == by_link == by_link_option


def test_link_problems_are_reported_and_the_code_still_comes(capsys):
    rc, out, _ = _code(capsys, "gd", "--query", "lr=abc&steps=5")
    assert rc == 0
    assert out.startswith("# link problem: `lr=abc` is not a number")
    assert "steps = 5" in out


def test_notebook_is_written_and_valid(capsys, tmp_path):
    path = tmp_path / "gd.ipynb"
    rc, out, _ = _code(capsys, "gd", "--query", QUERY, "--notebook", str(path), "--json")
    assert rc == 0
    result = json.loads(out)
    assert result["notebook"] == str(path) and result["page"] == "gd"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    kinds = {c.cell_type for c in nb.cells}
    assert kinds == {"markdown", "code"}
    assert "torch.optim.Adam" in "".join(c.source for c in nb.cells if c.cell_type == "code")
    assert any("\\nabla" in c.source for c in nb.cells if c.cell_type == "markdown")  # the lecture's formula


def test_unknown_page_is_one_message_exit_2(capsys):
    rc, out, err = _code(capsys, "nope")
    assert rc == 2 and not out
    assert err.count("\n") == 1 and err.startswith("error: no code export for page 'nope'")


def test_notebook_into_a_missing_folder_is_exit_2(capsys, tmp_path):
    rc, out, err = _code(capsys, "gd", "--notebook", str(tmp_path / "no" / "such" / "gd.ipynb"))
    assert rc == 2 and not out
    assert "does not exist" in err and "Traceback" not in err


def test_every_page_is_listed_in_the_help(capsys):
    try:
        main(["code", "--help"])
    except SystemExit:
        pass
    out = capsys.readouterr().out
    for page in ("gd", "lr", "loss", "lab-scratch", "lab-transfer"):
        assert page in out
