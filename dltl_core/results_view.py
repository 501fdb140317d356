"""The Results page's settings and its sources, declared without Streamlit.

Visitors never type a path or a storage URL (a public server must not open files or
databases a visitor names): the page offers the shipped study files and what the
operator configured (``DLTL_RESULTS`` files, the ``DLTL_STORAGE`` Optuna study; see
``dltl_core.paths.operator_storage``). When a source cannot be read, ``load`` raises one
message that names neither a server path nor a storage URL; the detail goes to the log.

The page (``dltl_ui.results.view``) binds ``ResultsView``; the code export
(``dltl_core.codegen.results``) reads a link with the same class. The running app hands in
its secrets and its cached reader through ``serve_with`` (the core never imports
Streamlit); without it, sources come from the environment and are read uncached.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from dltl_core import runs as R
from dltl_core.archs import ARCHS
from dltl_core.paths import operator_storage
from dltl_core.report.study import arch_label
from dltl_core.settings import check, setting

log = logging.getLogger("dltl")

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHIPPED = {"gpu": ASSETS / "results_gpu.json", "cpu": ASSETS / "results_cpu.json"}
SCORES = {"val_acc": "validation", "test_acc": "test (official test set)",
          "test_acc_tta": "test, flip TTA"}
TIMES = {"auto": "auto (CPU s on a shared or CPU machine)", "cpu_seconds": "CPU seconds",
         "wall_seconds": "wall seconds"}

Reader = Callable[[str, str], "tuple[dict, list[dict]]"]


class ResultsUnavailable(Exception):
    """A source that cannot be read; ``str()`` is safe to show a visitor (no path, no URL)."""


def read_source(kind: str, where: str) -> tuple[dict, list[dict]]:
    """Provenance and run records of a results file (``kind="file"``) or an Optuna study (``"study"``)."""
    if kind == "study":
        from dltl_core import studies as S  # optuna: imported only when a study is shown

        return {"storage": "operator-configured"}, S.study_records(where)
    res = R.load_results(where)
    return res.provenance, res.runs


def _no_secrets() -> Mapping | None:
    return None


_served: dict[str, Callable] = {"secrets": _no_secrets, "read": read_source}


def serve_with(secrets: Callable[[], Mapping | None] | None = None, read: Reader | None = None) -> None:
    """How the running app reads its sources: ``secrets()`` (``st.secrets``, or None) and ``read``
    (``read_source`` behind the app's cache). The UI calls it once, when it is imported."""
    if secrets is not None:
        _served["secrets"] = secrets
    if read is not None:
        _served["read"] = read


def sources() -> dict[str, str]:
    """Source key -> what it is: shipped studies first, then the operator's files and study."""
    out = {k: f"shipped {k.upper()} study ({p.name})" for k, p in SHIPPED.items() if p.is_file()}
    op = operator_storage(_served["secrets"]())
    for i, path in enumerate(op.results):
        out[f"file{i + 1}"] = f"results file {path.name} (server)"
    if op.storage:
        out["study"] = "Optuna study (server)"
    return out


@dataclass(frozen=True)
class ResultsView:
    """The Results page's settings (kept in the URL through ``dltl_ui.binder``)."""

    source: str = setting("gpu" if SHIPPED["gpu"].is_file() else "cpu", label="Results",
                          choices=lambda: list(sources()), labels=lambda k: sources().get(k, k), url="source",
                          help="The shipped studies, or a results file / Optuna study the server's operator "
                               "configured (DLTL_RESULTS, DLTL_STORAGE).")
    score: str = setting("val_acc", label="Accuracy", choices=tuple(SCORES), labels=SCORES, url="score",
                         help="Validation accuracy chooses hyperparameters; test accuracy is measured once "
                              "after training on the official test images and never used to choose.")
    time: str = setting("auto", label="Time axis", choices=tuple(TIMES), labels=TIMES, url="time",
                        help="Wall seconds include waiting for everything else the machine ran; CPU seconds "
                             "count the training process's own work (all its threads). Auto takes CPU seconds "
                             "when the study says its machine was shared, or when every run trained on a CPU.")
    target: float = setting(0.0, label="Target accuracy (%), 0 = auto", lo=0.0, hi=100.0, step=1.0,
                            widget="number", fmt="%.0f",
                            url="target", help="The accuracy of \"fastest to\" under the time-to-accuracy "
                                               "chart; 0 picks the highest one that every plotted run reaches.")
    talk: str = setting("resnet18", label="Talk about", choices=lambda: list(ARCHS), labels=arch_label,
                        url="talk", help="The architecture the slide deck presents against the others.")

    def __post_init__(self) -> None:
        check(self)


def load(source: str) -> tuple[dict, list[dict]]:
    """Provenance and run records of a source key (see ``sources``).

    Raises:
        ResultsUnavailable: the source cannot be read; its message names no path or URL.
    """
    try:
        return _load(source)
    except ValueError as err:
        log.warning("results source %s: %s", source, err)
        if "not a DLTL results file" in str(err):
            raise ResultsUnavailable("this file is not a DLTL results file") from None
        raise ResultsUnavailable("this source is not one the server offers") from None
    except FileNotFoundError as err:
        log.warning("results source %s: %s", source, err)
        raise ResultsUnavailable("the server's results file is missing") from None
    except Exception as err:  # noqa: BLE001 - a storage down raises anything; the visitor sees one line
        log.warning("results source %s: %s", source, scrub(str(err)))
        what = "the operator's Optuna study cannot be reached" if source == "study" else \
            "the server could not read this source"
        raise ResultsUnavailable(f"{what} right now") from None


def scrub(text: str) -> str:
    """``text`` with any password in a URL replaced by ``***`` (passwords never reach the log either)."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", text)


def _load(source: str) -> tuple[dict, list[dict]]:
    read = _served["read"]
    if source in SHIPPED:
        return read("file", str(SHIPPED[source]))
    op = operator_storage(_served["secrets"]())
    if source == "study" and op.storage:
        return read("study", op.storage)
    if source.startswith("file") and source[4:].isdigit() and 1 <= int(source[4:]) <= len(op.results):
        return read("file", str(op.results[int(source[4:]) - 1]))
    raise ValueError(f"unknown results source {source!r}")


__all__ = ["ASSETS", "SCORES", "SHIPPED", "TIMES", "ResultsUnavailable", "ResultsView", "load", "read_source",
           "scrub", "serve_with", "sources"]
