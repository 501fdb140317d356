"""End to end in headless Chromium: a fresh server, a deep link, then every page."""

from __future__ import annotations

import pytest

from dltl_ui.nav import available_pages
from tests.browser import chromium_page, error_texts, streamlit_server, wait_for_app

pytestmark = pytest.mark.browser


def test_every_page_in_chromium_without_error_box():
    pages = available_pages()
    with streamlit_server() as base, chromium_page() as page:
        # A deep link answered by a *fresh* server: the first request this server sees.
        first = pages[0]
        page.goto(f"{base}/{first.url}")
        wait_for_app(page)
        assert page.locator('[data-testid="stSidebar"]').get_by_text("Classroom mode").count() == 1
        assert first.title.lower() in page.locator("h1").first.inner_text().lower()
        assert not error_texts(page)

        page.goto(base)
        wait_for_app(page)
        assert "Deep learning" in page.locator("h1").first.inner_text()
        for info in pages:
            page.goto(f"{base}/{info.url}")
            wait_for_app(page)
            assert "Page not found" not in page.content(), info.url
            assert not error_texts(page), (info.url, error_texts(page))
