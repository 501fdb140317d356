"""Shared fixtures: real data folders beside the project, an isolated cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

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
