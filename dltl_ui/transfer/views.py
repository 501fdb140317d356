"""The transfer page's results: summary metrics, learning curves, confusion, mistakes, feature map, Predict."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from PIL import Image

import dltl_ui as ui
from dltl_core import birds
from dltl_core.backbones import Backbone
from dltl_core.birds import upload as up
from dltl_core.images import MAX_PIXELS, ImageError, open_rgb
from dltl_core.separation import separation_caption
from dltl_core.transfer import TransferResult, predict_photo
from dltl_ui.transfer import charts as tc

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]


def skipped_note(skipped: list[tuple[str, str]]) -> None:
    """An expander listing the files that were skipped, with the reason of each."""
    if skipped:
        with st.expander(f"⚠️ {len(skipped)} file(s) skipped"):
            st.dataframe(pd.DataFrame([{"file": Path(f).name, "folder": Path(f).parent.name, "reason": r}
                                       for f, r in skipped]), hide_index=True, width="stretch")


def _cost(m: str, r: TransferResult) -> str:
    if m == "linear" and r.extraction_cost_seconds >= 0.5:
        return f"{r.train_seconds:.1f} s of training + {r.extraction_cost_seconds:.0f} s to extract the features once"
    if r.cached_activations:
        return (f"{r.seconds:.0f} s in all: {r.train_seconds:.0f} s of training on the cached activations "
                f"+ {r.feature_seconds:.0f} s for the frozen stages and the linear probe")
    return f"{r.train_seconds:.1f} s of training"


def summary(results: dict[str, TransferResult], stopped: dict[str, list[dict]]) -> None:
    """One metric per mode (validation accuracy) with its cost; stopped runs say what they kept."""
    cols = st.columns(3)
    for col, (m, r) in zip(cols, results.items()):
        col.metric(tc.MODE_LABELS[m], f"{r.val_accuracy:.1%}",
                   help=f"Validation accuracy on {r.n_val} held-out photos ({r.n_train} for training).")
        col.markdown(_cost(m, r) + (" (stopped early)" if r.interrupted else ""))
    for m, rows in stopped.items():
        done = sum(1 for r in rows if r.get("complete", True))
        st.warning(f"**{tc.MODE_LABELS[m]} was stopped** after {done} finished epoch(s). The learning curves "
                   "below keep those epochs; no trained model was kept, so Predict and the confusion "
                   "matrix do not include it. Run it again to finish.")
    if len(results) == 1 and not stopped:
        st.caption("Only the frozen-backbone mode has run. Fine-tune or train from scratch above to compare.")


def curves_tab(results: dict[str, TransferResult], stopped: dict[str, list[dict]], *, top: Any | None = None) -> None:
    """Accuracy per epoch and against time (stopped runs included), and the summary bars.

    With ``top`` (classroom mode) the two curves are drawn there, the page's main chart, and
    the tab keeps the bars."""
    histories = {m: r.history for m, r in results.items()} | stopped
    df = tc.curves_frame(histories)
    with top if top is not None else st.container(), ui.main_chart():
        left, right = st.columns(2)
        with left:
            ui.show_chart(functools.partial(tc.curves_by_epoch, df), caption=tc.epoch_story(results),
                          key=("tl_epoch", _shape(), ui.data_key(df)))
        with right:
            ui.show_chart(functools.partial(tc.curves_by_time, df), caption=tc.time_story(results),
                          key=("tl_time", _shape(), ui.data_key(df)))
    rows = pd.DataFrame([{"mode": tc.MODE_LABELS[m], "accuracy": r.val_accuracy,
                          "label": f"{r.val_accuracy:.0%} · {r.seconds if m != 'linear' else r.train_seconds:.1f} s"}
                         for m, r in results.items()])
    ui.show_chart(functools.partial(tc.summary_bars, rows), caption="Validation accuracy on photos held out from "
                  "training, with the time each mode took.", key=("tl_bars", _shape(), ui.data_key(rows)))


def confusion_tab(results: dict[str, TransferResult]) -> None:
    """Confusion matrix and per-species accuracy of one mode."""
    which = st.radio("Mode", list(results), format_func=tc.MODE_LABELS.get, horizontal=True, key="tl_cm_mode")
    r = results[which]
    names_pretty = [birds.pretty_name(s) for s in r.species]
    left, right = st.columns([3, 2])
    with left:
        ui.show_chart(functools.partial(tc.confusion_chart, r.confusion, names_pretty),
                      key=("tl_confusion", _shape(), ui.data_key(r.confusion, names_pretty)),
                      caption="What to notice: the off-diagonal cells are mistakes; look for species that "
                      "are confused with each other (similar colours, similar shapes).")
    with right:
        ui.show_chart(functools.partial(tc.per_species_chart, r.per_species), caption="Validation accuracy per "
                      "species, worst first.", key=("tl_species", _shape(), ui.data_key(r.per_species)))


def mistakes_tab(results: dict[str, TransferResult]) -> None:
    """The most confident mistakes of one mode, as a photo grid."""
    which = st.radio("Mode", list(results), format_func=tc.MODE_LABELS.get, horizontal=True, key="tl_mi_mode")
    mistakes = results[which].mistakes
    if not mistakes:
        st.success("No mistakes on the validation photos.")
        return
    st.caption("The most confident mistakes first.")
    grid = st.columns(4)
    for i, m in enumerate(mistakes[:12]):
        with grid[i % 4]:
            st.image(m["file"], width="stretch")
            st.markdown(f"**{m['predicted']}** ({m['confidence']:.0%})  \ntrue: {m['true']}")


def photo_label(path: str | Path) -> str:
    """``Species/photo.jpg``: what a visitor is shown of a photo's path (never the server's folders)."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}"


