"""The one contour view: a banded map of a 2-D surface with optimizer paths (/gd and /lr).

``contour_view(surface, runs, labels, colors)`` is what pages call: the surface's grid is
computed once per (surface, condition, resolution) and cached (``st.cache_data``), the
paths are drawn on top. The lower-level ``contour_chart`` takes plain frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dltl_core.surfaces import Surface, create_surface
from dltl_ui.charts.compiled import show_template
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


def fast_layer(*layers: alt.Chart, **props) -> FastLayerChart:
    """Layers as one ``FastLayerChart``: properties go to the constructor (``.properties()``
    would validate them one by one)."""
    return FastLayerChart(layer=list(layers), **props)


def color_value(z: np.ndarray, f_star: float, log_scale: bool) -> tuple[np.ndarray, str]:
    """What the contour colours show: log10(f - f*) on log-scaled surfaces, else f."""
    if log_scale:
        span = float(np.nanmax(z) - f_star)
        # A floor a few decades below the range keeps log finite at the minimum itself.
        return np.log10(np.maximum(z - f_star, 0.0) + span * 1e-5), "log₁₀(f − f*)"
    return z, "f"


@dataclass(frozen=True)
class Grid:
    """A banded surface map, compact: one row per cell with its column ``i``, row ``j`` and
    band ``b`` (small integers); the chart computes the cell's corners and colour from the
    geometry below, in the browser.

    Five float columns per cell (x, x2, y, y2, level) made the /gd map about 0.3 MB per
    rerun; three one-byte columns are about 16 KB, so each slider move sends and converts
    less.
    """

    frame: pd.DataFrame
    x0: float
    dx: float
    y0: float
    dy: float
    lo: float
    step: float

    def transforms(self) -> list[dict]:
        """Vega-Lite ``calculate`` steps: cell corners (with a sliver of overlap, so no white
        seams show between cells) and the band's centre value."""
        hx, hy = self.dx * 0.51, self.dy * 0.51
        return [
            {"calculate": f"{self.x0!r} + datum.i * {self.dx!r} - {hx!r}", "as": "x"},
            {"calculate": f"{self.x0!r} + datum.i * {self.dx!r} + {hx!r}", "as": "x2"},
            {"calculate": f"{self.y0!r} + datum.j * {self.dy!r} - {hy!r}", "as": "y"},
            {"calculate": f"{self.y0!r} + datum.j * {self.dy!r} + {hy!r}", "as": "y2"},
            {"calculate": f"round(({self.lo!r} + (datum.b + 0.5) * {self.step!r}) * 1000) / 1000", "as": "level"},
        ]

    def levels(self) -> np.ndarray:
        """Each cell's band centre (what the colour shows), in frame order."""
        return (self.lo + (self.frame["b"].to_numpy() + 0.5) * self.step).round(3)


def surface_frame(xs: np.ndarray, ys: np.ndarray, z: np.ndarray, f_star: float, log_scale: bool) -> Grid:
    """Grid cells as rectangles with a banded colour value (a filled-contour look).

    Args:
        xs: (n,) x coordinates; ys: (m,) y coordinates; z: (m, n) surface values.
    """
    v, _ = color_value(z, f_star, log_scale)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    step = (hi - lo) / BANDS or 1.0
    band = np.floor(np.nan_to_num((v - lo) / step, nan=BANDS - 1)).clip(0, BANDS - 1).astype(np.uint8)
    gi, gj = np.meshgrid(np.arange(len(xs), dtype=np.uint8 if len(xs) < 256 else np.uint16),
                         np.arange(len(ys), dtype=np.uint8 if len(ys) < 256 else np.uint16))
    frame = pd.DataFrame({"i": gi.ravel(), "j": gj.ravel(), "b": band.ravel()})
    return Grid(frame, float(xs[0]), float(xs[1] - xs[0]), float(ys[0]), float(ys[1] - ys[0]), lo, step)


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


def run_scale(labels: Sequence[str], colors: Sequence[str] | None = None) -> alt.Scale:
    """The runs' colour scale: ``labels`` in the kit's palette order (or ``colors``)."""
    return alt.Scale(domain=list(labels), range=list(colors or COLORS[: len(labels)]))


