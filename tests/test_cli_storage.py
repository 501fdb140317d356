"""Optuna storages: refused and silent servers, bad URLs and unsafe SQLite paths give one
clear ValueError within seconds; the command line answers them with exit 2 and JSON."""

from __future__ import annotations

import json
import socket
import sqlite3
import time

import optuna
import pytest

from dltl_core.cli import main
from dltl_core.storage import describe_url, open_storage


@pytest.fixture
def refused_port() -> int:
    # Bind then close: nothing listens on this port afterwards, so connecting is refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port():
    # Listening but never accepting: the TCP handshake completes in the kernel's
    # backlog and then the "server" never says a word, like a firewalled proxy.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def _refused(url: str, **kw) -> tuple[str, float]:
    t0 = time.perf_counter()
    with pytest.raises(ValueError) as err:
        open_storage(url, **kw)
    return str(err.value), time.perf_counter() - t0


def test_refused_port_fails_fast_without_password(refused_port):
    msg, seconds = _refused(f"postgresql://student:hunter2@127.0.0.1:{refused_port}/dltl")
    assert seconds < 10  # was 1.6 s to a traceback before; generous for a loaded CI machine
    assert "hunter2" not in msg and str(refused_port) in msg
    assert "refused" in msg.lower()


def test_silent_port_times_out_within_the_timeout(silent_port):
    msg, seconds = _refused(f"postgresql://u@127.0.0.1:{silent_port}/dltl", timeout=2)
    assert seconds < 15, seconds  # 2 s connect timeout (x2 addresses at most) + imports; was 15.7 s+
    assert "timeout" in msg.lower() or "no answer" in msg.lower()


@pytest.mark.parametrize("url", ["postgresql://u@host:notaport/db", "nosuchdb://x/y", "   "])
def test_bad_urls_are_one_value_error(url):
    msg, seconds = _refused(url)
    assert seconds < 10 and msg


def test_password_hidden_in_descriptions():
    assert "pw" not in describe_url("postgresql://me:pw@db.example/x")


def test_text_file_is_never_turned_into_a_database(tmp_path):
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    empty = tmp_path / "__init__.py"
    empty.write_bytes(b"")
    for path in (text, empty):
        before = path.read_bytes()
        msg, _ = _refused(f"sqlite:///{path}")
        assert "not a SQLite database" in msg
        assert path.read_bytes() == before  # untouched, still importable / readable


def test_other_programs_sqlite_database_is_left_alone(tmp_path):
    db = tmp_path / "notes.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE notes (text TEXT)")
    msg, _ = _refused(str(db))
    assert "another program" in msg
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"notes"}


def test_missing_folder_is_refused_and_not_created(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "x.db"
    msg, _ = _refused(f"sqlite:///{target}")
    assert "does not exist" in msg
    assert not (tmp_path / "no").exists()


def test_must_exist_refuses_a_new_file(tmp_path):
    msg, _ = _refused(f"sqlite:///{tmp_path / 'new.db'}", must_exist=True)
    assert "no study file" in msg
    assert not (tmp_path / "new.db").exists()


def test_new_study_file_round_trips_through_optuna(tmp_path):
    path = tmp_path / "runs.db"
    study = optuna.create_study(study_name="s", storage=open_storage(str(path)), direction="maximize")
    study.optimize(lambda t: -(t.suggest_float("x", -2, 2) - 1) ** 2, n_trials=3)
    again = optuna.load_study(study_name="s", storage=open_storage(f"sqlite:///{path}", must_exist=True))
    assert [t.value for t in again.trials] == [t.value for t in study.trials]


def test_none_is_in_memory(monkeypatch):
    monkeypatch.delenv("DLTL_STORAGE", raising=False)
    assert isinstance(open_storage(None), optuna.storages.InMemoryStorage)


def test_cli_search_refused_storage_is_exit_2_json(refused_port, capsys):
    t0 = time.perf_counter()
    code = main(["search", "--storage", f"postgresql://u:pw@127.0.0.1:{refused_port}/db", "--trials", "1",
                 "--json"])
    out = capsys.readouterr().out
    assert code == 2 and time.perf_counter() - t0 < 30  # imports of the search command included
    assert "error" in json.loads(out)


def test_cli_search_text_file_storage_is_exit_2(tmp_path, capsys):
    victim = tmp_path / "config.txt"
    victim.write_text("keep me")
    code = main(["search", "--storage", f"sqlite:///{victim}", "--trials", "1", "--json"])
    assert code == 2 and "not a SQLite database" in json.loads(capsys.readouterr().out)["error"]
    assert victim.read_text() == "keep me"


@pytest.mark.slow
def test_plain_postgresql_url_uses_the_installed_driver():
    pg = pytest.importorskip("tests.pg")
    if pg.find_bindir() is None:
        pytest.skip("PostgreSQL is not installed")
    with pg.postgres_server() as url:
        plain = url.replace("postgresql+psycopg2://", "postgresql://")
        study = optuna.create_study(study_name="pg", storage=open_storage(plain))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        assert len(optuna.load_study(study_name="pg", storage=open_storage(plain)).trials) == 2
