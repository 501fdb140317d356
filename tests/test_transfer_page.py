"""The transfer-learning page through Streamlit's AppTest: default view, pickers, uploads, bad input."""

from __future__ import annotations

import functools
import io
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dltl_core import paths
from PIL import Image
from streamlit.testing.v1 import AppTest

import dltl_core.birds as birds_pkg
from dltl_core.birds import cub, list_species
from tests.conftest import assert_clean, open_page

PAGE = "pages/30_transfer.py"


def _metrics(at: AppTest) -> dict[str, float]:
    return {m.label: float(m.value.rstrip("%")) / 100 for m in at.metric}


def _until(at: AppTest, done, timeout: float = 300) -> None:
    """Rerun the page until ``done(at)``: fine-tuning runs as a job in its own process."""
    t0 = time.monotonic()
    while not done(at) and time.monotonic() - t0 < timeout:
        time.sleep(1)
        at.run()


@pytest.fixture(scope="module")
def at_default(birds_dir) -> AppTest:
    return open_page(PAGE)


def test_default_view_trains_the_linear_head_on_the_bird_folder(at_default, birds_dir):
    at = at_default
    assert_clean(at)
    assert "Transfer learning" in at.title[0].value
    # The box names the folder by its public name, never the server's path, and reads it back.
    shown = at.text_input(key="tl_folder").value
    assert shown == birds_dir.resolve().name and str(birds_dir.resolve().parent) not in shown
    assert paths.confine(shown) == birds_dir.resolve()
    assert not any(str(birds_dir.resolve()) in c.value for c in at.caption)  # no server path on the page
    acc = _metrics(at)
    assert list(acc) == ["Transfer (frozen)"] and acc["Transfer (frozen)"] >= 0.9


def test_species_count_name_picker_and_seed(at_default):
    at = at_default
    at.slider(key="tl_k").set_value(3).run()
    assert_clean(at)
    assert at.query_params["k"] == ["3"] or at.query_params["k"] == "3"
    at.radio(key="tl_pick_by").set_value("Name").run()
    assert_clean(at)
    names = at.multiselect(key="tl_names")
    assert len(names.value) == 5 and len(at.metric) == 1
    names.set_value(names.value[:1]).run()
    assert_clean(at)
    assert any("at least 2 species" in w.value for w in at.warning)
    assert not at.metric
    at.radio(key="tl_pick_by").set_value("Count").run()
    at.number_input(key="tl_seed").set_value(2).run()
    assert_clean(at)
    assert len(at.metric) == 1


def test_missing_or_unusable_folders_give_messages_not_errors(at_default, tmp_path, birds_dir, monkeypatch):
    at = at_default
    monkeypatch.setenv("DLTL_DATA_ROOTS", f"{birds_dir}:{tmp_path / 'one'}")  # folders visitors may use
    at.text_input(key="tl_folder").set_value("").run()
    assert_clean(at)
    assert any("No bird photos yet" in i.value for i in at.info)
    at.text_input(key="tl_folder").set_value(str(tmp_path / "nowhere")).run()
    assert_clean(at)
    assert any("is not a folder" in w.value for w in at.warning)
    one = tmp_path / "one" / "Lonely_Bird"
    one.mkdir(parents=True)
    (one / "a.jpg").write_bytes(next((birds_dir / list_species(birds_dir)[0]).iterdir()).read_bytes())
    (tmp_path / "one" / "Empty_Bird").mkdir()
    at.text_input(key="tl_folder").set_value(str(tmp_path / "one")).run()
    assert_clean(at)
    texts = " ".join(w.value for w in at.warning)
    assert "no photos" in texts and "at least 2" in texts


def _bird_zip(birds_dir: Path, per_species: int = 4) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in list_species(birds_dir)[:2]:
            for f in sorted((birds_dir / name).iterdir())[:per_species]:
                zf.writestr(f"upload/{name}/{f.name}", f.read_bytes())
        zf.writestr("../escape.jpg", b"x")
    return buf.getvalue()


def test_zip_upload_trains_on_the_uploaded_species(birds_dir):
    at = open_page(PAGE)
    at.radio(key="tl_source").set_value("Upload a zip").run()
    assert_clean(at)
    assert any("No bird photos yet" in i.value for i in at.info)
    at.file_uploader(key="tl_zip").set_value(("junk.zip", b"not a zip", "application/zip")).run()
    assert_clean(at)
    assert any("not a valid zip" in w.value for w in at.warning)
    at.file_uploader(key="tl_zip").set_value(("birds.zip", _bird_zip(birds_dir), "application/zip")).run()
    assert_clean(at)
    assert list(_metrics(at)) == ["Transfer (frozen)"]
    assert any("skipped" in e.label for e in at.expander)


