"""The one contour view: a banded map of a 2-D surface with optimizer paths (/gd and /lr).

``contour_view(surface, runs, labels, colors)`` is what pages call: the surface's grid is
computed once per (surface, condition, resolution) and cached (``st.cache_data``), the
paths are drawn on top. The lower-level ``contour_chart`` takes plain frames.
"""

from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dltl_core.surfaces import Surface, create_surface
from dltl_ui.charts.palette import COLORS
from dltl_ui.layout import chart_height

BANDS = 14  # filled-contour bands


class FastLayerChart(alt.LayerChart):
    """An Altair layer chart that skips JSON-schema validation when rendered.

    Validating a layered chart with a few thousand rows costs ~150 ms per render on a
    laptop, more than the descent it shows; the tests validate every chart once instead.
    """

    def to_dict(self, *args, **kwargs):  # noqa: D102
        kwargs.setdefault("validate", False)
        return super().to_dict(*args, **kwargs)


def _layer(*layers: alt.Chart, **props) -> FastLayerChart:
    # Properties go to the constructor: .properties() would validate them one by one.
    return FastLayerChart(layer=list(layers), **props)


def color_value(z: np.ndarray, f_star: float, log_scale: bool) -> tuple[np.ndarray, str]:
    """What the contour colours show: log10(f - f*) on log-scaled surfaces, else f."""
    if log_scale:
        span = float(np.nanmax(z) - f_star)
        # A floor a few decades below the range keeps log finite at the minimum itself.
        return np.log10(np.maximum(z - f_star, 0.0) + span * 1e-5), "log₁₀(f − f*)"
    return z, "f"


def surface_frame(xs: np.ndarray, ys: np.ndarray, z: np.ndarray, f_star: float, log_scale: bool) -> pd.DataFrame:
    """Grid cells as rectangles with a banded colour value (a filled-contour look).

    Args:
        xs: (n,) x coordinates; ys: (m,) y coordinates; z: (m, n) surface values.
    """
    v, _ = color_value(z, f_star, log_scale)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    step = (hi - lo) / BANDS or 1.0
    band = lo + (np.floor((v - lo) / step).clip(0, BANDS - 1) + 0.5) * step  # centre of the band
    # Half a cell each way, plus a sliver of overlap so no white seams show between cells.
    dx, dy = (xs[1] - xs[0]) * 0.51, (ys[1] - ys[0]) * 0.51
    gx, gy = np.meshgrid(xs, ys)
    return pd.DataFrame({
        "x": (gx - dx).ravel(), "x2": (gx + dx).ravel(),
        "y": (gy - dy).ravel(), "y2": (gy + dy).ravel(),
        "level": band.ravel().round(3),
    })


def paths_frame(runs: Sequence, labels: Sequence[str], f_star: float) -> pd.DataFrame:
    """Long frame of trajectories: run, step, x, y, loss, gap (= f − f*, floored for log axes)."""
    parts = []
    for run, label in zip(runs, labels):
        n = len(run.loss)
        if n == 0:
            continue
        parts.append(pd.DataFrame({
            "run": label, "step": np.arange(n), "x": run.trajectory[:, 0], "y": run.trajectory[:, 1],
            "loss": run.loss, "gap": np.maximum(run.loss - f_star, 1e-12),
        }))
    if not parts:
        return pd.DataFrame(columns=["run", "step", "x", "y", "loss", "gap"])
    return pd.concat(parts, ignore_index=True)


def start_frame(x0: float, y0: float) -> pd.DataFrame:
    """A one-point ``paths_frame`` (the start only), for when nothing could run."""
    return pd.DataFrame({"run": ["start"], "step": [0], "x": [x0], "y": [y0], "loss": [0.0], "gap": [1.0]})


def _domain(labels: Sequence[str], colors: Sequence[str] | None = None) -> alt.Scale:
    return alt.Scale(domain=list(labels), range=list(colors or COLORS[: len(labels)]))


