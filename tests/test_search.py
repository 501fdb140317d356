"""Optuna search: a real two-trial study, pruning, run records, shared studies across processes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from dltl_core.archs import create_arch
from dltl_core.profile import count_params
from dltl_core.runs import RunRecord, append_runs, load_results, pareto_front, runs_table
from dltl_core.search import DataSpec, SearchConfig, SearchSpace, load_data, run_search
from dltl_core.studies import make_storage, param_importances, search_history, study_records
from dltl_core.device import get_policy
from tests.pg import find_bindir, open_at_barrier, postgres_server

TINY = SearchSpace(lr=(0.01, 0.1), weight_decay=(1e-5, 1e-3), optimizers=("momentum", "adamw"),
                   schedules=("constant", "cosine"), batch_sizes=(8, 16), widths=(0.125, 0.25))


@pytest.fixture(scope="module")
def tiny_data(cifar_dir):
    return load_data(DataSpec(str(cifar_dir), max_per_class=4, val_fraction=0.25))


def test_two_trial_study_keeps_full_run_records(tmp_path, tiny_data):
    results = tmp_path / "results.json"
    cfg = SearchConfig(arch="vgg11_bn", trials=2, storage=str(tmp_path / "runs.db"), epochs=2, pruner="none",
                       sampler_seed=0, space=TINY, results=str(results))
    seen = []
    summary = run_search(cfg, data=tiny_data, on_trial=seen.append)
    assert summary["trials_run"] == 2 and len(seen) == 2 and summary["study_trials"] == 2
    study = optuna.load_study(study_name="vgg11_bn-cifar10", storage=make_storage(cfg.storage))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for t in study.trials:
        rec = t.user_attrs["record"]
        assert rec["trial"] == t.number and rec["kind"] == "trial"
        assert math.isclose(rec["val_acc"], t.value)
        assert len(rec["history"]) == 2 and rec["history"][-1]["epoch"] == 2
        hp = t.params
        assert rec["config"]["lr"] == hp["lr"] and rec["config"]["batch_size"] == hp["batch_size"]
        assert rec["config"]["optimizer"] == hp["optimizer"] and rec["width"] == hp["width"]
        assert rec["params"] == count_params(create_arch("vgg11_bn", width=hp["width"]))
        assert rec["flops"] > 0 and rec["wall_seconds"] > 0 and rec["cpu_seconds"] > 0
        assert rec["seed"] == 0 and rec["device"] == get_policy().name and rec["threads"] >= 1
        assert {"torch", "torchvision", "optuna", "python", "dltl"} <= set(rec["versions"])
        assert rec["data"]["n_train"] == 30 and rec["data"]["n_val"] == 10
    # The same records went to the results file, and come back out of the storage.
    file_runs = load_results(results).runs
    assert sorted(r["trial"] for r in file_runs) == [0, 1]
    from_db = study_records(cfg.storage)
    assert {r["run_id"] for r in from_db} == {r["run_id"] for r in file_runs}
    table = runs_table(file_runs)
    assert len(table) == 2 and table["val_acc"].between(0, 100).all()
    hist = search_history(file_runs)
    assert hist["best_so_far"].iloc[-1] == table["val_acc"].max()


def test_same_seed_same_trial_same_history(tmp_path, tiny_data):
    runs = []
    for i in range(2):
        cfg = SearchConfig(arch="densenet_cifar", trials=1, storage=str(tmp_path / f"s{i}.db"), epochs=1,
                           pruner="none", sampler_seed=7, space=TINY)
        run_search(cfg, data=tiny_data)
        runs += study_records(cfg.storage)
    a, b = runs
    assert a["params_sampled"] == b["params_sampled"]
    assert a["history"][0]["train_loss"] == b["history"][0]["train_loss"]
    assert a["val_acc"] == b["val_acc"]


def test_median_pruner_stops_a_hopeless_trial_after_warmup(tmp_path, tiny_data):
    storage = str(tmp_path / "prune.db")
    cfg = SearchConfig(arch="vgg11_bn", trials=1, storage=storage, epochs=3, pruner="median", sampler_seed=0,
                       space=TINY)
    # Three earlier trials that reached 99% at every epoch: the new one cannot keep up.
    study = optuna.create_study(study_name=cfg.name, storage=make_storage(storage), direction="maximize")
    probe = optuna.create_study()
    for _ in range(3):
        trial = probe.ask()
        TINY.sample(trial)
        study.add_trial(optuna.trial.create_trial(params=trial.params, distributions=trial.distributions,
                                                  value=0.99, intermediate_values={1: 0.99, 2: 0.99, 3: 0.99}))
    summary = run_search(cfg, data=tiny_data)
    assert summary["trials"][0]["state"] == "pruned"
    last = optuna.load_study(study_name=cfg.name, storage=make_storage(storage)).trials[-1]
    assert last.state == optuna.trial.TrialState.PRUNED
    rec = last.user_attrs["record"]
    # No pruning before epoch 2 (epoch 1 is noisy), pruned then: one epoch of 3 saved.
    assert rec["state"] == "pruned" and len(rec["history"]) == 2


def test_importances_agree_with_optuna():
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    records = []
    for i in range(30):
        t = study.ask()
        hp = TINY.sample(t)
        value = 0.5 + 0.4 * math.log10(hp["lr"] / 0.01)  # only the learning rate matters
        study.tell(t, value)
        records.append({"kind": "trial", "study": "s", "trial": i, "state": "complete", "val_acc": value,
                        "params_sampled": hp, "distributions": {
                            k: optuna.distributions.distribution_to_json(d) for k, d in t.distributions.items()}})
    ours = param_importances(records)
    assert max(ours, key=ours.get) == "lr"
    theirs = optuna.importance.get_param_importances(study)
    assert ours.keys() == theirs.keys()
    assert all(math.isclose(ours[k], theirs[k], rel_tol=1e-6, abs_tol=1e-9) for k in ours)
    assert param_importances(records[:1]) == {}


def test_results_file_and_pareto(tmp_path):
    path = tmp_path / "r.json"
    base = dict(config={"epochs": 1}, seed=0, data={}, device="cpu", versions={}, history=[], best_val_acc=0.1,
                best_epoch=1, flops=1, wall_seconds=1.0)
    recs = [RunRecord(arch=f"a{i}", width=1.0, val_acc=acc, params=p, **base)
            for i, (acc, p) in enumerate([(0.5, 10), (0.6, 20), (0.55, 30), (math.nan, 5)])]
    append_runs(path, recs[:2], {"commands": ["first"]})
    append_runs(path, recs[2:], {"commands": ["second"]})
    res = load_results(path)
    assert [r["arch"] for r in res.runs] == ["a0", "a1", "a2", "a3"]
    assert res.runs[3]["val_acc"] is None  # NaN is stored as JSON null
    assert res.provenance["commands"] == ["first", "second"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    front = pareto_front(runs_table(res.runs), "params")
    assert list(front["arch"]) == ["a0", "a1"]  # a2 is larger and worse than a1; a3 has no accuracy
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a DLTL results file"):
        load_results(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "missing.json")


def _workers(root: Path, storage: str, results: Path, cifar_dir: Path, trials: int = 2) -> None:
    cmd = [sys.executable, "-m", "dltl_core", "search", "--arch", "vgg11_bn", "--trials", str(trials),
           "--storage", storage, "--study", "shared", "--data-dir", str(cifar_dir), "--max-per-class", "3",
           "--val-fraction", "0.34", "--epochs", "1", "--widths", "0.125", "--batch-sizes", "4",
           "--pruner", "none", "--results", str(results), "--json"]
    procs = [subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out[-1000:] + err[-2000:]  # --json puts the error on stdout
        assert json.loads(out)["trials_run"] == trials
    study = optuna.load_study(study_name="shared", storage=make_storage(storage))
    n = 2 * trials
    assert sorted(t.number for t in study.trials) == list(range(n))  # none lost, none duplicated
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert sorted(t.user_attrs["record"]["trial"] for t in study.trials) == list(range(n))
    runs = load_results(results).runs
    assert sorted(r["trial"] for r in runs) == list(range(n))
    assert len({r["run_id"] for r in runs}) == n
    assert len({r["host"] + str(r["command"]) for r in runs}) >= 1


@pytest.mark.slow
def test_two_processes_share_one_sqlite_study(tmp_path, root, cifar_dir):
    _workers(root, f"sqlite:///{tmp_path / 'shared.db'}", tmp_path / "results.json", cifar_dir)


@pytest.mark.slow
def test_two_processes_share_one_postgres_study(tmp_path, root, cifar_dir):
    if find_bindir() is None:
        pytest.skip("PostgreSQL server binaries are not installed (scripts/test.sh installs them)")
    with postgres_server() as url:
        _workers(root, url, tmp_path / "results.json", cifar_dir)
        # The page reads a study straight from the server, too.
        assert len(study_records(url, "shared")) == 4


def test_search_command_reports_bad_input(capsys):
    from dltl_core.cli import main

    assert main(["search", "--arch", "resnet18", "--trials", "0", "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert "--trials" in error and "1 to 10,000" in error  # the declared bound, named
    assert main(["search", "--optimizers", "lbfgs", "--json"]) == 2
    assert "unknown optimizer" in json.loads(capsys.readouterr().out)["error"]
    assert main(["search", "--fixed", "lr=abc", "--json"]) == 2
    assert "bad value for lr" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.slow
def test_workers_started_at_a_barrier_create_one_postgres_schema():
    """N >= 3 workers on a *fresh* database, released at once, repeated: none may fail.

    Before the advisory lock in ``open_storage`` this failed about half the runs with
    ``duplicate key value violates unique constraint "pg_type_typname_nsp_index"``.
    """
    import multiprocessing

    import sqlalchemy

    if find_bindir() is None:
        pytest.skip("PostgreSQL server binaries are not installed (scripts/test.sh installs them)")
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter per worker, as real workers are
    n_workers, rounds = 4, 4
    with postgres_server() as url:
        admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
        failures = []
        for r in range(rounds):
            with admin.connect() as con:
                con.execute(sqlalchemy.text(f"CREATE DATABASE race{r}"))
            db_url = url.rsplit("/", 1)[0] + f"/race{r}"
            barrier, out = ctx.Barrier(n_workers), ctx.Queue()
            procs = [ctx.Process(target=open_at_barrier, args=(db_url, barrier, out)) for _ in range(n_workers)]
            for p in procs:
                p.start()
            results = [out.get(timeout=120) for _ in procs]
            for p in procs:
                p.join(timeout=30)
            failures += [res for res in results if res != "ok"]
            # One schema, one study: the workers shared it rather than each making one.
            assert len(optuna.get_all_study_summaries(make_storage(db_url))) == 1
        admin.dispose()
    assert failures == [], failures


@pytest.mark.slow
def test_workers_started_at_a_barrier_create_one_sqlite_schema(tmp_path):
    """N workers released at once on a *new* SQLite file, repeated: none may fail.

    Before the folder lock in ``open_storage`` two ``search`` workers on one new file failed
    3 runs in 8 with "table studies already exists" or "UNIQUE constraint failed:
    alembic_version.version_num".
    """
    import multiprocessing

    # fork, not spawn: forked workers reach the barrier ready at once (a spawned one's imports
    # stagger the start, and the race hid: 0 failures without the lock).
    ctx = multiprocessing.get_context("fork")
    n_workers, rounds = 4, 6
    failures = []
    for r in range(rounds):
        db_url = f"sqlite:///{tmp_path / f'race{r}.db'}"
        barrier, out = ctx.Barrier(n_workers), ctx.Queue()
        procs = [ctx.Process(target=open_at_barrier, args=(db_url, barrier, out)) for _ in range(n_workers)]
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        failures += [res for res in results if res != "ok"]
        assert len(optuna.get_all_study_summaries(make_storage(db_url))) == 1
    assert failures == [], failures
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"race{r}.db" for r in range(rounds)]  # no lock files


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
def test_sqlite_storage_without_a_file_is_refused(url, capsys):
    from dltl_core.cli import main
    from dltl_core.storage import open_storage

    with pytest.raises(ValueError, match="needs a file"):
        open_storage(url)
    assert main(["search", "--storage", url, "--trials", "1", "--json"]) == 2
    assert "needs a file" in json.loads(capsys.readouterr().out)["error"]
