"""Optuna storages opened safely: ``open_storage(url) -> optuna storage``.

Public API::

    open_storage(url: str | None, *, timeout: float = 5.0, must_exist: bool = False,
                 lock_timeout: float = 60.0, **rdb_kwargs) -> optuna.storages.BaseStorage
    storage_url(storage: str) -> str          # normalised SQLAlchemy URL (password kept)
    describe_url(url: str) -> str             # the URL with the password hidden, for messages

Every failure is one ``ValueError`` with a short message (no traceback, no
password), raised within about ``timeout`` seconds:

* ``postgresql://`` / ``postgres://`` use the installed driver (psycopg2, else
  psycopg 3): SQLAlchemy 2.1 picks psycopg 3 for a bare ``postgresql://`` and
  raises ImportError when only ``psycopg2-binary`` is installed.
* Servers get a connect timeout (libpq's ``connect_timeout``, which also covers a
  port that accepts the connection and then never answers), and the whole open
  runs under a deadline, so an unresolvable host cannot hang the caller.
* ``sqlite:///PATH`` (or a bare path) is checked before SQLite touches it: the
  folder must exist and be writable, and an existing file must already be a
  SQLite database whose tables, if any, are Optuna's. So ``/etc/passwd``, an empty
  ``__init__.py`` or another program's database never becomes an Optuna study file.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # optuna and sqlalchemy are imported on use: they cost memory at start-up
    import optuna

SQLITE_MAGIC = b"SQLite format 3\x00"
# Tables every Optuna RDB storage has; a SQLite file with tables but none of these
# belongs to another program and is left alone.
OPTUNA_TABLES = {"studies", "version_info", "alembic_version"}
ENV_VAR = "DLTL_STORAGE"


def storage_url(storage: str) -> str:
    """A SQLAlchemy URL: URLs pass through, a plain path becomes ``sqlite:///<absolute path>``."""
    storage = storage.strip()
    if "://" in storage:
        return storage
    return f"sqlite:///{Path(storage).expanduser().resolve()}"


def describe_url(url: str) -> str:
    """``url`` for messages: the password replaced by ``***`` (unparsable URLs are elided)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "the given storage URL"


def _parse(url: str) -> Any:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        _ = parsed.port  # a non-numeric port raises here
    except (ArgumentError, ValueError) as err:
        raise ValueError(f"not a valid storage URL: {url.split('@')[-1]!r} (expected e.g. "
                         "sqlite:///runs.db or postgresql://user:password@host/db)") from err
    return parsed


def _postgres_driver() -> str:
    # Prefer psycopg2 (what requirements-dev.txt installs), then psycopg 3.
    for module, driver in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
        try:
            __import__(module)
            return driver
        except ImportError:
            continue
    raise ValueError("PostgreSQL storage needs a driver: pip install psycopg2-binary")


def _read_head(path: Path, settle: float = 3.0) -> bytes:
    """The file's first bytes; an empty file is read again for up to ``settle`` seconds.

    Two workers started together on a new study file race: one's SQLite has created the file
    but not yet written its header when the other looks. An empty file that stays empty (an
    ``__init__.py``) is still refused by the caller.
    """
    import time

    deadline = time.monotonic() + settle
    while True:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
        if head or time.monotonic() > deadline:
            return head
        time.sleep(0.1)


def _check_sqlite_file(db: str, must_exist: bool) -> None:
    """Refuse a path SQLite would create or damage: missing/unwritable folder, non-SQLite file."""
    path = Path(db).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"cannot use {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite writes a journal file beside the database, even to read a locked one.
        raise ValueError(f"cannot use {path}: the folder {folder} is not writable")
    if not path.exists():
        if must_exist:
            raise ValueError(f"no study file at {path}")
        return
    if not path.is_file():
        raise ValueError(f"cannot use {path}: it is not a regular file")
    if not os.access(path, os.R_OK | os.W_OK):
        raise ValueError(f"cannot use {path}: the file is not readable and writable")
    head = _read_head(path)
    if head != SQLITE_MAGIC:
        # An empty file too: SQLite would silently turn it into a database.
        raise ValueError(f"cannot use {path}: it is not a SQLite database")
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.Error as err:
        raise ValueError(f"cannot use {path}: unreadable SQLite database ({err})") from err
    if tables and not tables & OPTUNA_TABLES:
        raise ValueError(f"cannot use {path}: a SQLite database of another program (no Optuna tables)")
    if must_exist and not tables & OPTUNA_TABLES:
        raise ValueError(f"{path} holds no Optuna study")


def _prepare(url: str, timeout: float, must_exist: bool, lock_timeout: float) -> tuple[str, dict[str, Any]]:
    """Validate ``url`` and return (url with driver, engine_kwargs)."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file::memory:"):
            # An in-memory database dies with its connection: a study "saved" there is lost,
            # and Optuna's heartbeat thread errors on it. A study needs a file.
            raise ValueError("a SQLite storage needs a file, e.g. sqlite:///runs.db "
                             "(an in-memory database keeps nothing)")
        _check_sqlite_file(parsed.database, must_exist)
        return url, {"connect_args": {"timeout": lock_timeout}}
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=f"postgresql+{_postgres_driver()}")
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "postgresql":
        # libpq counts whole seconds and at least 2.
        engine_kwargs["connect_args"] = {"connect_timeout": max(2, math.ceil(timeout))}
    elif parsed.get_backend_name() == "mysql":
        engine_kwargs["connect_args"] = {"connect_timeout": max(1, math.ceil(timeout))}
    return parsed.render_as_string(hide_password=False), engine_kwargs


