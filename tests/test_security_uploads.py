"""Issue 11, replayed: uploads are bounded, unpacked safely, and stay in their visitor's area.

The zip bomb, the session quota and lying sizes, the concurrent same-zip upload, upload
areas swept when sessions end, and an upload no other session reaches.

The other findings of the review: tests/test_security_*.py, one file per subject.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.security_util import photo_zip, transfer_page


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

    blob = photo_zip(birds_dir)
    area = tmp_path / "area"
    first = upload.unpack_species_zip(blob, dest_root=area, quota=10 * 2**20)
    used = upload.area_bytes(area)
    assert used > 0 and first.root.parent == area.resolve()
    other = photo_zip(birds_dir, species=3)
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


def test_an_unpack_stops_when_the_visitors_tab_closes(tmp_path, birds_dir):
    """The check runs between photos: a tab closed mid-unpack ends it, and nothing is kept."""
    from dltl_core.birds import upload

    blob = photo_zip(birds_dir, species=2, per=4)
    asked = []

    def closed_after_three() -> bool:
        asked.append(1)
        return len(asked) > 3

    area = tmp_path / "area"
    with pytest.raises(ValueError, match="stopped after 3 of 8 images"):
        upload.unpack_species_zip(blob, dest_root=area, should_stop=closed_after_three)
    assert upload.area_bytes(area) == 0 and not [p for p in area.rglob("*") if p.is_file()]
    # An open tab unpacks all of it, asked once per photo.
    asked.clear()
    out = upload.unpack_species_zip(blob, dest_root=area, should_stop=lambda: bool(asked.append(1)))
    assert len(asked) == 8 and sum(1 for p in out.root.rglob("*") if p.is_file()) == 8


def test_concurrent_same_zip_uploads_all_succeed(tmp_path, birds_dir, monkeypatch):
    """Finding: "the same zip uploaded by 3 browsers at once: 2 of the 3 got OSError"."""
    from dltl_core.birds import upload

    monkeypatch.setenv("DLTL_CACHE_DIR", str(tmp_path / "cache"))
    blob = photo_zip(birds_dir)
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


@pytest.mark.slow
def test_an_upload_lands_in_its_own_session_area_and_no_other_session_reaches_it(
        tmp_path, monkeypatch, birds_dir):
    """Findings: "<cache>/uploads … each one then shows that visitor's photos"; the upload label."""
    from dltl_core import paths

    first = transfer_page(tmp_path, monkeypatch)
    first.radio(key="tl_source").set_value("Upload a zip").run()
    uploader = first.get("file_uploader")[0]
    assert "at most 50 MB" in uploader.proto.label  # server.maxUploadSize, not the old "200 MB"
    first.file_uploader(key="tl_zip").set_value(("birds.zip", photo_zip(birds_dir), "application/zip")).run()
    assert not first.exception and not first.error
    token = first.session_state["_dltl_upload_token"]
    area = paths.upload_base() / token
    unpacked = [p for p in area.iterdir() if p.is_dir()]
    assert len(unpacked) == 1 and len(list(unpacked[0].rglob("*.jpg"))) == 6
    second = transfer_page(tmp_path, monkeypatch)  # another visitor
    second.text_input(key="tl_folder").set_value(str(unpacked[0])).run()
    assert [w.value for w in second.warning][0].endswith(
        "is not a folder inside this server's data folders. Choose one of the data folders listed above, "
        "or download CUB-200-2011 / upload a zip instead.")
    # The first visitor may type their own upload's path.
    first.radio(key="tl_source").set_value("Folder").run()
    first.text_input(key="tl_folder").set_value(str(unpacked[0])).run()
    assert not any("is not a folder" in w.value for w in first.warning)
