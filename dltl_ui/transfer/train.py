"""The transfer page's work: the shared backbone, features (light work at once, heavy work on a
click), the linear head, and fine-tuning / from scratch as jobs of the bounded job runner."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from dltl_core import backbones as bk
from dltl_core import birds
from dltl_core import budget as mem
from dltl_core import needs
from dltl_core import transfer_regimes as regimes
from dltl_core.features import FeatureSet, measured_rate, uncached_photos
from dltl_core.transfer_view import FINETUNING, PHOTOS, WAYS, TransferView  # noqa: F401 - the page reads them here
from dltl_core.transfer import (DEFAULT_CAP, DEFAULT_SPECIES, FINETUNE, SPECIES_COUNT, TransferConfig, TransferResult,
                                ensure_features, features_job, run_transfer, stage_names, transfer_job)
from dltl_core.transfer import IMAGE_SIZES as TRANSFER_SIZES
from dltl_core.job_runner import get_runner
from dltl_ui import job_panel as jobs_ui
from dltl_ui.binder import Binder
from dltl_ui.transfer import charts as tc

# The page's default photos (``dltl_core.transfer.DEFAULT_SPECIES`` x ``DEFAULT_CAP``) are shared
# by every visitor, so they (or any part of them, e.g. k=3) may start without a click.
DEFAULT_K = DEFAULT_SPECIES
# Any other selection extracts at most this many new photos in the server without a click (a
# few seconds); more (a link such as k=10&cap=35 or k=50&cap=200) waits for a click showing
# the expected time, and runs as a job (its own process, Stop, memory budget).
AUTO_EXTRACT = 32
# t-SNE in the server for at most this many photos (about 4 s on 2 cores); on more (2,000
# photos took 36 s) it waits for a click and runs as a job with a Stop button.
TSNE_AUTO = 300
TSNE_SECONDS_PER_PHOTO = 36 / 2000  # measured: 2,000 photos in 36 s on 2 cores
IMAGE_SIZES = tuple(sorted(TRANSFER_SIZES, reverse=True))  # the image-size choices, largest first
ACTIONS = {"finetune": "Fine-tuning", "scratch": "Training from scratch"}  # how messages name a mode


def view_binder(url) -> Binder:
    """The page's binder (widget keys ``tl_<url name>``, as before the binder), URL loaded."""
    b = Binder(TransferView, "tl", url=url)
    b.load()
    return b


class _NotCached(Exception):
    """Raised by ``_image_result`` on a cache miss, so that nothing is cached."""


@st.cache_resource(show_spinner="Loading the pretrained backbone…", max_entries=2)
def get_backbone(name: str) -> bk.Backbone:
    """Shared by every visitor: created on the policy's device in eval mode; nothing moves,
    trains or changes it (fine-tuning trains a copy, in a job's own process)."""
    return bk.create_backbone(name)


@st.cache_data(show_spinner=False, ttl=300)
def backbone_rows(probe: bool) -> list[dict]:
    """The backbone picker's rows; ``probe`` asks the model hub (only after a click)."""
    return bk.list_backbones(probe=probe)


@st.cache_data(show_spinner=False, ttl=30)
def species_in(root: str) -> tuple[list[str], list[str]]:
    """(species folders with photos, empty ones) of ``root``."""
    return birds.species_with_photos(root)


@st.cache_data(show_spinner="Training the linear head on the cached features…", max_entries=32)
def linear_result(config: TransferConfig) -> TransferResult:
    """The linear probe on the cached features (about a second)."""
    return run_transfer(config, backbone=get_backbone(config.backbone))


@st.cache_data(show_spinner=False, max_entries=4)
def _image_result(config: TransferConfig, _computed: TransferResult | None = None) -> TransferResult:
    # Keyed by config only (``_computed`` is not hashed): a finished job's result is stored here.
    if _computed is None:
        raise _NotCached
    return _computed


