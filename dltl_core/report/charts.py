"""The Results page's charts as Altair specs, and their rendering to PNG and SVG.

One builder per chart, used both by the page (``st.altair_chart``) and by the slide deck
(``to_png``), so a slide shows exactly what the page shows. Colours follow the architecture
registry's order, so an architecture has the same colour in every chart. The builders
compute the Pareto front themselves (``findings.pareto_front``): the chart and its caption
cannot disagree about it.
"""

from __future__ import annotations

import copy
from typing import Any

import altair as alt
import pandas as pd

from dltl_core.archs import ARCHS
from dltl_core.report import findings as F
from dltl_core.report.study import OFFICIAL_TEST_IMAGES, arch_label

AXES = {"params": "parameters", "flops": "FLOPs per image", "wall_seconds": "training time (wall s)",
        "cpu_seconds": "training time (CPU s)"}
SCORE_TITLES = {"val_acc": "validation accuracy (%)", "test_acc": "test accuracy (%)",
                "test_acc_tta": "test accuracy, flip TTA (%)"}
CURVE_TITLES = {"val_acc": "validation accuracy (%)", "train_acc": "training accuracy (%)",
                "val_loss": "validation loss", "train_loss": "training loss"}
STATE_COLORS = alt.Scale(domain=["complete", "pruned", "diverged", "failed"],
                         range=["#4c78a8", "#f58518", "#e45756", "#9d9d9d"])
# Exported images (slides, downloads): large type for a projector, white background.
EXPORT_CONFIG: dict[str, Any] = {
    "background": "white",
    "axis": {"labelFontSize": 18, "titleFontSize": 20, "gridOpacity": 0.5, "labelLimit": 0},
    "legend": {"labelFontSize": 17, "titleFontSize": 18, "symbolSize": 200, "labelLimit": 0},
    "title": {"fontSize": 20, "anchor": "start", "limit": 0},
    "view": {"stroke": None},
}


def _arch_scale(archs: pd.Series) -> alt.Scale:
    """Colours by architecture, in registry order, the same in every chart."""
    known = [ARCHS[a].label for a in ARCHS]
    palette = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6",
               "#9d755d", "#bab0ac"]
    present = set(archs.map(arch_label))
    domain = [a for a in known if a in present] + sorted(present - set(known))
    colours = {a: palette[i % len(palette)] for i, a in enumerate(known + sorted(present - set(known)))}
    return alt.Scale(domain=domain, range=[colours[a] for a in domain])


def pareto(df: pd.DataFrame, cost: str, score: str = "val_acc", *, highlight: str | None = None,
           height: int = 340) -> alt.LayerChart:
    """Accuracy against a cost (log axis); the Pareto front circled and, from two runs on, joined.

    Args:
        df: ``study.runs_frame`` rows (only completed runs with both measures are drawn).
        cost: ``params``, ``flops``, ``wall_seconds`` or ``cpu_seconds``.
        score: the accuracy column.
        highlight: an architecture key drawn opaque and large, the others lighter (the talk's network).
        height: plot height in pixels.
    """
    done = F.completed(df, score).dropna(subset=[cost]).assign(
        architecture=lambda d: d["arch"].map(arch_label),
        chosen=lambda d: (d["arch"] == highlight) if highlight else True)
    front = F.pareto_front(done, cost, score)
    # SI labels (30k, 1M) on the count axes: full numbers collide on a log axis.
    axis = alt.Axis(format="~s", labelOverlap="greedy") if cost in ("params", "flops") else \
        alt.Axis(labelOverlap="greedy")
    x = alt.X(f"{cost}:Q", scale=alt.Scale(type="log"), title=AXES.get(cost, cost), axis=axis)
    y = alt.Y(f"{score}:Q", title=SCORE_TITLES.get(score, score), scale=alt.Scale(zero=False))
    points = alt.Chart(done).mark_point(filled=True, opacity=0.85).encode(
        x=x, y=y, color=alt.Color("architecture:N", title="architecture", scale=_arch_scale(done["arch"])),
        shape=alt.Shape("kind:N", title="kind"),
        size=alt.condition("datum.chosen", alt.value(260), alt.value(110)),
        opacity=alt.condition("datum.chosen", alt.value(0.95), alt.value(0.45)),
        tooltip=["label", "state", alt.Tooltip(f"{score}:Q", format=".1f"), alt.Tooltip(f"{cost}:Q", format=",.4g")])
    if "n_val" in done and score == "val_acc":
        n = done["n_val"]
    else:
        n = done["n_test"].fillna(OFFICIAL_TEST_IMAGES) if "n_test" in done else None
    if n is not None and n.notna().any():
        se = [F.standard_error(a, k) if pd.notna(k) and k > 0 else 0.0 for a, k in zip(done[score], n)]
        noise = done.assign(lo=done[score] - se, hi=done[score] + se)
        layers_noise = [alt.Chart(noise).mark_rule(strokeWidth=1.5, opacity=0.5).encode(
            x=f"{cost}:Q", y="lo:Q", y2="hi:Q",
            color=alt.Color("architecture:N", scale=_arch_scale(done["arch"])))]
    else:
        layers_noise = []
    ring = alt.Chart(front).mark_point(shape="circle", filled=False, size=520, color="#222", strokeWidth=2).encode(
        x=f"{cost}:Q", y=f"{score}:Q")
    layers = [*layers_noise, points, ring]
    if len(front) >= 2:
        layers.insert(0, alt.Chart(front).mark_line(interpolate="step-after", color="#444", strokeDash=[6, 4])
                      .encode(x=f"{cost}:Q", y=f"{score}:Q"))
    return alt.layer(*layers).properties(height=height)


