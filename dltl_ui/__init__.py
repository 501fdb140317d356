"""Streamlit-side helpers shared by every page: navigation, classroom mode,
URL state, error boundary and the projector-friendly chart theme.

The pages import this package; ``dltl_core`` never does (it stays streamlit-free).
"""

from dltl_ui.layout import explain, guard, is_classroom, page_setup, show_chart
from dltl_ui.urlstate import UrlState

__all__ = ["UrlState", "explain", "guard", "is_classroom", "page_setup", "show_chart"]