def cached_image_result(config: TransferConfig) -> TransferResult | None:
    """A finished fine-tuning / scratch result of this exact config, from any visitor."""
    try:
        return _image_result(config)
    except _NotCached:
        return None


def linear_step(cfg: TransferConfig, n_photos: int) -> tuple[TransferResult, str]:
    """The linear probe and the name of its map (``PCA`` / ``t-SNE``).

    t-SNE on more than ``TSNE_AUTO`` photos runs only on a click, as a job (expected time,
    progress, Stop); until it is done the map shows PCA and says so.
    """
    if cfg.feature_map != "tsne" or n_photos <= TSNE_AUTO:
        return linear_result(cfg), "t-SNE" if cfg.feature_map == "tsne" else "PCA"
    done = cached_image_result(cfg)  # a finished t-SNE job of this exact config, from any visitor
    if done is not None:
        return done, "t-SNE"
    est = _duration(n_photos * TSNE_SECONDS_PER_PHOTO)
    st.info(f"t-SNE on {n_photos} photos takes {est} here: it runs as a job you can stop, on a click. "
            "Until then the feature map shows PCA.")
    need = needs.transfer("linear", n_photos)
    clicked = jobs_ui.offer("The t-SNE map", need) and st.button(f"▶ Compute the t-SNE map ({est})", key="tl_tsne")
    final = jobs_ui.job_panel("tl_tsne", transfer_job, cfg, start=clicked, seed=cfg.seed, label="t-SNE map",
                              need_mb=need)
    if final is not None and final.state == "done" and final.result is not None:
        _image_result(cfg, _computed=final.result)
        return final.result, "t-SNE"
    if final is not None and final.error and final.error != "stopped":
        st.warning(f"The t-SNE map did not finish: {final.error}.")
    return linear_result(replace(cfg, feature_map="pca")), "PCA"


def backbone_picker(url) -> str:
    """The backbone select box; the model hub is asked only when the visitor clicks."""
    probe = bool(st.session_state.get("tl_hub_checked"))
    rows = backbone_rows(probe)
    names = [r["name"] for r in rows]
    info = {r["name"]: r for r in rows}
    name = st.selectbox("Pretrained backbone", names,
                        index=names.index(url.choice("bb", bk.DEFAULT_BACKBONE, names)),
                        format_func=lambda n: info[n]["title"] + ("" if info[n]["available"] else " (unavailable)"),
                        key="tl_backbone")
    st.caption(f"{info[name]['params_m']} M parameters: {info[name]['note']}.")
    if not probe and st.button("Check the model hub", key="tl_hub",
                               help="Asks huggingface.co (1.5 s timeout) which other backbones can be downloaded."):
        st.session_state["tl_hub_checked"] = True
        st.rerun()
    if not info[name]["available"]:
        st.warning(f"{info[name]['title']} is unavailable here: {info[name]['reason']}. "
                   f"Using {bk.BACKBONES[bk.DEFAULT_BACKBONE].title}, which ships with the app.")
        name = bk.DEFAULT_BACKBONE
    return name


def _duration(seconds: float) -> str:
    """``about 40 s`` / ``about 3 min``."""
    return f"about {math.ceil(seconds)} s" if seconds < 90 else f"about {math.ceil(seconds / 60)} min"


def is_shared_default(base: TransferConfig) -> bool:
    """Whether ``base`` selects the page's default photos or a part of them (see ``DEFAULT_K``):
    features are cached per species, so these never extract more than the default's 400 photos."""
    default = birds.default_birds_dir()
    try:
        same_folder = default is not None and Path(base.data).resolve() == Path(default).expanduser().resolve()
    except (OSError, RuntimeError):
        return False
    if not (same_folder and base.max_per_species == DEFAULT_CAP and base.backbone == bk.DEFAULT_BACKBONE):
        return False
    if base.species.isdigit():
        return int(base.species) <= DEFAULT_K
    first = set(species_in(base.data)[0][:DEFAULT_K])
    return all(name in first for name in base.species.split(","))