def _map_points(points: list[dict], stage: str) -> list[dict]:
    """The map's points of one stage, each file shown as ``Species/photo.jpg`` in its tooltip."""
    return [{**p, "file": photo_label(p["file"])} for p in points if p["stage"] == stage]


def feature_map_tab(results: dict[str, TransferResult], method: str) -> None:
    """The pretrained features' 2-D map beside the fine-tuned network's."""
    before = _map_points(results["linear"].feature_map, "before")
    tuned = results.get("finetune")
    after = _map_points(tuned.feature_map, "after") if tuned else []
    left, right = st.columns(2)
    with left:
        ui.show_chart(functools.partial(tc.feature_map_chart, before, f"Pretrained features ({method})"),
                      key=("tl_map", _shape(), method, ui.data_key(before)),
                      caption=f"What to notice: these features were never trained on birds, yet a linear head "
                      f"on them reaches {results['linear'].val_accuracy:.0%} validation accuracy. Where one "
                      "species' photos cluster here, a straight line can cut them off from the rest.")
    with right:
        if after:
            ui.show_chart(functools.partial(tc.feature_map_chart, after, f"After fine-tuning ({method})"),
                          key=("tl_map_after", _shape(), method, ui.data_key(after)),
                          caption=separation_caption(tuned.separation.get("before"), tuned.separation.get("after"),
                                                     method))
        else:
            st.info("Fine-tune (above) to see how the feature map changes.")


_PHOTO_KEY = "_tl_photo_decoded"


def decoded_photo(photo: Any | None, pick: str | None) -> Image.Image | str | None:
    """The chosen photo decoded once (RGB, reduced to what the model needs), or why it cannot be used.

    Kept in the session keyed by the upload's file id (or the picked file), so a photo
    staying in the uploader is not decoded again on every rerun; only the latest is kept.
    """
    if photo is None and pick is None:
        return None
    key = ("upload", photo.file_id) if photo is not None else ("pick", pick)
    held = st.session_state.get(_PHOTO_KEY)
    if held is None or held[0] != key:
        try:
            # CMYK, 16-bit, alpha, grayscale -> RGB; large photos decoded reduced; bombs refused
            value: Image.Image | str = open_rgb(photo.getvalue() if photo is not None else pick)
        except ImageError as err:
            value = str(err).split(": ", 1)[-1]  # the reason, without the file's server path
        held = st.session_state[_PHOTO_KEY] = (key, value)
    return held[1]


def _shape() -> tuple:
    # Charts compiled once per data: the projector's sizes and fonts are another compiled chart.
    return (ui.is_classroom(),)


@st.cache_resource(max_entries=64, show_spinner=False)
def _shared_prediction(key: tuple, _backbone: Backbone, _result: TransferResult, _img: Any) -> dict:
    # One per picked photo and model for every session (read-only: the views never change it);
    # Streamlit computes a key once even when a class asks for it at the same moment.
    return predict_photo(_backbone, _result, _img)


def _prediction(backbone: Backbone, result: TransferResult, mode: str, photo_id: str | None, img: Any,
                shared: bool = False) -> dict:
    """``predict_photo``, once per (photo, model): a rerun for another widget does not run the
    backbone on the same photo again (~0.1-0.2 s of server CPU each time).

    A visitor's upload is kept in their session only; a photo picked from the server's list
    (``shared``) is kept for every session, so a class opening the page pays for it once.
    """
    key = (backbone.name, mode, photo_id, result.val_accuracy, result.seconds, result.n_train,
           tuple(result.species))
    if shared:
        return _shared_prediction(key, backbone, result, img)
    memo = st.session_state.get("_tl_prediction")
    if memo is None or memo[0] != key:
        memo = (key, predict_photo(backbone, result, img))
        st.session_state["_tl_prediction"] = memo
    return memo[1]


