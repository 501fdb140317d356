"""Issue 11, replayed: work shared by visitors is done once and kept within a size.

The concurrent CUB download (one download, the others wait) and the cache's size cap.

The other findings of the review: tests/test_security_*.py, one file per subject.
"""

from __future__ import annotations

import os
import threading
import time

import torch


# ----------------------------------------------------------------------------- shared work

def test_four_visitors_clicking_download_start_one_download(tmp_path, monkeypatch, birds_dir):
    """Finding: "4 visitors clicking the CUB download started 4 full downloads", one FileNotFoundError."""
    import hashlib
    import http.server
    import io
    import tarfile

    from dltl_core.birds import cub

    monkeypatch.setenv("DLTL_CACHE_DIR", str(tmp_path / "cache"))
    jpeg = next((birds_dir / sorted(os.listdir(birds_dir))[0]).iterdir()).read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("001.A/a.jpg", "002.B/b.jpg"):
            info = tarfile.TarInfo(f"CUB_200_2011/images/{name}")
            info.size = len(jpeg)
            tar.addfile(info, io.BytesIO(jpeg))
    blob, gets = buf.getvalue(), []

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            gets.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            for i in range(0, len(blob), 4096):  # slow enough for the visitors to overlap
                self.wfile.write(blob[i:i + 4096])
                time.sleep(0.01)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cub.tgz"
    roots, errors, waited = [], [], []

    def visitor() -> None:
        try:
            roots.append(cub.download_cub(tmp_path / "cub", url=url, size=len(blob),
                                          md5=hashlib.md5(blob).hexdigest(), on_wait=waited.append))
        except Exception as err:  # noqa: BLE001
            errors.append(repr(err))

    try:
        threads = [threading.Thread(target=visitor) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        server.shutdown()
    assert errors == [] and len(roots) == 4 and len(set(roots)) == 1
    assert len(gets) == 1, f"{len(gets)} downloads started"
    assert waited, "the other visitors waited for the first download"


def test_cache_is_evicted_by_size_least_recently_used_first(tmp_path, monkeypatch):
    """Finding: "its 390 MB image cache per configuration is never evicted"."""
    from dltl_core import cache

    monkeypatch.setenv("DLTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DLTL_CACHE_MAX_MB", "1.5")  # room for 3 entries of 400 kB
    paths = [cache.cache_dir() / "images" / f"{i}.pt" for i in range(4)]
    kept = cache.cache_dir() / "weights" / "w.pt"  # weights are never evicted
    cache.save_tensors(kept, {"x": torch.zeros(500_000)})  # 2 MB alone, over the cap
    for i, p in enumerate(paths[:3]):
        cache.save_tensors(p, {"x": torch.zeros(100_000)})  # 400 kB each
        os.utime(p, (1000 + i, 1000 + i))
    lock = paths[1].with_name("1.pt.lock")  # a lock file beside an entry is never removed
    lock.touch()
    os.utime(lock, (1, 1))
    assert cache.load_tensors(paths[0]) is not None  # a read makes 0 the most recently used
    cache.save_tensors(paths[3], {"x": torch.zeros(100_000)})
    left = {p.name for p in (cache.cache_dir() / "images").glob("*.pt")}
    assert left == {"0.pt", "2.pt", "3.pt"} and kept.exists() and lock.exists()
    assert cache.load_tensors(paths[1]) is None  # an evicted entry is a plain cache miss
