"""The training pages (loss & softmax, layers, mini-batches, overfitting) driven through AppTest."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from dltl_core.lessons.overfit import PRESETS, OverfitConfig
from dltl_core.lessons.softmax import softmax_losses
from tests.conftest import assert_clean, open_page

def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label))


def test_loss_page_numbers_follow_the_sliders():
    at = open_page("pages/20_loss.py")
    assert_clean(at)
    at.slider(key="ls_k").set_value(2).run()
    at.slider(key="ls_z0").set_value(-4.0).run()
    at.slider(key="ls_z1").set_value(4.0).run()
    assert_clean(at)
    expected = softmax_losses([-4.0, 4.0], 0)
    assert _metric(at, "Cross-entropy") == f"{expected['cross_entropy']:.3f}"
    assert float(_metric(at, "Cross-entropy")) > 7  # confidently wrong
    at.slider(key="ls_T").set_value(5.0).run()
    assert_clean(at)
    assert float(_metric(at, "Cross-entropy")) < 2  # a high temperature flattens the mistake
    assert at.query_params["T"] == ["5"] or at.query_params["T"] == "5"
    body = " ".join(m.value for m in at.markdown)
    assert "0.223" in body and "0.040" in body  # the lecture's example


def test_loss_page_from_a_bad_link():
    at = open_page("pages/20_loss.py", query={"T": "0", "k": "banana"})
    assert_clean(at)
    assert any("ignored" in w.value for w in at.warning)
    assert at.slider(key="ls_T").value == pytest.approx(0.1)


def _wait_for_layers(at: AppTest) -> None:
    """Click the training button if the page asks (a loaded machine estimates longer), then wait."""
    if [b for b in at.button if b.key == "ly_train"]:
        at.button(key="ly_train").click().run()
    deadline = time.time() + 240
    while "No nonlinearity = one linear map" not in " ".join(m.value for m in at.markdown) \
            and time.time() < deadline:
        assert_clean(at)
        time.sleep(1)
        at.run()
    at.run()  # a full rerun draws the page from the stored result


def test_layers_page_trains_and_shows_feature_maps():
    # A short budget on one seed trains by itself on an idle machine (the default, 30 epochs x 3
    # seeds, waits for a click).
    at = open_page("pages/21_layers.py", query={"epochs": "2", "seeds": "1"})
    assert_clean(at)
    _wait_for_layers(at)
    body = " ".join(m.value for m in at.markdown)
    assert "No nonlinearity = one linear map" in body
    at.slider(key="ly_digit").set_value(7).run()
    assert_clean(at)
    assert at.slider(key="ly_digit").value == 7
    at.slider(key="ly_channels").set_value(64).run()
    assert_clean(at)
    assert len(at.dataframe) == 2


def test_batches_page_bad_sizes_are_messages():
    at = open_page("pages/22_batches.py", state={"mb_epochs": 1, "mb_sizes": [32, 512]})
    assert_clean(at)
    assert len(at.dataframe) >= 1
    # The widget offers 0..1,438 (the training-set size); a larger size can only come from a link,
    # and is one message while the rest of the page keeps working.
    at = open_page("pages/22_batches.py", state={"mb_epochs": 1, "mb_sizes": [32, 512]}, query={"extra": "5000"})
    assert_clean(at)
    assert [w.value for w in at.warning if "extra=5000" in w.value and "1438" in w.value]
    assert at.number_input(key="mb_extra").value == 1438 and len(at.dataframe) >= 1
    at.number_input(key="mb_extra").set_value(0).run()
    at.multiselect(key="mb_sizes").set_value([]).run()
    assert_clean(at)
    assert any("at least one batch size" in w.value for w in at.warning)


def test_overfit_page_default_and_presets():
    at = open_page("pages/23_overfit.py")
    assert_clean(at)
    assert float(_metric(at, "Validation accuracy").rstrip("%")) > 80
    at.button(key="of_preset_overfit").click().run()
    assert_clean(at)
    preset = PRESETS["overfit"]
    assert at.session_state["of_depth"] == preset.depth and at.session_state["of_width"] == preset.width
    assert float(_metric(at, "Gap")) > 0.5
    assert at.query_params["depth"] in (["3"], "3")
    at.button(key="of_preset_good fit").click().run()
    assert_clean(at)
    assert abs(float(_metric(at, "Gap"))) < 0.1


def test_overfit_page_compare_and_divergence():
    at = open_page("pages/23_overfit.py", state={"of_epochs": 40})
    assert_clean(at)
    at.toggle(key="of_compare").set_value(True).run()
    assert_clean(at)
    assert len([m for m in at.metric if m.label == "Validation accuracy"]) == 3  # main run, A, B
    assert len(at.dataframe) == 1
    at.select_slider(key="of_lr").set_value(3.0).run()
    assert_clean(at)
    # AdamW at lr 3 blows the loss up in the first epoch: a message, the curve so far, no traceback.
    assert any("Diverged at epoch 1" in w.value for w in at.warning)


def test_overfit_page_shows_a_stopped_run_and_trains_again():
    cfg = OverfitConfig(epochs=9)
    partial = [{"epoch": 1, "train_loss": 0.7, "val_loss": 0.69, "train_acc": 0.5, "val_acc": 0.52, "lr": 0.01,
                "seconds": 0.01, "samples_per_second": 1e4}]
    at = open_page("pages/23_overfit.py", state={"of_epochs": 9, "overfit__stopped": cfg, "overfit__partial": partial})
    assert_clean(at)
    assert any("Stopped after 1 epoch" in w.value for w in at.warning)
    assert not [m for m in at.metric if m.label == "Validation accuracy"]
    at.button(key="overfit__resume").click().run()
    assert_clean(at)
    assert [m for m in at.metric if m.label == "Validation accuracy"]


@pytest.mark.slow
def test_layers_page_long_training_waits_for_a_click():
    # A longer run from a link alone: nothing starts; the button names the expected time.
    # Long enough to need a click even after the calibration has seen fast runs (auto-run <= 5 s).
    at = open_page("pages/21_layers.py", query={"epochs": "40", "seeds": "4"})
    assert_clean(at)
    buttons = [b for b in at.button if b.key == "ly_train"]
    assert buttons and "about" in buttons[0].label, [w.value for w in at.warning]
    assert "No nonlinearity = one linear map" not in " ".join(m.value for m in at.markdown)
    if [c for c in at.checkbox if c.key == "ly_train__ok"]:  # a long run asks first
        at.checkbox(key="ly_train__ok").check().run()
    at.button(key="ly_train").click().run()  # a worker process trains, with progress and Stop
    deadline = time.time() + 240
    while "No nonlinearity = one linear map" not in " ".join(m.value for m in at.markdown) and time.time() < deadline:
        assert_clean(at)
        time.sleep(1)
        at.run()
    assert_clean(at)
    assert "No nonlinearity = one linear map" in " ".join(m.value for m in at.markdown)
