"""Results & search: runs and trials of the architecture study — size vs accuracy vs training time."""

from pathlib import Path

import pandas as pd
import streamlit as st

import dltl_ui as ui
from dltl_core import runs as R
from dltl_core import search as S
from dltl_core.archs import ARCHS
from dltl_ui import arch_charts as charts

ui.page_setup("Results & search", "🏆")
st.title("Results & search")
ui.explain(
    "Every training run and search trial of the architecture study in one place. Each run keeps its "
    "configuration, seed, library versions, device, per-epoch history, accuracy, parameter count and "
    "wall time, so any point below can be reproduced. Long runs belong on a GPU machine "
    "(`python -m dltl_core search ...`); this page reads their results file or their Optuna study."
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "assets" / "results_cpu.json"
REFERENCE = {"vgg16_bn": 92.64, "resnet18": 93.02, "densenet121": 95.04, "preact_resnet18": 95.11}


@st.cache_data(show_spinner="Reading the results...", ttl=60, max_entries=8)
def load(source: str) -> tuple[dict, list[dict]]:
    """Runs from a results JSON file, or trials from an Optuna storage (SQLite file or URL)."""
    if "://" in source or source.endswith((".db", ".sqlite", ".sqlite3")):
        if "://" not in source and not Path(source).expanduser().is_file():
            raise FileNotFoundError(f"no SQLite file at {source}")  # never create an empty one
        return {"storage": source}, S.study_records(source)
    res = R.load_results(source)
    return res.provenance, res.runs


source = str(SHIPPED)
with st.expander("Load another results file or Optuna study", expanded=False):
    other = st.text_input("Path or storage URL", key="source",
                          placeholder="runs.json, runs.db, or postgresql://user@host/db",
                          help="A JSON results file written by `python -m dltl_core search --results FILE`, "
                               "a SQLite study file, or any Optuna storage URL.").strip()
    if other:
        source = other

prov, records = {}, []
with ui.guard("loading the results"):
    try:
        prov, records = load(source)
    except (FileNotFoundError, ValueError, OSError) as err:
        st.error(f"Could not read {source!r}: {err}. Showing the shipped results instead.")
        source = str(SHIPPED)
        prov, records = load(source)
    except Exception as err:  # noqa: BLE001 - a bad URL or a foreign database: say so, keep the page
        st.error(f"Could not open {source!r} as an Optuna study: {err}. Showing the shipped results instead.")
        source = str(SHIPPED)
        prov, records = load(source)

if not records:
    st.warning("No runs in this source yet: run `python -m dltl_core search --results FILE` first.")
    st.stop()

df = R.runs_table(records)
df["label"] = [f"{ARCHS[a].label if a in ARCHS else a} ×{w} · {k}{'' if t is None or pd.isna(t) else f' #{int(t)}'}"
               for a, w, k, t in zip(df["arch"], df["width"], df["kind"], df["trial"])]

with st.container(border=True):
    devices = ", ".join(sorted(df["device"].dropna().unique())) or "unknown"
    torch_v = sorted({(r.get("versions") or {}).get("torch", "?") for r in records})
    epochs = sorted(df["epochs"].dropna().astype(int).unique())
    n_train = sorted(df["n_train"].dropna().astype(int).unique())
    dates = df["started_at"].dropna()
    st.markdown(
        f"**Source:** `{Path(source).name if '://' not in source else source}` · **{len(df)} runs** "
        f"({(df['kind'] == 'run').sum()} single runs, {(df['kind'] == 'trial').sum()} search trials)  \n"
        f"**Device:** {devices} · **torch** {', '.join(torch_v)} · **epochs** {', '.join(map(str, epochs))} · "
        f"**training images** {', '.join(f'{n:,}' for n in n_train)} · "
        f"**dates** {dates.min()[:10] if len(dates) else '?'} to {dates.max()[:10] if len(dates) else '?'}")
    if source == str(SHIPPED):
        runs_, trials_ = df[df["kind"] == "run"], df[df["kind"] == "trial"]
        widths = ", ".join(f"{w:g}" for w in sorted(runs_["width"].dropna().unique()))
        searched = ", ".join(ARCHS[a].label for a in sorted(trials_["arch"].dropna().unique()) if a in ARCHS)
        threads = ", ".join(str(int(t)) for t in sorted(df["threads"].dropna().unique())) or "?"
        st.caption(
            f"The shipped results come from a small CPU study run with this project's command line (the "
            f"commands are listed below): {runs_['arch'].nunique()} architectures at width {widths}, "
            f"{len(trials_)} search trials on {searched or '-'}, {threads} CPU thread(s). The machine "
            "was shared with other jobs, so times are indicative only; accuracies after a few epochs on "
            "a thousand images are far below the long-training reference. Run the same commands on a GPU "
            "with the full data for real numbers.")
    if prov.get("commands"):
        with st.expander("Commands that produced this file"):
            st.code("\n".join(prov["commands"]), language="bash")

st.subheader("All runs")
f1, f2, f3 = st.columns(3)
arch_opts = sorted(df["arch"].dropna().unique())
pick_arch = f1.multiselect("Architectures", arch_opts, default=arch_opts, key="f_arch",
                           format_func=lambda a: ARCHS[a].label if a in ARCHS else a)
kind_opts = sorted(df["kind"].dropna().unique())
pick_kind = f2.multiselect("Kind", kind_opts, default=kind_opts, key="f_kind")
state_opts = sorted(df["state"].dropna().unique())
pick_state = f3.multiselect("State", state_opts, default=state_opts, key="f_state")
view = df[df["arch"].isin(pick_arch) & df["kind"].isin(pick_kind) & df["state"].isin(pick_state)]
st.dataframe(view.drop(columns=["label"]), hide_index=True, width="stretch",
             column_config={"val_acc": st.column_config.NumberColumn("val acc (%)", format="%.1f"),
                            "best_val_acc": st.column_config.NumberColumn("best val acc (%)", format="%.1f"),
                            "params": st.column_config.NumberColumn(format="localized"),
                            "flops": st.column_config.NumberColumn(format="localized"),
                            "wall_seconds": st.column_config.NumberColumn("wall s", format="%.1f"),
                            "cpu_seconds": st.column_config.NumberColumn("CPU s", format="%.1f")})
st.download_button("Download CSV", view.drop(columns=["label"]).to_csv(index=False).encode(),
                   file_name="dltl_runs.csv", mime="text/csv", key="csv")
if view.empty:
    st.info("No run matches these filters.")
    st.stop()

st.subheader("Size, work and time against accuracy")
done = view[view["state"] == "complete"]
with ui.guard("the Pareto charts"):
    tabs = st.tabs(["vs parameters", "vs training time", "vs FLOPs"])
    time_col = "cpu_seconds" if done["cpu_seconds"].notna().all() and len(done) else "wall_seconds"
    for tab, cost in zip(tabs, ["params", time_col, "flops"]):
        with tab:
            if done[cost].notna().sum() == 0:
                st.info("No completed run has this measure.")
                continue
            ui.show_chart(charts.pareto(done, R.pareto_front(done, cost), cost),
                          caption="What to notice: the dashed line is the Pareto front — runs no other run "
                                  "beats on both axes. Everything below it is dominated: bigger or slower "
                                  "without being more accurate.")

st.subheader("Learning curves")
with ui.guard("the learning curves"):
    best = view.sort_values("val_acc", ascending=False)["run_id"].head(4).tolist()
    options = view["run_id"].tolist()
    labels = dict(zip(view["run_id"], view["label"]))
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect("Runs", options, default=best, format_func=lambda r: labels.get(r, r), key="curves")
    metric = c2.selectbox("Curve", ["val_acc", "train_acc", "val_loss", "train_loss"], key="metric")
    curves = R.curves_table([r for r in records if r.get("run_id") in set(chosen)])
    if curves.empty:
        st.info("Pick runs with a recorded history.")
    else:
        curves["label"] = curves["run_id"].map(labels)
        ui.show_chart(charts.learning_curves(curves, metric),
                      caption="What to notice: curves that are still rising when training stops say the "
                              "budget, not the architecture, limited the accuracy.")

hist = S.search_history([r for r in records if r.get("arch") in pick_arch])
if not hist.empty:
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

st.subheader("Reference: long training (kuangliu/pytorch-cifar)")
with ui.guard("the reference table"):
    ours = df[df["state"] == "complete"].groupby("arch").agg(
        best_val_acc=("val_acc", "max"), runs=("run_id", "count"), epochs=("epochs", "max"),
        train_images=("n_train", "max"))
    ref = pd.DataFrame([{"arch": a, "architecture": i.label, "reference test acc (%)": i.reference_acc}
                        for a, i in ARCHS.items()]).set_index("arch")
    both = ref.join(ours, how="left").rename(columns={"best_val_acc": "our best val acc (%)"})
    st.dataframe(both.reset_index(drop=True), hide_index=True, width="stretch",
                 column_config={"our best val acc (%)": st.column_config.NumberColumn(format="%.1f"),
                                "reference test acc (%)": st.column_config.NumberColumn(format="%.2f")})
    st.caption("kuangliu/pytorch-cifar: width 1, 200 epochs on all 50,000 training images, accuracy on the "
               "10,000 official test images. Ours: validation accuracy on held-out training images, with "
               "the budget in the table — compare the ranking and the trend, not the numbers.")
