"""Architectures, profiling and the CIFAR data path, checked against PyTorch/torchvision."""

from __future__ import annotations

import json
import pytest
import torch
import torchvision
from torch import nn

from dltl_core.archs import ARCHS, create_arch, list_archs
from dltl_core.device import get_policy
from dltl_core.data.cifar import MEAN, STD, CifarAugment, cifar_splits, load_cifar10, normalize_batch
from dltl_core.profile import count_flops, count_params, describe, layer_table, meta_arch, profile_arch

# Parameter counts of kuangliu/pytorch-cifar's definitions (the reference table's models),
# computed from that repository's code at width 1 and 10 classes.
KUANGLIU_PARAMS = {
    "resnet18": 11_173_962,
    "resnet34": 21_282_122,
    "densenet121": 6_956_298,
    "densenet_cifar": 1_000_618,
    "vgg11_bn": 9_231_114,
    "vgg16_bn": 14_728_266,
    # kuangliu omits the paper's final BN (2 x 512 parameters); we keep it.
    "preact_resnet18": 11_171_146 + 2 * 512,
}


def test_registry_lists_the_assignment_architectures():
    assert set(list_archs()) == set(KUANGLIU_PARAMS)
    for name in list_archs():
        d = describe(name)
        for key in ("block", "connections", "preactivation", "problem", "paper"):
            assert len(d[key]) > 20, (name, key)
    refs = {n: i.reference_acc for n, i in ARCHS.items() if i.reference_acc}
    assert refs == {"vgg16_bn": 92.64, "resnet18": 93.02, "densenet121": 95.04, "preact_resnet18": 95.11}


@pytest.mark.parametrize("name", list(KUANGLIU_PARAMS))
def test_param_counts_match_the_reference_implementations(name):
    assert count_params(meta_arch(name)) == KUANGLIU_PARAMS[name]
    assert meta_arch(name).fc.weight.device.type == "meta"  # counted without allocating weights


def _tv(factory) -> nn.Module:
    with torch.device("meta"):  # shapes only: instant, no memory
        return factory(num_classes=10)


def test_param_counts_against_torchvision():
    # Same blocks as torchvision's ImageNet models; only the stem (and VGG's classifier) differ.
    stem_diff = 64 * 3 * 7 * 7 - 64 * 3 * 3 * 3  # 7x7 stem conv vs our 3x3
    assert count_params(meta_arch("resnet18")) == count_params(_tv(torchvision.models.resnet18)) - stem_diff
    assert count_params(meta_arch("resnet34")) == count_params(_tv(torchvision.models.resnet34)) - stem_diff
    # torchvision DenseNet-121: 7x7 conv + BN stem; ours: one 3x3 conv, no BN.
    tvd = count_params(_tv(torchvision.models.densenet121))
    assert count_params(meta_arch("densenet121")) == tvd - 64 * 3 * 7 * 7 - 2 * 64 + 64 * 3 * 3 * 3
    tvv = _tv(torchvision.models.vgg16_bn)
    assert count_params(meta_arch("vgg16_bn").features) == count_params(tvv.features)
    assert abs(count_params(meta_arch("resnet18")) / 1e6 - 11.17) < 0.01


@pytest.mark.parametrize("name", list(KUANGLIU_PARAMS))
def test_forward_backward_small_batch(name):
    model = create_arch(name, width=0.125, seed=0)
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([0, 3, 5, 9])
    out = model(x)
    assert out.shape == (4, 10)
    loss = nn.functional.cross_entropy(out, y)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0
    # A step on the same batch lowers its loss (the gradient is a descent direction).
    with torch.no_grad():
        for p in model.parameters():
            p -= 1e-2 * p.grad
    assert nn.functional.cross_entropy(model(x), y).item() < loss.item()


def test_width_scales_params_and_flops_roughly_quadratically():
    for name in list_archs():
        full, half = meta_arch(name), meta_arch(name, 0.5)
        p1, f1 = count_params(full), count_flops(full)
        ph, fh = count_params(half), count_flops(half)
        assert 0.18 < ph / p1 < 0.32, name
        assert 0.18 < fh / f1 < 0.32, name
        assert ph < count_params(meta_arch(name, 0.75)) < p1  # continuous in between
    # Counting on the meta device gives the same FLOPs as on real weights.
    assert count_flops(create_arch("vgg11_bn", width=0.25)) == count_flops(meta_arch("vgg11_bn", 0.25))


