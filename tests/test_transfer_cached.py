"""Fine-tuning on cached activations, parallel decoding, single-flight extraction, a shared backbone
used from several threads, progress and Stop, and Predict's "none of the trained species"."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from dltl_core import features
from dltl_core import transfer as tl
from dltl_core.backbones import create_backbone, imagenet_topk
from dltl_core.birds import load_birds
from dltl_core.images import open_rgb
from dltl_core.train import TrainConfig, evaluate, fit, predict


@pytest.fixture(scope="module")
def backbone():
    return create_backbone()


def _groups(model: tl.PartlyFrozen, body, head, cfg: TrainConfig) -> list[dict]:
    return [{"params": body, "lr": cfg.lr * 0.3}, {"params": head, "lr": cfg.lr}]


def test_stages_chain_to_the_timm_forward_and_match_timms_layer_groups(backbone):
    stages = tl.feature_stages(backbone.model)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        a = x
        for s in stages:
            a = s(a)
        torch.testing.assert_close(a, backbone.model.forward_features(x))
    # Freezing "all but the last 2 stages" freezes exactly the stages whose activations are cached.
    model, _, _ = tl.finetune_model(backbone, 3, 2)
    cut = tl.cut_index(backbone, 2)
    frozen = {id(p) for s in tl.feature_stages(model.net)[:cut] for p in s.parameters()}
    assert frozen and frozen == {id(p) for p in model.net.parameters() if not p.requires_grad}
    assert tl.stage_names(backbone.model)[cut:] == ["stage 7", "final conv"]


def test_training_on_cached_activations_equals_the_full_network_with_frozen_stages(backbone, birds_dir):
    """The reference: fit on the whole (partly frozen) network, on the photos, no augmentation."""
    b = load_birds(birds_dir, 3, max_per_species=4)
    transform, tid = tl.eval_transform(backbone, 64)
    cut = tl.cut_index(backbone, 2)
    acts = features.extract_activations(backbone, b.files, b.labels, tl.frozen_part(backbone, cut), "t",
                                        transform=transform, transform_id=tid, use_cache=False)
    x = torch.stack([transform(open_rgb(f)) for f in b.files])
    y = torch.tensor(b.labels)
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3, optimizer="adam", seed=0)
    torch.manual_seed(0)
    ref, body_r, head_r = tl.finetune_model(backbone, 3, 2)
    torch.manual_seed(0)
    ours, body_o, head_o = tl.finetune_model(backbone, 3, 2)
    start = {k: v.clone() for k, v in ours.net.state_dict().items()}
    fit(ref, (x, y), None, cfg, param_groups=_groups(ref, body_r, head_r, cfg))
    fit(tl.TailNet(ours.net, cut), (acts.features, acts.labels), None, cfg,
        param_groups=_groups(ours, body_o, head_o, cfg))
    got, want = ours.net.state_dict(), ref.net.state_dict()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5, msg=k)
    assert not torch.equal(got["conv_head.weight"], start["conv_head.weight"])  # it did train
    assert torch.equal(got["blocks.5.0.conv_pw.weight"], start["blocks.5.0.conv_pw.weight"])  # frozen


@pytest.mark.slow  # starts the worker processes (imports torch in each): 5-30 s on 2 shared cores
def test_decode_workers_give_the_same_features_and_keep_every_bad_file_guard(backbone, birds_dir, tmp_path):
    from PIL import Image

    good = load_birds(birds_dir, 2, max_per_species=3).files
    rgb = Image.open(good[0])
    rgb.convert("CMYK").save(tmp_path / "cmyk.jpg")
    rgb.convert("RGBA").save(tmp_path / "alpha.png")
    (tmp_path / "trunc.jpg").write_bytes(open(good[1], "rb").read()[:2000])
    (tmp_path / "text.jpg").write_bytes(b"not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    Image.new("1", (9000, 9000)).save(tmp_path / "bomb.png")
    files = [*good, *(str(tmp_path / n) for n in ("cmyk.jpg", "alpha.png", "trunc.jpg", "text.jpg",
                                                   "empty.jpg", "bomb.png"))]
    labels = [0] * len(files)
    one = features.extract_features(backbone, files, labels, use_cache=False, workers=0)
    many = features.extract_features(backbone, files, labels, use_cache=False, workers=2)
    assert one.files == many.files and len(one.files) == len(good) + 2  # CMYK and alpha converted
    torch.testing.assert_close(one.features, many.features)
    assert [f for f, _ in one.skipped] == [f for f, _ in many.skipped] and len(one.skipped) == 4
    reasons = dict(many.skipped)
    assert "too large" in reasons[str(tmp_path / "bomb.png")]
    assert "not an image" in reasons[str(tmp_path / "text.jpg")]


def test_extraction_is_single_flight(backbone, birds_dir, monkeypatch, tmp_path):
    b = load_birds(birds_dir, 2, max_per_species=3)
    calls = []
    real = features._extract_chunk

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(features, "_extract_chunk", counted)
    monkeypatch.setenv("DLTL_CACHE_DIR", str(tmp_path))
    out: list = []
    go = threading.Barrier(3)

    def visitor() -> None:
        go.wait()
        out.append(features.extract_features(backbone, b.files, b.labels, workers=0))

    threads = [threading.Thread(target=visitor) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(out) == 3 and len(calls) == 1, "three visitors, one extraction"
    assert sum(fs.extracted for fs in out) == len(b.files)
    assert all(torch.equal(fs.features, out[0].features) for fs in out)


def _snapshot(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow  # two threads on 2 shared cores: 10-40 s
def test_shared_backbone_unchanged_by_predict_evaluate_and_finetune_from_two_threads(backbone, birds_dir):
    model = backbone.model
    before, device = _snapshot(model), next(model.parameters()).device
    base = tl.TransferConfig(data=str(birds_dir), species="3", max_per_species=6, image_size=96,
                             feature_map="none")
    linear = tl.run_transfer(base, backbone=backbone)
    ft_cfg = replace(base, mode="finetune", unfreeze_blocks=2, epochs=1)
    photos = load_birds(birds_dir, 3, max_per_species=2).files
    x = torch.stack([backbone.transform(open_rgb(f)) for f in photos[:4]])
    errors: list[BaseException] = []
    go = threading.Barrier(2)

    def work_a() -> None:
        go.wait()
        tl.run_transfer(ft_cfg, backbone=backbone)
        tl.predict_photo(backbone, linear, photos[0])

    def work_b() -> None:
        go.wait()
        evaluate(model, (x, torch.tensor([11, 12, 13, 14])), batch_size=2)
        predict(model, x, batch_size=2)
        imagenet_topk(backbone, open_rgb(photos[1]))
        features.extract_features(backbone, photos, [0] * len(photos), use_cache=False)

    def run(fn) -> None:
        try:
            fn()
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(f,)) for f in (work_a, work_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the shared backbone's weights changed"
    assert next(model.parameters()).device == device and not model.training
    assert not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())


def test_progress_moves_through_every_phase_and_stop_keeps_finished_epochs(backbone, birds_dir):
    cfg = tl.TransferConfig(data=str(birds_dir), species="3", max_per_species=8, mode="finetune",
                            unfreeze_blocks=2, epochs=3, batch_size=4, image_size=64, feature_map="none")
    seen: list[tuple[float, str]] = []
    reports: list[tuple] = []
    epochs: list[dict] = []

    def stop_after_first_epoch() -> bool:
        return len(epochs) >= 1

    r = tl.run_transfer(cfg, backbone=backbone, progress=lambda f, m: seen.append((f, m)),
                        on_epoch=epochs.append, should_stop=stop_after_first_epoch,
                        report=lambda *a: reports.append(a))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    text = " ".join(m for _, m in seen)
    assert "computing the frozen stages" in text and "linear probe" in text and "epoch 1/3" in text
    assert r.interrupted and 1 <= len(r.history) <= 2 and r.history[0]["complete"]
    assert r.history == epochs  # the page keeps the curve of the finished epochs
    phases = {a[0] for a in reports}
    assert {"computing the frozen stages", "training"} <= phases
    assert [a[3] for a in reports if len(a) > 3 and a[3]] == epochs  # epoch rows as job payloads


@pytest.mark.slow  # extracts 15 more photos for species the head never saw
def test_predict_flags_photos_of_no_trained_species(backbone, birds_dir):
    linear = tl.run_transfer(tl.TransferConfig(data=str(birds_dir), species="5", max_per_species=40,
                                               feature_map="pca"), backbone=backbone)
    known = [p["file"] for p in linear.feature_map][:5]
    other = load_birds(birds_dir, 20, max_per_species=1).files[10:20]  # species 11-20: untrained
    flags_known = [tl.predict_photo(backbone, linear, f)["unknown"] for f in known]
    flags_other = [tl.predict_photo(backbone, linear, f)["unknown"] for f in other]
    assert sum(f is None for f in flags_known) >= 4
    assert sum(f is not None for f in flags_other) >= 6
    from PIL import Image
    from skimage import data as skdata

    cat = tl.predict_photo(backbone, linear, Image.fromarray(skdata.chelsea()))
    assert not cat["imagenet_bird"] and "not look like a bird" in cat["unknown"]
    probs = [p for _, p in cat["species"]]
    assert probs == sorted(probs, reverse=True)


def test_one_pass_fills_features_and_the_default_fine_tunings_activations(backbone, birds_dir, monkeypatch,
                                                                          tmp_path):
    monkeypatch.setenv("DLTL_CACHE_DIR", str(tmp_path))
    cfg = tl.TransferConfig(data=str(birds_dir), species="2", max_per_species=5, feature_map="none")
    fs = tl.ensure_features(cfg, backbone)
    b = load_birds(birds_dir, 2, max_per_species=5)
    direct = features.extract_features(backbone, b.files, b.labels, use_cache=False)
    assert fs.files == direct.files and fs.cost_seconds > 0
    torch.testing.assert_close(fs.features, direct.features, rtol=1e-4, atol=1e-4)

    def no_extraction(*args, **kwargs):
        raise AssertionError("photos were pushed through the backbone again")

    monkeypatch.setattr(features, "_extract_chunk", no_extraction)
    r = tl.run_transfer(tl.TransferConfig(data=str(birds_dir), species="2", max_per_species=5, mode="finetune",
                                          unfreeze_blocks=tl.DEFAULT_UNFREEZE, epochs=1, batch_size=4,
                                          feature_map="none"), backbone=backbone)
    assert r.cached_activations and len(r.history) == 1
    assert tl.run_transfer(cfg, backbone=backbone).features_cached