def contour_frames(grid: Grid, paths: pd.DataFrame, *, xlim: tuple[float, float], ylim: tuple[float, float],
                   minima: Sequence[tuple[float, float]], at: int | None = None,
                   notes: Sequence[tuple[str, float, float, str]] = ()) -> dict[str, pd.DataFrame]:
    """The map's data by layer name: the grid, the paths up to ``at``, where each run is now,
    the start, the known minima and the notes (one frame per quadrant they point from)."""
    shown = paths if at is None else paths[paths["step"] <= at]
    frames = {
        "grid": grid.frame, "shown": shown,
        "last": shown.sort_values("step").groupby("run", as_index=False).tail(1),
        "start": paths[paths["step"] == 0].head(1),
        "minima": pd.DataFrame(minima, columns=["x", "y"]) if len(minima) else pd.DataFrame(columns=["x", "y"]),
    }
    if notes:
        nf = pd.DataFrame(notes, columns=["run", "x", "y", "text"])
        # Labels point inward, so a run that died near an edge still has a readable label.
        right = nf["x"] > (xlim[0] + xlim[1]) / 2
        top = nf["y"] > (ylim[0] + ylim[1]) / 2
        for r in (False, True):
            for t in (False, True):
                part = nf[(right == r) & (top == t)]
                if len(part):
                    frames[f"note_{int(r)}{int(t)}"] = part
    return frames


def contour_chart(
    grid: Grid,
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
    frames = contour_frames(grid, paths, xlim=xlim, ylim=ylim, minima=minima, at=at, notes=notes)
    return contour_layers(frames.__getitem__, list(frames), grid, labels, xlim=xlim, ylim=ylim,
                          color_title=color_title, height=height, colors=colors, title=title, legend=legend)


def contour_layers(source: Callable[[str], Any], names: Sequence[str], grid: Grid, labels: Sequence[str], *,
                   xlim: tuple[float, float], ylim: tuple[float, float], color_title: str = "f",
                   height: int | None = None, colors: Sequence[str] | None = None, title: str | None = None,
                   legend: bool = True) -> alt.LayerChart:
    """The map's layers, each drawing ``source(name)`` (a frame, or ``alt.NamedData`` for a template).

    Args:
        names: the layers ``contour_frames`` returned (which note layers exist).
        grid: the geometry of the grid (its cells are ``source("grid")``).
    """
    h = height or chart_height(480)
    scale = run_scale(labels, colors)
    sx = alt.Scale(domain=list(xlim), nice=False, zero=False)
    sy = alt.Scale(domain=list(ylim), nice=False, zero=False)
    pos = dict(x=alt.X("x:Q", scale=sx), y=alt.Y("y:Q", scale=sy))
    base = alt.Chart(source("grid"), transform=grid.transforms()).mark_rect(strokeWidth=0).encode(
        x=alt.X("x:Q", scale=sx, title="w₁"), x2=alt.X2("x2:Q"),
        y=alt.Y("y:Q", scale=sy, title="w₂"), y2=alt.Y2("y2:Q"),
        color=alt.Color("level:Q", scale=alt.Scale(scheme="lighttealblue", reverse=False),
                        legend=alt.Legend(title=color_title, orient="right", gradientLength=max(120, h - 120))
                        if legend else None),
    )
    enc = dict(**pos, order=alt.Order("step:Q"))
    halo = alt.Chart(source("shown")).mark_line(color="white", strokeWidth=6, clip=True).encode(
        detail=alt.Detail("run:N"), **enc)
    line = alt.Chart(source("shown")).mark_line(strokeWidth=3, clip=True, point=alt.OverlayMarkDef(size=14)).encode(
        color=alt.Color("run:N", scale=scale, legend=alt.Legend(title=None, orient="bottom", columns=1,
                                                                labelLimit=400) if legend else None),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("step:Q"), alt.Tooltip("x:Q", format=".4g"), alt.Tooltip("y:Q", format=".4g"),
                 alt.Tooltip("loss:Q", format=".4g")], **enc)
    now = alt.Chart(source("last")).mark_point(filled=True, size=260, stroke="white", strokeWidth=2, opacity=1).encode(
        **pos, color=alt.Color("run:N", scale=scale, legend=None))
    start_mark = alt.Chart(source("start")).mark_point(shape="square", size=220, filled=False, strokeWidth=3,
                                                       color="black").encode(**pos)
    star = alt.Chart(source("minima")).mark_point(shape="diamond", size=200, filled=True, color="black",
                                                  stroke="white", strokeWidth=1.5).encode(
        **pos, tooltip=[alt.Tooltip("x:Q", format=".4g"), alt.Tooltip("y:Q", format=".4g")])
    layers = [base, halo, line, star, start_mark, now]
    for name in names:
        if name.startswith("note_"):
            r, t = name[-2] == "1", name[-1] == "1"
            style = dict(fontSize=18, fontWeight="bold", align="right" if r else "left",
                         dx=-12 if r else 12, dy=16 if t else -16, clip=True)
            text = dict(**pos, text=alt.Text("text:N"))
            # A white outline under the coloured text keeps it legible on any background.
            layers.append(alt.Chart(source(name)).mark_text(stroke="white", strokeWidth=5, color="white",
                                                            **style).encode(**text))
            layers.append(alt.Chart(source(name)).mark_text(**style).encode(
                color=alt.Color("run:N", scale=scale, legend=None), **text))
    return fast_layer(*layers, height=h, **({"title": title} if title else {}))


