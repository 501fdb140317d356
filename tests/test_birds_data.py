"""Bird data: species folders, picker, split, bad files, zip uploads, the CUB-200-2011 downloader."""

from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import stat
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dltl_core import birds
from dltl_core.birds import cub


# ----------------------------------------------------------------------------- folders

def test_first_k_species_alphabetically_with_cap(birds_dir):
    everything = birds.list_species(birds_dir)
    b = birds.load_birds(birds_dir, 10, max_per_species=12)
    assert list(b.species) == sorted(everything)[:10]
    assert b.counts() == [12] * 10
    assert all(Path(f).parent.name == b.species[y] for f, y in zip(b.files, b.labels))
    assert b.skipped == ()


def test_species_by_name_and_pretty_name(birds_dir):
    names = birds.list_species(birds_dir)
    pick = birds.pick_species(names, f"{names[5]}, {birds.pretty_name(names[2]).lower()}")
    assert pick == [names[5], names[2]]
    with pytest.raises(ValueError, match="unknown species: Dodo"):
        birds.pick_species(names, "Dodo," + names[0])
    with pytest.raises(ValueError, match="at least 2"):
        birds.pick_species(names, 1)
    with pytest.raises(ValueError, match="at least 2"):
        birds.pick_species(names, names[0])


def test_split_is_seeded_stratified_and_disjoint(birds_dir):
    b = birds.load_birds(birds_dir, 5)
    tr, va = birds.split_indices(b.labels, 0.25, seed=3)
    assert set(tr).isdisjoint(va) and sorted(tr + va) == list(range(len(b)))
    assert (tr, va) == birds.split_indices(b.labels, 0.25, seed=3)
    assert va != birds.split_indices(b.labels, 0.25, seed=4)[1]
    for y, n in enumerate(b.counts()):
        n_val = sum(1 for i in va if b.labels[i] == y)
        assert n_val == round(n * 0.25)
    with pytest.raises(ValueError):
        birds.split_indices(b.labels, 1.0)


