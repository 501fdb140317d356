"""Altair charts of the transfer-learning page (projector-friendly, theme from dltl_ui.layout)."""

from __future__ import annotations

from typing import Any, Sequence

import altair as alt
import pandas as pd

from dltl_core import transfer_regimes as tr
from dltl_ui.layout import chart_height

MODE_LABELS = {"linear": "Transfer (frozen)", "finetune": "Fine-tuning", "scratch": "From scratch"}
MODE_DOMAIN = list(MODE_LABELS.values())
MODE_COLORS = ["#4c78a8", "#f58518", "#e45756"]


def _mode_color() -> alt.Color:
    return alt.Color("mode:N", title="Mode", scale=alt.Scale(domain=MODE_DOMAIN, range=MODE_COLORS))


def curves_frame(histories: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Long frame (mode, epoch, elapsed, split, accuracy, loss) from each mode's epoch rows."""
    rows = []
    for mode, hist in histories.items():
        for r in hist:
            for split in ("train", "val"):
                rows.append({"mode": MODE_LABELS.get(mode, mode), "epoch": r["epoch"],
                             "elapsed": r["elapsed"], "split": "validation" if split == "val" else "training",
                             "accuracy": r[f"{split}_acc"], "loss": r[f"{split}_loss"]})
    return pd.DataFrame(rows)


def curves_by_epoch(df: pd.DataFrame) -> alt.LayerChart:
    """Accuracy per epoch, one colour per mode, dashed = training."""
    base = alt.Chart(df, title="Accuracy per epoch").encode(
        x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("accuracy:Q", title="Accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=_mode_color(),
        tooltip=["mode", "epoch", "split", alt.Tooltip("accuracy:Q", format=".1%"),
                 alt.Tooltip("elapsed:Q", format=".1f", title="seconds")],
    )
    # The points are their own layer: a line with point=True makes Vega-Lite draw the Split
    # legend's symbols as points with stroke="transparent", so solid and dashed looked alike.
    lines = base.mark_line(strokeWidth=3).encode(
        strokeDash=alt.StrokeDash("split:N", title="Split", sort=["validation", "training"],
                                  legend=alt.Legend(symbolType="stroke", symbolStrokeWidth=3, symbolSize=400,
                                                    symbolStrokeColor="#333333")))
    points = base.mark_point(filled=True, size=50, opacity=1).encode(detail="split:N")
    return (lines + points).properties(height=chart_height(320))


def curves_by_time(df: pd.DataFrame) -> alt.Chart:
    """Validation accuracy against wall-clock seconds (log scale: the modes differ by 100x)."""
    val = df[df["split"] == "validation"]
    return alt.Chart(val, title="Validation accuracy vs. time").mark_line(
        point=True, strokeWidth=3).encode(
        x=alt.X("elapsed:Q", title="Seconds (log scale)", scale=alt.Scale(type="log"),
                axis=alt.Axis(labelOverlap="greedy", labelSeparation=8)),  # log ticks crowd (0.5, 0.6, …): drop overlaps
        y=alt.Y("accuracy:Q", title="Validation accuracy", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        color=_mode_color(),
        tooltip=["mode", "epoch", alt.Tooltip("accuracy:Q", format=".1%"),
                 alt.Tooltip("elapsed:Q", format=".1f", title="seconds")],
    ).properties(height=chart_height(320))


def summary_bars(summary: pd.DataFrame) -> alt.Chart:
    """Final validation accuracy per mode, labelled with its wall-clock time."""
    base = alt.Chart(summary).encode(
        y=alt.Y("mode:N", title=None, sort=MODE_DOMAIN),
        x=alt.X("accuracy:Q", title="Validation accuracy", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
    )
    bars = base.mark_bar().encode(color=alt.Color("mode:N", legend=None,
                                                  scale=alt.Scale(domain=MODE_DOMAIN, range=MODE_COLORS)))
    text = base.mark_text(align="left", dx=6).encode(text="label:N")
    return (bars + text).properties(height=chart_height(60 + 50 * len(summary)))


def confusion_chart(confusion: Sequence[Sequence[int]], species: Sequence[str]) -> alt.LayerChart:
    """Heat map: rows = true species, columns = predicted; the diagonal is what went right."""
    rows = [{"true": species[i], "predicted": species[j], "count": int(c)}
            for i, row in enumerate(confusion) for j, c in enumerate(row)]
    df = pd.DataFrame(rows)
    order = list(species)
    base = alt.Chart(df).encode(
        x=alt.X("predicted:N", sort=order, title="Predicted species", axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("true:N", sort=order, title="True species"),
    )
    rect = base.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues"), title="Photos"),
                                   tooltip=["true", "predicted", "count"])
    text = base.mark_text(fontSize=14).encode(
        text=alt.condition(alt.datum.count > 0, "count:Q", alt.value("")),
        color=alt.condition(alt.datum.count > 3, alt.value("white"), alt.value("black")))
    return (rect + text).properties(height=chart_height(60 + 34 * len(species)))


def per_species_chart(per_species: Sequence[dict[str, Any]]) -> alt.Chart:
    """Validation accuracy of each species, worst first."""
    df = pd.DataFrame(per_species)
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("species:N", sort=alt.EncodingSortField("accuracy", order="ascending"), title=None),
        x=alt.X("accuracy:Q", title="Validation accuracy", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        color=alt.Color("accuracy:Q", scale=alt.Scale(scheme="redyellowgreen", domain=[0.3, 1]), legend=None),
        tooltip=["species", alt.Tooltip("accuracy:Q", format=".0%"), alt.Tooltip("n:Q", title="photos")],
    ).properties(height=chart_height(40 + 28 * len(df)))


def feature_map_chart(points: Sequence[dict[str, Any]], title: str) -> alt.Chart:
    """2-D map of the photos' feature vectors, one colour per species."""
    df = pd.DataFrame(points)
    return alt.Chart(df, title=title).mark_circle(size=90, opacity=0.8).encode(
        x=alt.X("x:Q", title="component 1", axis=alt.Axis(labels=False)),
        y=alt.Y("y:Q", title="component 2", axis=alt.Axis(labels=False)),
        color=alt.Color("species:N", title="Species", scale=alt.Scale(scheme="category20")),
        tooltip=["species", "file"],
    ).properties(height=chart_height(380))


def topk_chart(pairs: Sequence[tuple[str, float]], title: str, color: str = "#4c78a8") -> alt.Chart:
    """Horizontal bars of the top-k (label, probability) pairs, the most probable on top.

    Labels longer than 160 px end in "…" (ImageNet's "house finch, linnet, Carpodacus
    mexicanus"): in a third of a 1280 px page the bars and their axis need the rest."""
    df = pd.DataFrame(pairs, columns=["label", "probability"])
    base = alt.Chart(df, title=title).encode(
        y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelLimit=160)),
        x=alt.X("probability:Q", title="Probability", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
    )
    return (base.mark_bar(color=color) + base.mark_text(align="left", dx=4).encode(
        text=alt.Text("probability:Q", format=".0%"))).properties(height=chart_height(230))


def epoch_story(results: dict[str, Any]) -> str:
    """What the per-epoch curves show, from the finished runs (a mode that did not run is not named).

    The frozen head is "near its best" at the first epoch within 2 points of its best; from
    scratch is compared with chance (1 / species).
    """
    parts = []
    lin = results.get("linear")
    if lin is not None and lin.history:
        accs = [r["val_acc"] for r in lin.history]
        near = next(i for i, a in enumerate(accs, 1) if a >= max(accs) - 0.02)
        parts.append(f"the frozen backbone's head is within 2 points of its best ({max(accs):.0%}) after "
                     f"{near} of {len(accs)} epochs")
    scratch = results.get("scratch")
    if scratch is not None and scratch.history and scratch.species:
        chance = 1 / len(scratch.species)
        parts.append(f"from scratch reaches {scratch.val_accuracy:.0%} against {chance:.0%} for guessing "
                     f"({scratch.n_train} training photos)")
    return ("What to notice: " + "; ".join(parts) + ".") if parts else ""


def time_story(results: dict[str, Any]) -> str:
    """How many times longer each image mode took than the linear head (only modes that ran)."""
    lin = results.get("linear")
    others = [(MODE_LABELS.get(m, m), r.seconds) for m, r in results.items() if m != "linear" and r.seconds]
    if lin is None or not others or not lin.train_seconds:
        return "Validation accuracy against the seconds each run took (log scale)."
    told = ", ".join(f"{label} {secs:.0f} s" for label, secs in others)
    return f"What to notice: the linear head on cached features took {lin.train_seconds:.1f} s; {told}."


def _photos_x() -> alt.X:
    return alt.X("photos:Q", title="Training photos per species",
                 scale=alt.Scale(type="log", base=2, nice=False, padding=12), axis=alt.Axis(values=[4, 8, 16, 32]))


def regime_chart(data: dict) -> alt.FacetChart:
    """Validation accuracy against training photos per species (log 2 axis, 4 to 32), one panel per species
    count: the mean over seeds as a line, the seeds' range as a bar."""
    df = pd.DataFrame(tr.summarize(data))
    df["Mode"] = df["mode"].map(MODE_LABELS)
    df["panel"] = df["species"].map(lambda k: f"{k} species")
    color = alt.Color("Mode:N", scale=alt.Scale(domain=MODE_DOMAIN, range=MODE_COLORS),
                      legend=alt.Legend(orient="top", title=None))
    base = alt.Chart().encode(x=_photos_x(), color=color)
    line = base.mark_line(point=True, strokeWidth=3).encode(
        y=alt.Y("mean:Q", title="Validation accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=["Mode", "panel", alt.Tooltip("photos:Q", format=".1f", title="photos per species"),
                 alt.Tooltip("mean:Q", format=".1%", title="mean"), alt.Tooltip("low:Q", format=".1%"),
                 alt.Tooltip("high:Q", format=".1%"), "seeds", alt.Tooltip("seconds:Q", format=".1f")])
    spread = base.mark_rule(strokeWidth=6, opacity=0.45).encode(y="low:Q", y2="high:Q")
    return alt.layer(spread, line, data=df).properties(height=chart_height(260), width=200).facet(
        column=alt.Column("panel:N", title=None, sort=sorted(df["panel"].unique(), key=lambda p: int(p.split()[0]))))


def gain_chart(data: dict) -> alt.LayerChart:
    """Fine-tuning minus the frozen backbone, in points, per species count: the mean over seeds
    (line) and the seeds' range (bar); above the zero line fine-tuning pays."""
    df = pd.DataFrame(tr.gains(data))
    df["points"], df["low_p"], df["high_p"] = df["gain"] * 100, df["low"] * 100, df["high"] * 100
    df["Species"] = df["species"].map(lambda k: f"{k} species")
    # Side by side, not on top of each other: each species count's bars shifted a little along x.
    ks = sorted(df["species"].unique())
    df["photos"] = df["photos"] * df["species"].map({k: 1 + 0.07 * (i - (len(ks) - 1) / 2) for i, k in enumerate(ks)})
    color = alt.Color("Species:N", scale=alt.Scale(scheme="dark2"), legend=alt.Legend(orient="top", title=None))
    base = alt.Chart(df).encode(x=_photos_x(), color=color)
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="#555", strokeDash=[4, 4]).encode(y="y:Q")
    line = base.mark_line(point=True, strokeWidth=3).encode(
        y=alt.Y("points:Q", title="Gain (accuracy points)"),
        tooltip=["Species", alt.Tooltip("photos:Q", format=".1f", title="photos per species"),
                 alt.Tooltip("points:Q", format="+.1f", title="mean gain"), alt.Tooltip("low_p:Q", format="+.1f"),
                 alt.Tooltip("high_p:Q", format="+.1f"), "verdict", "seeds"])
    spread = base.mark_rule(strokeWidth=6, opacity=0.4).encode(y="low_p:Q", y2="high_p:Q")
    return (zero + spread + line).properties(title="Fine-tuned minus frozen",
                                              height=chart_height(260))
