"""Mini-batches: batch size vs speed and accuracy; gradient noise; epochs vs steps."""

import pandas as pd
import streamlit as st

import dltl_ui as ui
from dltl_core.lessons import batches_claims as claims
from dltl_core.lessons import batches_jobs as bj
from dltl_core.lessons import lesson_jobs as lj
from dltl_core.lessons.batches import DEFAULT_BATCH_SIZES, batch_size_sweep, epoch_step_counts, gradient_spread
from dltl_ui import job_panel as jobs_ui
from dltl_ui.batches import charts
from dltl_ui.binder import Binder
from dltl_ui.code_panel import code_panel
from dltl_ui.views import BATCHES_N_TRAIN, BatchesView

ui.page_setup(__file__)
st.title("Mini-batches")
ui.explain(
    r"""
Each optimizer **step** uses the gradient of a **mini-batch** of $b$ samples, an estimate of the
full-batch gradient. One **epoch** is one pass over the $n$ training samples: $\lceil n/b\rceil$
steps. Small batches: many cheap, noisy steps per epoch. Large batches: few precise steps, each
using the hardware better. Here on the digits ($n$ = 1,438 training images), measured on this
machine.
"""
)

N_TRAIN = BATCHES_N_TRAIN
view = Binder(BatchesView, prefix="mb")
view.load()
with ui.controls():
    c1, c2, c3 = st.columns([3, 1, 1])
    sizes = view.widget("sizes", where=c1)
    extra = view.widget("extra", where=c2)
    epochs = view.widget("epochs", where=c3)
view.sync()
view.report()
batch_sizes = tuple(sorted(set(sizes) | ({int(extra)} if extra else set())))

st.subheader("Epochs vs steps")
if not batch_sizes:
    st.warning("Choose at least one batch size.")
    code_panel("batches")  # the code stops with the same message
    st.stop()
try:
    counts = epoch_step_counts(N_TRAIN, batch_sizes, epochs)
except ValueError as err:
    st.warning(f"{err}. Pick a size between 1 and {N_TRAIN}.")
    code_panel("batches")
    st.stop()
table_area = st.expander("Epochs vs steps: the table") if ui.is_classroom() else st.container()
table_area.dataframe(counts.rename(columns={"batch_size": "batch size", "steps_per_epoch": "steps per epoch",
                                    "total_steps": "steps in total", "samples_seen": "samples seen",
                                    "last_batch": "size of the last batch"}),
             hide_index=True, width="stretch")
ui.explain(f"Every row sees each of the {N_TRAIN:,} images {epochs} time(s); what differs is how many "
           "weight updates those passes buy.")


# Only light work runs in this (shared) server process: the page's defaults (one result for
# every visitor) and what the calibration says takes at most a few seconds. The cache holds
# only those, so a link cannot fill it with one entry per `extra`/`epochs` value.
@st.cache_data(max_entries=8, show_spinner="Training once per batch size…")
def sweep(batch_sizes: tuple[int, ...], epochs: int) -> pd.DataFrame:
    return batch_size_sweep(batch_sizes, epochs=epochs)


@st.cache_data(max_entries=8, show_spinner="Sampling mini-batch gradients…")
def spread(batch_sizes: tuple[int, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return gradient_spread(batch_sizes)


def is_default(sizes: tuple[int, ...], n_epochs: int | None = None) -> bool:
    """The page's own settings: computed once for everyone, never from a visitor's choice."""
    return sizes == tuple(DEFAULT_BATCH_SIZES) and n_epochs in (None, BatchesView.epochs)


def measured(key: str, label: str, light: bool, compute, job, config, expected_s: float, partial=None):
    """The result: computed here when light, else a job started by a click that says how long
    it takes (progress, Stop, ended when the tab closes). None while it waits or runs."""
    if light:
        return compute()
    if not jobs_ui.is_running(key):
        st.caption("With these settings the measurement takes longer than a page should make everyone "
                   "wait: it starts when you click, in its own process, and you can stop it.")
    clicked = ui.heavy_button(label, f"{key}__go", expected_s, ask_s=lj.ASK_SECONDS, refuse_s=lj.REFUSE_SECONDS,
                              help="Runs in a worker process you can stop; the time is estimated from a "
                                   "short measurement on this machine.")
    final = jobs_ui.job_panel(key, job, config, start=clicked, label=label, on_partial=partial)
    if final is None:
        return None
    if final.error or final.result is None:
        st.warning(final.error or "The measurement was stopped.")
        return None
    return final.result


def show_partial(rows: tuple[dict, ...]) -> None:
    st.dataframe(pd.DataFrame(list(rows))[["batch_size", "seconds_per_epoch", "val_acc"]].rename(
        columns={"batch_size": "batch size", "seconds_per_epoch": "seconds per epoch",
                 "val_acc": "validation accuracy"}), hide_index=True)


def show_sweep(res: pd.DataFrame) -> None:
    seconds, steps, accuracy = charts.sweep_charts(res)
    with ui.main_chart():
        c1, c2, c3 = st.columns(3)
    with c1:
        ui.show_chart(seconds, caption=claims.speed_claim(res))
    with c2:
        ui.show_chart(steps, caption=claims.steps_claim(res, N_TRAIN))
    with c3:
        ui.show_chart(accuracy, caption=claims.accuracy_claim(res, int(epochs)))
    st.caption(f"Measured on {res['device'].iloc[0]}, {epochs} epoch(s) of the default MLP with Adam (lr 0.001).")


def show_spread(points: pd.DataFrame, summary: pd.DataFrame) -> None:
    c1, c2 = st.columns(2)
    with c1:
        ui.show_chart(charts.spread_scatter(points), caption=claims.scatter_claim(points))
    with c2:
        ui.show_chart(charts.noise_lines(summary), caption=claims.noise_claim(summary))


st.subheader("Speed and accuracy, measured")
with ui.guard("the batch-size sweep"):
    light = is_default(batch_sizes, int(epochs))
    expected = 0.0 if light else bj.expected_seconds_sweep(batch_sizes, int(epochs))
    res = measured("mb_sweep", "Measure", light or expected <= bj.LINK_SECONDS,
                   lambda: sweep(batch_sizes, int(epochs)), bj.sweep_job,
                   bj.SweepPlan(batch_sizes, int(epochs)), expected, partial=show_partial)
    if res is not None:
        show_sweep(res)

st.subheader("Gradient noise")
ui.explain("Each dot is one mini-batch gradient, in units of the full-batch gradient $g$ (the black cross "
           "at (1, 0)): how far it points along $g$, and how far it strays across.")
with ui.guard("the gradient spread"):
    usable = tuple(b for b in batch_sizes if b < N_TRAIN) or (32,)
    light = is_default(usable)
    expected = 0.0 if light else bj.expected_seconds_spread(usable)
    out = measured("mb_spread", "Sample the gradients", light or expected <= bj.LINK_SECONDS,
                   lambda: spread(usable), bj.spread_job, usable, expected)
    if out is not None:
        show_spread(*out)

code_panel("batches")
