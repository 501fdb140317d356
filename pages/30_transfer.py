"""Transfer learning: a pretrained backbone on bird species, frozen vs fine-tuned vs from scratch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

import dltl_ui as ui
from dltl_core import backbones as bk
from dltl_core import birds
from dltl_core.images import ImageError, open_rgb
from dltl_core.transfer import TransferConfig, TransferResult, ensure_features, predict_photo, run_transfer
from dltl_ui import transfer_charts as tc

ui.page_setup("Transfer learning", "🐦")
st.title("Transfer learning on birds")
ui.explain(
    "A network trained on ImageNet's 1.2 million photos has learned edges, textures, feathers and "
    "beaks. **Transfer learning** keeps that network frozen as a *feature extractor* and trains only "
    "a small linear head on top: $\\hat y = \\mathrm{softmax}(W\\,\\phi(x) + b)$, where $\\phi$ is "
    "the pretrained backbone. With 30 photos per species that takes about a second. "
    "**Fine-tuning** trains a copy of the whole network (the backbone with a smaller learning "
    "rate); **from scratch** trains the same architecture from random weights."
)
url = ui.UrlState()
SOURCES = ("Folder", "Download CUB-200-2011", "Upload a zip")


class _NotCached(Exception):
    """Raised by ``_image_result`` on a cache miss, so that nothing is cached."""


@st.cache_resource(show_spinner="Loading the pretrained backbone…", max_entries=2)
def get_backbone(name: str) -> bk.Backbone:
    # Shared by every visitor: eval mode, never trained (fine-tuning trains a copy).
    return bk.create_backbone(name)


@st.cache_data(show_spinner=False, ttl=300)
def backbone_rows() -> list[dict]:
    return bk.list_backbones()


@st.cache_data(show_spinner=False, ttl=30)
def species_in(root: str) -> tuple[list[str], list[str]]:
    return birds.species_with_photos(root)


@st.cache_data(show_spinner="Training the linear head on the cached features…", max_entries=32)
def linear_result(config: TransferConfig) -> TransferResult:
    return run_transfer(config, backbone=get_backbone(config.backbone))


@st.cache_data(show_spinner=False, max_entries=4)
def _image_result(config: TransferConfig, _computed: TransferResult | None = None) -> TransferResult:
    # Keyed by config only (``_computed`` is not hashed): the run itself happens outside,
    # with live progress, and is stored here once it finished.
    if _computed is None:
        raise _NotCached
    return _computed


def cached_image_result(config: TransferConfig) -> TransferResult | None:
    try:
        return _image_result(config)
    except _NotCached:
        return None


def train_image_mode(config: TransferConfig) -> TransferResult:
    """Fine-tune or train from scratch with a progress bar and a live learning curve."""
    label = tc.MODE_LABELS[config.mode]
    bar = st.progress(0.0, text=f"{label}: preparing the photos…")
    live = st.empty()
    rows: list[dict] = []

    def on_epoch(row: dict) -> None:
        rows.append(row)
        live.altair_chart(tc.curves_by_epoch(tc.curves_frame({config.mode: rows})), theme=None)

    result = run_transfer(config, backbone=get_backbone(config.backbone),
                          progress=lambda f, msg: bar.progress(min(max(f, 0.0), 1.0), text=msg),
                          on_epoch=on_epoch)
    bar.empty()
    live.empty()
    if not result.interrupted:
        _image_result(config, _computed=result)
    return result


def skipped_note(skipped: list[tuple[str, str]]) -> None:
    if skipped:
        with st.expander(f"⚠️ {len(skipped)} file(s) skipped"):
            st.dataframe(pd.DataFrame([{"file": Path(f).name, "folder": Path(f).parent.name, "reason": r}
                                       for f, r in skipped]), hide_index=True, width="stretch")


# ----------------------------------------------------------------------------- data source
st.subheader("1 · Bird photos")
default_dir = birds.default_birds_dir()
source = st.radio("Photos from", SOURCES, index=SOURCES.index(url.choice("source", SOURCES[0], SOURCES)),
                  horizontal=True, key="tl_source")
root: str | None = None
if source == "Folder":
    folder = st.text_input("Folder with one sub-folder per species (ImageFolder layout)",
                           value=str(default_dir or ""), key="tl_folder",
                           placeholder="/path/to/birds  (Species_A/*.jpg, Species_B/*.jpg, …)")
    if folder.strip():
        if Path(folder.strip()).expanduser().is_dir():
            root = folder.strip()
        else:
            st.warning(f"`{folder}` is not a folder on this machine. Check the path, or download "
                       "CUB-200-2011 / upload a zip instead.")
elif source == "Download CUB-200-2011":
    if birds.is_downloaded():
        root = str(birds.cub.cub_root())
        st.success("CUB-200-2011 is in the cache (200 species, 11,788 photos).")
    else:
        st.markdown(f"The official archive: {birds.CUB_SIZE / 1e9:.2f} GB, checked against its md5 "
                    "after download, then extracted into the cache folder.")
        if st.button("Download CUB-200-2011", key="tl_download"):
            bar = st.progress(0.0, text="Connecting…")
            try:
                root = str(birds.download_cub(progress=lambda done, total: bar.progress(
                    done / total, text=f"Downloading: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB")))
                st.success("Downloaded and extracted.")
            except RuntimeError as err:
                st.warning(str(err))
            bar.empty()
else:
    upload = st.file_uploader("A zip of species folders (Species_A/photo.jpg, …), at most 200 MB",
                              type=["zip"], key="tl_zip")
    if upload is not None:
        try:
            unpacked = birds.unpack_species_zip(upload.getvalue())
            root = str(unpacked.root)
            skipped_note(list(unpacked.skipped))
        except ValueError as err:
            st.warning(f"That zip cannot be used: {err}")

if root is None:
    st.info("**No bird photos yet.** Point the *Folder* option at a folder with one sub-folder per "
            "species (or set `DLTL_BIRDS_DIR` before starting the app), download CUB-200-2011, or "
            "upload a zip of species folders.")
    url.sync(source=source)
    url.report()
    st.stop()

try:
    available, empty = species_in(root)
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
c1, c2, c3 = st.columns([2, 2, 2])
with c1:
    pick_by = st.radio("Choose species by", ["Count", "Name"], horizontal=True, key="tl_pick_by")
    if pick_by == "Count":
        hi = min(len(available), 50)
        if hi > 2:
            k = st.slider("Number of species (first k, alphabetically)", 2, hi,
                          url.int("k", min(10, hi), 2, hi), key="tl_k")
        else:
            k = 2
            st.markdown("Both species of the folder.")
        chosen = available[:k]
    else:
        chosen = st.multiselect("Species", available, default=available[: min(5, len(available))],
                                format_func=birds.pretty_name, key="tl_names")
with c2:
    cap = st.slider("Photos per species (at most)", 5, 200, url.int("cap", 40, 5, 200), step=5, key="tl_cap",
                    help="Fewer photos: faster, and a harder problem.")
    seed = st.number_input("Seed (split and initialisation)", 0, 9999, url.int("seed", 0, 0, 9999), key="tl_seed")
with c3:
    rows = backbone_rows()
    names = [r["name"] for r in rows]
    info = {r["name"]: r for r in rows}
    name = st.selectbox("Pretrained backbone", names, index=names.index(url.choice("bb", bk.DEFAULT_BACKBONE, names)),
                        format_func=lambda n: info[n]["title"] + ("" if info[n]["available"] else " (unavailable)"),
                        key="tl_backbone")
    st.caption(f"{info[name]['params_m']} M parameters: {info[name]['note']}.")
    if not info[name]["available"]:
        st.warning(f"{info[name]['title']} is unavailable here: {info[name]['reason']}. "
                   f"Using {bk.BACKBONES[bk.DEFAULT_BACKBONE].title}, which ships with the app.")
        name = bk.DEFAULT_BACKBONE
url.sync(source=source, cap=cap, seed=int(seed), bb=name, **({"k": len(chosen)} if pick_by == "Count" else {}))
url.report()

if len(chosen) < 2:
    st.warning("Pick at least 2 species: a classifier needs two classes to tell apart.")
    st.stop()

species_arg = str(len(chosen)) if pick_by == "Count" else ",".join(chosen)
base = TransferConfig(data=str(Path(root).expanduser().resolve()), species=species_arg, max_per_species=cap,
                      seed=int(seed), backbone=name, mode="linear")

# ----------------------------------------------------------------------------- features (progress) + linear head
backbone = None
with ui.guard("the pretrained backbone"):
    backbone = get_backbone(name)
if backbone is None:
    st.stop()
fs = None
with ui.guard("the feature extraction"):
    bar = st.progress(0.0, text="Extracting features with the pretrained backbone…")
    try:
        fs = ensure_features(base, backbone, progress=lambda d, t, m: bar.progress(d / max(t, 1), text=m))
    except (ValueError, FileNotFoundError) as err:  # bad folder or species: a message, not an error box
        st.warning(str(err))
    bar.empty()
    if fs is not None and fs.extracted:
        st.toast(f"Features of {fs.extracted} photos extracted at {fs.images_per_second:.0f} photos/s "
                 "and cached: the next run reads them from disk.")

st.subheader("2 · Train and compare")
fmap_method = st.radio("Feature map", ["PCA", "t-SNE"], horizontal=True, key="tl_fmap",
                       help="PCA is instant; t-SNE separates clusters better but takes a few seconds.")
lin_cfg = replace(base, feature_map="tsne" if fmap_method == "t-SNE" else "pca")
linear = None
if fs is not None and len(fs.files) == 0:
    st.warning("None of the chosen photos could be read (see the skipped files). Choose other species "
               "or another folder.")
    skipped_note(fs.skipped)
elif fs is not None:
    with ui.guard("the linear head"):
        try:
            linear = linear_result(lin_cfg)
        except (ValueError, FileNotFoundError) as err:
            st.warning(str(err))
if linear is None:
    st.stop()
skipped_note(linear.skipped)

with st.expander("Fine-tuning and from-scratch settings (these train on the photos: minutes on a CPU)"):
    e1, e2, e3 = st.columns(3)
    epochs = e1.slider("Epochs", 1, 20, 3, key="tl_epochs")
    size = e2.select_slider("Image size (pixels)", [96, 128, 160, 192, 224], value=160, key="tl_size",
                            help="The backbone saw 224 px photos; smaller is faster on a CPU.")
    lr = e3.select_slider("Learning rate (head)", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], value=1e-3, key="tl_lr")
    f1, f2, f3 = st.columns(3)
    factor = f1.select_slider("Backbone lr factor (fine-tuning)", [0.01, 0.03, 0.1, 0.3, 1.0], value=0.1,
                              key="tl_factor")
    unfreeze = f2.select_slider("Stages to fine-tune", ["all", 1, 2, 3, 4], value="all", key="tl_unfreeze",
                                help="Only the last stages change; earlier ones stay frozen.")
    augment = f3.toggle("Augmentation (random crop, flip)", value=True, key="tl_augment")
image_cfgs = {
    m: replace(base, mode=m, epochs=epochs, image_size=size, lr=lr, backbone_lr_factor=factor,
               unfreeze_blocks=None if unfreeze == "all" else int(unfreeze), augment=augment,
               feature_map=lin_cfg.feature_map)
    for m in ("finetune", "scratch")
}
b1, b2, b3 = st.columns(3)
run_ft = b1.button("▶ Fine-tune", key="tl_run_ft", width="stretch")
run_sc = b2.button("▶ Train from scratch", key="tl_run_sc", width="stretch")
b3.button("⏹ Stop", key="tl_stop", width="stretch",
          help="Stops a running training (nothing is kept from an interrupted run).")
results: dict[str, TransferResult] = {"linear": linear}
for mode, clicked in (("finetune", run_ft), ("scratch", run_sc)):
    with ui.guard(tc.MODE_LABELS[mode].lower()):
        res = cached_image_result(image_cfgs[mode])
        if res is None and clicked:
            res = train_image_mode(image_cfgs[mode])
        if res is not None:
            results[mode] = res

# ----------------------------------------------------------------------------- summary + curves
def _cost(m: str, r: TransferResult) -> str:
    extra = (f" + {r.extraction_cost_seconds:.0f} s to extract the features once"
             if m == "linear" and r.extraction_cost_seconds >= 0.5 else "")
    return f"{r.train_seconds:.1f} s of training{extra}"


summary = pd.DataFrame([{"mode": tc.MODE_LABELS[m], "accuracy": r.val_accuracy,
                         "label": f"{r.val_accuracy:.0%} · {r.train_seconds:.1f} s"} for m, r in results.items()])
cols = st.columns(3)
for col, (m, r) in zip(cols, results.items()):
    col.metric(tc.MODE_LABELS[m], f"{r.val_accuracy:.1%}",
               help=f"Validation accuracy on {r.n_val} held-out photos ({r.n_train} for training).")
    col.markdown(_cost(m, r) + (" (stopped early)" if r.interrupted else ""))
if len(results) == 1:
    st.caption("Only the frozen-backbone mode has run. Fine-tune or train from scratch above to compare.")

tabs = st.tabs(["Learning curves", "Confusion & per species", "Mistakes", "Feature map", "Predict"])
with tabs[0], ui.guard("the learning curves"):
    df = tc.curves_frame({m: r.history for m, r in results.items()})
    left, right = st.columns(2)
    with left:
        ui.show_chart(tc.curves_by_epoch(df), caption="What to notice: the frozen backbone's head is "
                      "near its best after a few epochs; from scratch barely beats chance with ~30 photos "
                      "per species.")
    with right:
        ui.show_chart(tc.curves_by_time(df), caption="What to notice: the same accuracy costs seconds with "
                      "cached features and minutes when every photo goes through the whole network.")
    ui.show_chart(tc.summary_bars(summary), caption="Validation accuracy on photos held out from training, "
                  "with the training time of each mode.")

with tabs[1], ui.guard("the confusion matrix"):
    which = st.radio("Mode", list(results), format_func=tc.MODE_LABELS.get, horizontal=True, key="tl_cm_mode")
    r = results[which]
    names_pretty = [birds.pretty_name(s) for s in r.species]
    left, right = st.columns([3, 2])
    with left:
        ui.show_chart(tc.confusion_chart(r.confusion, names_pretty),
                      caption="What to notice: the off-diagonal cells are mistakes; look for species that "
                      "are confused with each other (similar colours, similar shapes).")
    with right:
        ui.show_chart(tc.per_species_chart(r.per_species), caption="Validation accuracy per species, worst first.")

with tabs[2], ui.guard("the mistakes gallery"):
    which = st.radio("Mode", list(results), format_func=tc.MODE_LABELS.get, horizontal=True, key="tl_mi_mode")
    mistakes = results[which].mistakes
    if not mistakes:
        st.success("No mistakes on the validation photos.")
    else:
        st.caption("The most confident mistakes first.")
        grid = st.columns(4)
        for i, m in enumerate(mistakes[:12]):
            with grid[i % 4]:
                st.image(m["file"], width="stretch")
                st.markdown(f"**{m['predicted']}** ({m['confidence']:.0%})  \ntrue: {m['true']}")

with tabs[3], ui.guard("the feature map"):
    before = [p for p in linear.feature_map if p["stage"] == "before"]
    tuned = results.get("finetune")
    after = [p for p in tuned.feature_map if p["stage"] == "after"] if tuned else []
    left, right = st.columns(2)
    with left:
        ui.show_chart(tc.feature_map_chart(before, f"Pretrained features ({fmap_method})"),
                      caption="What to notice: even without any training on birds, photos of one species "
                      "already cluster together; that is why a linear head suffices.")
    with right:
        if after:
            ui.show_chart(tc.feature_map_chart(after, f"After fine-tuning ({fmap_method})"),
                          caption="What to notice: compare with the left map: are the species' clusters "
                          "tighter and further apart after fine-tuning (more epochs help)?")
        else:
            st.info("Fine-tune (above) to see how the feature map changes.")

with tabs[4], ui.guard("the prediction"):
    which = st.radio("Model", list(results), format_func=tc.MODE_LABELS.get, horizontal=True, key="tl_pr_mode")
    photo = st.file_uploader("Upload a bird photo", type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"],
                             key="tl_photo")
    r = results[which]
    pick = None
    if photo is None:
        options = sorted({p["file"] for p in linear.feature_map})
        pick = st.selectbox("…or pick one of the photos", options, format_func=lambda f: f"{Path(f).parent.name}/{Path(f).name}",
                            key="tl_pick")
    source_img = photo.getvalue() if photo is not None else pick
    if source_img is not None:
        try:
            img = open_rgb(source_img)  # CMYK, 16-bit, alpha, grayscale -> RGB; bombs refused
        except ImageError as err:
            st.warning(f"That file cannot be used as a photo: {err}")
        else:
            pred = predict_photo(backbone, r, img)
            left, mid, right = st.columns([1, 2, 2])
            left.image(img, width="stretch")
            with mid:
                ui.show_chart(tc.topk_chart(pred["species"], "Top-5 species (trained head)"),
                              caption="The new head knows only the chosen species.")
            with right:
                ui.show_chart(tc.topk_chart(pred["imagenet"], "Backbone's original ImageNet top-5", "#9d755d"),
                              caption="The pretrained classifier knows 1000 ImageNet classes, some of them birds.")
