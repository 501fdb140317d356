"""The /layers and /batches settings declarations (``dltl_ui/views.py``), without Streamlit.

The exporters must read a link with the very classes the pages' widgets bind
(``LayersView``, ``BatchesView``), so a setting added there reaches the code. Those live in
``dltl_ui/views.py``, which imports only ``dltl_core``; importing it as ``dltl_ui.views``
would run ``dltl_ui/__init__`` and load Streamlit, which ``dltl_core`` never does. So: the
page's own module when the page has loaded it, else the same file loaded on its own.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_NAME = "dltl_core.codegen._dltl_ui_views"


def views() -> ModuleType:
    """``dltl_ui/views.py`` as a module (the page's copy when loaded)."""
    mod = sys.modules.get("dltl_ui.views") or sys.modules.get(_NAME)
    if mod is not None:
        return mod
    path = Path(__file__).resolve().parents[2] / "dltl_ui" / "views.py"
    spec = importlib.util.spec_from_file_location(_NAME, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = mod  # dataclasses look their module up while the classes are made
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[_NAME]
        raise
    return mod


__all__ = ["views"]
