"""Results & search: runs and trials of the architecture study — size vs accuracy vs training time."""

import pandas as pd
import streamlit as st

import dltl_ui as ui
from dltl_core import runs as R
from dltl_core.archs import ARCHS
from dltl_core.recipes import RECIPES
from dltl_ui import arch_charts as charts
from dltl_ui import results_view as rv

ui.page_setup("Results & search", "🏆")
st.title("Results & search")
ui.explain(
    "Every training run and search trial of the architecture study in one place. Each run keeps its "
    "configuration, recipe, seed, library versions, device, per-epoch history, accuracy, parameter count "
    "and wall time, so any point below can be reproduced. Long runs belong on a GPU machine "
    "(`python -m dltl_core search --recipe fast ...`, see the README); this page reads their results."
)

view = ui.bind(rv.ResultsView, prefix="rs", columns=2) or rv.ResultsView()
score = view.score
with ui.guard("loading the results"):
    try:
        prov, records = rv.load(view.source)
    except (FileNotFoundError, ValueError, OSError) as err:
        st.error(f"Could not read these results ({err}). Showing the shipped study instead.")
        prov, records = rv.load("cpu")
if not records:
    st.warning("No runs in this source yet: run `python -m dltl_core search --results FILE` first.")
    st.stop()

df = R.runs_table(records)
df["label"] = [f"{ARCHS[a].label if a in ARCHS else a} ×{w} · {k}{'' if t is None or pd.isna(t) else f' #{int(t)}'}"
               for a, w, k, t in zip(df["arch"], df["width"], df["kind"], df["trial"])]
if score != "val_acc" and df[score].isna().all():
    st.info("These runs have no test accuracy: the official CIFAR-10 test images were not in their data "
            "folder (`<data_dir>/test/<class>/*.jpg`). Showing validation accuracy.")
    score = "val_acc"

with st.container(border=True):
    st.markdown(rv.provenance_line(df, records, rv.sources().get(view.source, view.source)))
    for name in sorted(df["recipe"].dropna().unique()):
        if name in RECIPES:
            st.caption(f"Recipe **{name}**: {RECIPES[name].about}")
    if prov.get("note"):
        st.caption(prov["note"])
    if prov.get("commands"):
        with st.expander("Commands that produced these results"):
            st.code("\n".join(prov["commands"]), language="bash")
for line in rv.diverged(df, records):
    st.warning(f"Diverged — {line}. Such a run is reported, never counted as an accuracy.")

st.subheader("All runs")
f1, f2, f3 = st.columns(3)
arch_opts = sorted(df["arch"].dropna().unique())
pick_arch = f1.multiselect("Architectures", arch_opts, default=arch_opts, key="f_arch",
                           format_func=lambda a: ARCHS[a].label if a in ARCHS else a)
kind_opts = sorted(df["kind"].dropna().unique())
pick_kind = f2.multiselect("Kind", kind_opts, default=kind_opts, key="f_kind")
state_opts = sorted(df["state"].dropna().unique())
pick_state = f3.multiselect("State", state_opts, default=state_opts, key="f_state")
view_df = df[df["arch"].isin(pick_arch) & df["kind"].isin(pick_kind) & df["state"].isin(pick_state)]
pct = {c: st.column_config.NumberColumn(f"{c.replace('_', ' ')} (%)", format="%.1f")
       for c in ("val_acc", "best_val_acc", "test_acc", "test_acc_tta")}
st.dataframe(view_df.drop(columns=["label"]), hide_index=True, width="stretch",
             column_config={**pct, "params": st.column_config.NumberColumn(format="localized"),
                            "flops": st.column_config.NumberColumn(format="localized"),
                            "wall_seconds": st.column_config.NumberColumn("wall s", format="%.1f"),
                            "cpu_seconds": st.column_config.NumberColumn("CPU s", format="%.1f")})
st.download_button("Download CSV", view_df.drop(columns=["label"]).to_csv(index=False).encode(),
                   file_name="dltl_runs.csv", mime="text/csv", key="csv")
if view_df.empty:
    st.info("No run matches these filters.")
    st.stop()

st.subheader("Size, work and time against accuracy")
done = view_df[view_df["state"] == "complete"]
with ui.guard("the Pareto charts"):
    tabs = st.tabs(["vs parameters", "vs training time", "vs FLOPs"])
    for tab, cost in zip(tabs, ["params", "wall_seconds", "flops"]):
        with tab:
            if done[cost].notna().sum() == 0 or done[score].notna().sum() == 0:
                st.info("No completed run has this measure.")
                continue
            ui.show_chart(charts.pareto(done, R.pareto_front(done, cost, score), cost, score),
                          caption="What to notice: the dashed line is the Pareto front — runs no other run "
                                  "beats on both axes. Everything below it is dominated: bigger or slower "
                                  "without being more accurate.")

st.subheader("Learning curves and time to accuracy")
with ui.guard("the learning curves"):
    best = view_df.sort_values("val_acc", ascending=False)["run_id"].head(4).tolist()
    labels = dict(zip(view_df["run_id"], view_df["label"]))
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect("Runs", view_df["run_id"].tolist(), default=best,
                            format_func=lambda r: labels.get(r, r), key="curves")
    metric = c2.selectbox("Curve", ["val_acc", "train_acc", "val_loss", "train_loss"], key="metric")
    curves = R.curves_table([r for r in records if r.get("run_id") in set(chosen)])
    if curves.empty:
        st.info("Pick runs with a recorded history.")
    else:
        curves["label"] = curves["run_id"].map(labels)
        per_epoch, per_second = st.tabs(["per epoch", "against training time"])
        with per_epoch:
            ui.show_chart(charts.learning_curves(curves, metric),
                          caption="What to notice: curves still rising when training stops say the budget, "
                                  "not the architecture, limited the accuracy.")
        with per_second:
            ui.show_chart(rv.time_to_accuracy(curves),
                          caption="What to notice: the network that is best after 200 epochs is not always "
                                  "the one that gets to 90% first — the trade-off the assignment asks about.")

hist_records = [r for r in records if r.get("arch") in pick_arch]
if any(r.get("kind") == "trial" for r in hist_records):
    from dltl_core import search as S  # optuna: only for pages that show a search

    hist = S.search_history(hist_records)
    st.subheader("Hyperparameter search")
    with ui.guard("the search history"):
        studies = sorted(hist["study"].dropna().unique())
        study = st.selectbox("Study", studies, key="study") if len(studies) > 1 else studies[0]
        left, right = st.columns([3, 2])
        with left:
            ui.show_chart(charts.search_history(hist[hist["study"] == study]),
                          caption="What to notice: the green line is the best accuracy found so far; pruned "
                                  "trials (orange) were stopped early because they trailed the median.")
        with right:
            imp = S.param_importances(records, study)
            if imp:
                ui.show_chart(charts.importances(imp),
                              caption="What to notice: which hyperparameters explained most of the "
                                      "differences between trials (Optuna's importance evaluator).")
            else:
                st.info("Importances need at least two completed trials.")

st.subheader("Reference: kuangliu/pytorch-cifar beside ours")
with ui.guard("the reference table"):
    st.dataframe(rv.reference_table(df), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.1f") for c in
                                ("our best val (%)", "its test (%)", "its test, TTA (%)", "its time (s)")})
    st.caption("kuangliu/pytorch-cifar: width 1, 200 epochs on all 50,000 training images (the `kuangliu` "
               "recipe), accuracy on the 10,000 official test images. Ours: the budget in the table; test "
               "accuracy only where the official test images were available to the run.")
