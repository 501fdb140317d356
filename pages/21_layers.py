"""Layers: fully connected vs convolutional on the digits; filters, feature maps, nonlinearity."""

import altair as alt
import streamlit as st

import dltl_ui as ui
from dltl_core.lessons.layers import LayersResult, compare_layers, param_table
from dltl_core.lessons import jobs as lj
from dltl_ui import jobs as jobs_ui
from dltl_ui import train_charts as tc
from dltl_ui.binder import Binder
from dltl_ui.charts.palette import KIND_COLORS
from dltl_ui.layout import chart_height
from dltl_ui.views import LayersView

ui.page_setup("Layers", "🧱")
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
    long = table.melt(id_vars=["input"], value_vars=["fully connected", "convolutional"], var_name="layer",
                      value_name="parameters")
    # Dots on a log axis (bars cannot start at 0 on a log scale).
    dots = alt.Chart(long).mark_circle(size=260, opacity=1).encode(
        y=alt.Y("input:N", sort=list(table["input"]), title=None),
        x=alt.X("parameters:Q", scale=alt.Scale(type="log"), title="parameters of one layer (log scale)",
                axis=alt.Axis(format="~s")),
        color=alt.Color("layer:N", title=None, legend=alt.Legend(orient="bottom"),
                        scale=KIND_COLORS),
        tooltip=["input", "layer", alt.Tooltip("parameters:Q", format=",")],
    )
    labels = dots.mark_text(dy=-16, fontWeight="bold").encode(text=alt.Text("parameters:Q", format=".3~s"))
    chart = (dots + labels).properties(height=chart_height(260, 300))
    with ui.main_chart():
        ui.show_chart(chart, caption="What to notice: for the same number of outputs, a fully connected layer's "
                                 "weights grow with the image squared; the convolution's stay the same.")
    st.dataframe(table.style.format({"fully connected": "{:,}", "convolutional": "{:,}", "outputs": "{:,}",
                                     "ratio": "{:,.0f}×"}), hide_index=True, width="stretch")

st.subheader("The same training budget")
c1, c2 = st.columns(2)
epochs = view.widget("epochs", where=c1)
seed = view.widget("seed", where=c2)
view.sync()
view.report()


@st.cache_data(max_entries=16, show_spinner="Training four models on the digits…")
def layers_run(epochs: int, seed: int) -> LayersResult:
    return compare_layers(epochs=epochs, seed=seed)


AUTO_SECONDS = 5.0  # up to this, training starts by itself (the default 10 epochs take ~4 s)
with ui.guard("the comparison"):
    expected, key = lj.expected_seconds_layers(int(epochs)), (int(epochs), int(seed))
    res = tc.memo_get("layers", key) or (layers_run(*key) if expected <= AUTO_SECONDS else None)
    if res is None:  # long: a click starts it in a worker process (progress, ETA, Stop)
        clicked = ui.heavy_button("Train the four models", "ly_train", expected, ask_s=lj.ASK_SECONDS,
                                  refuse_s=lj.REFUSE_SECONDS)
        final = jobs_ui.job_panel("layers", lj.layers_job, {"epochs": key[0], "seed": key[1]}, start=clicked,
                                  seed=key[1], label="Training")
        if final is not None and final.error:
            st.warning(final.error)
        elif final is not None:
            res = final.result
            tc.memo_put("layers", key, res)
    if res is None:
        st.stop()
    models = res.models
    acc = alt.Chart(models).mark_bar().encode(
        y=alt.Y("model:N", sort=list(models["model"]), title=None),
        x=alt.X("val_acc:Q", title="validation accuracy", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%", tickCount=5)),
        color=alt.Color("kind:N", title=None, legend=alt.Legend(orient="bottom"),
                        scale=KIND_COLORS),
        tooltip=["model", alt.Tooltip("parameters:Q", format=","), alt.Tooltip("val_acc:Q", format=".3f"),
                 alt.Tooltip("seconds:Q", format=".2f")],
    )
    text = acc.mark_text(align="left", dx=4).encode(text=alt.Text("val_acc:Q", format=".1%"))
    ui.show_chart((acc + text).properties(height=chart_height(220)),
                  caption="What to notice: the CNN matches the MLP with a fraction of the weights; the deep "
                          "network without nonlinearity is no better than one linear layer.")
    st.dataframe(models.style.format({"parameters": "{:,}", "val_acc": "{:.1%}", "val_loss": "{:.3f}",
                                      "seconds": "{:.2f}"}), hide_index=True, width="stretch")
    st.markdown(
        f"**No nonlinearity = one linear map.** Multiplying out the weights of the deep linear network "
        f"($W = W_3 W_2 W_1 \\dots$) gives a single layer with validation accuracy **{res.collapsed_acc:.1%}** — "
        f"exactly the deep network's **{res.linear_acc:.1%}**.")

    @st.fragment  # the digit slider reruns only this section
    def inside_cnn(res: LayersResult) -> None:
        st.subheader("Inside the trained CNN")
        digit = view.widget("digit")
        f1, f2 = st.columns([1, 2])
        with f1:
            img = res.images[res.images.digit == digit]
            pic = alt.Chart(img).mark_rect().encode(
                x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
                color=alt.Color("value:Q", scale=alt.Scale(scheme="greys"), legend=None),
            ).properties(width=200, height=200, title=f"Input: a {digit}")
            ui.show_chart(pic, caption="An 8×8 validation image.")
            filt = alt.Chart(res.filters).mark_rect().encode(
                x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
                color=alt.Color("weight:Q", scale=alt.Scale(scheme="redblue", domainMid=0), legend=None),
                facet=alt.Facet("filter:O", columns=4, title="First-layer 3×3 filters", header=alt.Header(labels=False)),
            ).properties(width=44, height=44)
            ui.show_chart(filt, caption="What to notice: many filters are small edge or stroke detectors "
                                        "(red positive, blue negative weights).")
        with f2:
            maps = res.maps[(res.maps.digit == digit) & (res.maps.layer == 1)]
            fm = alt.Chart(maps).mark_rect().encode(
                x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
                color=alt.Color("value:Q", scale=alt.Scale(scheme="viridis"), legend=None),
                facet=alt.Facet("channel:O", columns=8, title="Feature maps after the first conv + ReLU",
                                header=alt.Header(labels=False)),
            ).properties(width=56, height=56)
            ui.show_chart(fm, caption="What to notice: each map lights up where its filter finds its pattern in "
                                      "this digit; ReLU zeroes the rest.")
        view.sync(["digit"])

    inside_cnn(res)