def contour_chart(
    grid: pd.DataFrame,
    paths: pd.DataFrame,
    labels: Sequence[str],
    *,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    minima: Sequence[tuple[float, float]],
    at: int | None = None,
    color_title: str = "f",
    notes: Sequence[tuple[str, float, float, str]] = (),
    height: int | None = None,
    colors: Sequence[str] | None = None,
    title: str | None = None,
    legend: bool = True,
) -> alt.LayerChart:
    """Filled contour map with trajectories up to step ``at``, current points and known minima.

    Args:
        grid: ``surface_frame`` output.
        paths: ``paths_frame`` output.
        labels: run labels in colour order.
        minima: known minima, marked with a white star.
        at: show the trajectories up to this step (None: all).
        notes: ``(run, x, y, text)`` labels to print on the map, e.g. "diverged at step 12".
    """
    h = height or chart_height(480)
    scale = _domain(labels, colors)
    sx = alt.Scale(domain=list(xlim), nice=False, zero=False)
    sy = alt.Scale(domain=list(ylim), nice=False, zero=False)
    base = alt.Chart(grid).mark_rect(strokeWidth=0).encode(
        x=alt.X("x:Q", scale=sx, title="w₁"), x2=alt.X2("x2:Q"),
        y=alt.Y("y:Q", scale=sy, title="w₂"), y2=alt.Y2("y2:Q"),
        color=alt.Color("level:Q", scale=alt.Scale(scheme="lighttealblue", reverse=False),
                        legend=alt.Legend(title=color_title, orient="right", gradientLength=max(120, h - 120))
                        if legend else None),
    )
    shown = paths if at is None else paths[paths["step"] <= at]
    enc = dict(x=alt.X("x:Q", scale=sx), y=alt.Y("y:Q", scale=sy), order=alt.Order("step:Q"))
    halo = alt.Chart(shown).mark_line(color="white", strokeWidth=6, clip=True).encode(detail=alt.Detail("run:N"), **enc)
    line = alt.Chart(shown).mark_line(strokeWidth=3, clip=True, point=alt.OverlayMarkDef(size=14)).encode(
        color=alt.Color("run:N", scale=scale, legend=alt.Legend(title=None, orient="bottom", columns=1,
                                                                labelLimit=400) if legend else None),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("step:Q"), alt.Tooltip("x:Q", format=".4g"), alt.Tooltip("y:Q", format=".4g"),
                 alt.Tooltip("loss:Q", format=".4g")], **enc)
    last = shown.sort_values("step").groupby("run", as_index=False).tail(1)
    now = alt.Chart(last).mark_point(filled=True, size=260, stroke="white", strokeWidth=2, opacity=1).encode(
        x=alt.X("x:Q", scale=sx), y=alt.Y("y:Q", scale=sy), color=alt.Color("run:N", scale=scale, legend=None))
    start_mark, star = _landmarks(paths, minima, sx, sy)
    layers = [base, halo, line, star, start_mark, now, *_note_layers(notes, xlim, ylim, sx, sy, scale)]
    return _layer(*layers, height=h, **({"title": title} if title else {}))


def _note_layers(notes: Sequence[tuple[str, float, float, str]], xlim: tuple[float, float],
                 ylim: tuple[float, float], sx: alt.Scale, sy: alt.Scale, scale: alt.Scale) -> list[alt.Chart]:
    """Text labels on the map (e.g. "diverged at step 12"), each pointing inward."""
    layers: list[alt.Chart] = []
    if notes:
        nf = pd.DataFrame(notes, columns=["run", "x", "y", "text"])
        # Labels point inward, so a run that died near an edge still has a readable label.
        right = nf["x"] > (xlim[0] + xlim[1]) / 2
        top = nf["y"] > (ylim[0] + ylim[1]) / 2
        for r in (False, True):
            for t in (False, True):
                part = nf[(right == r) & (top == t)]
                if len(part):
                    style = dict(fontSize=18, fontWeight="bold", align="right" if r else "left",
                                 dx=-12 if r else 12, dy=16 if t else -16, clip=True)
                    pos = dict(x=alt.X("x:Q", scale=sx), y=alt.Y("y:Q", scale=sy), text=alt.Text("text:N"))
                    # A white outline under the coloured text keeps it legible on any background.
                    layers.append(alt.Chart(part).mark_text(stroke="white", strokeWidth=5, color="white",
                                                            **style).encode(**pos))
                    layers.append(alt.Chart(part).mark_text(**style).encode(
                        color=alt.Color("run:N", scale=scale, legend=None), **pos))
    return layers




