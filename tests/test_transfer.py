"""Transfer learning on real bird photos: linear head on cached features, fine-tuning, scratch, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from dltl_core import cli, features, photos
from dltl_core import transfer as tl
from dltl_core.backbones import create_backbone
from dltl_core.birds import list_species, pretty_name


@pytest.fixture(scope="module")
def backbone():
    return create_backbone()


@pytest.fixture(scope="module")
def linear10(birds_dir, backbone):
    """10 species, default backbone, frozen features: extracted once per test session (disk cache)."""
    return tl.run_transfer(tl.TransferConfig(data=str(birds_dir), species="10"), backbone=backbone)


@pytest.mark.slow  # the first use of the fixture extracts 388 photos' features (~15-60 s on 2 cores)
def test_linear_transfer_on_10_species_reaches_90_percent(linear10, birds_dir):
    r = linear10
    assert r.species == list_species(birds_dir)[:10]
    assert r.val_accuracy >= 0.90, r.val_accuracy
    assert r.n_val >= 70 and r.n_train >= 280
    assert r.skipped == []
    # The report is self-consistent: confusion matrix, per-species accuracy, mistakes.
    conf = np.array(r.confusion)
    assert conf.sum() == r.n_val and conf.trace() / conf.sum() == pytest.approx(r.val_accuracy)
    assert [p["n"] for p in r.per_species] == conf.sum(1).tolist()
    assert len(r.mistakes) == r.n_val - conf.trace()
    assert all(m["true"] != m["predicted"] for m in r.mistakes)
    hist = r.history
    assert len(hist) == 30 and hist[-1]["val_acc"] > hist[0]["val_acc"] - 1e-9
    assert all(b["elapsed"] >= a["elapsed"] for a, b in zip(hist, hist[1:]))
    assert len(r.feature_map) == r.n_train + r.n_val and {p["stage"] for p in r.feature_map} == {"before"}


def test_second_run_reads_the_feature_cache(linear10, birds_dir, backbone, monkeypatch):
    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted again instead of read from the cache")

    monkeypatch.setattr(features, "_extract_chunk", no_extraction)
    again = tl.run_transfer(tl.TransferConfig(data=str(birds_dir), species="10"), backbone=backbone)
    assert again.features_cached
    assert again.val_accuracy == pytest.approx(linear10.val_accuracy)
    # Another seed: another split and head, same cached features.
    other = tl.run_transfer(tl.TransferConfig(data=str(birds_dir), species="10", seed=1), backbone=backbone)
    assert other.features_cached and other.val_accuracy >= 0.85


def test_feature_cache_key_changes_with_files_and_transform(backbone, birds_dir, tmp_path):
    f = tmp_path / "a.jpg"
    f.write_bytes(next((birds_dir / list_species(birds_dir)[0]).iterdir()).read_bytes())
    k1 = features.feature_cache_key(backbone, [str(f)])
    f.write_bytes(f.read_bytes() + b"\0")  # edited photo: new size
    assert features.feature_cache_key(backbone, [str(f)]) != k1
    assert features.feature_cache_key(replace(backbone, transform_id="other"), [str(f)]) != \
        features.feature_cache_key(backbone, [str(f)])


def test_cached_features_equal_a_bare_timm_forward(linear10, backbone, birds_dir):
    from dltl_core.birds import load_birds
    from dltl_core.images import open_rgb

    b = load_birds(birds_dir, 10)
    fs = features.extract_features(backbone, b.files[:3], b.labels[:3])
    with torch.inference_mode():
        x = torch.stack([backbone.transform(open_rgb(f)) for f in b.files[:3]])
        ref = backbone.model.forward_head(backbone.model.forward_features(x), pre_logits=True)
    torch.testing.assert_close(fs.features, ref, rtol=1e-4, atol=1e-4)


def test_predict_photo_gives_species_and_imagenet_top5(linear10, backbone, birds_dir):
    photo = linear10.feature_map[0]["file"]
    out = tl.predict_photo(backbone, linear10, photo)
    assert len(out["species"]) == 5 and len(out["imagenet"]) == 5
    probs = [p for _, p in out["species"]]
    assert probs == sorted(probs, reverse=True)
    assert out["species"][0][0] == linear10.feature_map[0]["species"]  # a training photo: learned
    from dltl_core.images import ImageError
    with pytest.raises(ImageError):
        tl.predict_photo(backbone, linear10, b"not a photo")


@pytest.mark.slow  # 3 s alone on 2 cores, up to ~35 s when they are shared
def test_finetune_trains_a_copy_and_leaves_the_shared_backbone_alone(backbone, birds_dir):
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    cfg = tl.TransferConfig(data=str(birds_dir), species="3", max_per_species=6, mode="finetune",
                            epochs=2, image_size=64, unfreeze_blocks=2, batch_size=4, feature_map="pca")
    r = tl.run_transfer(cfg, backbone=backbone)
    after = backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the shared backbone was modified"
    assert not backbone.model.training and not any(p.requires_grad for p in backbone.model.parameters())
    assert len(r.history) == 2 and r.n_train + r.n_val == 18 and 0 <= r.val_accuracy <= 1
    tuned = r.model.net.state_dict()
    # Only the last stages changed; the frozen stem kept its weights and BatchNorm statistics.
    assert torch.equal(tuned["conv_stem.weight"], before["conv_stem.weight"])
    assert torch.equal(tuned["bn1.running_mean"], before["bn1.running_mean"])
    assert not torch.equal(tuned["conv_head.weight"], before["conv_head.weight"])
    assert tuned["classifier.weight"].shape == (3, 1280)
    stages = {p["stage"] for p in r.feature_map}
    assert stages == {"before", "after"}
    out = tl.predict_photo(backbone, r, r.feature_map[0]["file"])
    assert len(out["species"]) == 3


def test_scratch_uses_the_same_architecture_from_random_weights(backbone, birds_dir):
    cfg = tl.TransferConfig(data=str(birds_dir), species="2", max_per_species=5, mode="scratch",
                            epochs=1, image_size=64, batch_size=4, augment=False, feature_map="none")
    r = tl.run_transfer(cfg, backbone=backbone)
    assert type(r.model) is type(backbone.model)
    assert not torch.equal(r.model.state_dict()["conv_stem.weight"], backbone.model.state_dict()["conv_stem.weight"])
    assert len(r.history) == 1 and r.n_train + r.n_val == 10


def test_bad_configs_are_clear_errors(birds_dir, backbone):
    with pytest.raises(ValueError, match="unknown mode"):
        tl.TransferConfig(data=str(birds_dir), mode="magic")
    with pytest.raises(ValueError, match="at least 2"):
        tl.run_transfer(tl.TransferConfig(data=str(birds_dir), species="1"), backbone=backbone)
    with pytest.raises(FileNotFoundError):
        tl.run_transfer(tl.TransferConfig(data=str(birds_dir / "nope")), backbone=backbone)


def test_batch_transform_crops_flips_and_normalizes(backbone):
    x = torch.randint(0, 256, (4, 3, 73, 73), dtype=torch.uint8)
    t = photos.make_batch_transform(backbone.data_config, 64, augment=True, seed=0)
    train, val = t(x, True), t(x, False)
    assert train.shape == val.shape == (4, 3, 64, 64) and val.dtype == torch.float32
    mean = torch.tensor(backbone.data_config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(backbone.data_config["std"]).view(1, 3, 1, 1)
    torch.testing.assert_close(val, (x[:, :, 4:68, 4:68].float() / 255 - mean) / std)


def test_cli_json_keys_and_test_data(linear10, birds_dir, capsys):
    code = cli.main(["transfer", "--data", str(birds_dir), "--species", "10", "--mode", "linear",
                     "--test-data", str(birds_dir), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"mode", "species", "val_accuracy", "test_accuracy", "seconds", "images_per_second",
            "skipped_files"} <= set(out)
    assert out["mode"] == "linear" and out["species"] == linear10.species
    assert out["val_accuracy"] == pytest.approx(linear10.val_accuracy)
    assert out["test_accuracy"] > 0.95  # DIR2 here includes the training photos
    assert out["skipped_files"] == 0 and out["features_cached"]
    names = ",".join(pretty_name(s) for s in linear10.species[:3])
    cli.main(["transfer", "--data", str(birds_dir), "--species", names, "--json"])
    assert json.loads(capsys.readouterr().out)["species"] == linear10.species[:3]
    assert cli.main(["transfer", "--data", str(birds_dir), "--species", "1", "--json"]) == 2
    assert "from 2 to 100" in json.loads(capsys.readouterr().out)["error"]  # refused, with the valid range
