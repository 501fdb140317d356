"""The /layers and /batches settings declarations, for their exporters.

The exporters read a link with the very classes the pages' widgets bind (``LayersView``,
``BatchesView`` in ``dltl_core/views.py``, re-exported by ``dltl_ui.views``), so a setting
added there reaches the code; they live in the core, so no Streamlit is loaded here.
"""

from __future__ import annotations

from types import ModuleType


def views() -> ModuleType:
    """The module holding the pages' settings classes (``dltl_core.views``)."""
    from dltl_core import views as module

    return module


__all__ = ["views"]
