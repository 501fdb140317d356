"""A class on one server: N sessions at once on /gd, /lr and /overfit, timed like a tab.

    flock /work/cpu-bench.lock .venv/bin/python bench/bench_class.py [--sizes 1,10,30] [--moves 5]
    .venv/bin/python bench/bench_class.py --url http://127.0.0.1:8080 --sizes 2,6   # a running server

Starts the app on 127.0.0.1 (a free port; or uses ``--url``, which must be a loopback
address) and a one-line Streamlit page on a second server with the same flags, the
reference. Each scenario opens N sessions with the protocol client (``bench/stclient.py``)
and every session acts on its own thread:

* ``gd_distinct``: each opens /gd, then moves its learning-rate box every ``--every`` s
  (a random phase each) to values no other session uses (new descents every time);
* ``gd_shared``: the same, all sessions on the same link and the same values (cache hits);
* ``gd_scrub``: the step slider (a fragment), every ``--every`` s;
* ``lr``, ``overfit``: N tabs open the page's default link at once (first load);
* ``trivial``: the reference page, moved like ``gd_distinct``;
* ``heavy``: ``gd_distinct`` at N = 5 (twice ``--moves`` each) while one more session opens
  /overfit configurations no one trained yet (3 s runs, one after the other, for as long as
  the light sessions move), against the same without it (p95 ratio);
* ``single_flight``: N tabs open the same untrained /overfit link at once: server CPU
  seconds against one tab training a link alone plus N - 1 tabs drawing it once trained.

Latency is from a session's request to its ``script_finished``. Per scenario: p50, p95, max
(s), reruns per second (all sessions), the server's CPU seconds, dropped websockets and
sessions that saw an exception. Bounded: every session stops after ``--moves`` moves and
every wait has a timeout. Prints one JSON object (and writes ``--out``, default
``bench/class_results.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import stclient  # noqa: E402
from profile_pages import TRIVIAL, cpu_s, free_port, rss_mb, wait_up  # noqa: E402

GOAL_P95_S = 1.0  # 30 sessions moving /gd sliders, one move every 2 s each


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(latencies: list[float], seconds: float, dropped: int, exceptions: int, cpu: float | None) -> dict:
    """p50/p95/max (s), reruns/s and failures of one scenario."""
    return {
        "reruns": len(latencies),
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_s": round(_pct(latencies, 0.95), 3) if latencies else None,
        "max_s": round(max(latencies), 3) if latencies else None,
        "reruns_per_s": round(len(latencies) / seconds, 2) if seconds > 0 else None,
        "wall_s": round(seconds, 2),
        "server_cpu_s": None if cpu is None else round(cpu, 2),
        "dropped": dropped,
        "exceptions": exceptions,
    }


class Server:
    """A Streamlit server: started here (its pid known), ``replicas`` behind nginx
    (``scripts/replicas.sh``), or given by URL."""

    def __init__(self, app: Path | None, url: str | None, flags: list[str], home: str, replicas: int = 0) -> None:
        self.proc = None
        self.pids: list[int] = []
        if replicas:
            self._replicas(replicas, home)
            return
        if url:
            host = urllib.parse.urlsplit(url).hostname
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise SystemExit("bench_class only drives a server on this machine (127.0.0.1)")
            self.url = url.rstrip("/")
            return
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, HOME=home, DLTL_CACHE_DIR=os.path.join(home, "cache"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port), "--server.address",
             "127.0.0.1", "--server.fileWatcherType", "none", *flags],
            cwd=app.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_up(self.url)

    def _replicas(self, n: int, home: str) -> None:
        port, first = free_port(), free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = Path(home) / "replicas.log"
        env = dict(os.environ, HOME=home, DLTL_CACHE_DIR=os.path.join(home, "cache"), DLTL_REPLICA_PORT=str(first))
        self.proc = subprocess.Popen(["bash", "scripts/replicas.sh", str(n), f"127.0.0.1:{port}"], cwd=ROOT, env=env,
                                     stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline and "run folder" not in log.read_text():
            if self.proc.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            time.sleep(0.5)
        run = Path(log.read_text().split("run folder ", 1)[1].split(")", 1)[0])
        self.pids = [int((run / f"replica-{i}.pid").read_text()) for i in range(n)]
        wait_up(self.url)

    def cpu(self) -> float | None:
        if self.pids:
            return sum(cpu_s(p) for p in self.pids)
        return cpu_s(self.proc.pid) if self.proc else None

    def rss(self) -> float | None:
        if self.pids:
            return round(sum(rss_mb(p) for p in self.pids), 1)
        return round(rss_mb(self.proc.pid), 1) if self.proc else None

    def stop(self) -> None:
        if self.proc and self.pids:
            os.killpg(self.proc.pid, signal.SIGTERM)  # replicas.sh stops nginx and its replicas
            self.proc.wait(timeout=60)
        elif self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def run_sessions(server: Server, n: int, path: str, query: Callable[[int], str],
                 moves: Callable[[int, int], dict[str, Any] | None], n_moves: int, every: float,
                 timeout: float) -> dict:
    """N sessions on threads: open ``path?query(i)``, then ``n_moves`` moves every ``every`` s.

    With ``n_moves == 0`` the first loads are what is timed (all tabs open at once).
    """
    lat: list[float] = []
    dropped = exceptions = 0
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        nonlocal dropped, exceptions
        rng = random.Random(i)
        seen_exc = False
        try:
            barrier.wait(timeout=timeout)
            s = stclient.connect(server.url, path, query(i), timeout=timeout)
            seen_exc |= s.last.exception
            if n_moves == 0:
                with lock:
                    lat.append(s.first)
            else:
                time.sleep(rng.uniform(0, every))  # students do not move in step
            for k in range(n_moves):
                t0 = time.perf_counter()
                seconds, _, exc = s.rerun(widgets=moves(i, k))
                seen_exc |= exc
                with lock:
                    lat.append(seconds)
                time.sleep(max(0.0, every - (time.perf_counter() - t0)))
            s.close()
        except Exception:  # noqa: BLE001 - a dropped or timed-out session is counted, not fatal
            with lock:
                dropped += 1
        with lock:
            exceptions += int(seen_exc)

    cpu0, t0 = server.cpu(), time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout * (n_moves + 2))
    wall = time.perf_counter() - t0
    cpu1 = server.cpu()
    return summary(lat, wall, dropped, exceptions, None if cpu0 is None else cpu1 - cpu0)


def gd_lr(i: int, k: int, shared: bool) -> dict[str, Any]:
    """A learning rate no other session (distinct) or every session (shared) uses at move k."""
    return {"lr": round(0.001 + 1e-5 * k + (0 if shared else 1e-7 * (i + 1)), 9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server on 127.0.0.1 (default: start one)")
    parser.add_argument("--replicas", type=int, default=0,
                        help="start this many replicas behind nginx (scripts/replicas.sh) instead of one process")
    parser.add_argument("--sizes", default="1,10,30", help="session counts, comma-separated")
    parser.add_argument("--moves", type=int, default=5, help="moves per session (bounded run)")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between one session's moves")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one rerun may take")
    parser.add_argument("--scenarios", default="trivial,gd_distinct,gd_shared,gd_scrub,lr,overfit,heavy,single_flight")
    parser.add_argument("--out", default=str(BENCH / "class_results.json"))
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    wanted = set(args.scenarios.split(","))
    home = tempfile.mkdtemp(prefix="dltl-class-")
    trivial_app = Path(home) / "trivial" / "trivial.py"
    trivial_app.parent.mkdir()
    trivial_app.write_text(TRIVIAL)

    app = Server(ROOT / "streamlit_app.py", args.url, [], home, replicas=args.replicas)
    ref = Server(trivial_app, None, [], home) if "trivial" in wanted else None
    if ref:
        stclient.connect(ref.url, "/", "", timeout=600).close()  # its first run, like the app's warm-up
    out: dict[str, Any] = {"load_before": round(os.getloadavg()[0], 2), "replicas": args.replicas or 1,
                           "url": "given" if args.url else "started",
                           "moves": args.moves, "every_s": args.every, "scenarios": {}}
    res = out["scenarios"]
    rss: list[float] = []
    sampling = threading.Event()

    def sample() -> None:  # the server's memory over the whole run (is it bounded?)
        while not sampling.wait(1.0):
            value = app.rss()
            if value:
                rss.append(value)
    threading.Thread(target=sample, daemon=True).start()
    try:
        # Warm the server: imports, and each page once (a teacher opened them before class).
        for _ in range(max(1, 3 * args.replicas)):  # behind the proxy each tab lands on a random replica
            for page in ("/", "/gd", "/lr", "/overfit"):
                stclient.connect(app.url, page, "", timeout=600).close()
        for n in sizes:
            key = f"N={n}"
            if ref:
                res.setdefault("trivial", {})[key] = run_sessions(
                    ref, n, "/", lambda i: "", lambda i, k: None, args.moves, args.every, args.timeout)
            if "gd_distinct" in wanted:
                res.setdefault("gd_distinct", {})[key] = run_sessions(
                    app, n, "/gd", lambda i: f"lr={0.01 + 0.0001 * i:g}", lambda i, k: gd_lr(i, k + 100 * n, False),
                    args.moves, args.every, args.timeout)
            if "gd_shared" in wanted:
                res.setdefault("gd_shared", {})[key] = run_sessions(
                    app, n, "/gd", lambda i: "lr=0.02", lambda i, k: gd_lr(i, k + 100 * n, True),
                    args.moves, args.every, args.timeout)
            if "gd_scrub" in wanted:
                res.setdefault("gd_scrub", {})[key] = run_sessions(
                    app, n, "/gd", lambda i: "", lambda i, k: {"at": 20 + (7 * k + i) % 150},
                    args.moves, args.every, args.timeout)
            for page in ("lr", "overfit"):
                if page in wanted:
                    res.setdefault(page, {})[key] = run_sessions(
                        app, n, f"/{page}", lambda i: "", lambda i, k: None, 0, args.every, args.timeout)
        if "heavy" in wanted:
            res["heavy"] = heavy(app, args)
        if "single_flight" in wanted:
            res["single_flight"] = single_flight(app, max(sizes), args)
    finally:
        sampling.set()
        if rss:
            out["server_rss_mb"] = {"first": rss[0], "max": max(rss), "end": rss[-1], "samples": len(rss)}
        app.stop()
        if ref:
            ref.stop()
    out["load_after"] = round(os.getloadavg()[0], 2)
    out["goals"] = goals(res)
    text = json.dumps(out, indent=1)
    Path(args.out).write_text(text + "\n")
    print(text)


def _overfit_link(seed: int) -> str:
    # A configuration no earlier scenario trained (the seed), short enough to run live.
    return f"seed={seed}"


def heavy(app: Server, args: argparse.Namespace) -> dict:
    """/gd p95 of 5 light sessions with and without one session training /overfit runs.

    The light sessions move twice as often as ``--moves`` (50 answers by default, so the
    95th percentile is not one unlucky rerun); the heavy session trains one untrained
    3-second configuration after another until they are done.
    """
    moves = 2 * args.moves

    def light(offset: int) -> dict:  # new learning rates each time: no run reuses the other's cache
        return run_sessions(app, 5, "/gd", lambda i: f"lr={0.03 + 0.0001 * i:g}",
                            lambda i, k: gd_lr(i, k + offset, False), moves, args.every, args.timeout)

    # The page's modules imported first (a first visit's one-off cost, not training).
    stclient.connect(app.url, "/overfit", "", timeout=args.timeout * 3).close()
    alone = light(7000)
    box: dict[str, Any] = {}
    done = threading.Event()

    def trainer() -> None:
        for seed in range(901, 1000):  # keep it heavy for the whole light run
            if done.is_set():
                return
            t0 = time.perf_counter()
            try:
                # 1000 epochs: a 3 s run (the issue's), still in the server without a click.
                s = stclient.connect(app.url, "/overfit", _overfit_link(seed) + "&epochs=1000",
                                     timeout=args.timeout * 3)
                s.close()
                box.setdefault("heavy_s", []).append(round(time.perf_counter() - t0, 2))
            except Exception as err:  # noqa: BLE001
                box["heavy_error"] = type(err).__name__
    t = threading.Thread(target=trainer, daemon=True)
    t.start()
    with_heavy = light(8000)
    done.set()
    t.join(timeout=args.timeout * 3)
    ratio = with_heavy["p95_s"] / alone["p95_s"] if alone["p95_s"] else None
    return {"alone": alone, "with_heavy": with_heavy, "p95_ratio": None if ratio is None else round(ratio, 2), **box}


def single_flight(app: Server, n: int, args: argparse.Namespace) -> dict:
    """N tabs on one untrained /overfit link at once, against one tab training another link
    alone plus N tabs opening that link once trained: with a single flight, the first costs
    about one training and N page draws (ratio near 1); without, N trainings."""
    one = run_sessions(app, 1, "/overfit", lambda i: _overfit_link(801), lambda i, k: None, 0, 0, args.timeout * 3)
    many = run_sessions(app, n, "/overfit", lambda i: _overfit_link(802), lambda i, k: None, 0, 0, args.timeout * 3)
    cached = run_sessions(app, n, "/overfit", lambda i: _overfit_link(801), lambda i, k: None, 0, 0, args.timeout * 3)
    expected = None
    if one.get("server_cpu_s") and cached.get("server_cpu_s"):
        expected = one["server_cpu_s"] + cached["server_cpu_s"] * (n - 1) / n
    ratio = many["server_cpu_s"] / expected if expected else None
    return {"one": one, f"N={n}": many, f"N={n} cached": cached, "cpu_ratio": None if ratio is None else round(ratio, 2),
            "cpu_if_each_trained": None if not expected else round(one["server_cpu_s"] * n, 2)}


def goals(res: dict) -> dict:
    """Which of issue 16's class goals this run met."""
    g: dict[str, Any] = {}
    gd30 = res.get("gd_distinct", {}).get("N=30")
    if gd30:
        g["gd_30_sessions_p95_le_1s"] = gd30["p95_s"] is not None and gd30["p95_s"] <= GOAL_P95_S
        g["gd_30_sessions_none_dropped"] = gd30["dropped"] == 0
    if "heavy" in res and res["heavy"].get("p95_ratio") is not None:
        g["heavy_raises_gd_p95_le_20pct"] = res["heavy"]["p95_ratio"] <= 1.2
    if "single_flight" in res and res["single_flight"].get("cpu_ratio") is not None:
        # CPU of N tabs on one untrained link / (one training + N-1 cached page draws)
        g["same_overfit_link_trained_once"] = res["single_flight"]["cpu_ratio"] <= 1.5
    for scen, rows in res.items():
        if isinstance(rows, dict) and "trivial" in res and scen not in ("trivial", "heavy", "single_flight"):
            for key, row in rows.items():
                base = res["trivial"].get(key, {}).get("p50_s")
                if base and row.get("p50_s"):
                    row["p50_vs_trivial"] = round(row["p50_s"] / base, 1)
    return g


if __name__ == "__main__":
    main()