def test_cub_download_offline_shows_the_folder_option(monkeypatch):
    # A closed local port stands in for "no network" (and keeps an online CI from downloading 1.1 GB).
    monkeypatch.setattr(birds_pkg, "download_cub",
                        functools.partial(cub.download_cub, url="http://127.0.0.1:9/CUB.tgz", timeout=2))
    at = open_page(PAGE)
    at.radio(key="tl_source").set_value("Download CUB-200-2011").run()
    assert_clean(at)
    at.button(key="tl_download").click().run()
    assert_clean(at)
    assert any("cannot download" in w.value and "folder" in w.value for w in at.warning)


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def test_predict_with_uploaded_photos_good_and_bad(at_default, birds_dir):
    at = at_default
    at.text_input(key="tl_folder").set_value(str(birds_dir)).run()
    assert_clean(at)
    up = at.file_uploader(key="tl_photo")
    up.set_value(("fake.jpg", b"definitely not a jpeg", "image/jpeg")).run()
    assert_clean(at)
    assert any("cannot be used as a photo" in w.value for w in at.warning)
    rgb = np.asarray(Image.open(next((birds_dir / list_species(birds_dir)[0]).iterdir())))
    for name, blob, mime in [("cmyk.jpg", _png(Image.fromarray(rgb).convert("CMYK"), "JPEG"), "image/jpeg"),
                             ("gray16.png", _png(Image.fromarray(rgb[..., 0].astype(np.uint16) * 250)), "image/png"),
                             ("alpha.png", _png(Image.fromarray(rgb).convert("RGBA")), "image/png"),
                             ("bomb.png", _png(Image.new("1", (9000, 9000))), "image/png")]:
        at.file_uploader(key="tl_photo").set_value((name, blob, mime)).run()
        assert_clean(at)
        if name == "bomb.png":
            assert any("too large" in w.value for w in at.warning)
        else:
            assert not any("cannot be used" in w.value for w in at.warning), name


def test_a_picked_photo_is_predicted_once_for_every_session(birds_dir, monkeypatch):
    # A class opening the page all sees the default picked photo: the backbone runs on it once,
    # not once per student; another photo (or an upload) is its own prediction.
    from dltl_ui.transfer import views
    calls: list[str] = []
    real = views.predict_photo
    monkeypatch.setattr(views, "predict_photo", lambda *a, **k: calls.append("run") or real(*a, **k))
    views._shared_prediction.clear()
    first, second = open_page(PAGE), open_page(PAGE)
    assert_clean(first)
    assert_clean(second)
    assert calls == ["run"]
    options = first.selectbox(key="tl_pick").options
    assert len(options) > 1
    second.selectbox(key="tl_pick").select_index(1).run()
    assert_clean(second)
    assert calls == ["run", "run"]
    first.run()  # a rerun of the first session predicts nothing again
    assert calls == ["run", "run"]


def test_finetune_button_adds_a_mode_and_is_cached(birds_dir):
    at = open_page(PAGE)
    at.slider(key="tl_k").set_value(2).run()
    at.slider(key="tl_cap").set_value(5).run()
    at.slider(key="tl_epochs").set_value(1)
    at.select_slider(key="tl_size").set_value(96).run()
    assert_clean(at)
    at.button(key="tl_run_ft").click().run()
    assert_clean(at)
    _until(at, lambda a: "Fine-tuning" in _metrics(a) or a.exception or a.error)
    assert_clean(at)
    assert list(_metrics(at)) == ["Transfer (frozen)", "Fine-tuning"]
    at.run()  # no click: the result comes from st.cache_data, keyed by the config
    assert_clean(at)
    assert list(_metrics(at)) == ["Transfer (frozen)", "Fine-tuning"]
    at.radio(key="tl_fmap").set_value("t-SNE").run()
    assert_clean(at)


def test_deep_link_settings_and_malformed_values(birds_dir):
    at = open_page(PAGE, query={"k": "3", "cap": "lots"})
    assert_clean(at)
    assert at.slider(key="tl_k").value == 3 and at.slider(key="tl_cap").value == 40
    assert any("cap=lots" in w.value for w in at.warning)
    assert len(at.metric) == 1


