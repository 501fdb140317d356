"""The /results page's exported code: the study's network and recipe, against the core.

For the defaults and one other link, the script (fresh process, no project) must print the
parameter count and FLOPs ``dltl_core.profile`` gives for the chosen run's architecture and
width (exact: deterministic counts), and, on a tiny seeded subset of the real CIFAR-10
folder (15 images per class, 2 epochs), the per-epoch losses and accuracies of
``dltl_core.train.fit`` with the same recipe and ``CifarAugment`` (what
``dltl_core.search.train_run`` runs). Same operations in the same order on one CPU thread,
so the losses agree to 1e-5 relative (the core sums an epoch's losses as a float32 dot
product, the script in Python floats) and the accuracies exactly.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dltl_core import profile
from dltl_core.archs import create_arch
from dltl_core.codegen import export, parse_link
from dltl_core.codegen.results import _runs, pick_run
from dltl_core.data.cifar import CifarAugment, cifar_splits
from dltl_core.device import get_policy
from dltl_core.query import read_query
from dltl_core.settings import settings_of
from dltl_core.train import TrainConfig, fit
from dltl_core.results_view import ResultsView
from tests.codegen_util import printed, run_script

LINKS = ["", "talk=vgg11_bn&score=val_acc"]


def _chosen(query: str) -> dict:
    values, _ = read_query(ResultsView, parse_link(query))
    return pick_run(_runs(values["source"])[0], values["talk"], values["score"])


@pytest.mark.slow
@pytest.mark.parametrize("query", LINKS)
def test_script_trains_like_the_core(query: str, cifar_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _chosen(query)
    monkeypatch.setenv("CIFAR_DIR", str(cifar_dir))
    monkeypatch.setenv("MAX_PER_CLASS", "15")
    monkeypatch.setenv("EPOCHS", "2")
    monkeypatch.setenv("DEVICE", "cpu")  # the comparison is on the CPU, also on a CUDA machine
    out = printed(run_script(export("results", query).source(), timeout=600))

    meta = profile.meta_arch(run["arch"], run["width"])
    assert out["parameters"] == profile.count_params(meta) == run["params"]
    assert out["FLOPs per image"] == profile.count_flops(meta) == run["flops"]

    data = run["data"]
    train, val, _ = cifar_splits(cifar_dir, max_per_class=15, val_fraction=data["val_fraction"],
                                 seed=data["split_seed"])
    assert (out["training images"], out["validation images"]) == (len(train[1]), len(val[1]))
    fields = {k: v for k, v in run["config"].items() if k in TrainConfig.__dataclass_fields__}
    cfg = replace(TrainConfig(**fields), epochs=2)
    model = create_arch(run["arch"], width=run["width"], seed=cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script's process (OMP_NUM_THREADS=1)
    try:
        res = fit(model, train, val, cfg, policy=get_policy("cpu"), batch_transform=CifarAugment(seed=cfg.seed))
    finally:
        torch.set_num_threads(threads)
    for rec in res.history:
        assert out[f"epoch {rec.epoch} training loss"] == pytest.approx(rec.train_loss, rel=1e-5)
        assert out[f"epoch {rec.epoch} validation loss"] == pytest.approx(rec.val_loss, rel=1e-5)
        assert out[f"epoch {rec.epoch} validation accuracy"] == pytest.approx(rec.val_acc, abs=1e-6)


def test_the_run_is_the_pages_best_of_the_talked_about_architecture() -> None:
    run = _chosen("talk=vgg11_bn")
    widths = {r["width"]: r["val_acc"] for r in _runs("cpu")[0] if r["arch"] == "vgg11_bn"}
    assert run["val_acc"] == max(widths.values()) and len(widths) == 3
    assert f"width = {run['width']!r}" in export("results", "talk=vgg11_bn").source()


def test_every_setting_changes_the_code_or_is_only_a_view() -> None:
    # `time` and `target` only change how the page's charts read the runs (axis, target line);
    # `source`, `score` and `talk` choose the run whose recipe is exported.
    base = export("results", "")
    other = {"talk": "densenet_cifar", "score": "test_acc", "source": "cpu", "time": "wall_seconds", "target": "50"}
    for name, s in settings_of(ResultsView).items():
        param = s.url or name
        assert param in other, f"a new setting {param!r}: give it another value here"
        changed = export("results", {param: other[param]})
        assert changed.query != base.query or param == "source", param  # the link always records it
        if param == "talk":
            assert changed.source() != base.source()


def test_bad_link_keeps_the_defaults_with_the_pages_messages() -> None:
    script = export("results", "talk=nope&score=zzz")
    _, problems = read_query(ResultsView, {"talk": "nope", "score": "zzz"})
    assert list(script.problems) == problems and len(problems) == 2
    assert "ResNet-18" in script.title
