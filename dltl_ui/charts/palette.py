"""One palette for every chart: runs, regimes, splits, layer kinds, losses."""

from __future__ import annotations

import altair as alt

# Run colours: saturated, distinct from each other and from the light contour map.
COLORS = ("#d62728", "#1f4eb4", "#ff9f1c", "#2ca02c", "#9467bd", "#8c564b")
REGIME_COLORS = {"too small": "#1f77b4", "good": "#2ca02c", "too large": "#ff7f0e", "divergent": "#d62728"}
SCHED_COLORS = ("#333333", "#d62728", "#1f4eb4", "#ff9f1c", "#2ca02c", "#9467bd")
TRAIN, VALIDATION = "#1f4eb4", "#e4572e"
SPLIT_COLORS = alt.Scale(domain=["train", "validation"], range=[TRAIN, VALIDATION])
CLASS_COLORS = alt.Scale(domain=[0, 1], range=[TRAIN, VALIDATION])
KIND_COLORS = alt.Scale(domain=["fully connected", "convolutional"], range=[VALIDATION, TRAIN])
LOSS_COLORS = alt.Scale(domain=["cross-entropy", "MSE"], range=[VALIDATION, "#2ca02c"])

__all__ = ["CLASS_COLORS", "COLORS", "KIND_COLORS", "LOSS_COLORS", "REGIME_COLORS", "SCHED_COLORS",
           "SPLIT_COLORS", "TRAIN", "VALIDATION"]