def predict_tab(results: dict[str, TransferResult], backbone: Backbone) -> None:
    """Upload (or pick) a photo: the trained head's species beside the backbone's ImageNet guess."""
    which = st.radio("Model", list(results), format_func=tc.MODE_LABELS.get, horizontal=True, key="tl_pr_mode")
    photo = st.file_uploader("Upload a bird photo", type=PHOTO_TYPES, key="tl_photo",
                             help=f"Photos of up to {MAX_PIXELS / 1e6:g} megapixels; large ones are decoded at "
                                  f"reduced size (the model sees {backbone.data_config['input_size'][-1]}×"
                                  f"{backbone.data_config['input_size'][-1]} pixels).")
    pick = None
    if photo is None:
        options = sorted({p["file"] for p in results["linear"].feature_map})
        pick = st.selectbox("…or pick one of the photos", options, format_func=photo_label, key="tl_pick")
    img = decoded_photo(photo, pick)
    if img is None:
        return
    if isinstance(img, str):
        st.warning(f"That file cannot be used as a photo: {img}")
        return
    pred = _prediction(backbone, results[which], which, photo.file_id if photo is not None else pick, img,
                       shared=photo is None)
    if pred["unknown"]:
        st.warning(f"**Probably none of the trained species.** {pred['unknown']}")
    left, mid, right = st.columns([1, 2, 2])
    left.image(img, width="stretch")
    with mid:
        ui.show_chart(lambda: tc.topk_chart(pred["species"], "Top species (trained head)"),
                      key=("tl_topk", ui.data_key(pred["species"]), _shape()),
                      caption="The new head knows only the chosen species: its probabilities always add "
                      "up to 100% among them, even for a photo of something else.")
    with right:
        ui.show_chart(lambda: tc.topk_chart(pred["imagenet"], "Backbone's original ImageNet top-5", "#9d755d"),
                      key=("tl_topk_imagenet", ui.data_key(pred["imagenet"]), _shape()),
                      caption="The pretrained classifier knows 1000 ImageNet classes, 59 of them birds.")


def result_tabs(results: dict[str, TransferResult], stopped: dict[str, list[dict]], backbone: Backbone,
                method: str, *, top: Any | None = None) -> None:
    """The five result tabs, each behind the page's error boundary; ``top``: where the learning
    curves go instead of their tab (classroom mode)."""
    tabs = st.tabs(["Learning curves", "Confusion & per species", "Mistakes", "Feature map", "Predict"])
    with tabs[0], ui.guard("the learning curves"):
        curves_tab(results, stopped, top=top)
    with tabs[1], ui.guard("the confusion matrix"):
        confusion_tab(results)
    with tabs[2], ui.guard("the mistakes gallery"):
        mistakes_tab(results)
    with tabs[3], ui.guard("the feature map"):
        feature_map_tab(results, method)
    with tabs[4], ui.guard("the prediction"):
        predict_tab(results, backbone)


def public_config(config: Any) -> Any:
    """The run's config with its data folder as the visitor knows it: the folder's name, or
    "uploaded zip" for an upload (the file must not carry a server path or session token)."""
    data = Path(config.data)
    try:
        uploaded = up.uploads_base().resolve() in data.resolve().parents
    except OSError:
        uploaded = True
    return dataclasses.replace(config, data="uploaded zip" if uploaded else data.name)


def download_model(results: dict[str, TransferResult], configs: dict[str, Any], backbone: Backbone) -> None:
    """"Download this model": one file per trained mode (``dltl_core.checkpoint``), made on a click.

    The file reloads with ``torch.load(path, weights_only=True)`` and predicts with
    ``python -m dltl_core predict --load FILE PHOTO``. It is built only when asked: a
    network's weights are megabytes, too much to serialise on every rerun.
    """
    from dltl_core import checkpoint

    c1, c2 = st.columns([2, 3])
    mode = c1.selectbox("Download this model", list(results), format_func=lambda m: tc.MODE_LABELS[m],
                        key="tl_dl_mode")
    key = ("tl_dl", mode, id(results[mode]))
    if c2.button("Prepare the model file", key="tl_dl_go"):
        ck = checkpoint.from_transfer(results[mode], public_config(configs[mode]), backbone)
        st.session_state["tl_dl"] = (key, checkpoint.to_bytes(ck))
    ready = st.session_state.get("tl_dl")
    if ready and ready[0] == key:
        c2.download_button(f"Download {tc.MODE_LABELS[mode]} (.pt, {len(ready[1]) / 2**20:.0f} MB)", ready[1],
                           file_name=f"dltl-birds-{mode}.pt", mime="application/octet-stream", key="tl_dl_file")
        st.caption("Reload it with `torch.load(path, weights_only=True)`, or predict from a terminal: "
                   "`python -m dltl_core predict --load dltl-birds-" + mode + ".pt PHOTO.jpg`.")
