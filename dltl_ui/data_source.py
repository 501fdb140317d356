"""Where the bird photos come from: a folder inside the data roots, the CUB download, or a zip.

One call, ``choose_bird_folder(url)``, draws the *Photos from* choice and returns the
species-folder root (or None). It is the only place a visitor's path or upload enters
the app, so the rules of a public server live here:

* the *Folder* box accepts only paths inside the operator's data roots
  (``dltl_core.paths``); everything else, existing or not, gets the same message;
* uploads go to this session's own area (``<cache>/uploads/<random token>``), judged
  from the zip's end record and central directory before extraction, within a
  per-session quota and a cap on all sessions' uploads together, and removed when the
  session ends (or after ``DLTL_UPLOAD_TTL`` seconds); unpacked once per upload;
* the CUB-200-2011 download runs once however many visitors click (single flight);
* the upload label states the server's real limit (``server.maxUploadSize``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dltl_core import birds, paths
from dltl_core.birds import upload as up
from dltl_core.images import MAX_DECODED_BYTES, MAX_PIXELS
from dltl_ui.job_panel import session_alive
from dltl_ui.urlstate import UrlState

SOURCES = ("Folder", "Download CUB-200-2011", "Upload a zip")
SOURCE_KEY = "tl_source"
_TOKEN_KEY = "_dltl_upload_token"
_ENDED_GRACE = 60.0  # seconds a disconnected session may take to reconnect before its uploads go
_SWEEP_EVERY = 30.0

# token -> "is this session still connected" (process-wide: sweeps run from any session)
_SESSIONS: dict[str, object] = {}
_GONE_SINCE: dict[str, float] = {}
_LOCK = threading.Lock()
_sweeper: threading.Thread | None = None


def upload_limit_bytes() -> int:
    """The largest zip accepted: Streamlit's ``server.maxUploadSize`` (MB), capped by the core's."""
    try:
        server_mb = float(st.get_option("server.maxUploadSize"))
    except (RuntimeError, TypeError, ValueError):
        server_mb = up.MAX_ZIP_BYTES / 2**20
    return int(min(server_mb * 2**20, up.MAX_ZIP_BYTES))


def _ended(token: str) -> bool | None:
    """True: disconnected for over a minute; False: connected; None: unknown (the TTL decides)."""
    check = _SESSIONS.get(token)
    if check is None:
        return None  # e.g. an earlier server run, or outside a server
    try:
        alive = bool(check())
    except Exception:  # noqa: BLE001 - a broken check must not delete uploads
        alive = True
    if alive:
        _GONE_SINCE.pop(token, None)
        return False
    since = _GONE_SINCE.setdefault(token, time.monotonic())
    if time.monotonic() - since > _ENDED_GRACE:
        _SESSIONS.pop(token, None)
        _GONE_SINCE.pop(token, None)
        return True
    return False


def _sweep_forever() -> None:
    while True:
        time.sleep(_SWEEP_EVERY)
        try:
            with _LOCK:
                up.sweep_uploads(ended=_ended)
        except Exception:  # noqa: BLE001 - the sweeper must outlive a bad folder
            logging.getLogger(__name__).exception("upload sweep")


def _maybe_sweep() -> None:
    """Start (once per process) the thread removing ended sessions' uploads every 30 s."""
    global _sweeper
    with _LOCK:
        if _sweeper is None or not _sweeper.is_alive():
            up.sweep_uploads(ended=_ended)  # leftovers of an earlier server run, past the TTL
            _sweeper = threading.Thread(target=_sweep_forever, name="dltl-upload-sweeper", daemon=True)
            _sweeper.start()


def upload_area() -> Path:
    """This session's upload area (created on first use, marked alive on every call)."""
    token = st.session_state.get(_TOKEN_KEY)
    if token is None:
        token = st.session_state[_TOKEN_KEY] = secrets.token_urlsafe(16)
    check = session_alive()
    if check is not None:
        with _LOCK:
            _SESSIONS[token] = check
    return up.session_area(token)


def visitor_roots() -> list[Path]:
    """The data roots plus this session's own upload area (once it has uploaded something)."""
    return paths.data_roots(extra=[upload_area()] if _TOKEN_KEY in st.session_state else [])


def _skipped_note(skipped: tuple[tuple[str, str], ...]) -> None:
    if skipped:
        with st.expander(f"⚠️ {len(skipped)} file(s) skipped"):
            st.dataframe(pd.DataFrame([{"file": Path(f).name, "folder": Path(f).parent.name, "reason": r}
                                       for f, r in skipped]), hide_index=True, width="stretch")