def _reason(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def _open_rdb(url: str, engine_kwargs: dict[str, Any], rdb_kwargs: dict[str, Any]) -> "optuna.storages.RDBStorage":
    import warnings

    import optuna

    kwargs = dict(rdb_kwargs)
    merged = {**engine_kwargs, **kwargs.pop("engine_kwargs", {})}
    with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=merged, **kwargs)


def _with_deadline(fn: Any, seconds: float, what: str) -> Any:
    """Run ``fn()`` in a daemon thread; a ValueError if it takes longer than ``seconds``.

    A thread cannot be killed, but DNS look-ups and socket waits end by themselves; the
    caller gets its answer on time either way.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = err

    worker = threading.Thread(target=target, name="dltl-open-storage", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise ValueError(f"cannot reach {what}: no answer within {seconds:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


# Key of the PostgreSQL advisory lock that serialises Optuna's table creation across
# workers ("dltl" in ASCII); any constant shared by every worker would do.
SCHEMA_LOCK_KEY = 0x646C746C
# Messages of a concurrent CREATE TABLE/TYPE losing the race to another worker.
_CREATE_RACE = ("duplicate key value", "already exists", "unique constraint", "deadlock detected")


def _is_create_race(err: BaseException) -> bool:
    text = str(getattr(err, "orig", None) or err).lower()
    return any(marker in text for marker in _CREATE_RACE)


def _create_serialised(url: str, engine_kwargs: dict[str, Any], create: Any) -> Any:
    """Run ``create()`` (Optuna's schema creation) holding a PostgreSQL advisory lock.

    Several workers started together against a fresh database all run Optuna's
    ``CREATE TABLE``s at once; PostgreSQL then rejects all but one with a unique
    violation on ``pg_type``. Holding one session-level advisory lock while the storage
    is built makes the creations take turns: the first creates, the others find the
    tables. The lock ends with its connection, also when a worker dies.
    """
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                      connect_args=engine_kwargs.get("connect_args", {}))
    try:
        with engine.connect() as con:
            con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            try:
                return create()
            finally:
                con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()


def _sqlite_path(url: str) -> Path:
    path = Path(_parse(url).database).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


@contextlib.contextmanager
def _folder_lock(db: Path, wait: float = 30.0) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the database's folder while the storage is opened.

    Locking the folder, not a lock file, leaves nothing behind beside the study file. Where
    ``flock`` is missing or refused (Windows, some network file systems) this does nothing
    and the caller's retry covers the race. Waiting is bounded: after ``wait`` seconds the
    open goes ahead unlocked rather than hanging.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    import time

    try:
        fd = os.open(db.parent, os.O_RDONLY)
    except OSError:
        yield
        return
    locked = False
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            except OSError:
                break
        yield
    finally:
        if locked:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _open_with_retry(attempt: Any, attempts: int = 5) -> Any:
    """``attempt()``, again after a short random pause when it lost a table-creation race.

    The advisory lock covers PostgreSQL and the folder lock SQLite; this covers other
    servers (MySQL), systems without ``flock`` and a worker of an older version creating
    the tables without the lock.
    """
    import random
    import time

    for i in range(attempts):
        try:
            return attempt()
        except Exception as err:  # noqa: BLE001 - only the race is retried, the rest re-raised
            if i == attempts - 1 or not _is_create_race(err):
                raise
            time.sleep(0.1 + random.random() * 0.3 * (i + 1))
    return None


def open_storage(url: str | None, *, timeout: float = 5.0, must_exist: bool = False,
                 lock_timeout: float = 60.0, **rdb_kwargs: Any) -> "optuna.storages.BaseStorage":
    """Open an Optuna storage, or raise one clear ``ValueError`` within about ``timeout`` s.

    Args:
        url: a SQLAlchemy URL (``sqlite:///runs.db``, ``postgresql://user:pw@host/db``) or a
            path to a SQLite file. ``None`` means ``$DLTL_STORAGE`` (the operator's setting)
            and, when that is unset too, Optuna's in-memory storage.
        timeout: seconds to wait for a database server (connect timeout and overall deadline).
        must_exist: only open a study file that already exists and holds Optuna's tables
            (reading results: never create a database).
        lock_timeout: seconds a SQLite writer waits for another worker's lock.
        **rdb_kwargs: passed to ``optuna.storages.RDBStorage`` (e.g. ``heartbeat_interval``,
            ``grace_period``, ``engine_kwargs`` merged over ours).

    Returns:
        an ``optuna.storages.RDBStorage`` (or ``InMemoryStorage`` for ``None`` unset).

    Raises:
        ValueError: a bad URL, a refused/silent/unknown server, a missing driver, a SQLite
            path that is not a writable folder or not an (Optuna) SQLite database.
    """
    if url is None:
        url = os.environ.get(ENV_VAR) or None
        if url is None:
            import optuna

            return optuna.storages.InMemoryStorage()
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the storage URL is empty")
    url = storage_url(url)
    if _parse(url).get_backend_name() == "sqlite" and _parse(url).database:
        # The file check and the table creation under one lock of the folder: a worker never
        # looks at a file another worker is half-way through creating.
        with _folder_lock(_sqlite_path(url)):
            return _open(url, timeout, must_exist, lock_timeout, rdb_kwargs)
    return _open(url, timeout, must_exist, lock_timeout, rdb_kwargs)


def _open(url: str, timeout: float, must_exist: bool, lock_timeout: float,
          rdb_kwargs: dict[str, Any]) -> "optuna.storages.BaseStorage":
    full, engine_kwargs = _prepare(url, timeout, must_exist, lock_timeout)
    shown = describe_url(full)
    from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError

    def attempt() -> Any:
        return _open_rdb(full, engine_kwargs, rdb_kwargs)

    def serialised() -> Any:
        if full.startswith("postgresql"):
            return _create_serialised(full, engine_kwargs, attempt)
        return attempt()

    try:
        if full.startswith("sqlite"):
            # A local file: no network wait; SQLite objects stay in this thread. Workers
            # started together on a new file race to create the tables ("table studies
            # already exists"): the caller holds a lock of the folder, and this retries
            # where there is no such lock (Windows) or a worker of another version.
            return _open_with_retry(attempt)
        # libpq may try several addresses (IPv6 and IPv4) with connect_timeout each. The
        # deadline covers reaching the server; waiting for another worker's schema lock
        # happens after the connection succeeded and is bounded by the retries.
        return _with_deadline(lambda: _open_with_retry(serialised), 2 * max(2.0, timeout) + 15, shown)
    except ValueError:
        raise
    except ImportError as err:
        raise ValueError(f"the database driver for {shown} is not installed ({_reason(err.__cause__ or err)})") from err
    except NoSuchModuleError as err:
        raise ValueError(f"unknown kind of database in {shown} (use sqlite:/// or postgresql://)") from err
    except SQLAlchemyError as err:
        raise ValueError(f"cannot open the storage {shown}: {_reason(err)}") from err
    except Exception as err:  # noqa: BLE001 - Optuna's schema check and others: one clear message
        raise ValueError(f"cannot open the storage {shown}: {_reason(err)}") from err
