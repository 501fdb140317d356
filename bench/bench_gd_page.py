"""Speed of the gradient-descent page: a full rerun with four optimizers x 500 steps.

Prints one JSON object:
Each figure is ``{"wall_ms", "cpu_ms"}`` (median wall time; median CPU time of the process).

- ``page_uncached``: median full rerun through Streamlit's AppTest with ``st.cache_data``
  cleared before each run (what a visitor waits for after changing a setting); target < 300 ms.
- ``page_cached``: median rerun with the results cached (scrubbing the step slider).
- ``descent``: ``dltl_core.descend.descend_many`` on the page's four configs.
- ``plain_torch``: the textbook loop (zero_grad, forward, backward, step, record) for the
  same four optimizers, one after the other, as one would write it in a notebook.
- ``charts``: building the two Altair charts and converting them as ``st.altair_chart`` does.

Usage: ``python bench/bench_gd_page.py [--repeats 7] [--steps 500]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DLTL_DEVICE", "cpu")

import streamlit as st  # noqa: E402
import torch  # noqa: E402
from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from dltl_core.descend import DescentConfig, descend_many  # noqa: E402
from dltl_core.optim import create_optimizer  # noqa: E402
from dltl_core.surfaces import create_surface  # noqa: E402
from dltl_ui.gd import charts as gc  # noqa: E402

# The page's default four optimizers (pages/10_gd.py DEFAULTS) on its default surface.
SLOTS = [("sgd", 0.001, {}), ("momentum", 0.001, {"momentum": 0.9}), ("rmsprop", 0.01, {}), ("adam", 0.05, {})]


def median_ms(fn, repeats: int) -> dict[str, float]:
    """Median wall time and median CPU time of this process (all threads), in ms.

    On a shared machine the wall time includes waiting for a core; the CPU time is close
    to what an idle laptop core would need.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    return {"wall_ms": round(statistics.median(wall), 1), "cpu_ms": round(statistics.median(cpu), 1)}


def plain_torch(steps: int) -> list[torch.Tensor]:
    """The notebook way: one optimizer at a time, a fresh graph every step, points recorded as clones."""
    f = create_surface("rosenbrock")
    out = []
    for name, lr, hp in SLOTS:
        p = torch.tensor(f.start, requires_grad=True)
        opt = create_optimizer(name, [p], lr, **hp)
        points = [p.detach().clone()]
        for _ in range(steps):
            opt.zero_grad()
            f(p).backward()
            opt.step()
            points.append(p.detach().clone())
        out.append(torch.stack(points))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=500)
    args = ap.parse_args()
    steps, n = args.steps, args.repeats

    configs = [DescentConfig(surface="rosenbrock", optimizer=o, lr=lr, hyper=hp, steps=steps) for o, lr, hp in SLOTS]
    descend_many(configs)  # warm-up
    plain_torch(10)
    descent_ms = median_ms(lambda: descend_many(configs), n)
    plain_ms = median_ms(lambda: plain_torch(steps), n)

    surface = create_surface("rosenbrock")
    runs = descend_many(configs)
    labels = [f"{i + 1}. {o}" for i, (o, _, _) in enumerate(SLOTS)]
    xs, ys, z = surface.grid(72)
    grid = gc.surface_frame(xs, ys, z, surface.f_min, surface.log_scale)

    def charts() -> None:
        paths = gc.paths_frame(runs, labels, surface.f_min)
        _convert_altair_to_vega_lite_spec(gc.contour_chart(grid, paths, labels, xlim=surface.xlim, ylim=surface.ylim,
                                                            minima=surface.minima, at=steps))
        _convert_altair_to_vega_lite_spec(gc.loss_chart(paths, labels, at=steps))

    charts()
    charts_ms = median_ms(charts, n)

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/10_gd.py")
    at.query_params["steps"] = str(steps)
    at.run()  # first run: imports, surface grid, ...
    assert not at.exception and not at.error, (at.exception, at.error)
    assert at.slider(key="steps").value == steps and len(at.get("vega_lite_chart")) == 2

    def uncached() -> None:
        st.cache_data.clear()
        at.run()

    uncached()
    page_uncached = median_ms(uncached, n)
    at.run()
    page_cached = median_ms(at.run, n)
    assert not at.exception and not at.error

    print(json.dumps({
        "what": f"gradient-descent page, 4 optimizers x {steps} steps (Rosenbrock), median of {n}",
        "page_uncached": page_uncached,
        "page_cached": page_cached,
        "target_ms": 300,
        "descent": descent_ms,
        "plain_torch": plain_ms,
        "descent_speedup_vs_plain_torch": round(plain_ms["cpu_ms"] / descent_ms["cpu_ms"], 2),
        "charts": charts_ms,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