def _write_bad_files(folder: Path) -> dict[str, str]:
    """Every kind of file a real folder holds; returns {name: expected outcome}."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 200).save(folder / "deep16.png")
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(folder / "alpha.png")
    Image.fromarray(rgb[..., 0]).save(folder / "gray.png")
    (folder / "notes.jpg").write_text("this is not a photo")
    (folder / "zero.jpg").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    Image.new("1", (9000, 9000)).save(folder / "bomb.png")  # 81 MP, a few KB on disk
    (folder / "readme.txt").write_text("not an image name")
    return {"cmyk.jpg": "ok", "deep16.png": "ok", "alpha.png": "ok", "gray.png": "ok",
            "notes.jpg": "not an image", "zero.jpg": "empty", "truncated.jpg": "truncated",
            "bomb.png": "too large", "readme.txt": "not an image file name"}


@pytest.fixture(scope="module")
def messy_dir(birds_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("messy")
    for name in birds.list_species(birds_dir)[:3]:
        (root / name).mkdir()
        for f in sorted((birds_dir / name).iterdir())[:6]:
            shutil.copy(f, root / name / f.name)
    _write_bad_files(root / birds.list_species(birds_dir)[0])
    (root / "Empty_Species").mkdir()
    modes = {n: Image.open(root / birds.list_species(birds_dir)[0] / n).mode
             for n in ("cmyk.jpg", "deep16.png", "alpha.png", "gray.png")}
    assert modes == {"cmyk.jpg": "CMYK", "deep16.png": "I;16", "alpha.png": "RGBA", "gray.png": "L"}
    return root


def test_bad_files_are_skipped_and_counted(messy_dir):
    from dltl_core.backbones import create_backbone
    from dltl_core.features import extract_features

    b = birds.load_birds(messy_dir, 3)
    assert "Empty_Species" not in b.species
    reasons = {Path(f).name: r for f, r in b.skipped}
    assert reasons["readme.txt"] == "not an image file name"
    assert "0 bytes" in reasons["zero.jpg"]
    assert reasons["Empty_Species"] == "species folder with no images"
    fs = extract_features(create_backbone(), b.files, b.labels)
    decode = {Path(f).name: r for f, r in fs.skipped}
    assert set(decode) == {"notes.jpg", "truncated.jpg", "bomb.png"}
    assert "not an image" in decode["notes.jpg"]
    assert "truncated" in decode["truncated.jpg"] or "damaged" in decode["truncated.jpg"]
    assert "too large" in decode["bomb.png"]
    ok = {Path(f).name for f in fs.files}
    assert {"cmyk.jpg", "deep16.png", "alpha.png", "gray.png"} <= ok
    assert len(fs.files) == len(b.files) - 3 and fs.features.shape == (len(fs.files), 1280)
    assert np.isfinite(fs.features.numpy()).all()


def test_single_species_and_empty_folders_are_clear_errors(tmp_path, birds_dir):
    with pytest.raises(FileNotFoundError, match="not found"):
        birds.load_birds(tmp_path / "missing")
    with pytest.raises(ValueError, match="no species folders"):
        birds.load_birds(tmp_path)
    only = tmp_path / "Only_One"
    only.mkdir()
    shutil.copy(next((birds_dir / birds.list_species(birds_dir)[0]).iterdir()), only / "a.jpg")
    with pytest.raises(ValueError, match="only one species"):
        birds.load_birds(tmp_path)


# ----------------------------------------------------------------------------- zip uploads

def _zip(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


@pytest.fixture(scope="module")
def jpeg(birds_dir) -> bytes:
    return next((birds_dir / birds.list_species(birds_dir)[0]).iterdir()).read_bytes()


def test_zip_of_species_folders_unpacks_into_the_cache(tmp_path, jpeg):
    blob = _zip({"birds/Robin/1.jpg": jpeg, "birds/Robin/2.jpg": jpeg, "birds/Wren/1.jpg": jpeg,
                 "birds/Wren/notes.txt": b"x", "__MACOSX/birds/._1.jpg": b"x"})
    out = birds.unpack_species_zip(blob, dest_root=tmp_path / "uploads")
    assert out.root.parent == (tmp_path / "uploads").resolve()
    assert birds.list_species(out.root) == ["Robin", "Wren"]
    assert [r for _, r in out.skipped] == ["not an image file name"]
    b = birds.load_birds(out.root, 2)
    assert b.counts() == [2, 1]
    # The same upload again re-uses the unpacked folder.
    assert birds.unpack_species_zip(blob, dest_root=tmp_path / "uploads").root == out.root


def test_zip_slip_and_symlinks_are_refused_and_nothing_escapes(tmp_path, jpeg):
    dest = tmp_path / "cache" / "uploads"
    blob = _zip({"A/1.jpg": jpeg, "B/1.jpg": jpeg, "../../evil.jpg": jpeg, "A/../../evil2.jpg": jpeg,
                 "/abs/evil3.jpg": jpeg, "C:\\evil4.jpg": jpeg},
                symlinks={"A/link.jpg": "/etc/passwd"})
    out = birds.unpack_species_zip(blob, dest_root=dest)
    reasons = dict(out.skipped)
    for name in ("../../evil.jpg", "A/../../evil2.jpg", "/abs/evil3.jpg", "C:\\evil4.jpg"):
        assert "zip slip" in reasons[name]
    assert "symbolic link" in reasons["A/link.jpg"]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(dest.resolve() in p.resolve().parents for p in written)
    assert sorted(p.name for p in written) == ["1.jpg", "1.jpg"]


def test_zip_limits_and_junk_are_clear_errors(tmp_path, jpeg):
    with pytest.raises(ValueError, match="not a valid zip"):
        birds.unpack_species_zip(b"PK\x03\x04 nonsense", dest_root=tmp_path)
    with pytest.raises(ValueError, match="larger than the limit"):
        birds.unpack_species_zip(_zip({"A/1.jpg": jpeg}), dest_root=tmp_path, max_bytes=100)
    with pytest.raises(ValueError, match="limit is 3"):
        birds.unpack_species_zip(_zip({f"A/{i}.jpg": jpeg for i in range(4)}), dest_root=tmp_path, max_files=3)
    with pytest.raises(ValueError, match="unpacks to more"):
        birds.unpack_species_zip(_zip({"A/1.jpg": jpeg, "B/1.jpg": jpeg}), dest_root=tmp_path,
                                 max_unpacked=len(jpeg))
    with pytest.raises(ValueError, match="no images inside species folders"):
        birds.unpack_species_zip(_zip({"loose.jpg": jpeg}), dest_root=tmp_path)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


# ----------------------------------------------------------------------------- CUB download

def test_cub_download_offline_fails_fast_naming_the_folder_option(tmp_path):
    t0 = time.perf_counter()
    # Port 9 on localhost (discard) is closed: the same path as no network, without depending on one.
    with pytest.raises(RuntimeError, match="folder"):
        cub.download_cub(tmp_path, url="http://127.0.0.1:9/CUB_200_2011.tgz", timeout=2)
    assert time.perf_counter() - t0 < 10
    assert not any(p.is_file() for p in tmp_path.rglob("*")), "no partial download left behind"


@pytest.fixture()
def http_dir(tmp_path):
    """A local HTTP server over tmp_path/www (stands in for data.caltech.edu)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(www), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_cub_download_checks_size_and_md5_then_extracts(http_dir, tmp_path, jpeg):
    www, base = http_dir
    blob = _tgz({"CUB_200_2011/images/001.Black_footed_Albatross/a.jpg": jpeg,
                 "CUB_200_2011/images/001.Black_footed_Albatross/b.jpg": jpeg,
                 "CUB_200_2011/images/002.Laysan_Albatross/a.jpg": jpeg,
                 "CUB_200_2011/classes.txt": b"1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n"})
    (www / "cub.tgz").write_bytes(blob)
    md5 = hashlib.md5(blob).hexdigest()
    seen = []
    dest = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="md5 mismatch"):
        cub.download_cub(dest, url=f"{base}/cub.tgz", size=len(blob), md5="0" * 32)
    assert not (dest / "CUB_200_2011.tgz").exists()
    with pytest.raises(RuntimeError, match="expected"):
        cub.download_cub(dest, url=f"{base}/cub.tgz", size=len(blob) + 1, md5=md5)
    root = cub.download_cub(dest, url=f"{base}/cub.tgz", size=len(blob), md5=md5,
                            progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(blob), len(blob))
    assert root == cub.cub_root(dest) and cub.is_downloaded(dest)
    b = birds.load_birds(root, 2)
    assert [birds.pretty_name(s) for s in b.species] == ["Black footed Albatross", "Laysan Albatross"]
    assert b.counts() == [2, 1]


def test_cub_archive_escaping_its_folder_is_refused(http_dir, tmp_path, jpeg):
    www, base = http_dir
    blob = _tgz({"CUB_200_2011/images/001.A/a.jpg": jpeg, "../../outside.jpg": jpeg})
    (www / "bad.tgz").write_bytes(blob)
    dest = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="could not extract"):
        cub.download_cub(dest, url=f"{base}/bad.tgz", size=len(blob), md5=hashlib.md5(blob).hexdigest())
    assert not (tmp_path / "outside.jpg").exists() and not list(tmp_path.parent.glob("outside.jpg"))
    assert not cub.is_downloaded(dest)
    assert not [p for p in dest.iterdir() if p.name.startswith(".extract-")]
