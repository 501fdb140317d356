"""Layers: fully connected vs convolutional on the digits; filters, feature maps, nonlinearity."""

import time

import streamlit as st

import dltl_ui as ui
from dltl_core import calibration
from dltl_core.lessons.layers import LINEAR_WEIGHT_DECAY, LayersResult, compare_layers, depth_claims, param_table
from dltl_core.lessons import lesson_jobs as lj
from dltl_ui import job_panel as jobs_ui
from dltl_ui import live_run as tc
from dltl_ui.binder import Binder
from dltl_ui.code_panel import code_panel
from dltl_ui.layers import charts
from dltl_ui.views import LayersView

ui.page_setup(__file__)
st.title("Layers")
ui.explain(
    r"""
Every layer computes $h(Wx + b)$: a linear map, then a **nonlinearity** $h$. A **fully
connected** layer has one weight for every (input, output) pair. A **convolutional** layer
slides one small kernel over the image: the same few weights at every position, so its size
does not depend on the image's. Without $h$, stacked layers collapse into a single linear map.
"""
)

view = Binder(LayersView, prefix="ly")
view.load()

st.subheader("How many weights?")
with ui.controls():
    channels = view.widget("channels")
with ui.guard("the parameter count"):
    table = param_table(out_channels=channels)
    chart = charts.param_dots(table)
    with ui.main_chart():
        ui.show_chart(chart, caption="What to notice: for the same number of outputs, a fully connected layer's "
                                 "weights grow with the square of the image's size; the convolution's depend only "
                                 "on its kernel and channels (a colour image's 3 channels triple them), not on "
                                 "the image size.")
    st.dataframe(table.style.format({"fully connected": "{:,}", "convolutional": "{:,}", "outputs": "{:,}",
                                     "ratio": "{:,.0f}×"}), hide_index=True, width="stretch")

st.subheader("Depth, nonlinearity and the same training budget")
c1, c2, c3 = st.columns(3)
epochs = view.widget("epochs", where=c1)
seed = view.widget("seed", where=c2)
seeds = view.widget("seeds", where=c3)
view.sync()
view.report()


@st.cache_data(max_entries=16, show_spinner="Training the models on the digits…")
def layers_run(epochs: int, seed: int, seeds: int) -> LayersResult:
    """Train in this process; record how long it took against the prediction (calibration)."""
    t0 = time.perf_counter()
    res = compare_layers(epochs=epochs, seed=seed, seeds=seeds)
    calibration.record("layers", lj.predicted_seconds_layers(epochs, seeds) - lj.JOB_START_SECONDS,
                       time.perf_counter() - t0)
    return res


AUTO_SECONDS = 5.0  # up to this, training starts by itself
with ui.guard("the comparison"):
    key = (int(epochs), int(seed), int(seeds))
    res = tc.memo_get("layers", key)
    expected = lj.expected_seconds_layers(key[0], key[2]) if res is None else 0.0
    if res is None and expected - lj.JOB_START_SECONDS <= AUTO_SECONDS:
        res = layers_run(*key)
    if res is None:  # long: a click starts it in a worker process (progress, ETA, Stop)
        clicked = ui.heavy_button(f"Train the models on {key[2]} seed{'s' if key[2] > 1 else ''}", "ly_train",
                                  expected, ask_s=lj.ASK_SECONDS, refuse_s=lj.REFUSE_SECONDS)
        final = jobs_ui.job_panel("layers", lj.layers_job, {"epochs": key[0], "seed": key[1], "seeds": key[2]},
                                  start=clicked, seed=key[1], label="Training")
        if final is not None and final.error:
            st.warning(final.error)
        elif final is not None:
            res = final.result
            calibration.record("layers", lj.predicted_seconds_layers(key[0], key[2]), final.seconds)
            tc.memo_put("layers", key, res)
    if res is None:
        code_panel("layers")  # the code trains what the button would
        st.stop()
    models = res.models
    summary = (models.groupby(["model", "kind"], sort=False)
               .agg(parameters=("parameters", "first"), mean=("val_acc", "mean"), low=("val_acc", "min"),
                    high=("val_acc", "max"), seconds=("seconds", "mean")).reset_index())
    floor = charts.accuracy_floor(summary)
    claims = depth_claims(res)
    ui.show_chart(charts.accuracy_bars(summary, res.seeds),
                  caption=f"The three networks train for {res.epochs} epochs of Adam (cosine decay); the linear map "
                          f"is multinomial logistic regression trained to convergence with full-batch L-BFGS "
                          f"({min(res.lbfgs_iterations)}–{max(res.lbfgs_iterations)} iterations, L2 "
                          f"{LINEAR_WEIGHT_DECAY:g}). Each seed has its own 80/20 split of the digits "
                          f"({res.n_val} validation images). The axis starts at {floor:.0%}.")
    if claims:
        st.markdown("**What the bars show.** " + " ".join(claims))
    st.dataframe(summary.rename(columns={"mean": "mean val acc", "low": "lowest", "high": "highest",
                                         "seconds": "seconds per seed"})
                 .style.format({"parameters": "{:,}", "mean val acc": "{:.1%}", "lowest": "{:.1%}",
                                "highest": "{:.1%}", "seconds per seed": "{:.2f}"}), hide_index=True, width="stretch")
    st.markdown(
        f"**No nonlinearity = one linear map.** Multiplying out the weights of the deep linear network "
        f"($W = W_3 W_2 W_1 \\dots$) gives a single layer with validation accuracy **{res.collapsed_acc:.1%}** — "
        + ("exactly" if res.collapsed_acc == res.linear_acc
           else f"within {abs(res.collapsed_acc - res.linear_acc):.1%} (float32 rounding) of")
        + f" the deep network's **{res.linear_acc:.1%}** (seed {res.seeds[0]}).")

    @st.fragment  # the digit slider reruns only this section
    def inside_cnn(res: LayersResult) -> None:
        st.subheader("Inside the trained CNN")
        digit = view.widget("digit")
        f1, f2 = st.columns([1, 2])
        with f1:
            img = res.images[res.images.digit == digit]
            pic = charts.digit_image(img, digit)
            ui.show_chart(pic, caption="An 8×8 validation image.")
            filt = charts.filter_grid(res.filters)
            ui.show_chart(filt, caption="Look for filters that respond to edges or strokes: a red side beside a blue side "
                                        "(red positive, blue negative weights).")
        with f2:
            maps = res.maps[(res.maps.digit == digit) & (res.maps.layer == 1)]
            fm = charts.feature_maps(maps)
            ui.show_chart(fm, caption="What to notice: each map lights up where its filter finds its pattern in "
                                      "this digit; ReLU zeroes the rest.")
        view.sync(["digit"])
        code_panel("layers")  # in the fragment: the digit slider updates the code too

    inside_cnn(res)
