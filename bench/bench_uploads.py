"""What hostile uploads cost the server: peak memory and seconds of decoding and unpacking them.

Builds the files of issue 15 in a temporary folder (never in the repository):

- ``rgba_png``: a 6300x6300 RGBA PNG (a flat picture, about 150 KB);
- ``palette_png``: a 6300x6300 palette ('P') PNG (tens of KB);
- ``cmyk_jpeg``: a 36 MP (7350x4900) CMYK JPEG;
- ``zip_80_png``: a zip of 80 such RGBA PNGs in two species folders (about 12 MB);
- ``zip_zeros``: 299 members of exactly 1 MiB of zeros named like photos (about 330 KB);
- ``zip_500k_dirs``: a zip of 500,000 directory entries (about 46 MB), written byte by byte
  (``zipfile`` would take minutes to write it).

Each case then runs in a fresh Python process (``dltl_core`` imported first), which reports
its RSS before the action, its peak RSS (``ru_maxrss``) after it, the seconds and the
outcome: the decoded size, or the message the visitor would see. The cases are what the
server does with such a file: ``open_rgb`` for a Predict upload (also three visitors at
once, three threads), and ``unpack_species_zip`` into a session area for a dataset zip
(for ``zip_80_png`` then also decoding the first four unpacked photos, as the feature
extraction that follows would). ``reference`` decodes one real 227x227 bird photo.

    flock /work/cpu-bench.lock python bench/bench_uploads.py [--repo DIR] [--out FILE]

``--repo`` imports ``dltl_core`` from another checkout (to measure the code before a
change). Prints one JSON object and writes it to ``bench/uploads_results.json`` (``--out``);
``bench/uploads_results_before.json`` is the same run on the code before the budgets (f7c0ff0).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIDE = 6300

# Runs in the child: RSS now and at peak (MB), so the delta is what the action added.
CHILD = r"""
import json, os, resource, sys, threading, time
sys.path.insert(0, sys.argv[1])
from dltl_core import images
from dltl_core.birds import upload

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

case, path = sys.argv[2], sys.argv[3]
blob = open(path, "rb").read()
before = rss_mb()
t0 = time.perf_counter()
out = {}
try:
    if case == "decode":
        img = images.open_rgb(blob)
        out["decoded"] = list(img.size)
    elif case == "decode_x3":
        errors, sizes = [], []
        def one():
            try:
                sizes.append(list(images.open_rgb(blob).size))
            except Exception as err:
                errors.append(str(err))
        threads = [threading.Thread(target=one) for _ in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        out["decoded"] = sizes
        if errors:
            out["refused"] = errors[0]
    else:
        area = upload.session_area("bench-session-0123456789")
        kw = {"quota": upload.session_quota()}
        if hasattr(upload, "total_quota"):
            kw["total_quota"] = upload.total_quota()
        res = upload.unpack_species_zip(blob, dest_root=area, **kw)
        out["written_mb"] = round(upload.area_bytes(area) / 2**20, 1)
        out["unpacked_files"] = sum(1 for p in res.root.rglob("*") if p.is_file())
        out["skipped"] = len(res.skipped)
        if case == "unpack_decode":
            photos = sorted(p for p in res.root.rglob("*") if p.is_file())[:4]
            ok = 0
            for p in photos:
                try:
                    images.open_rgb(p)
                    ok += 1
                except images.ImageError as err:
                    out["decode_refused"] = str(err).split(": ", 1)[-1]
            out["decoded"] = ok
except Exception as err:
    out["refused"] = f"{type(err).__name__}: {err}"[:300]
out["seconds"] = round(time.perf_counter() - t0, 2)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["rss_before_mb"] = round(before)
out["peak_added_mb"] = round(peak - before)
print(json.dumps(out))
"""


def _png(mode: str) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new(mode, (SIDE, SIDE), 3 if mode == "P" else (40, 120, 200, 255))
    if mode == "P":
        img.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    draw = ImageDraw.Draw(img)
    for i in range(0, SIDE, 180):  # a few shapes, so it is a picture and not one colour
        draw.ellipse((i, i // 2, i + 900, i // 2 + 600), fill=(i % 250) if mode == "P" else (i % 256, 60, 90, 200))
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _cmyk_jpeg() -> bytes:
    from PIL import Image

    small = Image.linear_gradient("L").resize((735, 490)).convert("CMYK")
    buf = io.BytesIO()
    small.resize((7350, 4900)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _zeros_zip(n: int = 299) -> bytes:
    mib = bytes(2**20)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for i in range(n):
            zf.writestr(f"Robin/{i:03d}.jpg", mib)
    return buf.getvalue()


def _dirs_zip(n: int = 500_000) -> bytes:
    """``n`` empty directory entries: local headers, then the central directory, then the EOCD."""
    local, central, offset = [], [], 0
    for i in range(n):
        name = f"d{i:06d}/".encode()
        head = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, 0, 0, 0,
                                   len(name), 0, 0, 0, 0, 0x10, offset) + name)
        local.append(head)
        offset += len(head)
    cd = b"".join(central)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, len(cd), offset, 0)
    # More than 65,535 entries: the counts live in a zip64 end record, as zipfile writes them.
    z64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(cd), offset)
    loc = struct.pack("<IIQI", 0x07064B50, 0, offset + len(cd), 1)
    return b"".join(local) + cd + z64 + loc + eocd


def build(folder: Path) -> dict[str, Path]:
    """Write every hostile file into ``folder``; return case name -> file."""
    rgba, pal = _png("RGBA"), _png("P")
    files = {"rgba_png": rgba, "palette_png": pal, "cmyk_jpeg": _cmyk_jpeg(),
             "zip_80_png": _zip({f"{'AB'[i % 2]}_species/{i:02d}.png": rgba for i in range(80)}),
             "zip_zeros": _zeros_zip(), "zip_500k_dirs": _dirs_zip()}
    ref = sorted((ROOT.parent / "shared" / "birds" / "cub100").glob("*/*.jpg"))
    if ref:
        files["reference"] = ref[0].read_bytes()
    out = {}
    for name, data in files.items():
        out[name] = folder / name
        out[name].write_bytes(data)
    return out


CASES = [("reference", "decode"), ("rgba_png", "decode"), ("palette_png", "decode"), ("cmyk_jpeg", "decode"),
         ("rgba_png", "decode_x3"), ("palette_png", "decode_x3"), ("zip_80_png", "unpack_decode"),
         ("zip_zeros", "unpack"), ("zip_500k_dirs", "unpack")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", default=str(ROOT), help="checkout whose dltl_core is measured")
    parser.add_argument("--out", default=str(ROOT / "bench" / "uploads_results.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as tmp:
        files = build(Path(tmp))
        sizes = {k: round(p.stat().st_size / 1024) for k, p in files.items()}
        results = {}
        for name, action in CASES:
            if name not in files:
                continue
            env = dict(os.environ, DLTL_CACHE_DIR=str(Path(tmp) / f"cache-{name}-{action}"))
            proc = subprocess.run([sys.executable, "-c", CHILD, args.repo, action, str(files[name])],
                                  capture_output=True, text=True, env=env, timeout=300)
            try:
                results[f"{name}:{action}"] = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                results[f"{name}:{action}"] = {"error": proc.stderr[-500:]}
    commit = subprocess.run(["git", "-C", args.repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    report = {"repo_commit": commit, "load_average": os.getloadavg(), "file_kb": sizes,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cases": results}
    print(json.dumps(report, indent=1))
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
