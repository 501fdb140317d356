"""/transfer's "When does fine-tuning pay?": the shipped measurement as a chart with a computed caption."""

from __future__ import annotations

import json
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


def regime_chart(data: dict) -> alt.FacetChart:
    """Validation accuracy against training photos per species (log 2 axis), one panel per species
    count: the mean over seeds as a line, the seeds' range as a bar."""
    df = pd.DataFrame(tr.summarize(data))
    df["Mode"] = df["mode"].map(MODE_LABELS)
    df["panel"] = df["species"].map(lambda k: f"{k} species")
    color = alt.Color("Mode:N", scale=alt.Scale(domain=_MODE_DOMAIN, range=_MODE_COLORS),
                      legend=alt.Legend(orient="bottom", title=None))
    x = alt.X("photos:Q", title="Training photos per species (log scale)",
              scale=alt.Scale(type="log", base=2, nice=False, padding=12), axis=alt.Axis(values=[4, 8, 16, 32]))
    base = alt.Chart().encode(x=x, color=color)
    line = base.mark_line(point=True, strokeWidth=3).encode(
        y=alt.Y("mean:Q", title="Validation accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=["Mode", "panel", alt.Tooltip("photos:Q", format=".1f", title="photos per species"),
                 alt.Tooltip("mean:Q", format=".1%", title="mean"), alt.Tooltip("low:Q", format=".1%"),
                 alt.Tooltip("high:Q", format=".1%"), "seeds", alt.Tooltip("seconds:Q", format=".1f")])
    spread = base.mark_rule(strokeWidth=6, opacity=0.45).encode(y="low:Q", y2="high:Q")
    return alt.layer(spread, line, data=df).properties(height=chart_height(300), width=260).facet(
        column=alt.Column("panel:N", title=None, sort=sorted(df["panel"].unique(), key=lambda p: int(p.split()[0]))))


def provenance(data: dict) -> str:
    """One line: where, when and how the measurement was made."""
    ft = data["finetune"]
    return (f"Measured on {data['data']} ({data['device']['name'].upper()}, {data['device']['cpu_count']} cores, "
            f"torch {data['versions']['torch']}, {data['started'][:10]}), seeds {', '.join(map(str, data['seeds']))}, "
            f"{data['split']['val_per_species']} validation photos per species per seed. Fine-tuning: the last "
            f"{ft['unfreeze_blocks']} stages on cached activations, {ft['epochs']} epochs, lr {ft['lr']:g}; from "
            f"scratch: {data['scratch']['image_size']} px, {data['scratch']['epochs']} epochs. "
            f"Command: `{data['command']}`.")


def section() -> None:
    """The measured answer, or nothing when the shipped file is missing or malformed."""
    data = load()
    if data is None:
        return
    st.subheader("3 · When does fine-tuning pay? (measured)")
    ui.show_chart(regime_chart(data), caption=tr.caption(data))
    st.caption(provenance(data))
