"""The /lr page's sections: regimes (the sweep), schedules and the LR range test.

The schedules and the range test are fragments: their own widgets rerun only their
own section. Every contour map comes from the one contour view (grid cached per surface).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dltl_core import lr_claims
from dltl_core.cache import code_version
from dltl_core.descend import Descent, DescentConfig, descend_many
from dltl_core.lessons.learning_rate import SweepPoint, compare_schedules, log_grid, lr_sweep, regime_examples
from dltl_core.lr_range import RangeTestConfig, RangeTestResult, lr_range_test, range_test_story
from dltl_core.optim import OPTIMIZERS, SCHEDULES
from dltl_core.surfaces import Surface, create_surface
from dltl_ui.binder import Binder
from dltl_ui.charts.contour import contour_view, paths_frame
from dltl_ui.charts.palette import REGIME_COLORS, SCHED_COLORS
from dltl_ui.charts.show import show_chart
from dltl_ui.gd.charts import loss_chart  # the descents' loss chart of /gd
from dltl_ui.layout import chart_height, explain, guard, main_chart
from dltl_ui.lr import charts as lc

SWEEP = (1e-5, 10.0, 25)  # lo, hi, points of the learning-rate grid


@st.cache_data(max_entries=64, show_spinner="Sweeping learning rates…", persist="disk")
def sweep(config: DescentConfig, code: str = "") -> tuple[list[SweepPoint], dict[str, Descent]]:
    """Final loss for every lr on the grid, and one full run per regime.

    ``code`` is ``dltl_core.cache.code_version()``: the result is kept on disk (Streamlit's
    cache folder, shared by every checkout on the machine), and an entry of other code is
    never read back.
    """
    points = lr_sweep(config, log_grid(*SWEEP))
    examples = regime_examples(points)
    runs = descend_many([config.replace(lr=lr) for lr in examples.values()])
    return points, dict(zip(examples, runs))


@st.cache_data(max_entries=64, show_spinner=False)
def schedules(config: DescentConfig, names: tuple[str, ...]) -> list[Descent]:
    return compare_schedules(config, names)


@st.cache_data(max_entries=16, show_spinner="Running the LR range test on the digits…", persist="disk")
def range_test(config: RangeTestConfig, code: str = "") -> RangeTestResult:
    """The range test (kept on disk, keyed by ``code`` as ``sweep`` is)."""
    return lr_range_test(config)


def panel(run: Descent, label: str, color: str, height: int, title: str):
    """One small contour map with one run."""
    surface = create_surface(run.config.surface, run.config.condition)
    # Small panels: divergence is told in the title and the line under the panel, not on the map.
    if run.diverged_at is not None:
        title = f"{title} 💥"
    return contour_view(surface, [run], [label], [color], condition=run.config.condition, n=56,
                        height=height, title=title, legend=False)



def regime_lrs(examples: dict[str, Descent]) -> dict[str, float]:
    """The learning rate of each regime's example run."""
    return {regime: run.config.lr for regime, run in examples.items()}


def regimes_section(base: DescentConfig) -> None:
    """Four runs (too small, good, too large, divergent) and the sweep they come from."""
    with guard("the learning-rate sweep"):
        if st.session_state["lr_steps"] == 0:
            st.info("Zero steps: nothing moves. Choose at least ten steps to compare learning rates.", icon="ℹ️")
        else:
            points, examples = sweep(base, code_version())
            with main_chart():
                cols = st.columns(max(1, len(examples)))
            for col, (regime, run) in zip(cols, examples.items()):
                with col:
                    color = REGIME_COLORS[regime]
                    h = chart_height(300, 280)
                    show_chart(lambda: panel(run, regime, color, h, regime),
                               key=("lr_panel", repr(run.config), regime, color, h))
                    st.markdown(f"<span style='color:{color};font-size:1.2rem'>●</span> **η = {run.config.lr:.4g}**: "
                                f"{run.status}", unsafe_allow_html=True)
            st.caption("Learning rates picked from the sweep below, one per regime, all from the same start "
                       f"(□) with the same number of steps. {lr_claims.regimes_claim(regime_lrs(examples))}")
            df = pd.DataFrame([{"lr": p.lr, "gap": p.gap, "regime": p.regime} for p in points])
            marked = [r.config.lr for r in examples.values()]
            show_chart(lambda: lc.sweep_chart(df, marked=marked), key=("lr_sweep", repr(base), tuple(marked)),
                       caption=f"Final loss above the minimum after {base.steps} steps of "
                               f"{OPTIMIZERS[base.optimizer].label}, for {SWEEP[2]} learning rates from "
                               f"{SWEEP[0]:g} to {SWEEP[1]:g}. {lr_claims.sweep_claim(points)}")


