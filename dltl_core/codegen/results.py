"""/results as plain PyTorch: the study's recipe for the architecture the page talks about.

From the results source the page shows (the shipped study by default), the exporter takes
the most accurate completed run of the *Talk about* architecture: its width, recipe
(``TrainConfig``), seed and data split. The script builds that network as
``dltl_core/archs/`` does, prints its parameters and FLOPs, and trains it on CIFAR-10 with
the same loop as ``dltl_core.search.train_run`` (``fit`` with ``CifarAugment``).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Mapping

from dltl_core import runs as R
from dltl_core.archs import ARCHS
from dltl_core.codegen import _cifar
from dltl_core.codegen._views import results_view
from dltl_core.codegen.script import Script, code, md
from dltl_core.query import encode_query, read_query
from dltl_core.recipes import RECIPES
from dltl_core.train import TrainConfig

_FALLBACK_WIDTH = 0.125  # the shipped CPU study's width, for an architecture with no run


@functools.lru_cache(maxsize=8)
def _records(path: str, mtime: float) -> tuple[dict, ...]:
    return tuple(R.load_results(path).runs)


def _runs(source: str) -> tuple[list[dict], str | None]:
    """The source's run records (shipped studies only; an operator's source is read on the server)."""
    from dltl_core import results_view as rv

    path = rv.SHIPPED.get(source)
    if path is None or not Path(path).is_file():
        try:
            return list(rv.load(source)[1]), None
        except Exception:  # noqa: BLE001 - an unreadable source: the page says so too
            path = rv.SHIPPED["cpu"]
            if not path.is_file():
                return [], "no results source could be read"
            return list(_records(str(path), path.stat().st_mtime)), \
                "this results source cannot be read; using the shipped CPU study"
    return list(_records(str(path), Path(path).stat().st_mtime)), None


def pick_run(records: list[dict], arch: str, score: str) -> dict | None:
    """The most accurate completed run of ``arch`` (by ``score``, else validation accuracy)."""
    done = [r for r in records if r.get("arch") == arch and r.get("state") == "complete"]

    def value(r: dict) -> float:
        v = r.get(score)
        v = v if isinstance(v, (int, float)) and math.isfinite(v) else r.get("val_acc")
        return v if isinstance(v, (int, float)) and math.isfinite(v) else -1.0

    return max(done, key=value) if done else None


def _config(run: dict | None) -> tuple[TrainConfig, float, dict[str, Any], str]:
    """(recipe config, width, data split, what it is) of the run, or the CPU recipe when none."""
    if run is None:
        return RECIPES["cpu"].config, _FALLBACK_WIDTH, {"val_fraction": 0.1, "split_seed": 0,
                                                        "max_per_class": None}, "the `cpu` recipe (no run in this source)"
    fields = {k: v for k, v in run["config"].items() if k in TrainConfig.__dataclass_fields__}
    label = f"run {run.get('run_id', '')}".strip() + f" (recipe `{run.get('recipe') or 'custom'}`)"
    return TrainConfig(**fields), float(run["width"]), dict(run.get("data") or {}), label


def build(params: Mapping[str, str]) -> Script:
    """The /results page's script for the link ``params``."""
    view = results_view()
    values, problems = read_query(view, params)
    records, note = _runs(values["source"])
    if note:
        problems.append(note)
    arch = values["talk"]
    run = pick_run(records, arch, values["score"])
    cfg, width, data, label = _config(run)
    info = ARCHS[arch]
    recipe = RECIPES[run["recipe"]] if run and run.get("recipe") in RECIPES else None
    cells = (
        md(f"""
        ## {info.label} at width {width:g}, trained with the study's recipe

        From the results page: {label}, the most accurate completed run of {info.label}.
        {recipe.about if recipe else ""}

        Training minimises the cross-entropy $L(\\theta) = -\\frac1N\\sum_i \\log p_\\theta(y_i \\mid x_i)$
        (label smoothing {cfg.label_smoothing:g}) by mini-batch steps
        $\\theta \\leftarrow \\theta - \\eta_t\\, \\nabla_\\theta L_{{\\text{{batch}}}}$ with `{cfg.optimizer}`,
        learning rate {cfg.lr:g} on a `{cfg.schedule}` schedule, batch {cfg.batch_size}, {cfg.epochs} epochs.
        Set `MAX_PER_CLASS=20 EPOCHS=2` in the environment to try it small first.
        """),
        code(_cifar.arch_imports(arch) + "\nimport math\nimport sys\nfrom pathlib import Path\n\n"
             "import numpy as np\nimport torch.nn.functional as F\nimport torchvision\nfrom PIL import Image\n"
             "from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn"),
        md("### The data\nCIFAR-10's training images, split into training and validation images with a seed; "
           "the official test images are kept for the end."),
        code(_cifar.cifar_data(data.get("max_per_class"), float(data.get("val_fraction", 0.1)),
                               int(data.get("split_seed", 0)))),
        code(_cifar.augment()),
        md("### The network"),
        code(_cifar.arch_definition(arch)),
        code(_cifar.arch_build(arch, width, seed=cfg.seed)),
        code(_cifar.size_and_work()),
        md("### Training and evaluation\nEach epoch: every training image once, in a seeded random order, "
           "augmented (random crop and flip); then the loss and accuracy on the validation images."),
        code(_cifar.training(cfg, cfg.seed)),
    )
    query = _cifar.query_string(encode_query(view, values))
    return Script("results", f"{info.label}: the study's recipe in plain PyTorch", query, cells, tuple(problems))
