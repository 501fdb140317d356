"""Where each page's rerun spends its time on a real Streamlit server, page by page.

    flock /work/cpu-bench.lock .venv/bin/python bench/profile_pages.py [--gc on|off|config] [--out FILE]

Starts the app on 127.0.0.1 (a free port) with timers installed in the server process, then
drives every page with the protocol client (``bench/stclient.py``), one session at a time, and
splits each rerun's time into: the page script (``exec``, including the charts), Altair's
``to_dict`` + Streamlit's Arrow conversion inside ``st.altair_chart``, the full garbage
collections (``gc`` generation 2, e.g. Streamlit's ``runner.postScriptGC`` after every run),
and what the server sent (bytes). Scenarios per page: ``first`` (first visit on a server
that has served the home page: imports done, this page's caches empty), ``cached`` (a new
tab opening the same link), ``rerun`` (the same tab again, nothing changed) and, on /gd,
``new`` (a new learning rate) and ``scrub`` (the step slider, a fragment). ``trivial`` is a
one-line Streamlit page in the same server, the reference for ratios. Prints one JSON object
(also written to ``--out``, default ``bench/profile_results.json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

PAGES = ["home", "gd", "lr", "loss", "layers", "batches", "overfit", "transfer", "arch", "results"]
TRIVIAL = "import streamlit as st\n\nst.write('trivial')\n"


# ----------------------------------------------------------------------------- server side
class Counters:
    """Cumulative seconds and counts, written to a JSON file the client reads between reruns."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.values: dict[str, float] = {}
        self.lock = threading.Lock()
        self._gc_start = 0.0

    def add(self, name: str, seconds: float, count: int = 1) -> None:
        with self.lock:
            self.values[name + "_s"] = self.values.get(name + "_s", 0.0) + seconds
            self.values[name + "_n"] = self.values.get(name + "_n", 0) + count

    def timed(self, name: str, fn: Callable) -> Callable:
        depth = threading.local()

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if getattr(depth, "n", 0):  # nested calls count once
                return fn(*args, **kwargs)
            depth.n = 1
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth.n = 0
                self.add(name, time.perf_counter() - t)
        return wrapper

    def on_gc(self, phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.add("gc2", time.perf_counter() - self._gc_start)

    def dump_forever(self) -> None:
        while True:
            time.sleep(0.05)
            with self.lock:
                data = json.dumps(self.values)
            tmp = self.path + ".tmp"
            with open(tmp, "w") as fh:
                fh.write(data)
            os.replace(tmp, self.path)


def serve(counters_path: str, argv: list[str]) -> None:
    """Run ``streamlit run`` in this process with the timers installed."""
    import streamlit.dataframe_util as du
    import streamlit.elements.vega_charts as vc
    import streamlit.runtime.scriptrunner.script_runner as sr
    from streamlit.web import cli

    c = Counters(counters_path)
    sr.exec_func_with_error_handling = c.timed("script", sr.exec_func_with_error_handling)
    vc._convert_altair_to_vega_lite_spec = c.timed("altair_to_dict", vc._convert_altair_to_vega_lite_spec)
    du.convert_anything_to_arrow_bytes = c.timed("arrow", du.convert_anything_to_arrow_bytes)
    vc.VegaChartsMixin.altair_chart = c.timed("altair_chart", vc.VegaChartsMixin.altair_chart)
    gc.callbacks.append(c.on_gc)
    threading.Thread(target=c.dump_forever, daemon=True).start()
    sys.argv = ["streamlit", "run", *argv]
    cli.main()


# ----------------------------------------------------------------------------- client side
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("server did not start")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Probe:
    """Reads the server's counters and CPU time around one rerun."""

    def __init__(self, path: str, pid: int) -> None:
        self.path, self.pid = path, pid

    def read(self) -> dict[str, float]:
        time.sleep(0.12)  # the server dumps every 50 ms
        try:
            values = json.loads(Path(self.path).read_text())
        except (OSError, ValueError):
            values = {}
        values["cpu_s"] = cpu_s(self.pid)
        return values

    def measure(self, fn: Callable[[], Any]) -> dict[str, Any]:
        before = self.read()
        res = fn()
        after = self.read()
        d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        row = {
            "wall_ms": round(res.seconds * 1000, 1),
            "server_cpu_ms": round(d["cpu_s"] * 1000, 1),
            "script_ms": round(d.get("script_s", 0) * 1000, 1),
            "altair_chart_ms": round(d.get("altair_chart_s", 0) * 1000, 1),
            "to_dict_ms": round(d.get("altair_to_dict_s", 0) * 1000, 1),
            "arrow_ms": round(d.get("arrow_s", 0) * 1000, 1),
            "gc_full_ms": round(d.get("gc2_s", 0) * 1000, 1),
            "gc_full_n": int(d.get("gc2_n", 0)),
            "kb_sent": round(res.bytes_received / 1024, 1),
            "elements": res.elements,
            "exception": res.exception,
        }
        return row


def scenarios(base: str, probe: Probe) -> dict[str, dict[str, Any]]:
    import stclient

    table: dict[str, dict[str, Any]] = {}

    def page(name: str, query: str = "") -> dict[str, Any]:
        path = "/" if name in ("home", "trivial") else f"/{name}"
        rows: dict[str, Any] = {}
        holder: dict[str, Any] = {}

        def first():
            holder["s"] = stclient.connect(base, path, query, timeout=600)
            return holder["s"].last
        rows["first"] = probe.measure(first)

        def cached():
            s2 = stclient.connect(base, path, query, timeout=600)
            s2.close()
            return s2.last
        rows["cached"] = probe.measure(cached)
        s = holder["s"]
        rows["rerun"] = probe.measure(lambda: (s.rerun(), s.last)[1])
        if name == "gd":
            for k, lr in enumerate((0.0123, 0.0234, 0.0345)):
                rows[f"new_{k}"] = probe.measure(lambda lr=lr: (s.rerun(widgets={"lr": lr}), s.last)[1])
            for k, at in enumerate((40, 60, 80)):
                rows[f"scrub_{k}"] = probe.measure(lambda at=at: (s.rerun(widgets={"at": at}), s.last)[1])
        s.close()
        return rows

    table["home"] = page("home")
    for name in PAGES[1:]:
        table[name] = page(name)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--counters", help=argparse.SUPPRESS)
    parser.add_argument("--gc", choices=["on", "off", "config"], default="config",
                        help="runner.postScriptGC: on, off, or as .streamlit/config.toml says")
    parser.add_argument("--app", default=str(ROOT / "streamlit_app.py"))
    parser.add_argument("--out", default=str(BENCH / "profile_results.json"))
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.counters, args.serve)
        return
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="dltl-profile-")
    counters = os.path.join(tmp, "counters.json")
    flags = ["--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"]
    if args.gc != "config":
        flags += ["--runner.postScriptGC", "true" if args.gc == "on" else "false"]
    env = dict(os.environ, HOME=tmp, DLTL_CACHE_DIR=os.path.join(tmp, "cache"))
    proc = subprocess.Popen([sys.executable, __file__, "--counters", counters, "--serve", args.app, *flags],
                            cwd=Path(args.app).parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base)
        probe = Probe(counters, proc.pid)
        result = {"load_before": os.getloadavg()[0], "postScriptGC": args.gc, "pages": scenarios(base, probe),
                  "rss_mb_after": round(rss_mb(proc.pid), 1)}
        result["load_after"] = os.getloadavg()[0]
        trivial = trivial_reference(tmp, flags[6:])
        result["trivial"] = trivial
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = json.dumps(result, indent=1)
    Path(args.out).write_text(text + "\n")
    print(text)


def trivial_reference(tmp: str, extra: list[str]) -> dict[str, Any]:
    """A one-line page on its own server (same flags), measured like the pages."""
    import stclient

    app = Path(tmp) / "trivial.py"
    app.write_text(TRIVIAL)
    port = free_port()
    counters = os.path.join(tmp, "trivial-counters.json")
    proc = subprocess.Popen([sys.executable, __file__, "--counters", counters, "--serve", str(app), "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", *extra],
                            cwd=tmp, env=dict(os.environ, HOME=tmp), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base)
        p = Probe(counters, proc.pid)
        s = stclient.connect(base, "/", "")
        rows = [p.measure(lambda: (s.rerun(), s.last)[1]) for _ in range(5)]
        s.close()
        return min(rows, key=lambda r: r["wall_ms"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
