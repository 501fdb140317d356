"""/transfer's "When does fine-tuning pay?": the shipped measurement as a chart with a computed caption."""

from __future__ import annotations

import json
import re
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

import dltl_ui as ui
from dltl_core import transfer_regimes as tr
from dltl_ui.layout import chart_height
from dltl_ui.transfer_charts import MODE_LABELS, _MODE_COLORS, _MODE_DOMAIN

ASSET = Path(__file__).resolve().parents[1] / "assets" / "transfer_regimes.json"


@st.cache_data(show_spinner=False)
def load(path: str = str(ASSET)) -> dict | None:
    """The shipped measurement, checked; None when it is missing or malformed (then nothing is shown)."""
    try:
        data = json.loads(Path(path).read_text())
        tr.check(data)
    except (OSError, ValueError):
        return None
    return data


def _x() -> alt.X:
    return alt.X("photos:Q", title="Training photos per species",
                 scale=alt.Scale(type="log", base=2, nice=False, padding=12), axis=alt.Axis(values=[4, 8, 16, 32]))


def regime_chart(data: dict) -> alt.FacetChart:
    """Validation accuracy against training photos per species (log 2 axis, 4 to 32), one panel per species
    count: the mean over seeds as a line, the seeds' range as a bar."""
    df = pd.DataFrame(tr.summarize(data))
    df["Mode"] = df["mode"].map(MODE_LABELS)
    df["panel"] = df["species"].map(lambda k: f"{k} species")
    color = alt.Color("Mode:N", scale=alt.Scale(domain=_MODE_DOMAIN, range=_MODE_COLORS),
                      legend=alt.Legend(orient="top", title=None))
    base = alt.Chart().encode(x=_x(), color=color)
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
    base = alt.Chart(df).encode(x=_x(), color=color)
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="#555", strokeDash=[4, 4]).encode(y="y:Q")
    line = base.mark_line(point=True, strokeWidth=3).encode(
        y=alt.Y("points:Q", title="Gain (accuracy points)"),
        tooltip=["Species", alt.Tooltip("photos:Q", format=".1f", title="photos per species"),
                 alt.Tooltip("points:Q", format="+.1f", title="mean gain"), alt.Tooltip("low_p:Q", format="+.1f"),
                 alt.Tooltip("high_p:Q", format="+.1f"), "verdict", "seeds"])
    spread = base.mark_rule(strokeWidth=6, opacity=0.4).encode(y="low_p:Q", y2="high_p:Q")
    return (zero + spread + line).properties(title="Fine-tuned minus frozen",
                                              height=chart_height(260))


def provenance(data: dict) -> str:
    """One line: where, when and how the measurement was made."""
    ft = data["finetune"]
    return (f"Measured on {data['data']} ({data['device']['name'].upper()}, {data['device']['cpu_count']} cores, "
            f"torch {data['versions']['torch']}, {data['started'][:10]}); seeds {', '.join(map(str, data['seeds']))}; "
            f"{data['split']['val_per_species']} validation photos per species per seed (the same for every "
            f"training size). Fine-tuning: the page's default (last {ft['unfreeze_blocks']} stages on cached "
            f"activations, {ft['epochs']} epochs, lr {ft['lr']:g}); from scratch: {data['scratch']['image_size']} "
            f"px, {data['scratch']['epochs']} epochs (a CPU budget, on {_list(data['scratch'].get('species', []))} "
            f"species). Command: `{_public(data['command'])}`.")


def _list(xs: list) -> str:
    return ", ".join(map(str, xs)) or "no"


def _public(command: str) -> str:
    """The command without the machine's folder (a visitor never sees a server path)."""
    return re.sub(r"--out \S+", "--out FILE", re.sub(r"--data \S+", "--data DIR", command))


def section() -> None:
    """The measured answer, or nothing when the shipped file is missing or malformed."""
    data = load()
    if data is None:
        return
    st.subheader("3 · When does fine-tuning pay? (measured)")
    left, right = st.columns([3, 2])
    with left:
        st.altair_chart(regime_chart(data), theme=None)
    with right:
        st.altair_chart(gain_chart(data), width="stretch", theme=None)
    st.markdown(tr.caption(data))  # the lesson itself: shown in classroom mode too
    st.caption(provenance(data))
