"""Hostile uploads stay within the image and disk budgets (issue 15, items 3, 4 and 7).

Images: the real cost of each mode is judged from the header, large photos are decoded
reduced (never a full-size RGB copy), decodes share one budget, and a large real photo
still predicts like a full decode. Zips: the entry count is read before ``zipfile`` parses
the directory, the whole zip's expansion ratio is judged, members that are not images by
content (or too costly to decode) are skipped before they are written, all sessions'
uploads share a cap, and no message names a server path.
"""

from __future__ import annotations

import io
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile

from dltl_core import images
from dltl_core.birds import upload
from dltl_core.images import ImageError, open_rgb


def _save(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _picture(mode: str, size: tuple[int, int]) -> Image.Image:
    """A flat picture with a few shapes (compresses to a small file, as the issue's did)."""
    img = Image.new(mode, size, 3 if mode == "P" else (40, 120, 200, 255)[:len(mode)])
    if mode == "P":
        img.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    draw = ImageDraw.Draw(img)
    for i in range(0, size[0], 400):
        draw.ellipse((i, i // 2, i + 900, i // 2 + 600), fill=17 if mode == "P" else (200, 60, 90, 128)[:len(mode)])
    return img


@pytest.fixture(scope="module")
def rgba_png() -> bytes:
    return _save(_picture("RGBA", (6300, 6300)), optimize=True)


@pytest.fixture(scope="module")
def bird(birds_dir) -> Path:
    return sorted(birds_dir.glob("*/*.jpg"))[0]


# ----------------------------------------------------------------------------- images

def test_rgba_png_is_refused_from_its_header_before_decoding(rgba_png, monkeypatch):
    """Finding: "a 150 KB 6300x6300 RGBA PNG: server +801 MB" (its header passed at 4 bytes a pixel)."""
    assert len(rgba_png) < 300_000

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match=r"6300x6300 RGBA image needs \d+ MB of memory to decode "
                                         r"\(limit 128 MB per image\)"):
        open_rgb(rgba_png)


def test_palette_png_counts_its_conversion_and_never_makes_a_full_size_rgb(monkeypatch):
    """Finding: "a 38 KB palette PNG: +687 MB" (counted at 1 byte a pixel, converted at full size)."""
    blob = _save(_picture("P", (6300, 6300)), optimize=True)
    img = Image.open(io.BytesIO(blob))
    assert img.mode == "P" and len(blob) < 150_000
    cost = images.decode_cost(img)
    assert 6300 * 6300 < cost < images.MAX_DECODED_BYTES  # more than the palette indices, within budget
    biggest = []  # pixels of every RGB/RGBA image the conversion makes
    for name in ("convert", "crop", "reduce"):
        original = getattr(Image.Image, name)

        def spy(self, *args, _original=original, **kwargs):
            out = _original(self, *args, **kwargs)
            if out.mode in ("RGB", "RGBA"):
                biggest.append(out.width * out.height)
            return out

        monkeypatch.setattr(Image.Image, name, spy)
    out = open_rgb(blob)
    monkeypatch.undo()
    assert out.mode == "RGB" and images.DECODE_SIDE <= min(out.size) < 2 * images.DECODE_SIDE
    assert biggest and max(biggest) < 6300 * 6300 / 8  # bands, never the whole picture in RGB
    # The colours survive the reduction: the flat background is palette entry 3.
    assert out.getpixel((out.width - 1, 0)) == (3, 252, 21)


def test_cmyk_jpeg_is_decoded_reduced_by_the_decoder():
    """Finding: "a 36 MP CMYK JPEG: +416 MB"; the JPEG decoder itself scales it by 1/8."""
    small = Image.linear_gradient("L").resize((735, 490)).convert("CMYK")
    blob = _save(small.resize((7350, 4900)), "JPEG", quality=85)
    img = Image.open(io.BytesIO(blob))
    images.check_header(img)
    assert img.mode == "CMYK" and img.size == (919, 613)  # draft: decoded at 1/8, before any pixel
    assert images.decode_cost(img) < 20 * 2**20
    out = open_rgb(blob)
    assert out.mode == "RGB" and out.size == (919, 613)
    # The gradient runs top to bottom, dark to light, as in the full image.
    column = np.asarray(out.convert("L"))[:, 400]
    assert column[10] < 40 and column[-10] > 215 and (np.diff(column.astype(int)) >= -2).all()


def test_a_panorama_is_reduced_to_a_bounded_result():
    """A 20000x1000 photo's shorter side is under 1,024 pixels, yet it must not stay 20 MP."""
    blob = _save(Image.linear_gradient("L").resize((20000, 1000)), compress_level=1)
    out = open_rgb(blob)
    assert out.size == (6667, 334) and out.width * out.height <= images.MAX_RESULT_PIXELS


def test_decodes_at_once_share_one_budget(monkeypatch):
    """Finding: "three visitors uploading the same PNG: 3,800 MB peak"; now they take turns."""
    blob = _save(_picture("P", (3000, 3000)), optimize=True)
    cost = images.check_header(Image.open(io.BytesIO(blob)))
    monkeypatch.setattr(images, "_BUDGET", images._Budget(int(cost * 1.5)))  # room for one at a time
    running, peak, lock = [0], [0], threading.Lock()
    original = images._to_rgb

    def counting(img, min_side=images.DECODE_SIDE):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return original(img, min_side)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(images, "_to_rgb", counting)
    sizes = []
    threads = [threading.Thread(target=lambda: sizes.append(open_rgb(blob).size)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sizes == [(600, 600)] * 3 and peak[0] == 1  # 3000 // 512 = 5: reduced by 5
    assert images._BUDGET.used == 0


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_photo_predicts_like_a_full_decode(birds_dir, fmt):
    """A real bird photo upscaled to 15 MP: the reduced decode gives the full decode's ImageNet class."""
    from dltl_core.backbones import create_backbone, imagenet_topk

    backbone = create_backbone()
    photo = next(p for p in sorted(birds_dir.glob("*/*.jpg"))[:40]  # a photo the network is sure of
                 if imagenet_topk(backbone, open_rgb(p), 1)[0][1] > 0.6)
    big = Image.open(photo).convert("RGB").resize((3859, 3859), Image.Resampling.BICUBIC)
    blob = _save(big, fmt, **({"quality": 92} if fmt == "JPEG" else {"compress_level": 1}))
    full = Image.open(io.BytesIO(blob)).convert("RGB")  # the reference: Pillow's plain full decode
    del big
    reduced = open_rgb(blob)
    assert images.DECODE_SIDE <= min(reduced.size) < 2 * images.DECODE_SIDE
    want, got = imagenet_topk(backbone, full, 3), imagenet_topk(backbone, reduced, 3)
    assert got[0][0] == want[0][0] and abs(got[0][1] - want[0][1]) < 0.1


# ----------------------------------------------------------------------------- zips

def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED, dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for d in dirs:
            zf.mkdir(d)
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _dirs_zip(n: int, declare: int | None = None) -> bytes:
    """``n`` directory entries written byte by byte; the end record declares ``declare`` (default n)."""
    local, central, offset = [], [], 0
    for i in range(n):
        name = f"d{i:06d}/".encode()
        local.append(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, 0, 0, 0,
                                   len(name), 0, 0, 0, 0, 0x10, offset) + name)
        offset += len(local[-1])
    cd = b"".join(central)
    count = n if declare is None else declare
    return b"".join(local) + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(cd), offset, 0)


@pytest.fixture(scope="module")
def jpeg(bird) -> bytes:
    return bird.read_bytes()


def test_entry_count_is_refused_from_the_end_record_before_zipfile_parses_it(tmp_path, monkeypatch):
    """Finding: "500,000 directory entries: +320 MB and 15 s in zipfile.ZipFile before the count"."""
    def no_parsing(*args, **kwargs):
        raise AssertionError("zipfile parsed the directory")

    monkeypatch.setattr(upload.zipfile, "ZipFile", no_parsing)
    for blob in (_dirs_zip(6000), _dirs_zip(6000, declare=3)):  # an end record that under-declares too
        with pytest.raises(ValueError, match="holds 6,000 entries .files and folders.; the limit is 5,000"):
            upload.unpack_species_zip(blob, dest_root=tmp_path / "area")
    assert not (tmp_path / "area").exists()


def test_every_entry_counts_directories_too(tmp_path, jpeg):
    blob = _zip({"A/1.jpg": jpeg, "B/1.jpg": jpeg}, dirs=("A", "B", "C"))
    assert upload.directory_entries(blob) == 5
    with pytest.raises(ValueError, match="holds 5 entries"):
        upload.unpack_species_zip(blob, dest_root=tmp_path, max_files=4)
    assert upload.unpack_species_zip(blob, dest_root=tmp_path, max_files=5).root.is_dir()


def test_whole_zip_expansion_ratio_refuses_many_small_bombs(tmp_path):
    """Finding: "299 x 1 MiB of zeros (331 KB zip) wrote 299 MB" (each member at the 1 MiB line)."""
    for size, n in ((2**20, 40), (100_000, 400)):  # exactly 1 MiB each; and well under it
        blob = _zip({f"Robin/{i:03d}.jpg": bytes(size) for i in range(n)}, zipfile.ZIP_DEFLATED)
        with pytest.raises(ValueError, match=r"expands [\d,]+x .*zip bomb"):
            upload.unpack_species_zip(blob, dest_root=tmp_path / "area")
    assert upload.area_bytes(tmp_path) == 0


def test_members_that_are_not_images_are_skipped_before_they_are_written(tmp_path, jpeg, rgba_png, monkeypatch):
    opened = []
    real_open = open

    def recording_open(path, mode="r", *args, **kwargs):
        if "w" in mode:
            opened.append(Path(path).name)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(upload, "open", recording_open, raising=False)
    blob = _zip({"A/1.jpg": jpeg, "A/notes.jpg": b"these are my notes\n" * 50, "B/1.jpg": jpeg,
                 "B/zeros.png": bytes(5000), "B/huge.png": rgba_png})
    out = upload.unpack_species_zip(blob, dest_root=tmp_path / "area")
    reasons = dict(out.skipped)
    assert reasons["A/notes.jpg"] == reasons["B/zeros.png"] == "not an image by its content, skipped"
    assert "6300x6300 RGBA image needs" in reasons["B/huge.png"]
    assert sorted(opened) == ["1.jpg", "1.jpg"]  # the skipped ones were never opened for writing
    assert sorted(p.relative_to(out.root).as_posix() for p in out.root.rglob("*.*")) == ["A/1.jpg", "B/1.jpg"]


def test_zip_of_large_pngs_is_refused_without_writing_or_decoding(tmp_path, rgba_png, monkeypatch):
    """Finding: "a 12 MB zip of 80 6300x6300 PNGs: extracted in the server, +911 MB"."""
    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    blob = _zip({f"{'AB'[i % 2]}/{i:02d}.png": rgba_png for i in range(8)})
    with pytest.raises(ValueError, match=r"none of the zip's 8 images can be used .*needs \d+ MB of memory"):
        upload.unpack_species_zip(blob, dest_root=tmp_path / "area")
    assert upload.area_bytes(tmp_path) == 0


def test_one_cap_on_all_sessions_uploads(tmp_path, jpeg, monkeypatch):
    monkeypatch.setenv("DLTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DLTL_UPLOAD_TOTAL_MB", raising=False)
    import shutil

    free = shutil.disk_usage(tmp_path).free
    assert 0 < upload.total_quota() <= min(2 * 1024**3, 0.25 * free + 1)
    first, second = upload.session_area("first-session-0123456789"), upload.session_area("second-session-012345")
    photos = {f"{s}/{i}.jpg": jpeg for s in "AB" for i in range(10)}
    size = sum(len(v) for v in photos.values())
    monkeypatch.setenv("DLTL_UPLOAD_TOTAL_MB", str(1.5 * size / 2**20))
    cap = upload.total_quota()
    upload.unpack_species_zip(_zip(photos), dest_root=first, quota=upload.session_quota(), total_quota=cap)
    other = _zip({f"{s}/x{i}.jpg": jpeg for s in "AB" for i in range(10)})
    with pytest.raises(ValueError, match=r"space for all visitors' uploads \(\d+ MB\) has only"):
        upload.unpack_species_zip(other, dest_root=second, quota=upload.session_quota(), total_quota=cap)
    assert upload.area_bytes(second) == 0  # the second session's quota alone would have allowed it
    upload.unpack_species_zip(other, dest_root=second, quota=upload.session_quota())


def test_names_too_long_for_the_disk_are_skipped_without_a_server_path(tmp_path, jpeg):
    """Finding: a long-name zip error showed "[Errno 36] File name too long: '/path...'"."""
    deep = "/".join(["n" * 200] * 3)  # each part fits, the joined file name does not
    blob = _zip({"A/1.jpg": jpeg, "B/1.jpg": jpeg, f"B/{'x' * 300}.jpg": jpeg, f"A/{deep}.jpg": jpeg})
    out = upload.unpack_species_zip(blob, dest_root=tmp_path / "area")
    reasons = [r for _, r in out.skipped]
    assert len(reasons) == 2 and any("longer than 255 bytes" in r for r in reasons)
    assert any("could not be written" in r and "too long" in r for r in reasons)
    assert not any(str(tmp_path) in r or "Errno" in r for r in reasons)


# ----------------------------------------------------------------------------- the /transfer page

def _protos(node) -> list[bytes]:
    """Every element of an AppTest tree, serialised (what the browser would receive)."""
    out = []
    proto = getattr(node, "proto", None)
    if proto is not None and hasattr(proto, "SerializeToString"):
        out.append(proto.SerializeToString())
    children = getattr(node, "children", {}) or {}
    for child in (children.values() if isinstance(children, dict) else children):
        out += _protos(child)
    return out


def test_predict_decodes_an_upload_once_and_the_page_shows_no_server_path(birds_dir, bird, monkeypatch):
    """Findings: the photo "is decoded again on every rerun while it stays in the uploader (+141 MB,
    3-4 s each)"; "feature-map tooltips, the downloaded model file ... show server paths"."""
    from streamlit.testing.v1 import AppTest

    from dltl_core import checkpoint
    from dltl_ui.transfer import views as tv

    decodes = []
    real = tv.open_rgb

    def counting(source, *args, **kwargs):
        decodes.append(type(source).__name__)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(tv, "open_rgb", counting)
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/30_transfer.py")
    at.run()
    assert not at.exception, at.exception
    big = Image.open(bird).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    at.file_uploader(key="tl_photo").set_value(("big.jpg", _save(big, "JPEG", quality=90), "image/jpeg")).run()
    assert not at.exception and not [w for w in at.warning if "cannot be used" in w.value]
    assert decodes.count("bytes") == 1
    at.run()
    at.run()  # reruns while the photo stays in the uploader: no new decode
    assert decodes.count("bytes") == 1
    # No element of the page names a photo's server path (tooltips, pickers, captions).
    root = birds_dir.resolve()
    species_dir = str(root / sorted(p.name for p in root.iterdir() if p.is_dir())[0]).encode()
    protos = _protos(at._tree)
    maps = [p for p in protos if b"component 1" in p]  # the feature map's chart, tooltips in its data
    assert maps and all(b".jpg" in p for p in maps)
    assert not [p for p in protos if species_dir in p]
    # The downloaded model file carries the folder's name only.
    at.button(key="tl_dl_go").click().run()
    _, blob = at.session_state["tl_dl"]
    assert str(root).encode() not in blob and checkpoint.load(blob)["config"]["data"] == root.name
