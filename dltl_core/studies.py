"""Optuna study databases: opening one (``make_storage``) and reading its trials for the results
page, the talk deck and the command line.

Kept apart from ``dltl_core.search`` (which runs studies and needs torch and the
architectures) so that reading results needs only Optuna and pandas.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import optuna
import pandas as pd

from dltl_core.storage import open_storage


def make_storage(storage: str, *, must_exist: bool = False) -> optuna.storages.RDBStorage:
    """Optuna's relational storage for ``storage`` (a URL or a SQLite path), via ``open_storage``.

    ``dltl_core.storage.open_storage`` maps ``postgresql://`` to the installed driver, gives
    servers a connect timeout and refuses SQLite paths that are not (Optuna) databases, with
    one clear ``ValueError``. SQLite waits up to 60 s for a lock instead of failing at once,
    so several worker processes can share a file; a heartbeat marks the trials of a crashed
    worker as failed so they do not stay "running" forever.

    Args:
        storage: the URL or path.
        must_exist: only open an existing study database (reading results, never creating).
    """
    with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna, and stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return open_storage(storage, must_exist=must_exist, heartbeat_interval=60, grace_period=180)



def study_records(storage: str, study_name: str | None = None) -> list[dict[str, Any]]:
    """Run records of every finished trial of a study (all studies when no name), for the results page.

    Trials without a record (e.g. failed before training) are listed with what Optuna knows.
    """
    st = make_storage(storage, must_exist=True)
    names = [study_name] if study_name else [s.study_name for s in optuna.get_all_study_summaries(st)]
    out: list[dict[str, Any]] = []
    for name in names:
        study = optuna.load_study(study_name=name, storage=st)
        for t in study.get_trials(deepcopy=False):
            rec = t.user_attrs.get("record")
            if rec is None:
                if t.state == optuna.trial.TrialState.RUNNING:
                    continue
                rec = {"kind": "trial", "study": name, "trial": t.number, "state": t.state.name.lower(),
                       "val_acc": t.value, "params_sampled": t.params, "history": [],
                       "distributions": {k: optuna.distributions.distribution_to_json(d)
                                         for k, d in t.distributions.items()},
                       "run_id": f"{name}#{t.number}", "config": {}}
            out.append(rec)
    return out


def search_history(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Per study, each trial's accuracy (%) and the best so far, in trial order."""
    rows = [r for r in records if r.get("kind") == "trial" and r.get("trial") is not None]
    df = pd.DataFrame([{"study": r.get("study"), "trial": r["trial"], "state": r.get("state"),
                        "val_acc": None if r.get("val_acc") is None else 100 * r["val_acc"]}
                       for r in rows], columns=["study", "trial", "state", "val_acc"])
    if df.empty:
        return df.assign(best_so_far=pd.Series(dtype=float))
    df = df.sort_values(["study", "trial"]).reset_index(drop=True)
    done = df["val_acc"].where(df["state"] == "complete")
    df["best_so_far"] = done.groupby(df["study"]).cummax()
    return df


def param_importances(records: Sequence[dict[str, Any]], study: str | None = None) -> dict[str, float]:
    """Optuna's hyperparameter importances from the completed trials of one study.

    The trials are rebuilt from their records (parameters, distributions, value), so
    this works on a results file as well as on a live storage. Needs at least two
    completed trials; returns ``{}`` otherwise.
    """
    trials = [r for r in records if r.get("kind") == "trial" and r.get("state") == "complete"
              and r.get("val_acc") is not None and r.get("distributions")
              and (study is None or r.get("study") == study)]
    if len(trials) < 2:
        return {}
    frozen = []
    for r in trials:
        dists = {k: optuna.distributions.json_to_distribution(v) for k, v in r["distributions"].items()}
        params = {k: v for k, v in (r.get("params_sampled") or {}).items() if k in dists}
        if set(params) != set(dists):
            continue
        frozen.append(optuna.trial.create_trial(params=params, distributions=dists, value=float(r["val_acc"])))
    if len(frozen) < 2:
        return {}
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" on stderr
    try:
        tmp = optuna.create_study(direction="maximize")
        tmp.add_trials(frozen)
        return dict(optuna.importance.get_param_importances(tmp))
    except (ValueError, RuntimeError):
        return {}
    finally:
        optuna.logging.set_verbosity(level)
