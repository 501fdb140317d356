"""Results & search: runs and trials of the architecture study — size vs accuracy vs training time."""

import functools

import streamlit as st

import dltl_ui as ui
from dltl_core.recipes import RECIPES
from dltl_core.report import charts as C
from dltl_core.report import findings as F
from dltl_core.report import study as S
from dltl_ui.results import view as rv
from dltl_ui.code_panel import code_panel

ui.page_setup(__file__)
st.title("Results & search")
ui.explain(
    "Every training run and search trial of the architecture study in one place. Each run keeps its "
    "configuration, recipe, seed, library versions, device, per-epoch history, accuracy, parameter count "
    "and wall and CPU time, so any point below can be reproduced. Every sentence under a chart is computed "
    "from the runs on screen. Long runs belong on a GPU machine (`python -m dltl_core search --recipe fast "
    "...`, see the README); this page reads their results."
)

with ui.controls():
    view = ui.bind(rv.ResultsView, prefix="rs", columns=3) or rv.ResultsView()
score = view.score
with ui.guard("loading the results"):
    try:
        prov, records = rv.load(view.source)
    except rv.ResultsUnavailable as err:
        st.error(f"Could not read these results: {err}. Showing the shipped study instead.")
        view = rv.ResultsView(source="cpu", score=view.score, time=view.time, target=view.target, talk=view.talk)
        prov, records = rv.load("cpu")
if not records:
    st.warning("No runs in this source yet: run `python -m dltl_core search --results FILE` first.")
    st.stop()

df = S.runs_frame(records)
if score != "val_acc" and df[score].isna().all():
    st.info("These runs have no test accuracy: the official CIFAR-10 test images were not in their data "
            "folder (`<data_dir>/test/<class>/*.jpg`). Showing validation accuracy.")
    score = "val_acc"
basis = S.time_basis(prov, df, view.time)
# On a projector the main chart comes right under the settings; the provenance and the table follow it.
charts_area = st.container() if ui.is_classroom() else None
facts = S.provenance(prov, records, df, rv.sources().get(view.source, view.source))

with st.container(border=True):
    st.markdown(rv.provenance_markdown(facts, basis.why))
    for name in sorted(df["recipe"].dropna().unique()):
        if name in RECIPES:
            st.caption(f"Recipe **{name}**: {RECIPES[name].about}")
    if facts.note:
        st.caption(facts.note)
    if facts.commands:
        with st.expander("Commands that produced these results"):
            st.code("\n".join(facts.commands), language="bash")
for line in rv.diverged(df, records):
    st.warning(f"Diverged — {line}. Such a run is reported, never counted as an accuracy.")

st.subheader("All runs")
f1, f2, f3 = st.columns(3)
arch_opts = sorted(df["arch"].dropna().unique())
pick_arch = f1.multiselect("Architectures", arch_opts, default=arch_opts, key="f_arch", format_func=S.arch_label)
kind_opts = sorted(df["kind"].dropna().unique())
pick_kind = f2.multiselect("Kind", kind_opts, default=kind_opts, key="f_kind")
state_opts = sorted(df["state"].dropna().unique())
pick_state = f3.multiselect("State", state_opts, default=state_opts, key="f_state")
view_df = df[df["arch"].isin(pick_arch) & df["kind"].isin(pick_kind) & df["state"].isin(pick_state)]
pct = {c: st.column_config.NumberColumn(f"{c.replace('_', ' ')} (%)", format="%.1f")
       for c in ("val_acc", "best_val_acc", "test_acc", "test_acc_tta")}
st.dataframe(rv.runs_display(view_df), hide_index=True, width="stretch",
             column_config={**pct, "params": st.column_config.NumberColumn(format="localized"),
                            "flops": st.column_config.NumberColumn(format="localized"),
                            "wall_seconds": st.column_config.NumberColumn("wall s", format="%.1f"),
                            "cpu_seconds": st.column_config.NumberColumn("CPU s", format="%.1f"),
                            "n_train": st.column_config.NumberColumn(format="localized"),
                            "n_val": st.column_config.NumberColumn(format="localized")})
st.download_button("Download CSV", view_df.drop(columns=["label"]).to_csv(index=False).encode(),
                   file_name="dltl_runs.csv", mime="text/csv", key="csv")
if view_df.empty:
    st.info("No run matches these filters.")
    st.stop()

with charts_area or st.container():
    st.subheader("Size, work and time against accuracy")