@st.fragment
def schedules_section(lrb: Binder, base: DescentConfig, surface: Surface) -> None:
    """Schedules from torch.optim.lr_scheduler: η per step, loss, one map each (a fragment)."""
    ss = st.session_state
    st.header("Schedules")
    explain("A schedule from `torch.optim.lr_scheduler` multiplies the base η at every step. "
            "Warm-up starts small while the optimizer state settles; decay takes big steps early "
            "and small ones at the end, so the point stops bouncing and settles in the minimum.")
    c = st.columns([1, 1, 3])
    lrb.widget("lr", where=c[0])
    lrb.widget("noise", where=c[1])
    lrb.widget("scheds", where=c[2])
    names = tuple(ss["lr_scheds"])
    lrb.sync(["lr", "noise", "scheds"])
    with guard("the schedules"):
        try:  # the config checks itself
            sconf, problem = base.replace(lr=float(ss["lr_lr"]), noise=float(ss["lr_noise"])), None
        except ValueError as err:
            sconf, problem = None, str(err)
        if problem:
            st.warning(f"Cannot run the schedules: {problem}.", icon="⚠️")
        elif not names:
            st.info("Pick at least one schedule.", icon="ℹ️")
        else:
            runs = schedules(sconf, names)
            labels = [SCHEDULES[n] for n in names]
            colors = [SCHED_COLORS[list(SCHEDULES).index(n)] for n in names]
            curves = pd.DataFrame({"run": np.repeat(labels, base.steps), "step": np.tile(np.arange(base.steps), len(runs)),
                                   "lr": np.concatenate([r.lr for r in runs])})
            left, right = st.columns([1, 1])
            with left:
                show_chart(lambda: lc.lr_chart(curves, labels, colors=colors, height=chart_height(300)),
                           key=("lr_scheds", repr(sconf), names), caption="η at every step, as the torch.optim.lr_scheduler objects set it.")
            with right:
                paths = paths_frame(runs, labels, surface.f_min)
                if len(paths):
                    show_chart(lambda: loss_chart(paths, labels, colors=colors, height=chart_height(300)),
                               key=("lr_sched_loss", repr(sconf), names), caption=lr_claims.schedules_loss_claim(runs, names, labels, surface.f_min))
            cols = st.columns(3)
            for k, (label, color, run) in enumerate(zip(labels, colors, runs)):
                with cols[k % 3]:
                    show_chart(lambda: panel(run, label, color, chart_height(300), label),
                               key=("lr_panel", repr(run.config), label, color, chart_height(300)))
            st.caption(lr_claims.schedules_map_claim(runs, names, labels))


@st.fragment
def range_test_section(lrb: Binder) -> None:
    """The LR range test of a small MLP on the digits (a fragment)."""
    ss = st.session_state
    st.header("LR range test on a real network")
    explain("A small MLP (64 → 128 → 128 → 10) learns scikit-learn's 8×8 handwritten digits for "
            "one pass of mini-batches while η grows exponentially, batch by batch, from 10⁻⁴ to 10 "
            "(`torch.optim.lr_scheduler.ExponentialLR`). Where the loss falls fastest is a good η; "
            "where it shoots up, η is too large.")
    c = st.columns([1, 1, 2])
    lrb.widget("rt_opt", where=c[0])
    lrb.widget("bs", where=c[1], format_func=str)
    lrb.sync(["rt_opt", "bs"])
    with guard("the LR range test"):
        rcfg = RangeTestConfig(optimizer=ss["lr_rt_opt"], batch_size=int(ss["lr_bs"]))
        result = range_test(rcfg, code_version())
        df = pd.DataFrame({"lr": result.lr, "loss": result.loss, "smooth": result.smooth})
        show_chart(lambda: lc.range_test_chart(df, result.suggested), key=("lr_range", repr(rcfg)),
                   caption=f"{len(result.lr)} mini-batches in {result.seconds:.1f} s. Grey: loss of each batch; "
                           f"blue: smoothed. {range_test_story(result)}")
        if result.suggested is None:
            st.info("The loss never clearly fell: try another optimizer or batch size.", icon="ℹ️")
        else:
            st.markdown(f"**Suggested η ≈ {result.suggested:.2g}** for {OPTIMIZERS[ss['lr_rt_opt']].label} "
                        f"with batches of {ss['lr_bs']} (lowest loss at η ≈ {result.lr_at_min:.2g}"
                        + (f"; stopped at batch {result.stopped_at} when the loss blew up)." if result.stopped_at
                           else ")."))


