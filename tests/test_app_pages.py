"""Every page loads through Streamlit's AppTest, from the entry script, without an exception."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dltl_ui import nav
from dltl_ui.nav import HOME, available_pages, page_of
from tests.conftest import assert_clean, open_page

ROOT = Path(__file__).resolve().parent.parent
PAGES = [p.path for p in available_pages()]


def test_every_page_script_is_declared_once_and_keeps_its_url():
    """The links students and slides already hold (``/gd?lr=0.42``) name these paths."""
    assert [p.url for p in nav.PAGES] == ["gd", "lr", "loss", "layers", "batches", "overfit", "transfer", "arch",
                                      "results"]
    assert HOME.url == ""
    scripts = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
    assert scripts == sorted([HOME.path] + [p.path for p in nav.PAGES]), "a page script the menu does not list"
    for page in (HOME, *nav.PAGES):
        assert page_of(ROOT / page.path) is page
        assert "ui.page_setup(__file__)" in (ROOT / page.path).read_text(), page.path
    with pytest.raises(KeyError, match="not declared"):
        page_of(ROOT / "streamlit_app.py")


def test_home_page_links_every_page():
    at = open_page()
    assert not at.exception
    body = " ".join(m.value for m in at.markdown)
    for page in available_pages():
        assert page.teaches in body


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_error(page):
    at = open_page(page)
    assert_clean(at)
    assert at.title, "every page has a title"


def test_classroom_mode_hides_explanations():
    at = open_page()
    texts = [m.value for m in at.main.markdown]
    assert any("Classroom mode" in t for t in texts)
    at.sidebar.toggle[0].set_value(True).run()
    assert not at.exception
    assert at.session_state["classroom"] is True
    after = [m.value for m in at.main.markdown]
    assert not any("Classroom mode" in t for t in after), "explanations are hidden"
    assert any("font-size" in t for t in after), "classroom CSS (bigger type) is injected"



@pytest.mark.parametrize("path", sorted((ROOT / "pages").glob("*.py")), ids=lambda p: p.name)
def test_pages_are_thin_views(path: Path):
    """Pages hold widgets and charts only: no torch, no training loops (those live in dltl_core)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert not any(n == "torch" or n.startswith("torch.") for n in names), f"{path.name} imports torch"
