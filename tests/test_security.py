"""Issue 11, replayed: each finding of the security review about paths, uploads and heavy work.

Here: seeded runs beside each other, the job runner (queue position, time limit, memory
cap, Stop, a closed tab), the job panel (a link starts nothing; Stop ends the process),
paths outside the data roots (listing, reading, other visitors' uploads, existence
oracle), the zip bomb, the session quota, the huge-pixel PNG, the concurrent same-zip
upload, the concurrent CUB download and the cache size cap.

Elsewhere: ``/transfer?k=50&cap=200`` starting no extraction and no hub call on load
(tests/test_transfer_page.py), the Results box (the lead's tests), the command line
(tests/test_cli_*.py).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dltl_core import job_runner
from dltl_core.device import seeded


# ----------------------------------------------------------------------------- job functions
# Top-level (importable by name in the spawned process), as every job must be.

def train_digits_job(config: dict, report) -> list[float]:
    """A small seeded training on scikit-learn's digits: the loss after each epoch."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for epoch in range(config["epochs"]):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        losses.append(float(loss.detach()))
        report("training", epoch + 1, config["epochs"], {"epoch": epoch, "loss": losses[-1]})
    return losses


def sleep_job(config: dict, report) -> str:
    """Reports, then sleeps in small steps (a job that only ends when stopped)."""
    for i in range(int(config.get("steps", 10_000))):
        report("sleeping", i, 10_000)
        time.sleep(0.05)
    return "woke up"


def alloc_job(config: dict, report) -> int:
    """Allocates and touches ``mb`` megabytes."""
    block = np.ones(int(config["mb"]) * 2**20, dtype=np.uint8)
    return int(block[:: 4096].sum())


def raise_job(config: dict, report) -> None:
    raise ValueError("need at least 2 species\n(details for the log)")


def _gone(pid: int, within: float) -> bool:
    """Whether process ``pid`` no longer exists (reaped) within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _wait_running(runner: job_runner.JobRunner, job_id: int, timeout: float = 60) -> job_runner.JobStatus:
    """Wait until the job's function itself reported (its process is up and importing is done)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        snap = runner.status(job_id)
        if snap.finished or (snap.state == job_runner.RUNNING and snap.phase not in ("", "starting")):
            return snap
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not start within {timeout} s")


def _idle(runner: job_runner.JobRunner, timeout: float = 30) -> None:
    """Wait until earlier tests' processes have exited (a finished job holds its slot until then)."""
    end = time.monotonic() + timeout
    while runner.load() != (0, 0) and time.monotonic() < end:
        time.sleep(0.05)
    assert runner.load() == (0, 0)


@pytest.fixture(scope="module")
def runner():
    r = job_runner.JobRunner(max_jobs=2, seconds=120, memory_mb=1500)
    yield r
    r.shutdown()


# ----------------------------------------------------------------------------- seeded runs

