"""The pages' own settings declarations, for the exporters.

The exporters read a link with the very classes the pages bind (``ArchView`` in
``dltl_core.views``, ``ResultsView`` in ``dltl_core.results_view``), so a setting added to a
page reaches its code.
"""

from __future__ import annotations


def arch_view() -> type:
    """The /arch page's settings class."""
    from dltl_core.views import ArchView  # declared in the core: no Streamlit needed

    return ArchView


def results_view() -> type:
    """The /results page's settings class."""
    from dltl_core.results_view import ResultsView  # declared in the core: no Streamlit needed

    return ResultsView


__all__ = ["arch_view", "results_view"]
