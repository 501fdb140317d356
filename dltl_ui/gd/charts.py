"""Altair charts of the /gd page: loss against step of each descent (``loss_chart``, also
drawn on /lr), beside the kit's banded contour map (``dltl_ui.charts.contour``, re-exported
here with the palette for the page's view).

Everything here takes plain numbers (numpy arrays, pandas frames, ``Descent``
results); no torch.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import altair as alt
import pandas as pd

from dltl_ui.charts.contour import (BANDS, FastLayerChart, color_value, contour_chart, fast_layer, paths_frame,
                                    run_scale, start_frame, surface_frame)
from dltl_ui.charts.compiled import show_template
from dltl_ui.charts.palette import COLORS, REGIME_COLORS
from dltl_ui.layout import chart_height

__all__ = ["BANDS", "COLORS", "REGIME_COLORS", "FastLayerChart", "color_value", "contour_chart", "loss_chart",
           "loss_frames", "loss_layers", "show_loss", "paths_frame", "start_frame", "surface_frame"]


def loss_frames(paths: pd.DataFrame, at: int | None) -> dict[str, pd.DataFrame]:
    """The loss chart's data by layer: the paths, the rule at step ``at`` and each run's point there."""
    frames = {"paths": paths}
    if at is not None:
        frames["rule"] = pd.DataFrame({"step": [at]})
        frames["here"] = paths[paths["step"] == at]
    return frames


def loss_layers(source: Callable[[str], Any], names: Sequence[str], labels: Sequence[str], *, log: bool = True,
                height: int | None = None, colors: Sequence[str] | None = None,
                y_title: str = "f − f*  (log scale)") -> alt.LayerChart:
    """The loss chart's layers, each drawing ``source(name)`` (a frame or ``alt.NamedData``)."""
    h = height or chart_height(480)
    scale = run_scale(labels, colors)
    y = alt.Y("gap:Q", title=y_title, scale=alt.Scale(type="log") if log else alt.Scale())
    layers = [alt.Chart(source("paths")).mark_line(strokeWidth=3).encode(
        x=alt.X("step:Q", title="step"), y=y,
        color=alt.Color("run:N", scale=scale, legend=alt.Legend(title=None, orient="bottom", columns=1, labelLimit=400)),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("step:Q"), alt.Tooltip("loss:Q", format=".4g")])]
    if "rule" in names:
        layers.append(alt.Chart(source("rule")).mark_rule(strokeDash=[6, 4], color="#555", strokeWidth=2).encode(
            x=alt.X("step:Q")))
    if "here" in names:
        layers.append(alt.Chart(source("here")).mark_point(filled=True, size=160, opacity=1).encode(
            x=alt.X("step:Q"), y=y, color=alt.Color("run:N", scale=scale, legend=None)))
    return fast_layer(*layers, height=h)


def loss_chart(paths: pd.DataFrame, labels: Sequence[str], *, at: int | None = None, log: bool = True,
               height: int | None = None, colors: Sequence[str] | None = None,
               y_title: str = "f − f*  (log scale)") -> alt.LayerChart:
    """Loss above the minimum against step, one line per run, a rule at step ``at``."""
    frames = loss_frames(paths, at)
    return loss_layers(frames.__getitem__, list(frames), labels, log=log, height=height, colors=colors,
                       y_title=y_title)


def show_loss(paths: pd.DataFrame, labels: Sequence[str], *, at: int | None = None, height: int | None = None,
              colors: Sequence[str] | None = None) -> None:
    """Draw ``loss_chart``, compiled once per (number of runs, colours, size): a rerun converts
    only the data and puts the labels in place."""
    frames = loss_frames(paths, at)
    shape = ("loss", tuple(colors or ()), height, tuple(frames))
    show_template(shape, lambda texts: loss_layers(lambda name: alt.NamedData(name=name), list(frames), texts,
                                                   height=height, colors=colors), frames, texts=list(labels))