def test_flop_count_of_one_conv_is_two_per_multiply_add():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv) == 2 * 3 * 8 * 9 * 32 * 32
    # ResNet-18 (CIFAR) is about 0.56 G multiply-adds per image.
    assert 1.0e9 < count_flops(meta_arch("resnet18")) < 1.2e9


def test_layer_table_adds_up():
    for name in ("resnet18", "densenet121", "vgg16_bn", "preact_resnet18"):
        model = meta_arch(name, 0.5)
        rows = layer_table(model)
        assert sum(r["params"] for r in rows) == count_params(model)
        assert sum(r["flops"] for r in rows) == count_flops(model)
        assert rows[-1]["output"] == "10"


def test_create_arch_is_seeded_and_checks_input():
    a, b = create_arch("resnet18", width=0.25, seed=3), create_arch("resnet18", width=0.25, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="unknown architecture"):
        create_arch("resnet1000")
    with pytest.raises(ValueError, match="width"):
        create_arch("resnet18", width=0)
    assert create_arch("vgg11_bn", num_classes=7, width=0.25)(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_profile_measures_throughput_through_fit():
    prof = profile_arch("vgg11_bn", 0.25, batch_size=8, batches=2, use_cache=False)
    assert prof.params == count_params(create_arch("vgg11_bn", width=0.25))
    assert prof.train_images_per_second > 0 and prof.infer_images_per_second > 0
    assert prof.device == get_policy().name


def test_arch_command_prints_the_json_contract(capsys):
    from dltl_core.cli import main

    assert main(["arch", "--name", "vgg11_bn", "--width", "0.25", "--batch-size", "8", "--batches", "1",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"name", "params", "flops", "train_images_per_second", "infer_images_per_second"} <= set(data)
    assert data["params"] == count_params(create_arch("vgg11_bn", width=0.25))
    assert data["train_images_per_second"] > 0
    assert main(["arch", "--name", "nope", "--json"]) == 2
    assert "unknown architecture" in json.loads(capsys.readouterr().out)["error"]
    assert main(["arch", "--name", "resnet18", "--no-measure", "--layers"]) == 0
    text = capsys.readouterr().out
    assert "11,173,962" in text and "layer4.1" in text


def test_cifar_folder_is_decoded_to_uint8(cifar_dir):
    data = load_cifar10(cifar_dir, max_per_class=6)
    assert data.x.shape == (60, 3, 32, 32) and data.x.dtype == torch.uint8
    assert data.y.bincount().tolist() == [6] * 10
    assert data.classes[0] == "airplane" and len(data.classes) == 10
    (xt, yt), (xv, yv), classes = cifar_splits(cifar_dir, max_per_class=6, val_fraction=0.1, seed=0)
    assert len(yt) == 54 and len(yv) == 6 and len(classes) == 10
    (xt2, _), _, _ = cifar_splits(cifar_dir, max_per_class=6, val_fraction=0.1, seed=0)
    assert torch.equal(xt, xt2)


def test_missing_cifar_offline_says_what_to_do(tmp_path):
    with pytest.raises(RuntimeError, match=r"train/<class>/\*\.jpg"):
        load_cifar10(tmp_path, download=False)


def test_normalize_matches_torchvision(cifar_dir):
    x = load_cifar10(cifar_dir, max_per_class=1).x
    ref = torchvision.transforms.Normalize(MEAN, STD)(x.float() / 255)
    assert torch.allclose(normalize_batch(x), ref, atol=1e-6)


def _window(img: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    w = img[:, dy:dy + 32, dx:dx + 32]
    return w.flip(2) if flip else w


def test_augment_crops_and_flips_each_image_independently():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=gen)
    out = CifarAugment(seed=1).augment(x)
    again = CifarAugment(seed=1).augment(x)
    assert torch.equal(out, again)  # seeded
    padded = nn.functional.pad(x, (4, 4, 4, 4))
    offsets = set()
    for i in range(len(x)):
        hits = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)
                if torch.equal(out[i], _window(padded[i], dy, dx, f))]
        assert hits, f"image {i} is not a crop (or flipped crop) of its padded original"
        offsets.add(hits[0])
    assert len(offsets) > 4  # different images get different crops
    # Evaluation batches are only normalised.
    assert torch.equal(CifarAugment()(x, False), normalize_batch(x))
