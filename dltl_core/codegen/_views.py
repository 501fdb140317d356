"""The pages' own settings declarations, for the exporters.

The /arch and /results pages declare their settings in ``dltl_ui`` (``ArchView``,
``ResultsView``); the exporters read a link with those very classes, so a setting added to
a page reaches its code. ``dltl_ui`` is imported only when an exporter runs (the page has
it loaded already; the ``code`` command pays for it once).
"""

from __future__ import annotations


def arch_view() -> type:
    """The /arch page's settings class."""
    try:  # main moves the declarations into the core (dltl_core/views.py): no Streamlit needed
        from dltl_core.views import ArchView  # type: ignore[import-not-found]
    except ImportError:
        from dltl_ui.views import ArchView

    return ArchView


def results_view() -> type:
    """The /results page's settings class."""
    from dltl_ui.results_view import ResultsView

    return ResultsView


__all__ = ["arch_view", "results_view"]
