"""Altair charts for the optimization pages: a banded contour map of a 2-D surface
with optimizer trajectories, loss against step, learning-rate sweeps and schedules.

Everything here takes plain numbers (numpy arrays, pandas frames, ``Descent``
results); no torch.
"""

from __future__ import annotations

import math
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

from dltl_ui.layout import chart_height

# Run colours: saturated, distinct from each other and from the light contour map.
COLORS = ("#d62728", "#1f4eb4", "#ff9f1c", "#2ca02c", "#9467bd", "#8c564b")
REGIME_COLORS = {"too small": "#1f77b4", "good": "#2ca02c", "too large": "#ff7f0e", "divergent": "#d62728"}
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
        color=alt.Color("run:N", scale=scale, legend=alt.Legend(title=None, orient="bottom", columns=2,
                                                                labelLimit=400) if legend else None),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("step:Q"), alt.Tooltip("x:Q", format=".4g"), alt.Tooltip("y:Q", format=".4g"),
                 alt.Tooltip("loss:Q", format=".4g")], **enc)
    last = shown.sort_values("step").groupby("run", as_index=False).tail(1)
    now = alt.Chart(last).mark_point(filled=True, size=260, stroke="white", strokeWidth=2, opacity=1).encode(
        x=alt.X("x:Q", scale=sx), y=alt.Y("y:Q", scale=sy), color=alt.Color("run:N", scale=scale, legend=None))
    start = paths[paths["step"] == 0].head(1)
    start_mark = alt.Chart(start).mark_point(shape="square", size=220, filled=False, strokeWidth=3,
                                             color="black").encode(x=alt.X("x:Q", scale=sx), y=alt.Y("y:Q", scale=sy))
    mins = pd.DataFrame(minima, columns=["x", "y"]) if len(minima) else pd.DataFrame(columns=["x", "y"])
    star = alt.Chart(mins).mark_point(shape="diamond", size=200, filled=True, color="black", stroke="white",
                                      strokeWidth=1.5).encode(x=alt.X("x:Q", scale=sx), y=alt.Y("y:Q", scale=sy),
                                                              tooltip=[alt.Tooltip("x:Q", format=".4g"),
                                                                       alt.Tooltip("y:Q", format=".4g")])
    layers = [base, halo, line, star, start_mark, now]
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
    return _layer(*layers, height=h, **({"title": title} if title else {}))


def loss_chart(paths: pd.DataFrame, labels: Sequence[str], *, at: int | None = None, log: bool = True,
               height: int | None = None, colors: Sequence[str] | None = None,
               y_title: str = "f − f*  (log scale)") -> alt.LayerChart:
    """Loss above the minimum against step, one line per run, a rule at step ``at``."""
    h = height or chart_height(480)
    scale = _domain(labels, colors)
    y = alt.Y("gap:Q", title=y_title, scale=alt.Scale(type="log") if log else alt.Scale())
    lines = alt.Chart(paths).mark_line(strokeWidth=3).encode(
        x=alt.X("step:Q", title="step"), y=y,
        color=alt.Color("run:N", scale=scale, legend=alt.Legend(title=None, orient="bottom", columns=1, labelLimit=400)),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("step:Q"), alt.Tooltip("loss:Q", format=".4g")])
    layers = [lines]
    if at is not None:
        layers.append(alt.Chart(pd.DataFrame({"step": [at]})).mark_rule(strokeDash=[6, 4], color="#555",
                                                                       strokeWidth=2).encode(x=alt.X("step:Q")))
        here = paths[paths["step"] == at]
        if len(here):
            layers.append(alt.Chart(here).mark_point(filled=True, size=160, opacity=1).encode(
                x=alt.X("step:Q"), y=y, color=alt.Color("run:N", scale=scale, legend=None)))
    return _layer(*layers, height=h)


