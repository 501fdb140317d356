"""/transfer's "When does fine-tuning pay?": the shipped measurement as a chart with a computed caption
(the charts: ``dltl_ui.transfer.charts.regime_chart`` and ``gain_chart``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import streamlit as st

import dltl_ui as ui
from dltl_core import transfer_regimes as tr
from dltl_ui.transfer.charts import gain_chart, regime_chart

ASSET = Path(__file__).resolve().parents[2] / "assets" / "transfer_regimes.json"


@st.cache_data(show_spinner=False)
def load(path: str = str(ASSET)) -> dict | None:
    """The shipped measurement, checked; None when it is missing or malformed (then nothing is shown)."""
    try:
        data = json.loads(Path(path).read_text())
        tr.check(data)
    except (OSError, ValueError):
        return None
    return data


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
    key = (ui.is_classroom(), ui.data_key(data))  # shipped data: compiled once per process
    with left:
        ui.show_chart(lambda: regime_chart(data), key=("regimes",) + key)
    with right:
        ui.show_chart(lambda: gain_chart(data), key=("regime_gain",) + key)
    st.markdown(tr.caption(data))  # the lesson itself: shown in classroom mode too
    st.caption(provenance(data))