@st.cache_data(max_entries=64, show_spinner=False)
def surface_grid(name: str, condition: float, n: int = 72) -> Grid:
    """The banded map of a surface, computed once per surface (every run on it shares it)."""
    surface = create_surface(name, condition)
    xs, ys, z = surface.grid(n)
    return surface_frame(xs, ys, z, surface.f_min, surface.log_scale)


def _prepare(surface: Surface, runs: Sequence, labels: Sequence[str], condition: float, n: int,
             start: tuple[float, float] | None) -> tuple[Grid, pd.DataFrame, str]:
    grid = surface_grid(surface.name, float(condition) if surface.name == "bowl" else 10.0, n)
    paths = paths_frame(runs, labels, surface.f_min)
    if not len(paths):
        paths = start_frame(*(start or surface.start))
    _, color_title = color_value(grid.levels()[:1], surface.f_min, surface.log_scale)
    return grid, paths, color_title


def _svg(chart: alt.LayerChart) -> alt.LayerChart:
    # SVG, not the canvas Streamlit picks for a few thousand cells: text stays crisp (and
    # measurable by the projector test) when the map is drawn small.
    chart.usermeta = {"embedOptions": {"renderer": "svg"}}
    return chart


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
    grid, paths, color_title = _prepare(surface, runs, labels, condition, n, start)
    return _svg(contour_chart(grid, paths, labels or ["start"], xlim=surface.xlim, ylim=surface.ylim,
                              minima=surface.minima, color_title=color_title, colors=colors or ["#000"], **kwargs))


def show_contour(surface: Surface, runs: Sequence, labels: Sequence[str], colors: Sequence[str], *,
                 condition: float = 10.0, n: int = 72, start: tuple[float, float] | None = None,
                 at: int | None = None, notes: Sequence[tuple[str, float, float, str]] = (),
                 height: int | None = None, title: str | None = None, legend: bool = True) -> None:
    """Draw ``contour_view``'s map, built once per shape: each rerun only converts the paths.

    The layers are compiled to Vega-Lite once per (surface, number of runs, colours, size,
    notes shown) and theme (``charts.compiled.show_template``); scrubbing or a new learning rate
    then costs a few small Arrow conversions, not an Altair build.
    """
    grid, paths, color_title = _prepare(surface, runs, labels, condition, n, start)
    xlim, ylim = surface.xlim, surface.ylim
    frames = contour_frames(grid, paths, xlim=xlim, ylim=ylim, minima=surface.minima, at=at, notes=notes)
    labels, colors = list(labels or ["start"]), list(colors or ["#000"])
    # The labels are not part of the shape: a new learning rate changes a legend label, and
    # show_template puts the labels into the compiled spec instead of compiling it again.
    shape = (surface.name, float(condition), n, tuple(colors), height, title, legend,
             tuple(name for name in frames if name.startswith("note_")), color_title)
    show_template(("contour", shape), lambda texts: _svg(contour_layers(
        lambda name: alt.NamedData(name=name), list(frames), grid, texts, xlim=xlim, ylim=ylim,
        color_title=color_title, height=height, colors=colors, title=title, legend=legend)), frames, texts=labels)


__all__ = ["BANDS", "FastLayerChart", "Grid", "color_value", "contour_chart", "contour_frames", "contour_layers",
           "contour_view", "paths_frame", "show_contour", "start_frame", "surface_frame", "surface_grid"]
