"""Classroom soak: many visitors at once doing the heaviest things allowed, on a 2.7 GB budget.

Starts a real ``streamlit run streamlit_app.py`` on 127.0.0.1 with ``DLTL_MEMORY_MB=2700`` (a
Community Cloud machine's limit), then drives several visitors at once in headless Chromium
(one browser context each: its own cookies, so its own visitor): fine-tuning and training from
scratch on /transfer (and a second tab of the same visitor starting another job), /arch
Measure of DenseNet-121 at width 2, /batches and /overfit links with long runs, hostile photo
uploads (a 150 KB 6300x6300 RGBA PNG, a palette PNG, a 36 MP CMYK JPEG) and a zip of 80 such
PNGs, and links that would extract hundreds of photos (k=10&cap=35, k=50&cap=200).

Meanwhile it samples, every 0.2 s, the server's resident memory and every job process's
(the server's descendants) private memory (``RssAnon + RssShmem``: what a job adds; its shared
libraries are the server's pages) and resident memory. It reports the peak of
server RSS + jobs' private memory against the limit, the conservative peak of server RSS +
jobs' RSS, what each visitor saw (refusals, "already running", errors), and stops by itself
(every visitor has a deadline; the whole run ends within ``--seconds``, default 300).

    flock /work/cpu-bench.lock .venv/bin/python bench/bench_soak.py [--seconds 300] [--limit-mb 2700]

Prints one JSON object and writes ``bench/soak_results.json``. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dltl_core import budget as mem  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

OUT = Path(__file__).with_name("soak_results.json")
BIRDS = os.environ.get("DLTL_BIRDS_DIR", str(ROOT.parent / "shared" / "birds" / "cub100"))


# ----------------------------------------------------------------------------- hostile files

def hostile_files() -> dict[str, tuple[str, bytes]]:
    """(mime, bytes) of the uploads the issue measured."""
    from PIL import Image

    def save(img: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        return buf.getvalue()

    rgba = save(Image.new("RGBA", (6300, 6300), (40, 120, 200, 128)), "PNG", optimize=True)
    palette = save(Image.new("P", (6300, 6300), 3), "PNG", optimize=True)
    cmyk = save(Image.new("CMYK", (7000, 5200), (10, 40, 80, 5)), "JPEG", quality=30)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(80):
            zf.writestr(f"birds/Species_{i % 2}/p{i}.png", rgba)
    return {"rgba.png": ("image/png", rgba), "palette.png": ("image/png", palette),
            "cmyk.jpg": ("image/jpeg", cmyk), "birds.zip": ("application/zip", zbuf.getvalue())}


# ----------------------------------------------------------------------------- sampling

def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc/*/stat parent ids)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                parent[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


class Sampler(threading.Thread):
    """Samples the server's and its job processes' memory until stopped."""

    def __init__(self, pid: int, limit: float, period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.limit, self.period = pid, limit, period
        self.stop = threading.Event()
        self.samples: list[dict] = []

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.is_set():
            server = mem.process_memory(self.pid)
            kids = [(c, mem.process_memory(c)) for c in _children(self.pid)]
            jobs = [m for _, m in kids if m.rss > 150]  # job processes (the resource tracker is ~20 MB)
            self.samples.append({"t": round(time.monotonic() - t0, 1), "server_rss": server.rss,
                                 "server_peak_rss": server.peak_rss, "jobs": len(jobs),
                                 "jobs_private": sum(m.private for m in jobs), "jobs_rss": sum(m.rss for m in jobs)})
            self.stop.wait(self.period)

    def report(self) -> dict:
        if not self.samples:
            return {}
        total = max(self.samples, key=lambda s: s["server_rss"] + s["jobs_private"])
        conservative = max(s["server_rss"] + s["jobs_rss"] for s in self.samples)
        return {"samples": len(self.samples),
                "peak_server_rss_mb": round(max(s["server_rss"] for s in self.samples)),
                "peak_server_vmhwm_mb": round(max(s["server_peak_rss"] for s in self.samples)),
                "peak_jobs_private_mb": round(max(s["jobs_private"] for s in self.samples)),
                "peak_jobs_rss_mb": round(max(s["jobs_rss"] for s in self.samples)),
                "most_jobs_at_once": max(s["jobs"] for s in self.samples),
                "peak_total_mb": round(total["server_rss"] + total["jobs_private"]),
                "peak_total_at": total,
                "peak_total_conservative_mb": round(conservative),
                "limit_mb": self.limit,
                "under_limit": total["server_rss"] + total["jobs_private"] <= self.limit}


# ----------------------------------------------------------------------------- visitors

async def settle(page, timeout: float = 120) -> None:
    """Wait until the script stopped running and the page stopped changing."""
    await page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    end, quiet, last = time.monotonic() + timeout, 0, None
    while time.monotonic() < end and quiet < 3:
        await page.wait_for_timeout(700)
        state = await page.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")
        shape = await page.locator('[data-testid="stElementContainer"]').count()
        quiet = quiet + 1 if (state != "running" and shape == last) else 0
        last = shape


async def texts(page) -> list[str]:
    """Warnings, infos and errors shown now (what the visitor reads)."""
    sel = ('[data-testid="stAlertContentWarning"], [data-testid="stAlertContentInfo"], '
           '[data-testid="stAlertContentError"], [data-testid="stException"]')
    return [t.strip()[:300] for t in await page.locator(sel).all_inner_texts()]


async def click(page, name: str) -> bool:
    """Click the first enabled button whose label matches ``name`` (ticking an "ask" box first)."""
    box = page.get_by_text(re.compile(r"^Yes, this takes about"))
    if await box.count():
        await box.first.click()
        await settle(page, 30)
    button = page.get_by_role("button", name=re.compile(name))
    if not await button.count() or not await button.first.is_enabled():
        return False
    await button.first.click()
    return True


async def upload(page, label: str, name: str, mime: str, blob: bytes) -> None:
    box = page.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    await box.locator('input[type="file"]').set_input_files(files=[{"name": name, "mimeType": mime, "buffer": blob}])


async def visitor(browser, base: str, name: str, steps, deadline: float, log: dict) -> None:
    """One visitor (own browser context = own cookies): ``steps(page, ctx)`` until ``deadline``."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    seen: list[str] = []
    log[name] = {"seen": seen, "error": None}
    try:
        await asyncio.wait_for(steps(page, ctx, base, seen), timeout=max(5.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        seen.append("(deadline)")
    except Exception as err:  # noqa: BLE001 - a bench reports, it does not stop the other visitors
        log[name]["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    finally:
        try:
            seen += await texts(page)
        except Exception:  # noqa: BLE001
            pass
        await ctx.close()


async def wait_job(page, seconds: float) -> None:
    """Watch a job's progress for up to ``seconds`` (the page keeps its heartbeat going)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await page.wait_for_timeout(2000)
        if not await page.locator('[data-testid="stProgress"]').count():
            await page.wait_for_timeout(2000)
            if not await page.locator('[data-testid="stProgress"]').count():
                return


def scenarios(files: dict[str, tuple[str, bytes]]):
    async def finetune(page, ctx, base, seen):
        await page.goto(f"{base}/transfer")
        await settle(page, 240)
        seen.append(f"fine-tune clicked: {await click(page, '^▶ Fine-tune')}")
        await settle(page, 30)
        # The same visitor, a second tab: another job must be refused with "already running".
        tab = await ctx.new_page()
        await tab.goto(f"{base}/transfer")
        await settle(tab, 240)
        seen.append(f"scratch in 2nd tab clicked: {await click(tab, '^▶ Train from scratch')}")
        await settle(tab, 30)
        seen.extend("2nd tab: " + t for t in await texts(tab))
        await wait_job(page, 200)

    async def scratch(page, ctx, base, seen):
        await page.goto(f"{base}/transfer")
        await settle(page, 240)
        seen.append(f"scratch clicked: {await click(page, '^▶ Train from scratch')}")
        await settle(page, 30)
        seen.extend(await texts(page))
        await wait_job(page, 200)

    async def arch(page, ctx, base, seen):
        await page.goto(f"{base}/arch?arch=densenet121&width=2")
        await settle(page, 120)
        seen.append(f"measure clicked: {await click(page, '^Measure throughput')}")
        await settle(page, 30)
        await wait_job(page, 120)
        await page.goto(f"{base}/arch?arch=resnet18&width=1")
        await settle(page, 120)
        seen.append(f"measure r18 clicked: {await click(page, '^Measure throughput')}")
        await wait_job(page, 120)

    async def links(page, ctx, base, seen):
        sizes = ",".join(str(b) for b in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1438))
        for path in (f"/batches?sizes={sizes}&epochs=30", f"/batches?sizes={sizes}&extra=7&epochs=30",
                     "/transfer?k=10&cap=35", "/transfer?k=50&cap=200",
                     "/overfit?data=digits&train_size=1438&depth=5&width=512&epochs=500"):
            await page.goto(base + path)
            await settle(page, 120)
            seen.append(f"{path[:40]}: " + " | ".join(t[:80] for t in await texts(page)))
        seen.append(f"overfit long run clicked: {await click(page, '^Train|^▶')}")
        await wait_job(page, 60)

    async def photos(page, ctx, base, seen):
        await page.goto(f"{base}/transfer")
        await settle(page, 240)
        for name in ("rgba.png", "palette.png", "cmyk.jpg"):
            mime, blob = files[name]
            await upload(page, "Upload a bird photo", name, mime, blob)
            await settle(page, 90)
            seen.append(f"{name}: " + " | ".join(t[:100] for t in await texts(page)))

    async def zipped(page, ctx, base, seen):
        await page.goto(f"{base}/transfer")
        await settle(page, 240)
        await page.get_by_text("Upload a zip").first.click()
        await settle(page, 60)
        mime, blob = files["birds.zip"]
        await upload(page, "zip", "birds.zip", mime, blob)
        await settle(page, 120)
        seen.append("zip: " + " | ".join(t[:100] for t in await texts(page)))

    return {"finetune+2nd-tab": finetune, "scratch": scratch, "arch-densenet-w2": arch, "links": links,
            "hostile-photos": photos, "hostile-zip": zipped}


async def drive(base: str, seconds: float, log: dict, skip: set[str]) -> None:
    from playwright.async_api import async_playwright

    files = hostile_files()
    deadline = time.monotonic() + seconds
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            await asyncio.gather(*(visitor(browser, base, name, steps, deadline, log)
                                   for name, steps in scenarios(files).items() if name not in skip))
        finally:
            await browser.close()


# ----------------------------------------------------------------------------- the server

def start_server(limit_mb: float, cache: str) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    env = {**os.environ, "DLTL_MEMORY_MB": str(limit_mb), "DLTL_BIRDS_DIR": BIRDS, "DLTL_CACHE_DIR": cache,
           "DLTL_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
    log = Path(tempfile.mkstemp(prefix="dltl-soak-", suffix=".log")[1])
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 90
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, base, log
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    """End the server and its job processes (its own process group)."""
    try:
        os.killpg(proc.pid, 15)
        proc.wait(10)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass


def _traceback_errors(log: str) -> list[str]:
    """The exception line that ends each traceback in the server's log (what actually failed)."""
    out, lines = [], log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                j += 1
            out.append(lines[j][:300] if j < len(lines) else "(cut off)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="how long the visitors act (<= 330)")
    ap.add_argument("--limit-mb", type=float, default=2700.0, help="DLTL_MEMORY_MB given to the server")
    ap.add_argument("--cache", default=os.environ.get("DLTL_CACHE_DIR", str(Path.home() / ".cache" / "dltl")),
                    help="the server's cache (a warm one holds the default photos' features)")
    ap.add_argument("--skip", default="", help="comma-separated visitors to leave out, e.g. hostile-photos")
    args = ap.parse_args()
    seconds = min(max(args.seconds, 30.0), 330.0)  # bounded: the whole bench stays under 6 min
    # A SIGTERM (e.g. from ``timeout``) unwinds through the ``finally`` below: no server is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    proc, base, log_path = start_server(args.limit_mb, args.cache)
    sampler = Sampler(proc.pid, args.limit_mb)
    sampler.start()
    visitors: dict = {}
    try:
        asyncio.run(drive(base, seconds, visitors, set(filter(None, args.skip.split(",")))))
    finally:
        sampler.stop.set()
        sampler.join(5)
        stop_server(proc)
    server_log = log_path.read_text(errors="replace")
    log_path.unlink()
    out = {"bench": "soak", "limit_mb": args.limit_mb, "reserve_mb": mem.reserve_mb(),
           "seconds": round(time.monotonic() - t0, 1), "load_avg": os.getloadavg(),
           "cores": os.cpu_count(), "memory": sampler.report(), "visitors": visitors,
           "server_tracebacks": server_log.count("Traceback"),
           "first_traceback": server_log[server_log.find("Traceback"):][:2500] if "Traceback" in server_log else None,
           "traceback_errors": _traceback_errors(server_log),
           "server_killed_jobs": len(re.findall(r"out of memory", server_log)),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "how": "bench/bench_soak.py: real server, DLTL_MEMORY_MB, 6 visitors in headless Chromium; server RSS "
                  "+ job processes' private memory sampled every 0.2 s"}
    OUT.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "visitors"}, default=str))


if __name__ == "__main__":
    main()
