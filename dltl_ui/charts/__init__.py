"""The chart kit: one palette, one contour view (/gd, /lr), one learning-curve chart."""

from dltl_ui.charts.contour import contour_view, surface_grid
from dltl_ui.charts.curves import learning_curves, show_curves
from dltl_ui.charts.palette import COLORS, REGIME_COLORS, SPLIT_COLORS

__all__ = ["COLORS", "REGIME_COLORS", "SPLIT_COLORS", "contour_view", "learning_curves", "show_curves",
           "surface_grid"]
