"""Memory footprint of the app: RSS per page of a real Streamlit server, anonymous vs file-backed.

A visitor's memory on Community Cloud is the server process's memory. This starts
``streamlit run streamlit_app.py`` on a port in 8641-8649, opens the home page and then
every page in headless Chromium (one browser tab, one session, in the sidebar's order),
waits for each page to finish drawing, and reads the server's ``/proc/PID/smaps_rollup``:

- ``anon_mb``: anonymous memory (heap, tensors, Python objects): what the app itself costs
  and what the target is about (< 600 MB after every page);
- ``file_mb``: file-backed resident pages (shared libraries such as libtorch, mapped
  weights): the kernel can drop and re-read them, and several processes share them;
- ``rss_mb`` = both (plus shared memory).

``imports`` lists, for every module of ``dltl_core`` and ``dltl_ui`` (each imported alone in
a fresh interpreter), the heavy libraries it pulls in at import time and the RSS/anonymous
memory after the import: the modules to make lazy. ``baseline`` is the same for
``import torch`` and ``import streamlit`` alone.

    python bench/bench_memory.py [--pages gd,lr,...] [--no-imports] [--no-server] [--other-torch PYTHON]

Prints one JSON object. Run it on an otherwise idle machine: other processes do not change
a process's RSS, but a busy machine makes the page waits long.
"""

from __future__ import annotations

import argparse
import json
import os
import pkgutil
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PORTS = range(8641, 8650)
HEAVY = ("torch", "torchvision", "timm", "optuna", "sklearn", "scipy", "pandas", "altair", "sqlalchemy",
         "PIL", "matplotlib", "tensorboard", "streamlit")
TARGET_ANON_MB = 600


def smaps(pid: int | str = "self") -> dict[str, float]:
    """RSS, anonymous and file-backed resident memory of ``pid`` in MB (from smaps_rollup)."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
    rss, anon = fields.get("Rss", 0), fields.get("Anonymous", 0)
    shmem = fields.get("Pss_Shmem", 0)
    return {"rss_mb": round(rss / 1024, 1), "anon_mb": round(anon / 1024, 1),
            "file_mb": round((rss - anon - shmem) / 1024, 1)}


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 8641-8649")


def page_urls() -> list[tuple[str, str]]:
    """(label, path) of the home page and every page, in file order (``pages/10_gd.py`` -> ``/gd``)."""
    pages = sorted((ROOT / "pages").glob("[0-9]*_*.py"))
    return [("home", "/")] + [(p.stem.split("_", 1)[1], "/" + p.stem.split("_", 1)[1]) for p in pages]


def measure_server(only: list[str] | None, timeout_s: float) -> dict:
    """Start the app, visit every page, read the server's memory after each."""
    import urllib.request

    from tests.browser import chromium_page, error_texts, wait_for_app

    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]
    env = {**os.environ, "DLTL_DEVICE": os.environ.get("DLTL_DEVICE", "cpu")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("streamlit did not start")
        started = smaps(proc.pid)
        with chromium_page(1280, 720) as page:
            for label, path in page_urls():
                if only and label not in only and label != "home":
                    continue
                t0 = time.perf_counter()
                page.goto(base + path)
                wait_for_app(page, timeout_s)
                time.sleep(1.0)  # let the server finish what the last rerun started
                mem = smaps(proc.pid)
                rows.append({"page": path, **mem, "seconds": round(time.perf_counter() - t0, 1),
                             "errors": len(error_texts(page))})
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    peak = max((r["anon_mb"] for r in rows), default=None)
    after = rows[-1] if rows else None
    return {"port": port, "started": started, "pages": rows, "after_all": after, "peak_anon_mb": peak,
            "target_anon_mb": TARGET_ANON_MB,
            "meets_target": None if after is None else after["anon_mb"] < TARGET_ANON_MB}


_PROBE = """
import importlib, json, sys
before = set(sys.modules)
importlib.import_module(sys.argv[1])
heavy = [h for h in sys.argv[2].split(",") if h in sys.modules and h not in before]
fields = {}
for line in open("/proc/self/smaps_rollup"):
    p = line.split()
    if len(p) >= 3 and p[-1] == "kB":
        fields[p[0].rstrip(":")] = int(p[1])
print(json.dumps({"heavy": heavy, "rss_mb": round(fields["Rss"] / 1024, 1),
                  "anon_mb": round(fields["Anonymous"] / 1024, 1)}))
"""


def _probe(module: str, python: str = sys.executable) -> dict:
    out = subprocess.run([python, "-c", _PROBE, module, ",".join(HEAVY)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_imports() -> dict:
    """Heavy libraries and memory of each dltl_core / dltl_ui module imported alone."""
    mods = []
    for pkg in ("dltl_core", "dltl_ui"):
        if not (ROOT / pkg).is_dir():
            continue
        mods.append(pkg)
        for info in pkgutil.walk_packages([str(ROOT / pkg)], prefix=f"{pkg}."):
            mods.append(info.name)
    return {m: _probe(m) for m in mods}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", help="comma list of page names (default: all)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for one page")
    parser.add_argument("--no-imports", action="store_true", help="skip the per-module import probe")
    parser.add_argument("--no-server", action="store_true", help="skip the server and its pages")
    parser.add_argument("--other-torch", metavar="PYTHON",
                        help="also measure 'import torch' under this interpreter (e.g. a venv with the CPU wheel)")
    args = parser.parse_args()
    import torch

    out: dict = {"python": platform.python_version(), "torch": torch.__version__,
                 "torch_cuda": torch.version.cuda, "cpus": os.cpu_count(),
                 "load_avg_before": [round(x, 2) for x in os.getloadavg()]}
    del torch
    out["baseline"] = {m: _probe(m) for m in ("torch", "streamlit", "timm", "optuna", "sklearn")}
    if args.other_torch:
        version = subprocess.run([args.other_torch, "-c", "import torch; print(torch.__version__)"],
                                 capture_output=True, text=True, timeout=300).stdout.strip()
        out["baseline_other_torch"] = {"torch": version, **_probe("torch", args.other_torch)}
    if not args.no_server:
        out["server"] = measure_server(args.pages.split(",") if args.pages else None, args.timeout)
    if not args.no_imports:
        out["imports"] = measure_imports()
        out["eager_heavy"] = {m: r["heavy"] for m, r in out["imports"].items()
                              if any(h in r.get("heavy", []) for h in ("timm", "optuna", "sklearn", "scipy",
                                                                          "tensorboard", "pandas"))}
    out["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
