"""Every page loads through Streamlit's AppTest, from the entry script, without an exception."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dltl_ui.nav import available_pages
from tests.conftest import assert_clean, open_page

ROOT = Path(__file__).resolve().parent.parent
PAGES = [p.path for p in available_pages()]


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
