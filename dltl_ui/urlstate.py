"""Page configuration kept in the URL, so a teacher can share a link that
reopens exactly the same view.

Values read from the URL are parsed and clamped; anything malformed falls back
to its default and is reported once in the page (never a traceback).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dltl_core.query import QueryReader


class UrlState(QueryReader):
    """Read typed, clamped values from ``st.query_params`` and write them back.

    The parsing rules are ``dltl_core.query.QueryReader``'s (shared with the code export).
    Typical use in a page::

        url = UrlState()
        lr = st.slider("η", 1e-4, 1.0, url.float("lr", 0.1, 1e-4, 1.0), key="lr")
        url.sync(lr=lr)
        url.report()
    """

    def __init__(self) -> None:
        super().__init__()

    def _raw(self, name: str) -> str | None:
        try:
            return st.query_params.get(name)
        except Exception:  # a malformed query string must not break the page
            return None

    @staticmethod
    def sync(**values: Any) -> None:
        """Write the page's current configuration into the URL (only if it changed)."""
        encoded = {key: UrlState.encode(value) for key, value in values.items()}
        try:
            current = {k: st.query_params.get(k) for k in encoded}
            if current != encoded:
                st.query_params.update(encoded)
        except Exception:
            pass

    @staticmethod
    def drop(*names: str) -> None:
        """Remove parameters from the URL (those left at a default that is not shown)."""
        try:
            for name in names:
                if name in st.query_params:
                    del st.query_params[name]
        except Exception:
            pass

    def report(self) -> None:
        """Show what was wrong with the URL: one warning per bad parameter, once."""
        for problem in dict.fromkeys(self.problems):  # each message once, in order
            st.warning(f"Setting ignored in the link: {problem}", icon="⚠️")
        self.problems = []