def features_step(base: TransferConfig, backbone: bk.Backbone) -> FeatureSet | None:
    """Cached features of the chosen photos: at once when few are missing (or the page's shared
    default), else after a click, as a job."""
    photos = birds.load_birds(base.data, base.species, base.max_per_species)
    missing = uncached_photos(backbone, photos.files, photos.labels)
    if missing > AUTO_EXTRACT and not is_shared_default(base):
        rate = measured_rate()
        est = f" ({_duration(missing / rate)} on this server)" if rate else ""
        st.info(f"**{missing} photos need their features extracted first**{est}. Heavy work starts "
                "only when you click; every later run reads the features from the cache.")
        need = needs.extraction(missing)
        clicked = jobs_ui.offer("Extracting the features", need) and \
            st.button("▶ Extract the features" + (f" ({_duration(missing / rate)})" if rate else ""),
                      key="tl_extract")
        final = jobs_ui.job_panel("tl_extract", features_job, base, start=clicked, seed=base.seed,
                                  label="Extracting features", need_mb=need)
        if final is not None and final.error:
            st.warning(f"The extraction did not finish: {final.error}.")
        return None
    bar = st.progress(0.0, text="Extracting features with the pretrained backbone…")
    fs = ensure_features(base, backbone, progress=lambda d, t, m: bar.progress(min(d / max(t, 1), 1.0), text=m))
    bar.empty()
    if fs.extracted:
        st.toast(f"Features of {fs.extracted} photos extracted at {fs.images_per_second:.0f} photos/s "
                 "and cached: the next run reads them from disk.")
    return fs


def _seconds(fs: FeatureSet, epochs: int, size: int) -> dict[str, float] | None:
    """Expected seconds of each fine-tuning way here (``cached``, ``full``; from scratch costs
    what ``full`` does), from the extraction rate this server measured (in this process, else
    when these photos' features were first extracted); None when no rate is known.

    End to end: ~3 forward passes per training photo per epoch (forward + backward) plus one for
    validation. Cached: ``transfer_regimes.finetune_seconds`` (a job's start-up, the frozen pass at
    another image size, and each photo-epoch's cost measured by ``scripts/transfer_regimes.py``).
    """
    n_photos = len(fs.files)
    rate = measured_rate() or (n_photos / fs.cost_seconds if fs.cost_seconds > 0 else None)
    if not rate:
        return None
    scale = (size / 224) ** 2
    full = n_photos * (0.8 * 3 + 0.2) / rate * scale * epochs + n_photos / rate
    # Calibrated by scripts/transfer_regimes.py (a photo-epoch of the last stages in full forward
    # passes); at another image size the frozen stages run once more first.
    cached = regimes.finetune_seconds(round(0.8 * n_photos), round(0.2 * n_photos), epochs, rate / scale,
                                      uncached=0 if size == 224 else n_photos)
    if cached is None:
        cached = n_photos / rate * scale * (1 + 0.1 * epochs) + 5
    return {"full": full, "cached": cached}


def _times(fs: FeatureSet, epochs: int, size: int) -> dict[str, str]:
    """``_seconds`` as the labels of the fine-tuning choice."""
    secs = _seconds(fs, epochs, size)
    if secs is None:
        return {"cached": "time unknown", "full": "time unknown: many minutes on a CPU"}
    return {"cached": "at most " + _duration(secs["cached"]) + " here", "full": _duration(secs["full"]) + " here"}


@dataclass(frozen=True)
class Plan:
    """How one image mode runs on this server.

    Attributes:
        config: what runs (perhaps at a smaller image size than chosen); None = refused.
        need_mb: its memory need.
        note: what was changed to fit, or why it is refused ("" when it runs as chosen).
    """

    config: TransferConfig | None
    need_mb: float
    note: str = ""


