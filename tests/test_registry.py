"""The one Registry: registration forms, duplicate warning, seeded creation."""

from __future__ import annotations

import functools
import threading
import warnings

import pytest
import torch
from torch import nn

from dltl_core.registry import Registry, entry_label


def _reg() -> Registry:
    reg = Registry("model")

    @reg.register("lin", label="Linear")
    def lin(width: int = 3) -> nn.Module:
        return nn.Linear(2, width)

    reg.register("wide", functools.partial(lin, width=16), label="Wide", family="linear")
    return reg


def test_register_both_forms_and_lookup():
    reg = _reg()
    assert reg.names() == ["lin", "wide"] and len(reg) == 2 and list(reg) == ["lin", "wide"]
    assert "lin" in reg and "nope" not in reg
    assert reg.create("wide").out_features == 16
    assert reg.create("lin", width=5).out_features == 5
    assert reg.meta("wide")["family"] == "linear" and entry_label(reg, "lin") == "Linear"
    with pytest.raises(TypeError):
        reg.meta("lin")["label"] = "x"  # metadata is read-only


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="unknown model 'nope'; choose from lin, wide"):
        _reg().get("nope")
    with pytest.raises(ValueError, match="unknown model"):
        _reg().create("nope", seed=0)


def test_duplicate_warns_and_later_wins():
    reg = _reg()
    with pytest.warns(RuntimeWarning, match="'lin' is registered twice"):
        reg.register("lin", lambda: nn.Linear(2, 7))
    assert reg.create("lin").out_features == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.register("fresh", lambda: None)  # a new name does not warn


def test_seeded_create_matches_manual_seed_and_leaves_rng_alone():
    reg = _reg()
    torch.manual_seed(0)
    ref = nn.Linear(2, 5).weight.detach().clone()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = reg.create("lin", seed=0, width=5).weight
    assert torch.equal(torch.random.get_rng_state(), before)  # caller's stream untouched
    assert torch.equal(a, ref)
    assert not torch.equal(reg.create("lin", seed=1, width=5).weight, ref)


def test_seeded_create_is_thread_safe():
    reg = _reg()
    ref = reg.create("wide", seed=3).weight.detach().clone()
    out: list[bool] = []

    def work(seed: int) -> None:
        for _ in range(30):
            w = reg.create("wide", seed=seed).weight
            if seed == 3:
                out.append(torch.equal(w, ref))

    threads = [threading.Thread(target=work, args=(s,)) for s in (3, 4, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out and all(out)


def test_non_callable_entry_and_bad_name():
    reg: Registry = Registry("thing")
    reg.register("data", {"lr": 0.1})
    assert reg.get("data") == {"lr": 0.1}
    with pytest.raises(TypeError):
        reg.create("data")
    with pytest.raises(ValueError):
        reg.register("", 1)


def test_remove():
    reg = _reg()
    reg.remove("lin")
    assert reg.names() == ["wide"]
    with pytest.raises(ValueError):
        reg.remove("lin")