def test_seeded_threads_do_not_change_each_others_results():
    """Finding: "the loss was 0.185875 alone and 0.188194 beside another run"."""
    def run(out: list, seed: int) -> None:
        with seeded(seed):
            draws = []
            for _ in range(200):
                draws.append(float(torch.rand(1)))
                time.sleep(0)  # invite a thread switch in the middle of the run
            out.append(draws)

    alone: list = []
    run(alone, 7)
    side: list = [[], []]
    threads = [threading.Thread(target=run, args=(side[i], 7)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert side[0][0] == alone[0] and side[1][0] == alone[0]


@pytest.mark.slow
def test_jobs_side_by_side_give_the_result_of_a_run_alone(runner):
    _idle(runner)
    ids = [runner.submit(train_digits_job, {"epochs": 3}, seed=5) for _ in range(3)]
    done = [runner.wait(i, 180) for i in ids]
    assert [d.state for d in done] == [job_runner.DONE] * 3, [d.error for d in done]
    # ids[0] and ids[1] ran at the same time (max_jobs=2); ids[2] ran alone after them.
    assert done[0].result == done[1].result == done[2].result
    assert len(set(done[0].result)) == 3  # a real training: the loss changes every epoch
    assert [p["epoch"] for p in done[0].payloads] == [0, 1, 2]
    assert done[0].payloads[-1]["loss"] == done[0].result[-1]


# ----------------------------------------------------------------------------- the runner

@pytest.mark.slow
def test_queue_limit_position_and_stop_ends_the_process(runner):
    """Finding: "after Stop, and after closing the tab, the server stayed at 100-200% CPU"."""
    _idle(runner)
    ids = [runner.submit(sleep_job, {}) for _ in range(4)]
    assert runner.load() == (2, 2)
    assert [runner.position(i) for i in ids] == [0, 0, 1, 2]
    assert runner.status(ids[3]).state == job_runner.QUEUED and runner.status(ids[3]).position == 2
    first = _wait_running(runner, ids[0])
    assert first.pid and first.pid != os.getpid()
    t0 = time.monotonic()
    runner.cancel(ids[0])
    assert runner.status(ids[0]).state == job_runner.CANCELLED
    assert _gone(first.pid, 5), "the job's process still exists 5 s after Stop"
    assert time.monotonic() - t0 < 5
    # The freed slot goes to the next in the queue; the last moves up.
    end = time.monotonic() + 10
    while runner.position(ids[3]) != 1 and time.monotonic() < end:
        time.sleep(0.05)
    assert runner.position(ids[2]) == 0 and runner.position(ids[3]) == 1
    runner.cancel(ids[3])  # a queued job is simply dropped
    assert runner.status(ids[3]).state == job_runner.CANCELLED and runner.status(ids[3]).pid is None
    for i in ids[1:3]:
        pid = _wait_running(runner, i).pid
        runner.cancel(i)
        assert _gone(pid, 5)


@pytest.mark.slow
def test_time_limit_memory_cap_and_errors_are_clear_messages(runner):
    timed = runner.submit(sleep_job, {}, seconds=8)
    hog = runner.submit(alloc_job, {"mb": 4000}, memory_mb=700)
    small = runner.submit(alloc_job, {"mb": 50}, memory_mb=700)
    bad = runner.submit(raise_job, {})
    snaps = {name: runner.wait(i, 90) for name, i in
             (("timed", timed), ("hog", hog), ("small", small), ("bad", bad))}
    assert snaps["timed"].state == job_runner.FAILED and "time limit of 8 s" in snaps["timed"].error
    assert _gone(snaps["timed"].pid, 5)
    assert snaps["hog"].state == job_runner.FAILED and "out of memory" in snaps["hog"].error
    assert snaps["small"].state == job_runner.DONE and snaps["small"].result == 50 * 256
    assert snaps["bad"].state == job_runner.FAILED and snaps["bad"].error == "need at least 2 species"
    for s in snaps.values():
        assert "Traceback" not in (s.error or "")


@pytest.mark.slow
def test_a_closed_tab_cancels_its_job(runner):
    connected = threading.Event()
    connected.set()
    job = runner.submit(sleep_job, {}, alive=connected.is_set)
    pid = _wait_running(runner, job).pid
    connected.clear()  # the visitor's websocket went away
    snap = runner.wait(job, 5)
    assert snap.state == job_runner.CANCELLED and "closed" in snap.error
    assert _gone(pid, 5)
    quiet = runner.submit(sleep_job, {}, heartbeat_timeout=1.0)  # nobody polls it
    snap = runner.wait(quiet, 60)
    assert snap.state == job_runner.CANCELLED and "closed" in snap.error


def test_a_job_must_be_an_importable_function(runner):
    with pytest.raises(ValueError, match="top-level"):
        runner.submit(lambda config, report: None, {})


# ----------------------------------------------------------------------------- confined paths

@pytest.fixture()
def roots(tmp_path, monkeypatch):
    """Two data roots, a cache inside the first one's parent, and things outside."""
    birds_root, cifar_root = tmp_path / "srv" / "birds", tmp_path / "srv" / "cifar"
    (birds_root / "Robin").mkdir(parents=True)
    cifar_root.mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key.txt").write_text("x")
    (birds_root / "escape").symlink_to(tmp_path / "secret")
    monkeypatch.setenv("DLTL_DATA_ROOTS", os.pathsep.join([str(birds_root), str(cifar_root)]))
    monkeypatch.setenv("DLTL_CACHE_DIR", str(tmp_path / "cache"))
    return birds_root, cifar_root, tmp_path


def test_paths_outside_the_roots_are_refused_with_one_message(roots):
    """Findings: "/ lists bin, boot…", "/usr/share trains on the server's own images"."""
    from dltl_core import paths

    birds_root, cifar_root, tmp = roots
    assert paths.confine(str(birds_root / "Robin")) == birds_root.resolve() / "Robin"
    assert paths.confine("Robin") == birds_root.resolve() / "Robin"  # relative: the first root
    assert paths.confine(cifar_root) == cifar_root.resolve()
    assert paths.confine(birds_root / "not-there-yet") == birds_root.resolve() / "not-there-yet"
    messages = set()
    for bad in ["/", "/usr/share", "/etc/passwd", "/no/such/dir", str(tmp / "secret"),
                str(tmp / "secret" / "key.txt"), str(tmp / "secret" / "missing"),
                str(birds_root / "escape"), str(birds_root / "escape" / "key.txt"),  # symlink out
                str(birds_root / ".." / "cifar"), "../secret", "", "  ", "a\x00b", "x" * 5000,
                str(tmp / "srv" / "birdsX")]:  # a sibling sharing the prefix
        with pytest.raises(paths.PathRefused) as info:
            paths.confine(bad)
        messages.add(str(info.value))
    assert messages == {paths.REFUSED_MESSAGE}, "the message must not reveal whether a path exists"


def test_other_visitors_uploads_are_unreachable(roots, monkeypatch):
    """Finding: "<cache>/uploads lists other visitors' upload folders"."""
    from dltl_core import paths

    _, _, tmp = roots
    mine, theirs = paths.upload_base() / "session-a", paths.upload_base() / "session-b"
    for d in (mine / "u1" / "Robin", theirs / "u2" / "Wren"):
        d.mkdir(parents=True)
    own = paths.data_roots(extra=[mine])
    assert paths.confine(mine / "u1", own) == mine.resolve() / "u1"
    for bad in (theirs, theirs / "u2", paths.upload_base(), tmp / "cache"):
        with pytest.raises(paths.PathRefused):
            paths.confine(bad, own)
    # An operator root that contains the cache (a home folder) does not open the cache.
    monkeypatch.setenv("DLTL_DATA_ROOTS", str(tmp))
    assert paths.confine(tmp / "secret") == (tmp / "secret").resolve()
    with pytest.raises(paths.PathRefused):
        paths.confine(theirs / "u2")


def test_default_roots_and_operator_storage(monkeypatch, tmp_path):
    from dltl_core import paths

    monkeypatch.delenv("DLTL_DATA_ROOTS", raising=False)
    monkeypatch.setenv("DLTL_BIRDS_DIR", str(tmp_path / "b"))
    monkeypatch.setenv("DLTL_CIFAR_DIR", str(tmp_path / "c"))
    roots = paths.data_roots()
    assert roots[0] == (tmp_path / "b").resolve() and (tmp_path / "c").resolve() in roots
    assert all(r != Path("/") for r in paths.data_roots(extra=["/"]))
    monkeypatch.delenv("DLTL_STORAGE", raising=False)
    monkeypatch.delenv("DLTL_RESULTS", raising=False)
    assert paths.operator_storage() == paths.OperatorStorage(None, ())
    secrets = {"dltl": {"storage": "sqlite:////srv/runs.db", "results": ["/srv/a.json", "/srv/b.json"]}}
    got = paths.operator_storage(secrets)
    assert got.storage == "sqlite:////srv/runs.db" and got.results == (Path("/srv/a.json"), Path("/srv/b.json"))
    monkeypatch.setenv("DLTL_RESULTS", os.pathsep.join(["/r/1.json", "/r/2.json"]))
    monkeypatch.setenv("DLTL_STORAGE", "postgresql://u@db/dltl")
    assert paths.operator_storage(secrets) == paths.OperatorStorage(
        "postgresql://u@db/dltl", (Path("/r/1.json"), Path("/r/2.json")))


# ----------------------------------------------------------------------------- uploads

def _zeros_zip(mb: int) -> bytes:
    """The review's zip bomb: one member of ``mb`` MiB of zeros (about 1 MB compressed per GiB)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("Robin/zeros.bmp", "w", force_zip64=True) as out:
            block = bytes(2**20)
            for _ in range(mb):
                out.write(block)
    return buf.getvalue()


def _photo_zip(birds_dir: Path, species: int = 2, per: int = 3) -> bytes:
    import io
    import zipfile

    from dltl_core import birds

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in birds.list_species(birds_dir)[:species]:
            for f in sorted((birds_dir / name).iterdir())[:per]:
                zf.write(f, f"{name}/{f.name}")
    return buf.getvalue()


@pytest.mark.slow
def test_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    """Finding: "a 1 MB zip of zeros wrote 1 GiB to disk"."""
    from dltl_core.birds import upload

    bomb = _zeros_zip(1024)
    assert len(bomb) < 2 * 2**20
    area = tmp_path / "area"
    with pytest.raises(ValueError, match="unpacks to more than"):
        upload.unpack_species_zip(bomb, dest_root=area)
    # Under the size limit, the expansion ratio alone refuses it.
    small_bomb = _zeros_zip(64)
    with pytest.raises(ValueError, match="zip bomb"):
        upload.unpack_species_zip(small_bomb, dest_root=area)
    assert upload.area_bytes(tmp_path) == 0 and not any(tmp_path.rglob("*.bmp"))


def test_session_quota_and_lying_sizes(tmp_path, birds_dir):
    import zipfile

    from dltl_core.birds import upload

    blob = _photo_zip(birds_dir)
    area = tmp_path / "area"
    first = upload.unpack_species_zip(blob, dest_root=area, quota=10 * 2**20)
    used = upload.area_bytes(area)
    assert used > 0 and first.root.parent == area.resolve()
    other = _photo_zip(birds_dir, species=3)
    with pytest.raises(ValueError, match="upload space"):
        upload.unpack_species_zip(other, dest_root=area, quota=used + 1000)
    assert upload.area_bytes(area) == used
    # A member whose content is longer than the size its headers declare is never written past it.
    import io
    import struct

    jpeg = next(first.root.rglob("*.jpg")).read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("A/1.jpg", jpeg)
        zf.writestr("B/1.jpg", jpeg)
    raw = bytearray(buf.getvalue())
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        pos = raw.find(sig)
        raw[pos + off:pos + off + 4] = struct.pack("<I", 100)
    out = upload.unpack_species_zip(bytes(raw), dest_root=tmp_path / "lying")
    assert [p.relative_to(out.root).as_posix() for p in out.root.rglob("*.jpg")] == ["B/1.jpg"]
    assert dict(out.skipped)["A/1.jpg"].startswith("damaged in the zip")


def test_concurrent_same_zip_uploads_all_succeed(tmp_path, birds_dir, monkeypatch):
    """Finding: "the same zip uploaded by 3 browsers at once: 2 of the 3 got OSError"."""
    from dltl_core.birds import upload

    monkeypatch.setenv("DLTL_CACHE_DIR", str(tmp_path / "cache"))
    blob = _photo_zip(birds_dir)
    areas = [upload.session_area(f"session-token-{i:04d}") for i in range(3)]
    results, errors = [], []

    def unpack(area: Path) -> None:
        try:
            results.append(upload.unpack_species_zip(blob, dest_root=area, quota=upload.session_quota()))
        except Exception as err:  # noqa: BLE001 - the test reports any error
            errors.append(repr(err))

    threads = [threading.Thread(target=unpack, args=(a,)) for a in areas + areas]  # 3 sessions, twice each
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 6
    roots = {r.root for r in results}
    assert len(roots) == 3 and {r.parent for r in roots} == {a.resolve() for a in areas}
    assert not [p for a in areas for p in a.iterdir() if p.name.startswith(".unzip-")]


def test_upload_areas_are_swept_when_sessions_end(tmp_path, monkeypatch):
    from dltl_core.birds import upload

    monkeypatch.setenv("DLTL_CACHE_DIR", str(tmp_path / "cache"))
    alive, gone, idle, open_tab = (upload.session_area(f"{n}-token-0123456789")
                                   for n in ("alive", "gone", "idle", "open"))
    old = time.time() - 7200
    for area in (idle, open_tab):
        os.utime(area / ".alive", (old, old))
    known = {"gone-token-0123456789": True, "open-token-0123456789": False}  # True = session ended
    removed = upload.sweep_uploads(ttl=3600, ended=known.get)
    assert sorted(removed) == ["gone-token-0123456789", "idle-token-0123456789"]
    assert alive.is_dir() and open_tab.is_dir() and not gone.exists() and not idle.exists()
    with pytest.raises(ValueError, match="token"):
        upload.session_area("../../etc")


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
    lock = paths[1].with_name("1.pt.lock")  # a lock file beside an entry (features.py) is never removed
    lock.touch()
    os.utime(lock, (1, 1))
    assert cache.load_tensors(paths[0]) is not None  # a read makes 0 the most recently used
    cache.save_tensors(paths[3], {"x": torch.zeros(100_000)})
    left = {p.name for p in (cache.cache_dir() / "images").glob("*.pt")}
    assert left == {"0.pt", "2.pt", "3.pt"} and kept.exists() and lock.exists()
    assert cache.load_tensors(paths[1]) is None  # an evicted entry is a plain cache miss


# ----------------------------------------------------------------------------- images

def test_huge_16bit_png_is_refused_from_its_header(monkeypatch):
    """Finding: "an 89 KB 16-bit 6300x6300 PNG sent to Predict raised peak memory 1.25 -> 1.98 GB"."""
    import io

    from PIL import Image, ImageFile

    from dltl_core.images import ImageError, open_rgb

    row = (np.arange(6300, dtype=np.uint16) // 64 * 64)[None, :]
    buf = io.BytesIO()
    Image.fromarray(np.broadcast_to(row, (6300, 6300)).copy()).save(buf, "PNG", optimize=True)
    blob = buf.getvalue()
    assert len(blob) < 200_000 and Image.open(io.BytesIO(blob)).mode == "I;16"
    del row

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the pixels were decoded")

    with monkeypatch.context() as m:
        m.setattr(ImageFile.ImageFile, "load", no_decoding)
        with pytest.raises(ImageError, match=r"16-bit image of 6300x6300 pixels is too large"):
            open_rgb(blob)
    # A 16-bit photo of a reasonable size is still converted.
    small = io.BytesIO()
    Image.fromarray((np.arange(120 * 90, dtype=np.uint16).reshape(90, 120) * 7)).save(small, "PNG")
    assert open_rgb(small.getvalue()).size == (120, 90)


# ----------------------------------------------------------------------------- the /transfer page

def _transfer_page(tmp_path, monkeypatch):
    """The transfer page on an empty bird folder (it stops before any training)."""
    from streamlit.testing.v1 import AppTest

    empty = tmp_path / "birds"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("DLTL_BIRDS_DIR", str(empty))
    monkeypatch.delenv("DLTL_DATA_ROOTS", raising=False)
    root = Path(__file__).resolve().parent.parent
    at = AppTest.from_file(str(root / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/30_transfer.py")
    at.run()
    assert not at.exception
    return at


@pytest.mark.slow
def test_folder_box_refuses_server_paths_alike_whether_they_exist_or_not(tmp_path, monkeypatch):
    """Findings: "/ lists bin, boot…", "/usr/share trains on the server's own images",
    "<cache>/uploads lists other visitors' upload folders"."""
    from dltl_core import paths
    from dltl_core.birds import upload

    at = _transfer_page(tmp_path, monkeypatch)
    other = upload.session_area("another-visitor-0123456789")  # someone else's upload
    (other / "abc" / "Robin").mkdir(parents=True)
    shown = {}
    for typed in ["/", "/usr/share", "/usr/share/no-such-dir", str(paths.upload_base()), str(other),
                  str(other / "abc"), str(other / "missing"), "/etc/passwd", "../../etc"]:
        at.text_input(key="tl_folder").set_value(typed).run()
        assert not at.exception and not at.error
        warnings = [w.value for w in at.warning]
        assert len(warnings) == 1 and "is not a folder inside this server's data folders" in warnings[0]
        assert warnings[0].startswith(f"`{typed}`")
        shown[typed] = warnings[0][len(typed) + 2:]
        assert not at.metric and not at.dataframe  # nothing listed, nothing trained
    assert len(set(shown.values())) == 1, "the answer must not depend on whether the path exists"
    assert "Robin" not in str([m.value for m in at.markdown])


# ----------------------------------------------------------------------------- the job panel

_PANEL_APP = '''
import streamlit as st
from dltl_ui import job_panel as jobs_ui
from tests.test_security import sleep_job
clicked = st.button("Run", key="run")
final = jobs_ui.job_panel("demo", sleep_job, {"steps": 10_000}, start=clicked, label="Sleeping")
st.markdown(f"final: {None if final is None else (final.state, final.error)}")
'''


@pytest.mark.slow
def test_job_panel_starts_on_click_only_and_stop_ends_the_process():
    """Findings: "a link alone starts heavy work"; "after Stop … 100-200% CPU until the epoch ended"."""
    from streamlit.testing.v1 import AppTest

    from dltl_core.job_runner import get_runner

    runner = get_runner()
    at = AppTest.from_string(_PANEL_APP, default_timeout=60)
    at.query_params["run"] = "1"  # a link with parameters starts nothing
    at.run()
    assert not at.exception and not at.get("progress") and "_dltl_job::demo" not in at.session_state
    at.button(key="run").click().run()
    assert not at.exception
    job_id = at.session_state["_dltl_job::demo"]["id"]
    snap = _wait_running(runner, job_id)
    at.run()
    texts = [p.proto.text for p in at.get("progress")]
    assert texts and texts[0].startswith("Sleeping: sleeping")
    at.button(key="run").click().run()  # clicking again does not start a second run
    assert at.session_state["_dltl_job::demo"]["id"] == job_id
    assert runner.status(job_id).state == job_runner.RUNNING
    at.button(key="demo__stop").click().run()
    assert not at.exception
    assert _gone(snap.pid, 5), "the job's process still runs after Stop"
    at.run()
    assert any("cancelled" in m.value for m in at.markdown)


@pytest.mark.slow
def test_an_upload_lands_in_its_own_session_area_and_no_other_session_reaches_it(
        tmp_path, monkeypatch, birds_dir):
    """Findings: "<cache>/uploads … each one then shows that visitor's photos"; the upload label."""
    from dltl_core import paths

    first = _transfer_page(tmp_path, monkeypatch)
    first.radio(key="tl_source").set_value("Upload a zip").run()
    uploader = first.get("file_uploader")[0]
    assert "at most 50 MB" in uploader.proto.label  # server.maxUploadSize, not the old "200 MB"
    first.file_uploader(key="tl_zip").set_value(("birds.zip", _photo_zip(birds_dir), "application/zip")).run()
    assert not first.exception and not first.error
    token = first.session_state["_dltl_upload_token"]
    area = paths.upload_base() / token
    unpacked = [p for p in area.iterdir() if p.is_dir()]
    assert len(unpacked) == 1 and len(list(unpacked[0].rglob("*.jpg"))) == 6
    second = _transfer_page(tmp_path, monkeypatch)  # another visitor
    second.text_input(key="tl_folder").set_value(str(unpacked[0])).run()
    assert [w.value for w in second.warning][0].endswith(
        "is not a folder inside this server's data folders. Choose one of the data folders listed above, "
        "or download CUB-200-2011 / upload a zip instead.")
    # The first visitor may type their own upload's path.
    first.radio(key="tl_source").set_value("Folder").run()
    first.text_input(key="tl_folder").set_value(str(unpacked[0])).run()
    assert not any("is not a folder" in w.value for w in first.warning)