# A run is offered only when its estimated need leaves 15% of the job's cap free. The cap is
# enforced on the job's address space, which grows faster than the private memory the needs
# were measured as: in the classroom soak a scratch run planned at 128 px (1.24 GB of a 1.3 GB
# cap) stopped with "can't allocate memory"; at 96 px (about 0.96 GB) it fits.
FIT_SHARE = 0.85


def _need(cfg: TransferConfig, n_photos: int, size: int) -> float:
    batch = cfg.train_config(max(1, n_photos)).batch_size
    return needs.transfer(cfg.mode, n_photos, size, batch, cached=cfg.uses_cached_activations)


def plan(cfg: TransferConfig, fs: FeatureSet) -> Plan:
    """Fit a fine-tuning / scratch run to this server's memory and job time limit.

    A run that fits runs as chosen. An end-to-end one (scratch, fine-tuning on the photos) that
    does not runs at the largest smaller image size that fits both, and says so; one that fits
    at no size is refused with its figures.
    """
    n, size = len(fs.files), int(cfg.image_size or 224)
    cap, limit = mem.job_cap_mb(get_runner().budget()), get_runner().seconds
    label = ACTIONS[cfg.mode]

    def fits(s: int) -> tuple[bool, float, float | None]:
        need = _need(cfg, n, s)
        secs = _seconds(fs, int(cfg.epochs or 1), s)
        way = "cached" if cfg.uses_cached_activations else "full"
        t = None if secs is None else secs[way]
        return need <= FIT_SHARE * cap and (t is None or t <= 0.9 * limit), need, t

    ok, need, secs = fits(size)
    if ok:
        return Plan(cfg, need)
    what = f"{label} at {size} px needs about {mem.gb(need)}" + (f" and {_duration(secs)}" if secs else "")
    server = f"this server has {mem.gb(cap)} for a job and stops a job after {_duration(limit)}"
    if not cfg.uses_cached_activations:
        for smaller in (s for s in IMAGE_SIZES if s < size):
            ok2, need2, secs2 = fits(smaller)
            if ok2:
                t = f", {_duration(secs2)}" if secs2 else ""
                return Plan(replace(cfg, image_size=smaller), need2,
                            f"{what}; {server}. It runs at **{smaller} px** instead (about {mem.gb(need2)}{t}).")
    return Plan(None, need, f"{what}; {server}. Choose fewer photos, species or epochs, or use the "
                            "command line.")


def _explain_stages(backbone: bk.Backbone, way: str, unfreeze: int) -> None:
    names = stage_names(backbone.model)
    if way == "full" or not names:
        st.markdown("**End to end:** every stage trains, so every photo goes through the whole network "
                    "(forward and backward) in every epoch.")
        return
    cut = len(names) - min(int(unfreeze), len(names))
    st.markdown(f"**Frozen** (pretrained, computed once per photo and cached): {', '.join(names[:cut])}.  \n"
                f"**Trained:** {', '.join(names[cut:] + ['a new head'])}; the new head starts from the "
                "linear probe, the stages with a smaller learning rate (× the backbone factor). Each epoch "
                "runs only the trained stages, on the cached activations.")


def image_settings(view: Binder, base: TransferConfig, backbone: bk.Backbone, fs: FeatureSet, fmap: str
                   ) -> dict[str, TransferConfig]:
    """The fine-tuning / from-scratch settings (bound to the URL by ``view``); one config per mode."""
    with st.expander("Fine-tuning and from-scratch settings", expanded=False):
        e1, e2, e3 = st.columns(3)
        epochs = view.widget("epochs", where=e1)
        size = view.widget("image_size", where=e2)
        lr = view.widget("lr", where=e3)
        times = _times(fs, epochs, size)
        labels = {"cached": f"Last stages, on cached activations ({times['cached']})",
                  "full": f"All stages, end to end on the photos ({times['full']})"}
        way = view.widget("way", format_func=labels.get, horizontal=True)
        f1, f2, f3 = st.columns(3)
        factor = view.widget("backbone_lr_factor", where=f1)
        unfreeze = view.widget("unfreeze_blocks", where=f2, disabled=way == "full")
        augment = view.widget("augment", where=f3)
        _explain_stages(backbone, way, unfreeze)
    view.sync(FINETUNING)
    common = dict(epochs=int(epochs), image_size=int(size), lr=float(lr), augment=bool(augment), feature_map=fmap)
    return {"finetune": replace(base, mode="finetune", backbone_lr_factor=float(factor),
                                unfreeze_blocks=None if way == "full" else int(unfreeze), **common),
            "scratch": replace(base, mode="scratch", **common)}


