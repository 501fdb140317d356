"""Helpers to drive the real app in headless Chromium (Debian's, through Playwright)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("DLTL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict[str, str] | None = None, port: int | None = None) -> Iterator[str]:
    """A freshly started ``streamlit run streamlit_app.py``; yields its base URL."""
    port = port or free_port()
    # No file watcher (tests change no source; on a busy tree it floods the log with inotify
    # overflows), and the log goes to a file: an unread pipe fills up (64 KiB) and then blocks
    # the server mid-page, which looks like a page that never loads.
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"]
    log = tempfile.NamedTemporaryFile(prefix="dltl-streamlit-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("streamlit did not start")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        os.unlink(log.name)


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    """A Playwright page in Debian's Chromium (no browser download needed)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def wait_for_app(page, timeout_s: float = 120) -> None:
    """Wait until the script run finished and the page stopped changing.

    A fresh server spends seconds importing torch before the first element arrives, so
    wait for the title, then until the app reports its script as no longer running
    (``data-test-script-state``) and the number of rendered elements and charts has
    stayed the same for three checks in a row.
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_s * 1000)
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=timeout_s * 1000)
    deadline = time.time() + timeout_s
    quiet, last = 0, None
    while time.time() < deadline and quiet < 3:
        page.wait_for_timeout(600)
        state = page.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")
        running = state == "running" or page.locator('[data-testid="stStatusWidget"]').count()
        shape = (page.locator('[data-testid="stElementContainer"]').count(),
                 page.locator(".vega-embed").count())
        quiet = quiet + 1 if (running == 0 and shape == last) else 0
        last = shape


def error_texts(page) -> list[str]:
    """Texts of error boxes and exceptions shown in the page."""
    sel = '[data-testid="stException"], [data-testid="stAlertContentError"]'
    return [e.inner_text() for e in page.locator(sel).all()]
