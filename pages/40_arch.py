"""Architectures: ResNet, PreActResNet, DenseNet and VGG for 32x32 images — blocks, size, FLOPs, speed."""

import pandas as pd
import streamlit as st

import dltl_ui as ui
from dltl_core import arch_claims
from dltl_core import budget as mem
from dltl_core import needs, profile
from dltl_core.lessons import lesson_jobs as lj
from dltl_ui.arch import charts
from dltl_ui import job_panel as jobs_ui
from dltl_ui.arch import view as av
from dltl_ui.binder import Binder
from dltl_ui.code_panel import code_panel
from dltl_ui.views import ArchView

ui.page_setup(__file__)
st.title("Architectures")
ui.explain(
    "Four families of convolutional networks for CIFAR-10's 32x32 images. They differ in their "
    "**block** and in how information **skips** layers. A **width multiplier** scales every layer's "
    "channel count, so size varies continuously: parameters and FLOPs grow roughly as width²."
)

view = Binder(ArchView)
view.load()
with ui.controls():
    c1, c2 = st.columns([3, 2])
    name = view.widget("arch", where=c1)
    width = view.widget("width", where=c2)
view.sync()
view.report()


@st.cache_data(show_spinner=False, max_entries=64)
def summary(name: str, width: float) -> dict:
    model = profile.meta_arch(name, width)  # shapes only: instant
    return {"describe": profile.describe(name), "params": profile.count_params(model),
            "flops": profile.count_flops(model), "layers": profile.layer_table(model)}


@st.cache_data(show_spinner=False, max_entries=64)
def measured(name: str, width: float, cached_only: bool) -> dict:
    return profile.profile_arch(name, width, batch_size=16, batches=1, cached_only=cached_only).as_dict()


@st.cache_data(show_spinner=False, max_entries=16)
def comparison(width: float) -> pd.DataFrame:
    return pd.DataFrame(profile.compare_archs(width))


def fmt(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f}"


top = st.container()  # classroom: the main chart goes here, right under the controls
with ui.guard("the architecture summary"):
    s = summary(name, width)
    d = s["describe"]
    m = st.columns(4)
    m[0].metric("Parameters", fmt(s["params"]))
    m[1].metric("FLOPs / image", fmt(s["flops"]), help="Forward pass, 2 FLOPs per multiply-add "
                "(torch.utils.flop_counter).")
    prof = measured(name, width, cached_only=True)
    slot_train, slot_infer = m[2].empty(), m[3].empty()

    def show_speed(p: dict) -> None:
        tr, inf = p["train_images_per_second"], p["infer_images_per_second"]
        slot_train.metric(f"Training ({p['device']})", f"{charts.speed_text(tr)} img/s" if tr else "—")
        slot_infer.metric(f"Inference ({p['device']})", f"{charts.speed_text(inf)} img/s" if inf else "—")

    show_speed(prof)
    if prof["train_images_per_second"] is None:
        # In a worker process: progress with ETA, a Stop button, and only on a click; only
        # offered when its memory need fits into the server's budget.
        need = needs.arch_measure(name, width, 16)
        clicked = jobs_ui.offer(f"Measuring {d['label']} at width {width:g}", need) and ui.heavy_button(
            "Measure throughput on this machine", "measure", lj.expected_seconds_measure([s["flops"]], names=[name]),
            ask_s=lj.ASK_SECONDS, refuse_s=lj.REFUSE_SECONDS, help="Trains a few batches of random images "
            f"with the core's fit loop (about {mem.gb(need)} of memory); the figure is cached for everyone.")
        final = jobs_ui.job_panel("arch_measure", lj.measure_job, {"names": [name], "width": width,
                                  "batch_size": 16, "batches": 1}, start=clicked, label=f"Timing {d['label']}",
                                  need_mb=need)
        if final is not None and final.error:
            st.warning(final.error)
        elif final is not None:
            if not st.session_state.get(f"measure__recorded_{final.seconds}"):  # once per run, not per rerun
                lj.record_measure(final.result, [s["flops"]], final.seconds)
                st.session_state[f"measure__recorded_{final.seconds}"] = True
            measured.clear()  # the cached-only lookup now finds the figure
            show_speed(final.result[0])

    # Classroom: the description and the layer table fold away, so the chart fits the projector.
    fold = (lambda title: st.expander(title)) if ui.is_classroom() else (lambda title: st.container(border=True))
    with fold(f"{d['label']}: what it is"):
        st.subheader(f"{d['label']} — {d['depth']} weighted layers")
        st.markdown(f"**Block.** {d['block']}\n\n**Connections.** {d['connections']}\n\n"
                    f"**Activation order.** {d['preactivation']}\n\n**What problem it answers.** {d['problem']}")
        ref = f"kuangliu/pytorch-cifar reports **{d['reference_acc']:.2f}%** on CIFAR-10's test set " \
              "(width 1, 200 epochs)." if d["reference_acc"] else ""
        st.caption(f"{d['paper']} {ref} {d['notes']}")
        av.recipe_panel(name, width)

    layers = pd.DataFrame(s["layers"])
    with fold("Layer table"):
        st.subheader("Layer table")  # full width: every column (FLOPs included) fits
        st.dataframe(layers.rename(columns={"name": "block", "output": "output C×H×W"}),
                     hide_index=True, width="stretch", height=36 * (len(layers) + 1) + 4,
                     column_config={"params": st.column_config.NumberColumn(format="localized"),
                                    "flops": st.column_config.NumberColumn("FLOPs", format="localized")})
    with top if ui.is_classroom() else st.container(), ui.main_chart():
        st.subheader("Where the size and the work sit")
        ui.show_chart(charts.layer_bars(layers),
                      caption=arch_claims.layer_claim(layers))

