"""The "PyTorch code" panel every page shows: its current settings as a plain script.

The panel reads the page's link (``st.query_params``, which the binder keeps in step with
the widgets), so the code is exactly what the shared link would export with
``python -m dltl_core code PAGE --query ...``.
"""

from __future__ import annotations

from typing import Mapping

import streamlit as st

from dltl_core.codegen import export


@st.cache_data(max_entries=128, show_spinner=False)
def _texts(page: str, params: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """The script and the notebook text for one link (cached: the panel draws on every rerun)."""
    script = export(page, dict(params))
    return script.source(), script.notebook_text()


@st.cache_data(max_entries=128, show_spinner=False)
def _source(page: str, params: tuple[tuple[str, str], ...]) -> str:
    """The script alone: the notebook (nbformat, ~5x the cost) is written only when downloaded."""
    return export(page, dict(params)).source()


def code_panel(page: str, params: Mapping[str, str] | None = None, *, expanded: bool = False) -> None:
    """Draw the panel: the script, a ``.py`` and an ``.ipynb`` download.

    Args:
        page: the page's URL name (``"gd"``).
        params: the settings' URL parameters (default: the page's current link).
        expanded: open the panel at first.
    """
    if params is None:
        try:
            params = {k: st.query_params.get(k) for k in st.query_params}
        except Exception:  # a malformed query string: export the defaults
            params = {}
    try:
        key = tuple(sorted((str(k), str(v)) for k, v in params.items()))
        source = _source(page, key)
    except ValueError as err:  # settings no script can be written for: say so, keep the page
        st.info(f"No PyTorch code for these settings: {err}")
        return
    with st.expander("PyTorch code: reproduce this chart in plain PyTorch", expanded=expanded, icon="🐍"):
        st.caption("A self-contained script for the current settings (torch, torchvision, timm, numpy, "
                   "scikit-learn; no DLTL code). Running it prints the numbers this page shows.")
        left, right = st.columns(2)
        stem = "dltl_" + page.replace("-", "_")  # as Script.stem: the header's "Run: python <stem>.py"
        left.download_button("Download .py", source, file_name=f"{stem}.py",
                             mime="text/x-python", key=f"code_py_{page}", width="stretch")
        right.download_button("Download notebook (.ipynb)", lambda: _texts(page, key)[1],  # on the click
                              file_name=f"{stem}.ipynb", mime="application/x-ipynb+json",
                              key=f"code_nb_{page}", width="stretch")
        st.code(source, language="python", line_numbers=False)


def lab_card(page: str, title: str, blurb: str) -> None:
    """One lab notebook on the home page: what it does and its two downloads (default settings).

    Args:
        page: the lab's export name (``"lab-scratch"``, ``"lab-transfer"``).
        title: the card's heading.
        blurb: one or two sentences on what the notebook trains.
    """
    source, notebook = _texts(page, ())
    stem = "dltl_" + page.replace("-", "_")
    with st.container(border=True):
        st.markdown(f"**{title}**")
        st.markdown(blurb)
        left, right = st.columns(2)
        left.download_button("Notebook (.ipynb)", notebook, file_name=f"{stem}.ipynb",
                             mime="application/x-ipynb+json", key=f"lab_nb_{page}", width="stretch", icon="📓")
        right.download_button("Script (.py)", source, file_name=f"{stem}.py", mime="text/x-python",
                              key=f"lab_py_{page}", width="stretch", icon="🐍")


__all__ = ["code_panel", "lab_card"]
