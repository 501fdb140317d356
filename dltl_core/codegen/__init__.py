"""Plain PyTorch code for what a page shows: ``export(page, query) -> Script``.

Public API::

    export(page: str, query: str | Mapping[str, str] = "") -> Script
    PAGES: dict[str, str]        # page URL name -> the module that exports it
    Script.source() -> str       # the .py
    Script.notebook_text() -> str  # the .ipynb

Each page has one module here, ``dltl_core/codegen/<page>.py``, with
``build(params: Mapping[str, str]) -> Script``. It reads the link's parameters with the
page's own declarations (``dltl_core.query.read_query`` on the same config classes the
page's widgets bind), so a shared link and its code always agree, and a setting added to
a page's declarations reaches the code too. The page shows the script in its "PyTorch
code" panel (``dltl_ui.code_panel``); ``python -m dltl_core code PAGE --query ...``
prints it.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import Mapping
from urllib.parse import parse_qsl, urlsplit

from dltl_core.codegen.script import Cell, Script

# Page URL name -> module (frozen data, timm-style: adding a page is one line here and one
# module). ``lab-*`` are the two lab notebooks linked from the home page.
PAGES: Mapping[str, str] = MappingProxyType({
    "gd": "dltl_core.codegen.gd",
    "lr": "dltl_core.codegen.lr",
    "loss": "dltl_core.codegen.loss",
    "layers": "dltl_core.codegen.layers",
    "batches": "dltl_core.codegen.batches",
    "overfit": "dltl_core.codegen.overfit",
    "transfer": "dltl_core.codegen.transfer",
    "arch": "dltl_core.codegen.arch",
    "results": "dltl_core.codegen.results",
    "lab-scratch": "dltl_core.codegen.lab_scratch",
    "lab-transfer": "dltl_core.codegen.lab_transfer",
})


def parse_link(query: str | Mapping[str, str]) -> dict[str, str]:
    """A link's parameters from a query string, ``?query``, a whole URL, or a mapping.

    A parameter given twice keeps its last value, as the page does.
    """
    if not isinstance(query, str):
        return {str(k): (v[-1] if isinstance(v, (list, tuple)) else str(v)) for k, v in query.items()}
    text = query.strip()
    if "://" in text or text.startswith("/"):
        text = urlsplit(text).query
    return dict(parse_qsl(text.lstrip("?"), keep_blank_values=True))


def page_name(page: str) -> str:
    """``/gd``, ``gd``, ``10_gd`` or a URL ``http://host/gd?x=1`` -> ``gd``; ValueError if unknown."""
    name = page.strip()
    if "://" in name:
        name = urlsplit(name).path
    name = name.split("?", 1)[0].strip("/").rsplit("/", 1)[-1]
    if name.removesuffix(".py")[:3].rstrip("_").isdigit():
        name = name.removesuffix(".py").split("_", 1)[-1]
    if name not in PAGES:
        raise ValueError(f"no code export for page {page[:60]!r}; choose from {', '.join(PAGES)}")
    return name


def export(page: str, query: str | Mapping[str, str] = "") -> Script:
    """The plain PyTorch script for ``page`` at the settings of ``query``.

    Args:
        page: the page's URL name (``gd``), path or URL.
        query: its link's query string (or the mapping of its parameters); bad values are
            read as the page reads them (clamped or defaulted) and listed in ``problems``.

    Raises:
        ValueError: an unknown page, or one whose exporter is not installed (yet).
    """
    name = page_name(page)
    params = parse_link(query)
    try:
        module = importlib.import_module(PAGES[name])
    except ModuleNotFoundError as err:
        if err.name != PAGES[name]:  # a missing dependency inside the exporter is a real bug
            raise
        raise ValueError(f"the code export for page {name!r} is not available in this version") from None
    return module.build(params)


__all__ = ["Cell", "PAGES", "Script", "export", "page_name", "parse_link"]