st.subheader(f"All architectures at width {width}")
with ui.guard("the comparison"):
    table = comparison(width)
    speeds = [measured(n, width, cached_only=True) for n in table["name"]]
    # Text, so an unmeasured network reads "not measured" rather than "None".
    table["train img/s"] = [charts.speed_text(p["train_images_per_second"]) for p in speeds]
    table["infer img/s"] = [charts.speed_text(p["infer_images_per_second"]) for p in speeds]
    missing = [n for n, p in zip(table["name"], speeds) if p["train_images_per_second"] is None]
    # Only the networks whose measurement fits into the server's memory are offered.
    cap = mem.job_cap_mb(jobs_ui.get_runner().budget())
    too_big = [n for n in missing if needs.arch_measure(n, width, 16) > cap]
    if too_big:
        labels = ", ".join(table.set_index("name").loc[too_big, "label"])
        st.caption(f"Not measured here: {labels} at width {width:g} need more than the {mem.gb(cap)} "
                   "this server has for a job.")
    missing = [n for n in missing if n not in too_big]
    if missing:
        missing_flops = [float(f) for n, f in zip(table["name"], table["flops"]) if n in missing]
        expected = lj.expected_seconds_measure(missing_flops, names=missing)
        clicked = ui.heavy_button(f"Measure the {len(missing)} unmeasured architecture(s)", "measure_all", expected,
                                  ask_s=lj.ASK_SECONDS, refuse_s=lj.REFUSE_SECONDS,
                                  help="A few training batches each, in a worker process you can stop.")
        final = jobs_ui.job_panel("arch_measure_all", lj.measure_job, {"names": missing, "width": width},
                                  start=clicked, label="Measuring",
                                  need_mb=max(needs.arch_measure(n, width, 16) for n in missing))
        if final is not None and not final.error:
            lj.record_measure(final.result, missing_flops, final.seconds)
            measured.clear()
            st.rerun()
    shown = table.assign(reference_acc=[f"{v:.2f}" if pd.notna(v) else "not reported" for v in table["reference_acc"]])
    st.dataframe(  # text columns: a missing figure reads "not reported" / "not measured", never "None"
        shown.rename(columns={"label": "architecture", "reference_acc": "reference acc. (%)"}).drop(columns="name"),
        hide_index=True, width="stretch",
        column_config={"params": st.column_config.NumberColumn(format="localized"),
                       "flops": st.column_config.NumberColumn("FLOPs", format="localized"),
                       "train img/s": st.column_config.TextColumn(), "infer img/s": st.column_config.TextColumn(),
                       "reference acc. (%)": st.column_config.TextColumn(
                           help="kuangliu/pytorch-cifar's CIFAR-10 test accuracy (width 1, 200 epochs); it "
                                "reports none for the other networks.")})
    ui.show_chart(charts.size_vs_flops(table, name),
                  caption=arch_claims.size_claim(table))

code_panel("arch")  # the plain PyTorch script behind these numbers