def _folder() -> Path | None:
    roots = [r for r in paths.data_roots() if r.is_dir()]  # the operator's roots, by public name only
    default = birds.default_birds_dir()
    shown = paths.shown_path(default) if default is not None and default.is_dir() else ""
    text = st.text_input("Folder with one sub-folder per species (ImageFolder layout)",
                         value=shown, key="tl_folder",
                         placeholder="cub100  (a data folder below, or one of its sub-folders)")
    public = [n for n, r in paths.root_names(paths.data_roots()).items() if r in roots]
    st.caption(("Data folders on this server: " + ", ".join(f"`{n}`" for n in public) +
                ". Type one of them (or `name/sub-folder`)." if public else "No data folders on this server.") +
               " Running the app yourself? Set `DLTL_DATA_ROOTS` to your own folders.")
    if not text.strip():
        return None
    try:
        path = paths.confine(text.strip(), visitor_roots())
        if path.is_dir():
            return path
    except paths.PathRefused:
        pass
    # One message whether the path is outside the roots, missing or a file: no existence oracle.
    st.warning(f"`{text.strip()[:200]}` is not a folder inside this server's data folders. Choose one "
               "of the data folders listed above, or download CUB-200-2011 / upload a zip instead.")
    return None


def _download() -> Path | None:
    if birds.is_downloaded():
        st.success("CUB-200-2011 is in the cache (200 species, 11,788 photos).")
        return birds.cub.cub_root()
    st.markdown(f"The official archive: {birds.CUB_SIZE / 1e9:.2f} GB, checked against its md5 "
                "after download, then extracted into the cache folder.")
    if not st.button("Download CUB-200-2011", key="tl_download"):
        return None
    bar = st.progress(0.0, text="Connecting…")
    root = None
    try:
        root = birds.download_cub(
            progress=lambda done, total: bar.progress(
                done / total, text=f"Downloading: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB"),
            on_wait=lambda s: bar.progress(0.0, text=f"Another visitor is downloading CUB-200-2011; "
                                                     f"waiting for it ({s:.0f} s)…"))
        st.success("Downloaded and extracted.")
    except (RuntimeError, OSError) as err:
        st.warning(str(err))
    bar.empty()
    return root


def _upload() -> Path | None:
    limit = upload_limit_bytes()
    quota = up.session_quota()
    file = st.file_uploader(f"A zip of species folders (Species_A/photo.jpg, …), at most {limit / 2**20:g} MB",
                            type=["zip"], key="tl_zip",
                            help=f"Unpacked into a folder only this browser tab can use (at most "
                                 f"{up.MAX_UNPACKED_BYTES // 2**20} MB and {up.MAX_FILES:,} files and folders "
                                 f"per zip, {quota // 2**20} MB in all); removed when the tab is closed. "
                                 f"Photos of more than {MAX_PIXELS / 1e6:g} megapixels, or whose decoding would "
                                 f"need more than {MAX_DECODED_BYTES // 2**20} MB of memory, are skipped.")
    if file is None:
        return None
    done = st.session_state.get("_dltl_upload_done") or {}
    if file.file_id not in done or not Path(done[file.file_id][0]).is_dir():
        alive = session_alive()  # a closed tab stops the unpack between two photos
        try:
            unpacked = up.unpack_species_zip(file.getvalue(), dest_root=upload_area(), max_bytes=limit,
                                             quota=quota, total_quota=up.total_quota(),
                                             should_stop=None if alive is None else (lambda: not alive()))
        except ValueError as err:
            st.warning(f"That zip cannot be used: {err}")
            return None
        except OSError as err:  # its text may name a server path: only the reason is shown
            logging.getLogger(__name__).warning("unpacking an upload failed: %s", err)
            st.warning(f"That zip could not be unpacked on this server ({err.strerror or 'input/output error'}).")
            return None
        done = {file.file_id: (str(unpacked.root), unpacked.skipped)}  # only the latest upload
        st.session_state["_dltl_upload_done"] = done
    root, skipped = done[file.file_id]
    _skipped_note(skipped)
    return Path(root)


def choose_bird_folder(url: UrlState) -> Path | None:
    """Draw the *Photos from* choice (folder / CUB download / zip upload); return the species root.

    Args:
        url: the page's URL state; ``source`` is read from it. The chosen source is in
            ``st.session_state[SOURCE_KEY]`` for the page's ``url.sync``.

    Returns:
        A folder inside the data roots or this session's upload area, or None (the
        reason is already shown).
    """
    st.radio("Photos from", SOURCES, index=SOURCES.index(url.choice("source", SOURCES[0], SOURCES)),
             horizontal=True, key=SOURCE_KEY)
    source = st.session_state[SOURCE_KEY]
    _maybe_sweep()
    if _TOKEN_KEY in st.session_state:
        upload_area()  # marks this session's uploads alive (see DLTL_UPLOAD_TTL)
    if source == "Folder":
        return _folder()
    if source == "Download CUB-200-2011":
        return _download()
    return _upload()
