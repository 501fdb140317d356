"""When fine-tuning pays: the shipped measurement, its computed caption, one fine-tuning default,
and a small real fine-tune beside the linear probe."""

from __future__ import annotations

import argparse
import copy
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from dltl_core import transfer as tl
from dltl_core import transfer_regimes as tr
from dltl_core.commands import transfer as cli
from dltl_core.separation import separation, separation_caption

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def shipped() -> dict:
    return tr.load()


def test_shipped_measurement_is_well_formed_with_provenance(shipped):
    for key in ("device", "versions", "started", "finished", "command", "split", "seeds", "finetune", "scratch"):
        assert shipped[key], key
    assert shipped["versions"]["torch"] and shipped["command"].startswith("python scripts/transfer_regimes.py")
    assert len(shipped["seeds"]) >= 2
    cells: dict[tuple, set] = {}
    for r in shipped["runs"]:
        assert 0 <= r["val_accuracy"] <= 1 and r["seconds"] > 0 and r["n_val"] > 0
        cells.setdefault((r["species"], str(r["train_per_species"]), r["mode"]), set()).add(r["seed"])
    assert {m for _, _, m in cells} == {"linear", "finetune", "scratch"}
    assert all(seeds == set(shipped["seeds"]) for seeds in cells.values()), "every cell over every seed"
    assert len({n for _, n, _ in cells}) >= 3, "several photo counts per species"
    # The measurement is of the shipped default fine-tuning.
    settings = tl.finetune_settings(tl.finetune_default_config("x"))
    assert {k: shipped["finetune"][k] for k in settings} == settings


def _with_finetune(data: dict, delta: float) -> dict:
    """A copy whose fine-tuning accuracy is the linear probe's plus ``delta`` (seed by seed)."""
    out = copy.deepcopy(data)
    lin = {(r["species"], str(r["train_per_species"]), r["seed"]): r["val_accuracy"] for r in out["runs"]
           if r["mode"] == "linear"}
    for r in out["runs"]:
        if r["mode"] == "finetune":
            r["val_accuracy"] = min(1.0, max(0.0, lin[(r["species"], str(r["train_per_species"]), r["seed"])] + delta))
    return out


def test_caption_is_computed_from_the_data(shipped):
    text = tr.caption(shipped)
    assert text and all(f"With {k} species" in text for k in {r["species"] for r in shipped["runs"]})
    better, worse, same = (tr.caption(_with_finetune(shipped, d)) for d in (0.3, -0.3, 0.0))
    assert len({text, better, worse, same}) == 4
    assert "beats the frozen backbone beyond noise" in better and "worse" not in better
    assert "is worse than the frozen backbone beyond noise" in worse and "beats" not in worse
    assert "as good as" in same and "Nowhere" in same
    # The verdicts the caption states are the ones gains() computes, cell by cell.
    for g in tr.gains(shipped):
        assert g["verdict"] in ("wins", "ties", "loses")
        assert (g["verdict"] == "wins") <= (g["low"] > 0)


def test_a_diverged_run_is_left_out_not_shown(shipped):
    data = copy.deepcopy(shipped)
    ft = next(r for r in data["runs"] if r["mode"] == "finetune")
    ft["diverged_at"], ft["val_accuracy"] = 1, 0.0
    cell = [g for g in tr.gains(data) if g["species"] == ft["species"]
            and g["train_per_species"] == str(ft["train_per_species"])][0]
    assert cell["seeds"] == len(shipped["seeds"]) - 1
    rows = [r for r in tr.summarize(data) if r["mode"] == "finetune" and r["species"] == ft["species"]
            and r["train_per_species"] == str(ft["train_per_species"])]
    assert rows[0]["seeds"] == len(shipped["seeds"]) - 1 and rows[0]["low"] > 0


def test_a_malformed_measurement_is_refused(shipped):
    bad = copy.deepcopy(shipped)
    bad["runs"][0]["val_accuracy"] = 1.7
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tr.check(bad)
    with pytest.raises(ValueError, match="schema"):
        tr.check({"runs": []})


