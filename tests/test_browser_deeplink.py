"""A deep link answered by a freshly started server, in headless Chromium.

The first request a new server sees is ``/gd?lr=0.42``: the gradient-descent page must
open (not the home page, not "page not found"), with 0.42 in its learning-rate box, the
sidebar menu grouped by section (``st.navigation`` from ``dltl_ui.nav``), and no error box.
The "PyTorch code" panel's two downloads carry that link's settings (the notebook is written
only on its click).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dltl_ui.nav import sections
from tests.browser import chromium_page, error_texts, streamlit_server, wait_for_app

pytestmark = pytest.mark.browser


def test_fresh_server_answers_the_gd_deep_link():
    with streamlit_server() as base, chromium_page() as page:
        page.goto(f"{base}/gd?lr=0.42")
        wait_for_app(page)
        page.wait_for_selector(".vega-embed", timeout=120_000)  # the charts ran, so the script finished
        assert "Page not found" not in page.content()
        assert "gradient descent" in page.locator("h1").first.inner_text().lower()

        lr_box = page.locator('[data-testid="stNumberInput"] input').first
        assert lr_box.get_attribute("aria-label") == "learning rate η"
        assert lr_box.input_value() == "0.42"
        assert "lr=0.42" in page.url  # the link still describes the view

        sidebar = page.locator('[data-testid="stSidebar"]')
        assert sidebar.get_by_text("Classroom mode").count() == 1
        menu = page.locator('[data-testid="stSidebarNav"]')
        assert menu.count() == 1  # one menu: st.navigation's
        text = menu.inner_text()
        for section, pages in sections().items():
            assert section.upper() in text.upper(), section
            for info in pages:
                assert info.title in text, info.title
        assert not error_texts(page), error_texts(page)

        page.get_by_text("PyTorch code: reproduce this chart").first.click()
        for label, suffix in (("Download .py", ".py"), ("Download notebook (.ipynb)", ".ipynb")):
            with page.expect_download(timeout=60_000) as info:
                page.get_by_role("button", name=label).first.click()
            download = info.value
            assert download.suggested_filename == f"dltl_gd{suffix}"
            text = Path(download.path()).read_text()
            assert "lr=0.42" in text, label  # the header names the link's settings
            if suffix == ".ipynb":
                import nbformat

                nbformat.validate(nbformat.reads(text, as_version=4))
