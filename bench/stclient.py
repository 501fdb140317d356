"""A small protocol-level Streamlit client: one browser tab without the browser.

It speaks Streamlit's own protocol (a websocket at ``/_stcore/stream`` carrying protobuf
``BackMsg`` / ``ForwardMsg``), so a benchmark can open 30 sessions from one process and time
each rerun from the request to the server's ``script_finished``, exactly what a student's tab
waits for. Like the browser, it tells the server which large messages it already holds
(``cached_message_hashes``), so unchanged charts come back as short references.

    from stclient import connect
    s = connect("http://127.0.0.1:8501", "/gd", "lr=0.1")   # first load (seconds in s.first)
    seconds, n_elements, exception_seen = s.rerun()                    # the same again
    seconds, n_elements, exception_seen = s.rerun(widgets={"at": 50})  # move a slider
    s.last.bytes_received, s.last.status                  # what that rerun sent and how it ended
    s.close()

Widgets are named by their ``key`` (or their label when they have none); a selectbox or radio
takes the option as displayed (its format_func text). A change to widgets
all drawn inside one ``st.fragment`` reruns only that fragment, as in the browser.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import connect as ws_connect

# Element types whose value the client can set, and the WidgetState field each one uses.
_VALUE_FIELD = {
    "slider": "double_array_value", "number_input": "double_value", "selectbox": "string_value",
    "radio": "string_value", "checkbox": "bool_value", "toggle": "bool_value", "text_input": "string_value",
    "button": "trigger_value", "select_slider": "string_array_value", "multiselect": "string_array_value",
}


@dataclass
class Widget:
    """A widget the server drew: its id, type, fragment and (for number inputs) data type."""

    id: str
    kind: str
    fragment_id: str = ""
    integer: bool = False


@dataclass
class Result:
    """One rerun as the client saw it."""

    seconds: float
    elements: int
    exception: bool
    bytes_received: int
    status: str
    exceptions: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # element types drawn, e.g. {"progress": 3}
    alerts: list[str] = field(default_factory=list)  # st.info / warning / error texts
    texts: list[str] = field(default_factory=list)  # markdown and caption texts


class Session:
    """One tab's websocket session on a Streamlit server (not thread-safe: one per thread)."""

    def __init__(self, base_url: str, url_path: str, query: str = "", timeout: float = 120.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        self.page = url_path.strip("/")
        self.query = query.lstrip("?")
        self.timeout = timeout
        self.widgets: dict[str, Widget] = {}
        self._states: dict[str, WidgetState] = {}
        self._hashes: set[str] = set()
        prefix = parts.path.rstrip("/")
        self._ws = ws_connect(f"{ws_scheme}://{parts.netloc}{prefix}/_stcore/stream", subprotocols=["streamlit"],
                              origin=f"{parts.scheme}://{parts.netloc}", max_size=None, open_timeout=timeout,
                              close_timeout=2)
        self.last: Result = self._run(self._rerun_msg(""))
        self.first = self.last.seconds

    def rerun(self, query: str | None = None, widgets: dict[str, Any] | None = None) -> tuple[float, int, bool]:
        """Rerun with a new query string and/or widget values; returns (seconds, elements, exception seen).

        Args:
            query: the page's new query string (None keeps the current one). The DLTL pages
                read the URL when a session starts: to open another link, ``connect`` again.
            widgets: values by widget key or label; a slider takes a number (or a pair).
        """
        if query is not None:
            self.query = query.lstrip("?")
        changed = [self._widget(name) for name in (widgets or {})]
        for w, value in zip(changed, (widgets or {}).values()):
            self._states[w.id] = _state(w, value)
        # Widgets all inside one fragment rerun only it; anything else reruns the page.
        frags = {w.fragment_id for w in changed}
        res = self._run(self._rerun_msg(frags.pop() if len(frags) == 1 else ""))
        for w in changed:  # a button's trigger fires once, as in the browser
            if w.kind == "button":
                self._states.pop(w.id, None)
        self.last = res
        return res.seconds, res.elements, res.exception

    def close(self) -> None:
        """Close the websocket (the server ends the session as for a closed tab)."""
        self._ws.close()

    def _widget(self, name: str) -> Widget:
        if name not in self.widgets:
            raise KeyError(f"no widget {name!r} on /{self.page}; known: {sorted(self.widgets)}")
        return self.widgets[name]

    def _rerun_msg(self, fragment_id: str) -> BackMsg:
        msg = BackMsg()
        rs = msg.rerun_script
        rs.query_string = self.query
        rs.page_name = self.page
        # The page goes by name (as in a typed link): the server finds its script.
        rs.fragment_id = fragment_id
        rs.widget_states.widgets.extend(self._states.values())
        rs.cached_message_hashes.extend(sorted(self._hashes))
        return msg

    def _run(self, msg: BackMsg) -> Result:
        """Send one rerun request and read ForwardMsgs until its script_finished."""
        start = time.perf_counter()
        self._ws.send(msg.SerializeToString())
        elements, received, exceptions = 0, 0, []
        kinds: dict[str, int] = {}
        alerts: list[str] = []
        texts: list[str] = []
        while True:
            remaining = self.timeout - (time.perf_counter() - start)
            if remaining <= 0:
                raise TimeoutError(f"/{self.page}: no script_finished within {self.timeout} s")
            data = self._ws.recv(timeout=remaining)
            received += len(data)
            fm = ForwardMsg()
            fm.ParseFromString(data)
            kind = fm.WhichOneof("type")
            if fm.metadata.cacheable and fm.hash:
                self._hashes.add(fm.hash)
            if kind in ("delta", "ref_hash"):
                elements += 1
                if kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                    self._see(fm.delta.new_element, fm.delta.fragment_id, exceptions, kinds, alerts, texts)
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(fm.script_finished)
                if status == "FINISHED_EARLY_FOR_RERUN":
                    continue  # a rerun the server started itself (st.rerun) follows
                return Result(time.perf_counter() - start, elements, bool(exceptions), received, status, exceptions,
                              kinds, alerts, texts)

    def _see(self, element: Any, fragment_id: str, exceptions: list[str], kinds: dict[str, int],
             alerts: list[str], texts: list[str]) -> None:
        kind = element.WhichOneof("type")
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "alert":
            alerts.append(element.alert.body)
        if kind == "markdown":
            texts.append(element.markdown.body)
        if kind == "exception":
            exceptions.append(f"{element.exception.type}: {element.exception.message}")
            return
        if kind not in _VALUE_FIELD:
            return
        proto = getattr(element, kind)
        wid = proto.id
        key = wid.rsplit("-", 1)[-1] if "-" in wid and not wid.endswith("-None") else ""
        w = Widget(wid, kind, fragment_id, integer=kind == "number_input" and proto.data_type == proto.INT)
        # A user key is the id's last part; otherwise the label names it.
        self.widgets[key if key and key != "None" else proto.label] = w


def _state(w: Widget, value: Any) -> WidgetState:
    """The WidgetState the browser would send for ``value``."""
    s = WidgetState(id=w.id)
    kind = _VALUE_FIELD[w.kind]
    if kind == "double_array_value":
        values = value if isinstance(value, (list, tuple)) else [value]
        s.double_array_value.data.extend(float(v) for v in values)
    elif kind == "string_array_value":
        values = value if isinstance(value, (list, tuple)) else [value]
        s.string_array_value.data.extend(str(v) for v in values)
    elif kind == "double_value" and w.integer:
        s.int_value = int(value)
    elif kind == "double_value":
        s.double_value = float(value)
    elif kind == "string_value":
        s.string_value = str(value)
    else:
        setattr(s, kind, bool(value))
    return s


def connect(base_url: str, url_path: str, query: str = "", timeout: float = 120.0) -> Session:
    """Open ``url_path`` (e.g. ``/gd``) with ``query`` like a new tab; the first load is ``.first`` seconds."""
    return Session(base_url, url_path, query, timeout)


__all__ = ["Result", "Session", "Widget", "connect"]