def _cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_command_line_finetune_default_is_the_declared_default():
    config = cli.config_from_args(_cli_args("--mode", "finetune"), "birds")
    declared = tl.finetune_default_config("birds")
    assert config.uses_cached_activations and config.unfreeze_blocks == tl.FINETUNE.unfreeze_blocks
    assert tl.finetune_settings(config) == tl.finetune_settings(declared)
    end = cli.config_from_args(_cli_args("--mode", "finetune", "--end-to-end"), "birds")
    assert end.unfreeze_blocks is None and not end.uses_cached_activations


def test_page_finetune_widgets_default_to_the_declared_default(birds_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=240)
    at.run()
    at.switch_page("pages/30_transfer.py")
    at.query_params.update({"k": "2", "cap": "5"})  # 10 photos: extraction stays small
    at.run()
    assert not at.exception, at.exception
    assert at.slider(key="tl_epochs").value == tl.FINETUNE.epochs
    assert at.select_slider(key="tl_lr").value == tl.FINETUNE.lr
    assert at.select_slider(key="tl_factor").value == tl.FINETUNE.backbone_lr_factor
    assert at.select_slider(key="tl_unfreeze").value == tl.FINETUNE.unfreeze_blocks
    assert at.radio(key="tl_ft_way").value == "cached"
    # The measured section is on the page, with the caption computed from the shipped file.
    assert any(tr.caption(tr.load()) == m.value for m in at.markdown)


def test_small_real_finetune_beside_the_linear_probe(birds_dir):
    base = tl.finetune_default_config(str(birds_dir), species="3", max_per_species=10, feature_map="pca")
    linear = tl.run_transfer(tl.TransferConfig(data=str(birds_dir), species="3", max_per_species=10))
    tuned = tl.run_transfer(base)
    assert tuned.cached_activations and tuned.mode == "finetune" and len(tuned.history) == tl.FINETUNE.epochs
    for acc in (linear.val_accuracy, tuned.val_accuracy, tuned.probe_accuracy):
        assert 0 <= acc <= 1
    # The fine-tune's head starts from the same linear probe the linear mode trains.
    assert tuned.probe_accuracy == pytest.approx(linear.val_accuracy, abs=1 / linear.n_val + 1e-9)
    assert set(tuned.separation) == {"before", "after"} and tuned.separation["after"]["photos"] == tuned.n_val
    assert "after fine-tuning" in separation_caption(tuned.separation["before"], tuned.separation["after"], "PCA")


def test_separation_scores_tell_clusters_apart():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat_interleave(10)
    tight = torch.eye(4)[y] * 10 + torch.randn(40, 4, generator=gen)
    loose = torch.eye(4)[y] * 0.5 + torch.randn(40, 4, generator=gen)
    tr_rows, va_rows = [i for i in range(40) if i % 10 < 6], [i for i in range(40) if i % 10 >= 6]
    a, b = separation(tight, y, tr_rows, va_rows), separation(loose, y, tr_rows, va_rows)
    assert a["silhouette"] > b["silhouette"] and a["centroid_accuracy"] == 1.0
    assert "less well separated" in separation_caption(a, b, "PCA")
    assert "tighter and further apart" in separation_caption(b, a, "t-SNE")
    assert separation(tight, y, tr_rows, va_rows[:3]) is None  # fewer validation photos than species


def test_finetune_estimate_scales_with_the_work(shipped):
    cost = tr.tail_cost(shipped)
    assert cost is not None and cost > 0
    one = tr.finetune_seconds(320, 80, 3, rate=40.0, cost=cost)
    assert tr.finetune_seconds(640, 160, 3, rate=40.0, cost=cost) - one == pytest.approx(one - tr.JOB_OVERHEAD_SECONDS)
    assert tr.finetune_seconds(320, 80, 6, rate=40.0, cost=cost) > one
    assert tr.finetune_seconds(320, 80, 3, rate=80.0, cost=cost) < one
    assert tr.finetune_seconds(320, 80, 3, rate=0.0, cost=cost) is None


def test_config_fields_have_bounds():
    names = {f.name for f in fields(tl.TransferConfig)}
    assert {"label_smoothing", "bn_frozen"} <= names
    with pytest.raises(ValueError, match="label smoothing"):
        tl.TransferConfig(data="x", label_smoothing=1.5)
