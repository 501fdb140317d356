"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temp dir, on a free port.

Debian's ``postgresql`` package puts the server binaries in
``/usr/lib/postgresql/<version>/bin`` (``scripts/test.sh`` installs it). initdb
refuses to run as root, so under root the cluster belongs to the ``postgres``
OS user (the temp dir is chown'ed to it and the commands run with its uid).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator


def find_bindir() -> Path | None:
    """The newest PostgreSQL server bin directory, or None if PostgreSQL is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(s) if s.isdigit() else 0 for s in Path(p).parts[-3].split(".")])
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh cluster; yield its SQLAlchemy URL; stop it and delete it afterwards.

    Raises:
        RuntimeError: PostgreSQL is not installed, or the server did not start (with its log).
    """
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="dltl-pg-"))
    data, log = tmp / "data", tmp / "server.log"
    port = _free_port()
    preexec = None
    env = dict(os.environ)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)

        def preexec() -> None:  # drop to the postgres user in the child only
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

        env["HOME"] = str(tmp)

    def run(*cmd: str) -> None:
        proc = subprocess.run(cmd, preexec_fn=preexec, env=env, cwd=tmp, capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            detail = log.read_text() if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}\n{detail}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync")
        # fsync off: a test database need not survive a power cut, and it is much faster.
        opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "-t", "60", "start")
        try:
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def open_at_barrier(url: str, barrier: Any, out: Any) -> None:
    """One search worker's start: wait for the others, open the storage, join the study.

    What ``python -m dltl_core search`` does before its first trial, without torch, so
    that several of these start in a fraction of a second; the result goes to ``out``.
    """
    import optuna

    from dltl_core.storage import open_storage

    try:
        barrier.wait(timeout=60)
        storage = open_storage(url)
        optuna.create_study(study_name="race", storage=storage, direction="maximize", load_if_exists=True)
        out.put("ok")
    except BaseException as err:  # noqa: BLE001 - reported to the parent as text
        out.put(f"{type(err).__name__}: {err}")