def _live_curve(mode: str):
    """The job panel's partial-result view: the epochs finished so far, as a learning curve."""

    def draw(rows: tuple[dict, ...]) -> None:
        st.altair_chart(tc.curves_by_epoch(tc.curves_frame({mode: list(rows)})), theme=None)
    return draw


def _plans(cfgs: dict[str, TransferConfig], fs: FeatureSet) -> dict[str, Plan]:
    """Each mode's plan; a mode whose job runs keeps the config it was started with (the budget
    moves with the server's memory, and a new plan would cancel the run)."""
    out = {}
    for mode, cfg in cfgs.items():
        started = st.session_state.get(f"tl_planned_{mode}")  # (chosen config, its plan)
        if jobs_ui.is_running(f"tl_{mode}") and started is not None and started[0] == cfg:
            out[mode] = started[1]
        else:
            out[mode] = plan(cfg, fs)
    return out


def image_modes(cfgs: dict[str, TransferConfig], fs: FeatureSet
                ) -> tuple[dict[str, TransferResult], dict[str, list[dict]]]:
    """Buttons and job panels of the image modes: (finished results, stopped runs' epoch rows).

    Each mode is first fitted to the server (``plan``): run as chosen, run smaller (said
    above the buttons), or refused (its button disabled, the figures said).
    """
    plans = _plans(cfgs, fs)
    for p in plans.values():
        if p.note:
            (st.info if p.config is not None else st.warning)(p.note, icon="🧠")
    b1, b2 = st.columns(2)
    clicks = {"finetune": b1.button("▶ Fine-tune", key="tl_run_ft", width="stretch",
                                    disabled=plans["finetune"].config is None,
                                    help=f"Needs about {mem.gb(plans['finetune'].need_mb)} of memory."),
              "scratch": b2.button("▶ Train from scratch", key="tl_run_sc", width="stretch",
                                   disabled=plans["scratch"].config is None,
                                   help=f"Needs about {mem.gb(plans['scratch'].need_mb)} of memory.")}
    results: dict[str, TransferResult] = {}
    stopped: dict[str, list[dict]] = {}
    for mode, p in plans.items():
        chosen, cfg = cfgs[mode], p.config
        if cfg is None:
            continue
        done = cached_image_result(cfg)
        if done is not None and not jobs_ui.is_running(f"tl_{mode}"):
            results[mode] = done
            continue
        if clicks[mode]:
            st.session_state[f"tl_planned_{mode}"] = (chosen, p)
        final = jobs_ui.job_panel(f"tl_{mode}", transfer_job, cfg, start=clicks[mode], seed=cfg.seed,
                                  label=tc.MODE_LABELS[mode], on_partial=_live_curve(mode), need_mb=p.need_mb)
        if final is None:
            continue
        if final.state == "done" and final.result is not None:
            results[mode] = final.result
            if not final.result.interrupted:
                _image_result(cfg, _computed=final.result)
        else:
            stopped[mode] = [p for p in final.payloads if isinstance(p, dict)]
            if final.error and final.error != "stopped":
                st.warning(f"{tc.MODE_LABELS[mode]} did not finish: {final.error}.")
    return results, stopped
