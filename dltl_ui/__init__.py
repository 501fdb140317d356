"""Streamlit-side helpers shared by every page: navigation, classroom mode,
URL state, error boundary and the projector-friendly chart theme.

The pages import this package; ``dltl_core`` never does (it stays streamlit-free).
"""

from dltl_ui.binder import Binder, bind
from dltl_ui.charts.show import data_key, show_chart
from dltl_ui.layout import (chart_height, controls, duration, explain, guard, heavy_button, is_classroom, main_chart,
                            page_setup, side_controls)
from dltl_ui.urlstate import UrlState

__all__ = ["Binder", "UrlState", "bind", "chart_height", "controls", "duration", "explain", "heavy_button", "guard", "is_classroom", "main_chart",
           "page_setup", "show_chart", "data_key", "side_controls"]
