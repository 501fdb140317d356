"""Run records: everything needed to reproduce and compare one training run.

A record keeps the configuration, seed, library versions, device, per-epoch
history, final accuracy, parameter count, FLOPs and wall time of a run (a plain
training run or one Optuna trial). Records live in a JSON results file::

    {"format": "dltl-results", "version": 1,
     "provenance": {"created_at": ..., "commands": [...]},
     "runs": [record, record, ...]}

written atomically (temp file + rename) under a file lock, so several worker
processes on one machine can add records to one file; across machines the
Optuna storage (SQLite, PostgreSQL) is the shared record and each trial carries
its record in ``user_attrs["record"]``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from filelock import FileLock

from dltl_core import cache
from dltl_core.cache import json_safe

FORMAT = "dltl-results"
VERSION = 1


def versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    import optuna
    import torch
    import torchvision

    import dltl_core

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "optuna": optuna.__version__,
            "dltl": dltl_core.__version__}


def command_line() -> str:
    """The current command line, with ``python -m dltl_core`` for the package's entry point."""
    argv = list(sys.argv)
    if argv and argv[0].replace("\\", "/").endswith("dltl_core/__main__.py"):
        argv[0] = "python -m dltl_core"
    return " ".join(argv)


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class RunRecord:
    """One training run or trial.

    Attributes:
        arch: architecture name (``dltl_core.archs``).
        width: width multiplier.
        config: the ``TrainConfig`` as a dict (epochs, batch size, optimizer, lr, ...).
        seed: seed of the weights, the batch order and the augmentation.
        data: data set description (source, subset size, split sizes).
        device: the device policy's name.
        threads: torch's CPU threads (timings on a CPU depend on it).
        versions: library versions (``versions()``).
        history: per-epoch records (``EpochRecord.as_dict()``).
        val_acc: validation accuracy after the last epoch.
        best_val_acc: validation accuracy at the epoch of lowest validation loss.
        best_epoch: that epoch (1-based).
        params: parameter count.
        flops: forward FLOPs per image.
        wall_seconds: wall time of the whole fit.
        cpu_seconds: CPU time of the process during the fit (all threads); on a shared
            machine it depends less on the other users' load than the wall time.
        state: ``complete``, ``pruned``, ``diverged`` or ``failed``.
        diverged_reason: why a diverged run counts as diverged, in words.
        test_acc: accuracy on the official test set, scored once after training (never
            used for selection); None when the test images were not available.
        test_acc_tta: the same with flip test-time augmentation.
        recipe: the ``dltl_core.recipes`` name the configuration started from, if any.
        kind: ``run`` (a single run) or ``trial`` (a search trial).
        study: Optuna study name for trials.
        trial: Optuna trial number for trials.
        distributions: Optuna distributions of the trial's parameters (JSON), for importances.
        params_sampled: the sampled hyperparameters of a trial.
        run_id: unique id.
        started_at: UTC start time.
        host: machine name.
        command: the command line that produced it.
    """

    arch: str
    width: float
    config: dict[str, Any]
    seed: int
    data: dict[str, Any]
    device: str
    versions: dict[str, str]
    history: list[dict[str, float]]
    val_acc: float
    best_val_acc: float
    best_epoch: int
    params: int
    flops: int
    wall_seconds: float
    cpu_seconds: float | None = None
    threads: int | None = None
    state: str = "complete"
    diverged_reason: str = ""
    test_acc: float | None = None
    test_acc_tta: float | None = None
    recipe: str | None = None
    kind: str = "run"
    study: str | None = None
    trial: int | None = None
    distributions: dict[str, str] = field(default_factory=dict)
    params_sampled: dict[str, Any] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=now_iso)
    host: str = field(default_factory=platform.node)
    command: str = field(default_factory=lambda: command_line())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes None)."""
        return json_safe(asdict(self))


@dataclass
class Results:
    """A loaded results file: its provenance and its run records (dicts)."""

    provenance: dict[str, Any]
    runs: list[dict[str, Any]]
    path: str | None = None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"format": FORMAT, "version": VERSION, "provenance": {}, "runs": []}
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a DLTL results file (invalid JSON: {err})") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("runs"), list):
        raise ValueError(f"{path} is not a DLTL results file (expected a JSON object with "
                         f"format={FORMAT!r} and a 'runs' list)")
    return data


def append_runs(path: str | Path, records: Iterable[RunRecord | dict[str, Any]],
                provenance: dict[str, Any] | None = None) -> Path:
    """Add records to a results file (created if missing), atomically and under a lock.

    Args:
        path: the JSON results file.
        records: run records to add.
        provenance: keys merged into the file's provenance (``commands`` lists are
            extended, other keys set when absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(_lock_path(path), timeout=120):
        data = _read(path)
        prov = data.setdefault("provenance", {})
        prov.setdefault("created_at", now_iso())
        prov["updated_at"] = now_iso()
        for key, value in (provenance or {}).items():
            if key == "commands":
                prov.setdefault("commands", []).extend(v for v in value if v not in prov["commands"])
            else:
                prov.setdefault(key, value)
        data["runs"].extend(r.as_dict() if isinstance(r, RunRecord) else json_safe(r) for r in records)
        text = json.dumps(data, indent=1)

        def write(tmp: Path) -> None:
            tmp.write_text(text)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; a results file is meant to be shared

        cache.atomic_write(path, write)
    return path