def learning_curves(curves: pd.DataFrame, metric: str = "val_acc", *, height: int = 340) -> alt.Chart:
    """Overlaid per-epoch curves of the chosen runs."""
    return alt.Chart(curves).mark_line(point=True, strokeWidth=3).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y(f"{metric}:Q", title=CURVE_TITLES.get(metric, metric), scale=alt.Scale(zero=False)),
        color=alt.Color("label:N", title="run"),
        tooltip=["label", "epoch", alt.Tooltip(f"{metric}:Q", format=".3g")],
    ).properties(height=height)


def time_to_accuracy(curves: pd.DataFrame, time_col: str = "elapsed", unit: str = "wall seconds",
                     target: float | None = None, *, highlight: str | None = None,
                     height: int = 340) -> alt.LayerChart:
    """Validation accuracy against training time at the end of each epoch, one line per run.

    Args:
        curves: ``study.curves_frame`` rows.
        time_col: ``elapsed`` (wall) or ``cpu_elapsed`` (CPU seconds).
        unit: the axis' unit in words.
        target: a target accuracy (%) drawn as a dotted rule (the caption's "fastest to").
        highlight: an architecture key whose lines are drawn thicker (the talk's network).
        height: plot height in pixels.
    """
    d = curves.dropna(subset=[time_col, "val_acc"]).assign(
        chosen=lambda c: (c["arch"] == highlight) if highlight else False)
    lines = alt.Chart(d).mark_line(point=True).encode(
        strokeWidth=alt.condition("datum.chosen", alt.value(6), alt.value(2.5)),
        x=alt.X(f"{time_col}:Q", title=f"training time ({unit})"),
        y=alt.Y("val_acc:Q", title="validation accuracy (%)", scale=alt.Scale(zero=False)),
        color=alt.Color("label:N", title="run"),
        tooltip=["label", "epoch", alt.Tooltip(f"{time_col}:Q", format=",.0f", title=unit),
                 alt.Tooltip("val_acc:Q", format=".1f")])
    if target is None:
        return alt.layer(lines).properties(height=height)
    rule = alt.Chart(pd.DataFrame({"target": [target]})).mark_rule(strokeDash=[2, 3], color="#222").encode(
        y="target:Q")
    return alt.layer(lines, rule).properties(height=height)


def search_history(hist: pd.DataFrame, *, height: int = 300) -> alt.LayerChart:
    """Each trial's accuracy in order (coloured by state), and the best so far (green line)."""
    points = alt.Chart(hist).mark_circle(size=140).encode(
        x=alt.X("trial:Q", title="trial", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("val_acc:Q", title="validation accuracy (%)", scale=alt.Scale(zero=False),
                axis=alt.Axis(format=".3~g")),
        color=alt.Color("state:N", title="state", scale=STATE_COLORS),
        tooltip=["trial", "state", alt.Tooltip("val_acc:Q", format=".1f")])
    best = alt.Chart(hist.dropna(subset=["best_so_far"])).mark_line(
        interpolate="step-after", color="#54a24b", strokeWidth=3).encode(x="trial:Q", y="best_so_far:Q")
    return alt.layer(best, points).properties(height=height)


def importances(imp: dict[str, float], *, height: int | None = None) -> alt.Chart:
    """Optuna's hyperparameter importances as horizontal bars."""
    d = pd.DataFrame({"parameter": list(imp), "importance": list(imp.values())})
    return alt.Chart(d).mark_bar().encode(
        x=alt.X("importance:Q", title="importance (share)", axis=alt.Axis(format="%")),
        y=alt.Y("parameter:N", sort="-x", title=None),
        tooltip=["parameter", alt.Tooltip("importance:Q", format=".2f")],
    ).properties(height=height or 60 + 40 * len(d))


def export_spec(chart: alt.TopLevelMixin, width: int = 900, height: int | None = None) -> dict[str, Any]:
    """The chart's Vega-Lite spec at a fixed size with the export look (large type, white)."""
    sized = chart.properties(width=width, **({"height": height} if height else {}))
    spec = copy.deepcopy(sized.to_dict())
    config = spec.setdefault("config", {})
    for key, value in EXPORT_CONFIG.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return spec


def to_png(chart: alt.TopLevelMixin, width: int = 900, height: int | None = None, scale: float = 2.0) -> bytes:
    """The chart as a PNG image (``vl-convert``; ``scale`` 2 is sharp on a projector)."""
    import vl_convert as vlc

    return vlc.vegalite_to_png(export_spec(chart, width, height), scale=scale)


def to_svg(chart: alt.TopLevelMixin, width: int = 900, height: int | None = None) -> str:
    """The chart as an SVG document (``vl-convert``)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(export_spec(chart, width, height))