def test_species_whose_photos_are_all_broken(tmp_path, monkeypatch):
    for name in ("Broken_A", "Broken_B"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.jpg").write_bytes(b"\xff\xd8\xff garbage")
    monkeypatch.setenv("DLTL_BIRDS_DIR", str(tmp_path))  # the page's default folder
    at = open_page(PAGE)
    assert_clean(at)
    assert at.text_input(key="tl_folder").value == tmp_path.name  # the default folder, by its public name
    assert any("could be read" in w.value for w in at.warning)
    assert not at.metric


def test_page_load_never_reaches_the_model_hub(monkeypatch):
    from dltl_core import backbones as bk

    def no_network(*args, **kwargs):
        raise AssertionError("the page asked the model hub on load")

    monkeypatch.setattr(bk, "_hub_reachable", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    at = open_page(PAGE)
    assert_clean(at)
    assert list(_metrics(at)) == ["Transfer (frozen)"]
    monkeypatch.setattr(bk, "_hub_reachable", lambda: (False, "no network: test"))
    at.button(key="tl_hub").click().run()  # the explicit action asks, with a short timeout
    assert_clean(at)
    at.selectbox(key="tl_backbone").set_value("resnet18").run()
    assert_clean(at)
    assert any("no network: test" in w.value for w in at.warning) or bk._hub_weights_cached("resnet18")


def test_a_link_alone_never_starts_heavy_extraction(monkeypatch):
    from dltl_core import features

    def no_extraction(*args, **kwargs):
        raise AssertionError("a link started the feature extraction of 50 species")

    monkeypatch.setattr(features, "_extract_chunk", no_extraction)
    at = open_page(PAGE, query={"k": "50", "cap": "200"})
    assert_clean(at)
    assert at.slider(key="tl_k").value == 50
    assert any("need their features extracted first" in i.value for i in at.info)
    assert at.button(key="tl_extract") is not None and not at.metric


@pytest.mark.slow  # a fine-tuning job in its own process, stopped after its first epoch
def test_stop_keeps_the_curve_of_the_finished_epochs(birds_dir):
    from dltl_core.job_runner import get_runner

    at = open_page(PAGE)
    at.slider(key="tl_k").set_value(2).run()
    at.slider(key="tl_cap").set_value(10).run()
    at.slider(key="tl_epochs").set_value(20)
    at.select_slider(key="tl_size").set_value(96).run()
    at.button(key="tl_run_ft").click().run()
    assert_clean(at)
    job = at.session_state["_dltl_job::tl_finetune"]["id"]
    t0 = time.monotonic()
    while not get_runner().poll(job).payloads and time.monotonic() - t0 < 300:
        time.sleep(0.5)
    at.button(key="tl_finetune__stop").click().run()
    _until(at, lambda a: any("was stopped" in w.value for w in a.warning), timeout=60)
    assert_clean(at)
    note = next(w.value for w in at.warning if "was stopped" in w.value)
    assert "finished epoch" in note and "learning curves below keep" in note
    assert list(_metrics(at)) == ["Transfer (frozen)"]  # no model was kept: no metric for it


def test_download_this_model_gives_a_file_that_predicts_like_the_page(birds_dir, tmp_path):
    """The linear model's file reloads with weights_only=True and reproduces its validation accuracy."""
    from dltl_core import checkpoint

    at = open_page(PAGE)
    assert_clean(at)
    acc = _metrics(at)["Transfer (frozen)"]
    at.button(key="tl_dl_go").click().run()
    assert_clean(at)
    data = [d for d in at.get("download_button") if d.proto.label.startswith("Download")]
    assert data, "no download button after preparing the file"
    # The bytes the button serves are a DLTL checkpoint of the frozen-backbone network.
    key, blob = at.session_state["tl_dl"]
    ck = checkpoint.load(blob)
    assert ck["task"] == "transfer" and len(ck["classes"]) == 10
    assert ck["metrics"]["val_accuracy"] == pytest.approx(acc, abs=0.006)


@pytest.mark.slow
def test_fine_tune_settings_come_from_the_link_and_classroom_folds_the_controls(birds_dir):
    """The fine-tune widgets are bound (issue 18): a link sets them and keeps them; classroom
    mode folds the species / photos / seed row into the closed settings expander."""
    from dltl_core.settings import settings_of
    from dltl_core.transfer import TransferConfig

    link = {"k": "3", "epochs": "5", "size": "128", "ft_way": "full", "unfreeze": "3", "factor": "0.1",
            "lr": "0.001"}
    at = open_page(PAGE, query=link, state={"classroom": True})  # as the sidebar toggle sets it
    assert_clean(at)
    assert at.slider(key="tl_epochs").value == 5 and at.select_slider(key="tl_size").value == 128
    assert at.radio(key="tl_ft_way").value == "full" and at.select_slider(key="tl_unfreeze").value == 3
    assert at.select_slider(key="tl_factor").value == 0.1 and at.select_slider(key="tl_lr").value == 0.001
    assert at.select_slider(key="tl_unfreeze").disabled  # end to end: every stage trains
    params = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert {k: params.get(k) for k in link} == link
    folded = [e for e in at.expander if e.label == "⚙️ Settings"]
    assert folded and folded[0].slider(key="tl_k").value == 3
    at2 = open_page(PAGE, query={"epochs": "999"})  # past the page's range: clamped to the declared end
    assert_clean(at2)
    top = settings_of(TransferConfig)["epochs"].widget_range[1]
    assert at2.slider(key="tl_epochs").value == top and any("epochs=999" in w.value for w in at2.warning)
