"""Shared fixtures: real data folders beside the project, an isolated cache, and opening a
page of the app in Streamlit's AppTest (``open_page``, ``assert_clean``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# One cache directory per test session, so tests never read a developer's cache
# and features extracted by one test are reused by the next.
os.environ.setdefault("DLTL_CACHE_DIR", tempfile.mkdtemp(prefix="dltl-test-cache-"))
# Tests run on the CPU (as CI does) even on a GPU box unless asked otherwise.
os.environ.setdefault("DLTL_DEVICE", "cpu")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def birds_dir() -> Path:
    path = Path(os.environ.get("DLTL_BIRDS_DIR", SHARED / "birds" / "cub100"))
    if not path.is_dir():
        pytest.fail(f"bird photos not found at {path} (set DLTL_BIRDS_DIR)")
    return path


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    path = Path(os.environ.get("DLTL_CIFAR_DIR", SHARED / "cifar10"))
    if not (path / "train").is_dir():
        pytest.fail(f"CIFAR-10 folder not found at {path} (set DLTL_CIFAR_DIR)")
    return path


def open_page(page: str | None = None, *, query: Mapping[str, str] | None = None,
              state: Mapping[str, Any] | None = None, timeout: float = 180) -> AppTest:
    """A new visitor's session, from the entry script (its navigation), on ``page``.

    The session runs the home page once, switches to ``page`` (e.g. ``"pages/10_gd.py"``),
    sets ``state`` and the link's ``query`` parameters, and runs it. No page's run may raise
(a test of bad input asserts the page's message, never an exception), so that is checked here.

    Args:
        page: the page script, relative to the project root; None stays on the home page.
        query: the link's parameters (``{"lr": "0.42"}`` for ``/gd?lr=0.42``).
        state: session-state values set before the page's run.
        timeout: seconds one run may take.
    """
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=timeout)
    at.run()
    if page is None and not query and not state:
        assert not at.exception, at.exception
        return at
    if page is not None:
        at.switch_page(page)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def assert_clean(at: AppTest) -> None:
    """The run raised nothing and shows no error box (each is named when it fails)."""
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