def _lock_path(path: Path) -> str:
    # The lock lives in the temp dir (not beside the results, e.g. in assets/), keyed by the path.
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return str(Path(tempfile.gettempdir()) / f"dltl-results-{key}.lock")


def load_results(path: str | Path) -> Results:
    """Read a results file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a DLTL results file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} does not exist")
    data = _read(path)
    return Results(data.get("provenance", {}), data["runs"], str(path))


COLUMNS = ["run_id", "kind", "arch", "width", "study", "trial", "recipe", "state", "val_acc", "best_val_acc",
           "test_acc", "test_acc_tta", "params", "flops", "wall_seconds", "cpu_seconds", "threads", "epochs_run",
           "epochs", "optimizer", "lr", "weight_decay", "schedule", "batch_size", "label_smoothing", "seed",
           "n_train", "n_val", "n_test", "device", "host", "started_at"]


def _pct(value: Any) -> float | None:
    return None if value is None else 100.0 * value


def runs_table(runs: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: the flat columns of ``COLUMNS`` (accuracies in %, for tables and CSV)."""
    rows = []
    for r in runs:
        cfg, data = r.get("config") or {}, r.get("data") or {}
        rows.append({
            "run_id": r.get("run_id"), "kind": r.get("kind", "run"), "arch": r.get("arch"),
            "width": r.get("width"), "study": r.get("study"), "trial": r.get("trial"),
            "recipe": r.get("recipe"), "state": r.get("state", "complete"),
            "val_acc": _pct(r.get("val_acc")), "best_val_acc": _pct(r.get("best_val_acc")),
            "test_acc": _pct(r.get("test_acc")), "test_acc_tta": _pct(r.get("test_acc_tta")),
            "params": r.get("params"), "flops": r.get("flops"), "wall_seconds": r.get("wall_seconds"),
            "cpu_seconds": r.get("cpu_seconds"), "threads": r.get("threads"),
            "epochs_run": len(r.get("history") or []), "epochs": cfg.get("epochs"),
            "optimizer": cfg.get("optimizer"), "lr": cfg.get("lr"), "weight_decay": cfg.get("weight_decay"),
            "schedule": cfg.get("schedule"), "batch_size": cfg.get("batch_size"),
            "label_smoothing": cfg.get("label_smoothing"), "seed": r.get("seed"),
            "n_train": data.get("n_train"), "n_val": data.get("n_val"), "n_test": data.get("n_test"),
            "device": r.get("device"), "host": r.get("host"),
            "started_at": r.get("started_at"),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def curves_table(runs: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Long table of learning curves: one row per (run, epoch) with losses and accuracies (%).

    ``elapsed`` is the wall-clock seconds since the start of training at the end of the
    epoch (time-to-accuracy charts); older records without it sum the epochs' seconds.
    ``cpu_elapsed`` is the CPU seconds of the training process by then: the epoch's own
    figure when the history has one, else the run's CPU seconds apportioned over its epochs
    in proportion to their wall time (records keep CPU time per run); None without CPU time.
    """
    rows = []
    for r in runs:
        elapsed = 0.0
        cpu, wall = r.get("cpu_seconds"), r.get("wall_seconds")
        ratio = cpu / wall if cpu and wall else None
        for h in r.get("history") or []:
            elapsed = h.get("elapsed") or (elapsed + (h.get("seconds") or 0.0))
            cpu_elapsed = h.get("cpu_elapsed") or (None if ratio is None else elapsed * ratio)
            rows.append({"run_id": r.get("run_id"), "arch": r.get("arch"), "width": r.get("width"),
                         "epoch": h.get("epoch"), "elapsed": elapsed, "cpu_elapsed": cpu_elapsed,
                         "train_loss": h.get("train_loss"), "val_loss": h.get("val_loss"),
                         "train_acc": _pct(h.get("train_acc")), "val_acc": _pct(h.get("val_acc"))})
    return pd.DataFrame(rows, columns=["run_id", "arch", "width", "epoch", "elapsed", "cpu_elapsed", "train_loss",
                                       "val_loss", "train_acc", "val_acc"])


def pareto_front(df: pd.DataFrame, cost: str, score: str = "val_acc") -> pd.DataFrame:
    """The rows not dominated by another row (lower ``cost`` and higher ``score`` are better).

    Returned sorted by ``cost``: walking right, the score strictly increases.
    """
    d = df.dropna(subset=[cost, score]).sort_values([cost, score], ascending=[True, False])
    keep, best = [], -math.inf
    for idx, s in zip(d.index, d[score]):
        if s > best:
            keep.append(idx)
            best = s
    return d.loc[keep]