def sweep_chart(sweep: pd.DataFrame, *, height: int | None = None, marked: Sequence[float] = ()) -> alt.LayerChart:
    """Final loss above the minimum against learning rate (log–log), points coloured by regime.

    Args:
        sweep: columns ``lr``, ``gap`` (inf for divergent), ``regime``.
        marked: learning rates to highlight with a vertical rule (the side-by-side runs).
    """
    h = height or chart_height(380)
    df = sweep.copy()
    finite = df["gap"].replace([np.inf, -np.inf], np.nan)
    top = float(np.nanmax(finite)) if finite.notna().any() else 1.0
    bottom = float(np.nanmin(finite[finite > 0])) if (finite > 0).any() else 1e-12
    # Divergent runs have no final loss: draw them on a line above the top of the axis.
    ceiling = 10 ** (math.ceil(math.log10(max(top, 1e-12))) + 1)
    df["plot_gap"] = finite.fillna(ceiling).clip(lower=max(bottom, 1e-12))
    df["shown"] = np.where(finite.isna(), "diverged", df["gap"].map(lambda g: f"{g:.3g}"))
    domain = [r for r in REGIME_COLORS]
    x = alt.X("lr:Q", scale=alt.Scale(type="log"), title="learning rate η (log scale)")
    y = alt.Y("plot_gap:Q", scale=alt.Scale(type="log"), title="final f − f*  (log scale)")
    color = alt.Color("regime:N", scale=alt.Scale(domain=domain, range=[REGIME_COLORS[d] for d in domain]),
                      legend=alt.Legend(title=None, orient="bottom"))
    line = alt.Chart(df[finite.notna()]).mark_line(color="#888", strokeWidth=2).encode(x=x, y=y)
    pts = alt.Chart(df).mark_point(filled=True, size=180, opacity=1).encode(
        x=x, y=y, color=color, shape=alt.Shape("regime:N", scale=alt.Scale(domain=domain), legend=None),
        tooltip=[alt.Tooltip("lr:Q", format=".3g"), alt.Tooltip("regime:N"), alt.Tooltip("shown:N", title="final f − f*")])
    layers = [line, pts]
    if marked:
        rules = pd.DataFrame({"lr": list(marked)})
        layers.insert(0, alt.Chart(rules).mark_rule(strokeDash=[4, 4], color="#999").encode(x=x))
    div = df[finite.isna()]
    if len(div):
        layers.append(alt.Chart(pd.DataFrame({"lr": [float(div["lr"].min())], "plot_gap": [ceiling]}))
                      .mark_text(text="diverged", dy=-16, fontSize=16, color=REGIME_COLORS["divergent"], align="left")
                      .encode(x=x, y=y))
    return _layer(*layers, height=h)


def lr_chart(curves: pd.DataFrame, labels: Sequence[str], *, height: int | None = None,
             colors: Sequence[str] | None = None) -> alt.Chart:
    """η against step for several schedules (columns ``run``, ``step``, ``lr``)."""
    h = height or chart_height(320)
    return alt.Chart(curves).mark_line(strokeWidth=3).encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("lr:Q", title="learning rate η"),
        color=alt.Color("run:N", scale=_domain(labels, colors), legend=alt.Legend(title=None, orient="bottom",
                                                                                 columns=2, labelLimit=400)),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("step:Q"), alt.Tooltip("lr:Q", format=".3g")],
    ).properties(height=h)


def range_test_chart(df: pd.DataFrame, suggested: float | None, *, height: int | None = None) -> alt.LayerChart:
    """LR range test: smoothed loss against η (log x), the suggested η marked."""
    h = height or chart_height(360)
    x = alt.X("lr:Q", scale=alt.Scale(type="log"), title="learning rate η (log scale)")
    # The final blow-up can be 10x the start: cap the axis so the informative dip stays visible.
    top = 1.6 * float(df["smooth"].iloc[0]) if len(df) else 1.0
    ys = alt.Scale(domain=[0, top], clamp=True)
    raw = alt.Chart(df).mark_line(color="#bbb", strokeWidth=1.5, clip=True).encode(
        x=x, y=alt.Y("loss:Q", title="training loss", scale=ys))
    smooth = alt.Chart(df).mark_line(color=COLORS[1], strokeWidth=3.5, clip=True).encode(
        x=x, y=alt.Y("smooth:Q", scale=ys), tooltip=[alt.Tooltip("lr:Q", format=".3g"), alt.Tooltip("smooth:Q", format=".3g")])
    layers = [raw, smooth]
    if suggested is not None:
        mark = pd.DataFrame({"lr": [suggested], "text": [f"suggested η ≈ {suggested:.2g}"]})
        layers.append(alt.Chart(mark).mark_rule(color=REGIME_COLORS["good"], strokeWidth=3).encode(x=x))
        layers.append(alt.Chart(mark).mark_text(align="right", dx=-10, dy=-8, fontSize=18, fontWeight="bold",
                                                color=REGIME_COLORS["good"]).encode(x=x, y=alt.value(20), text=alt.Text("text:N")))
    return _layer(*layers, height=h)