with charts_area or st.container(), ui.guard("the Pareto charts"):
    costs = {"vs parameters": "params", f"vs training time ({basis.unit})": basis.column, "vs FLOPs": "flops"}
    with ui.main_chart():
        tabs = st.tabs(list(costs))
    for tab, (name, cost) in zip(tabs, costs.items()):
        with tab:
            done = F.completed(view_df, score).dropna(subset=[cost])
            if done.empty:
                st.info(f"No completed run records {C.AXES.get(cost, cost)}.")
                continue
            height = ui.chart_height(340, classroom=330)
            chart = functools.partial(C.pareto, view_df, cost, score, highlight=view.talk, height=height)
            sentence = F.pareto_sentence(view_df, cost, score) or "Only one completed run: no front to compare."
            extra = f" Time axis: {basis.why}" if cost == basis.column else ""
            big = f" Large dots: {S.arch_label(view.talk)} (*Talk about*)." if view.talk in set(done["arch"]) else ""
            ui.show_chart(chart, caption=f"{sentence}{extra}{big} {F.noise_note(view_df, score)}",
                          key=("pareto", cost, score, view.talk, height, ui.data_key(view_df)))
            rv.chart_downloads(chart, f"pareto_{cost}", key=f"dl_{cost}")
    best = F.most_accurate(view_df, score)
    if best:
        st.markdown(best)

st.subheader("Learning curves and time to accuracy")
with ui.guard("the learning curves"):
    top = S.best_per_arch(view_df, score)["run_id"].head(4).tolist()
    labels = dict(zip(view_df["run_id"], view_df["label"]))
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect("Runs", view_df["run_id"].tolist(), default=top,
                            format_func=lambda r: labels.get(r, r), key="curves")
    metric = c2.selectbox("Curve", list(C.CURVE_TITLES), key="metric", format_func=C.CURVE_TITLES.get)
    curves = S.curves_frame(records, chosen)
    if curves.empty:
        st.info("Pick runs with a recorded history.")
    else:
        target = view.target or F.default_target(curves)
        per_epoch, per_second = st.tabs(["per epoch", f"against training time ({basis.unit})"])
        with per_epoch:
            height = ui.chart_height(340)
            chart = functools.partial(C.learning_curves, curves, metric, height=height)
            ui.show_chart(chart, caption=F.still_improving(curves, metric),
                          key=("curves", metric, height, ui.data_key(curves)))
            rv.chart_downloads(chart, f"curves_{metric}", key="dl_curves")
        with per_second:
            if curves[basis.curve].notna().sum() == 0:
                st.info(f"These runs record no {basis.unit} per epoch.")
            else:
                height = ui.chart_height(340)
                chart = functools.partial(C.time_to_accuracy, curves, basis.curve, basis.unit, target,
                                          highlight=view.talk, height=height)
                ui.show_chart(chart, caption=f"{F.fastest_to(curves, target, basis.unit, basis.curve)} "
                                             f"Dotted line: the target. Time axis: {basis.why}",
                              key=("tta", basis.curve, basis.unit, target, view.talk, height, ui.data_key(curves)))
                rv.chart_downloads(chart, "time_to_accuracy", key="dl_tta")

hist_records = [r for r in records if r.get("arch") in pick_arch]
if any(r.get("kind") == "trial" for r in hist_records):
    from dltl_core import studies as SR  # optuna: only for pages that show a search

    hist = SR.search_history(hist_records)
    st.subheader("Hyperparameter search")
    with ui.guard("the search history"):
        studies = sorted(hist["study"].dropna().unique())
        study = st.selectbox("Study", studies, key="study") if len(studies) > 1 else studies[0]
        left, right = st.columns([3, 2])
        shown = hist[hist["study"] == study]
        with left:
            height = ui.chart_height(300)
            chart = functools.partial(C.search_history, shown, height=height)
            ui.show_chart(chart, caption=F.search_sentence(shown), key=("history", height, ui.data_key(shown)))
            rv.chart_downloads(chart, "search_history", key="dl_hist")
        with right:
            imp = SR.param_importances(records, study)
            if imp:
                chart = functools.partial(C.importances, imp)
                ui.show_chart(chart, caption=F.importance_sentence(imp), key=("importances", ui.data_key(imp)))
                rv.chart_downloads(chart, "importances", key="dl_imp")
            else:
                st.info("Importances need at least two completed trials with their search space.")

st.subheader("Reference: kuangliu/pytorch-cifar beside ours")
with ui.guard("the reference table"):
    st.dataframe(S.reference_display(S.reference_table(view_df)), hide_index=True, width="stretch")
    st.caption("kuangliu/pytorch-cifar: width 1, 200 epochs on all 50,000 training images (the `kuangliu` "
               "recipe), accuracy on the 10,000 official test images. Ours: the budget in the table; test "
               "accuracy only where the official test images were available to the run.")

st.subheader("Your talk, as slides")
with ui.guard("the slide deck"):
    rv.talk_panel(view, view_df, score)

code_panel("results")  # the recipe of the architecture in *Talk about*, as a plain PyTorch script
