"""Classroom mode on a projector, in headless Chromium: at 1280x720 and 1024x768 each page's
main chart is whole on screen without scrolling, with the sidebar collapsed.

Screenshots go to ``$DLTL_SHOTS`` when it is set (look at them: the test checks boxes, not looks).
"""

from __future__ import annotations

import os
import time

import pytest

from tests.browser import chromium_page, error_texts, streamlit_server, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PAGES = ["gd", "lr", "loss", "layers", "batches", "overfit", "transfer", "arch", "results"]
MAIN = ".st-key-dltl_main_chart"


@pytest.mark.parametrize("size", [(1280, 720), (1024, 768)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_chart_fits_the_projector(size):
    if not os.path.exists(os.environ.get("DLTL_CHROMIUM", "/usr/bin/chromium")):
        pytest.skip("Debian's chromium is not installed")
    width, height = size
    shots = os.environ.get("DLTL_SHOTS")
    with streamlit_server() as base, chromium_page(width, height) as page:
        for name in PAGES:
            print(name, time.strftime("%H:%M:%S"), flush=True)  # which page, if one times out
            page.goto(f"{base}/{name}?classroom=1")
            try:
                wait_for_app(page)
            except Exception:
                if shots:
                    page.screenshot(path=os.path.join(shots, f"timeout_{name}_{width}x{height}.png"))
                raise
            page.wait_for_selector(f"{MAIN} .vega-embed", timeout=180_000)
            wait_for_app(page)
            if shots:
                page.screenshot(path=os.path.join(shots, f"classroom_{name}_{width}x{height}.png"))
            assert not error_texts(page), (name, error_texts(page))
            assert "classroom=1" in page.url, "the link keeps classroom mode"
            side = page.locator('[data-testid="stSidebar"]').first.bounding_box()
            assert side is None or side["x"] + side["width"] <= 1, f"{name}: the sidebar is collapsed ({side})"
            box = page.locator(MAIN).first.bounding_box()
            assert box is not None, name
            assert box["y"] >= 0 and box["y"] + box["height"] <= height, (name, box)
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box)
            assert page.evaluate("window.scrollY") == 0
            sizes = page.evaluate(
                """(sel) => Array.from(document.querySelectorAll(sel + ' svg text'))
                       .filter(t => t.closest('.role-axis-label, .role-axis-title'))
                       .map(t => parseFloat(getComputedStyle(t).fontSize))""", MAIN)
            assert sizes and min(sizes) >= 18, (name, sizes and min(sizes))