def _landmarks(paths: pd.DataFrame, minima: Sequence[tuple[float, float]], sx: alt.Scale,
               sy: alt.Scale) -> tuple[alt.Chart, alt.Chart]:
    """The start (open square) and the known minima (diamonds)."""
    start = paths[paths["step"] == 0].head(1)
    start_mark = alt.Chart(start).mark_point(shape="square", size=220, filled=False, strokeWidth=3,
                                             color="black").encode(x=alt.X("x:Q", scale=sx), y=alt.Y("y:Q", scale=sy))
    mins = pd.DataFrame(minima, columns=["x", "y"]) if len(minima) else pd.DataFrame(columns=["x", "y"])
    star = alt.Chart(mins).mark_point(shape="diamond", size=200, filled=True, color="black", stroke="white",
                                      strokeWidth=1.5).encode(x=alt.X("x:Q", scale=sx), y=alt.Y("y:Q", scale=sy),
                                                              tooltip=[alt.Tooltip("x:Q", format=".4g"),
                                                                       alt.Tooltip("y:Q", format=".4g")])
    return start_mark, star


@st.cache_data(max_entries=64, show_spinner=False)
def surface_grid(name: str, condition: float, n: int = 72) -> pd.DataFrame:
    """The banded map of a surface, computed once per surface (every run on it shares it)."""
    surface = create_surface(name, condition)
    xs, ys, z = surface.grid(n)
    return surface_frame(xs, ys, z, surface.f_min, surface.log_scale)


def contour_view(surface: Surface, runs: Sequence, labels: Sequence[str], colors: Sequence[str], *,
                 condition: float = 10.0, n: int = 72, start: tuple[float, float] | None = None,
                 **kwargs) -> alt.LayerChart:
    """A surface's contour map (cached grid) with ``runs`` drawn on it.

    Args:
        surface: the surface (its box, minima and colour scale).
        runs: ``Descent`` results; none draws the landscape and the start only.
        labels: one per run, in colour order.
        colors: one per run.
        condition: the bowl's κ (the grid's cache key; ignored by other surfaces).
        n: grid resolution.
        start: the start to mark when no run could run (default: the surface's).
        **kwargs: ``contour_chart``'s options (``at``, ``height``, ``title``, ``notes``, ``legend``).
    """
    grid = surface_grid(surface.name, float(condition) if surface.name == "bowl" else 10.0, n)
    paths = paths_frame(runs, labels, surface.f_min)
    if not len(paths):
        paths = start_frame(*(start or surface.start))
    _, color_title = color_value(grid["level"].to_numpy()[:1], surface.f_min, surface.log_scale)
    chart = contour_chart(grid, paths, labels or ["start"], xlim=surface.xlim, ylim=surface.ylim,
                          minima=surface.minima, color_title=color_title, colors=colors or ["#000"], **kwargs)
    # SVG, not the canvas Streamlit picks for a few thousand cells: text stays crisp (and
    # measurable by the projector test) when the map is drawn small.
    chart.usermeta = {"embedOptions": {"renderer": "svg"}}
    return chart


__all__ = ["BANDS", "FastLayerChart", "color_value", "contour_chart", "contour_view", "paths_frame",
           "start_frame", "surface_frame", "surface_grid"]
