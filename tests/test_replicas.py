"""Two replicas of the app behind nginx (scripts/replicas.sh), driven like a small class."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser import free_port

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed (scripts/test.sh installs it)")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def proxy():
    """``(url, replica pids)`` of two replicas behind nginx on 127.0.0.1, stopped afterwards."""
    port, first = free_port(), free_port()
    log = tempfile.NamedTemporaryFile(prefix="dltl-replicas-", suffix=".log", delete=False)
    env = dict(os.environ, DLTL_REPLICA_PORT=str(first), DLTL_CACHE_DIR=tempfile.mkdtemp(prefix="dltl-rcache-"))
    proc = subprocess.Popen(["bash", "scripts/replicas.sh", "2", f"127.0.0.1:{port}"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        run = None
        while time.time() < deadline and proc.poll() is None:
            found = re.search(r"run folder (\S+)\)", Path(log.name).read_text())
            if found:
                run = Path(found.group(1))
                try:
                    urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                    break
                except OSError:
                    pass
            time.sleep(0.5)
        assert run is not None and proc.poll() is None, Path(log.name).read_text()[-2000:]
        pids = [int((run / f"replica-{i}.pid").read_text()) for i in range(2)]
        yield url, pids
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_the_proxy_gives_each_browser_a_sticky_cookie(proxy):
    url, _ = proxy
    first = urllib.request.urlopen(url + "/")
    cookie = first.headers["Set-Cookie"]
    assert first.status == 200 and re.match(r"dltl_replica=[0-9a-f]{32}; Path=/", cookie), cookie
    value = cookie.split(";")[0]
    again = urllib.request.urlopen(urllib.request.Request(url + "/", headers={"Cookie": value}))
    assert again.headers["Set-Cookie"].split(";")[0] == value  # the browser keeps its replica


def test_a_small_class_through_the_proxy_uses_both_replicas(proxy, tmp_path):
    url, pids = proxy
    before = [_cpu_s(p) for p in pids]
    out = tmp_path / "class.json"
    res = subprocess.run([sys.executable, "bench/bench_class.py", "--url", url, "--sizes", "6", "--moves", "2",
                          "--every", "1", "--scenarios", "gd_distinct", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    row = json.loads(out.read_text())["scenarios"]["gd_distinct"]["N=6"]
    assert row["dropped"] == 0 and row["exceptions"] == 0, row
    assert row["reruns"] == 6 * 2, row
    # Each websocket picked a replica by its own random key: both processes did work.
    used = [_cpu_s(p) - b for p, b in zip(pids, before)]
    assert min(used) > 0.2, used
