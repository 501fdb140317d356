"""Transfer learning: a pretrained backbone on bird species, frozen vs fine-tuned vs from scratch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

import dltl_ui as ui
from dltl_core import birds
from dltl_core.transfer import TransferConfig, TransferResult
from dltl_ui import data_source
from dltl_ui.code_panel import code_panel
from dltl_ui.transfer import regime_view as regime
from dltl_ui.transfer import train as tt
from dltl_ui.transfer import views as tv
from dltl_ui.transfer.views import skipped_note  # noqa: F401 - used by the data-source section

ui.page_setup(__file__)
st.title("Transfer learning on birds")
ui.explain(
    "A network trained on ImageNet's 1.2 million photos has learned edges, textures, feathers and "
    "beaks. **Transfer learning** keeps that network frozen as a *feature extractor* and trains only "
    "a small linear head on top: $\\hat y = \\mathrm{softmax}(W\\,\\phi(x) + b)$, where $\\phi$ is "
    "the pretrained backbone. That takes seconds (the times are measured below). "
    "**Fine-tuning** trains the last stages of a copy of the network too (the early stages stay "
    "frozen and are computed once; the whole network can train end to end, slowly); **from scratch** "
    "trains the same architecture from random weights."
)
# Classroom mode: the learning curves go to the top of the page, so the projector shows them
# whole; the data source, settings and summary follow below.
top = st.container() if ui.is_classroom() else None
url = ui.UrlState()
view = tt.view_binder(url)  # the page's settings: URL -> session state, once
SOURCES = ("Folder", "Download CUB-200-2011", "Upload a zip")


# ----------------------------------------------------------------------------- data source
st.subheader("1 · Bird photos")
root = data_source.choose_bird_folder(url)  # folder inside the data roots, CUB download or own zip
source = st.session_state[data_source.SOURCE_KEY]

if root is None:
    st.info("**No bird photos yet.** Point the *Folder* option at a folder with one sub-folder per "
            "species (or set `DLTL_BIRDS_DIR` before starting the app), download CUB-200-2011, or "
            "upload a zip of species folders.")
    url.sync(source=source)
    url.report()
    st.stop()

try:
    available, empty = tt.species_in(root)
except (FileNotFoundError, OSError) as err:
    st.warning(f"Cannot read the folder: {err}")
    st.stop()
if empty:
    st.warning(f"{len(empty)} species folder(s) have no photos and are left out: {', '.join(empty[:8])}"
               + ("…" if len(empty) > 8 else ""))
if len(available) < 2:
    st.warning(f"This folder has {len(available)} species with photos; a classifier needs at least 2. "
               "Use a folder with one sub-folder of photos per species.")
    st.stop()

# ----------------------------------------------------------------------------- species and backbone
by_count = False  # whether the count slider is drawn (and so kept in the link)
with ui.controls():  # classroom mode: a closed expander, so the results stay on screen
    c1, c2, c3 = st.columns([2, 2, 2])
    with c1:
        pick_by = st.radio("Choose species by", ["Count", "Name"], horizontal=True, key="tl_pick_by")
        if pick_by == "Count":
            k_lo, k_hi = view.settings["k"].widget_range
            hi = min(len(available), int(k_hi))
            by_count = hi > k_lo
            k = view.widget("k", hi=hi) if by_count else hi
            if not by_count:
                st.markdown("Both species of the folder.")
            chosen = available[:k]
        else:
            chosen = st.multiselect("Species", available, default=available[: min(5, len(available))],
                                    format_func=birds.pretty_name, key="tl_names")
    with c2:
        cap = view.widget("max_per_species")
        seed = view.widget("seed")
    with c3:
        name = tt.backbone_picker(url)
url.sync(source=source, bb=name)
view.sync(["max_per_species", "seed"] + (["k"] if by_count else []))
url.report()

if len(chosen) < 2:
    st.warning("Pick at least 2 species: a classifier needs two classes to tell apart.")
    st.stop()

species_arg = str(len(chosen)) if pick_by == "Count" else ",".join(chosen)
base = TransferConfig(data=str(Path(root).expanduser().resolve()), species=species_arg, max_per_species=int(cap),
                      seed=int(seed), backbone=name, mode="linear")

# ----------------------------------------------------------------------------- features + linear head
backbone = None
with ui.guard("the pretrained backbone"):
    backbone = tt.get_backbone(name)
if backbone is None:
    st.stop()
fs = None
with ui.guard("the feature extraction"):
    try:
        fs = tt.features_step(base, backbone)  # light work at once; heavy work only after a click
    except (ValueError, FileNotFoundError) as err:  # bad folder or species: a message, not an error box
        st.warning(str(err))
if fs is None:
    st.stop()

st.subheader("2 · Train and compare")
fmap_method = st.radio("Feature map", ["PCA", "t-SNE"], horizontal=True, key="tl_fmap",
                       help="PCA is instant; t-SNE separates clusters better but takes a few seconds.")
lin_cfg = replace(base, feature_map="tsne" if fmap_method == "t-SNE" else "pca")
linear = None
if len(fs.files) == 0:
    st.warning("None of the chosen photos could be read (see the skipped files). Choose other species "
               "or another folder.")
    tv.skipped_note(fs.skipped)
else:
    with ui.guard("the linear head"):
        try:
            linear, fmap_method = tt.linear_step(lin_cfg, len(fs.files))
        except (ValueError, FileNotFoundError) as err:
            st.warning(str(err))
if linear is None:
    st.stop()
tv.skipped_note(linear.skipped)

# ----------------------------------------------------------------------------- fine-tuning, scratch (jobs)
cfgs = tt.image_settings(view, base, backbone, fs, lin_cfg.feature_map)
results: dict[str, TransferResult] = {"linear": linear}
stopped: dict[str, list[dict]] = {}
with ui.guard("fine-tuning and from scratch"):
    done, stopped = tt.image_modes(cfgs, fs)
    results.update(done)

# ----------------------------------------------------------------------------- summary + results
tv.summary(results, stopped)
with ui.guard("the model download"):
    tv.download_model(results, {"linear": lin_cfg, **cfgs}, backbone)
tv.result_tabs(results, stopped, backbone, fmap_method, top=top)
with ui.guard("the measured regimes"):
    regime.section()  # when fine-tuning pays: the shipped measurement, its caption computed from it

code_panel("transfer")  # the plain PyTorch script for this link's species, photos and seed
