"""Paths a visitor types are confined to the operator's data roots; storage comes from the operator.

On a public server every visitor shares one process and its file system. A folder
box that opens any path lists ``/``, trains on ``/usr/share`` and shows other
visitors' uploads. Here:

* ``data_roots()`` are the folders visitors may use: ``DLTL_DATA_ROOTS``
  (``os.pathsep``-separated, e.g. ``/srv/birds:/srv/cifar10``), else the configured
  bird folder (``DLTL_BIRDS_DIR``), the CIFAR-10 folder (``DLTL_CIFAR_DIR``) and the
  downloaded CUB-200-2011 images. The UI adds the visitor's own upload area.
* ``confine(path)`` returns the resolved path (symlinks followed) when it lies inside a
  root, else raises ``PathRefused`` with **one fixed message**: the answer never depends
  on whether the path exists, so the box cannot be used to probe the server.
* A root that contains the cache folder (e.g. a home directory) does not open the cache:
  other visitors' uploads and cached features stay unreachable.
* ``operator_storage()`` reads the Optuna storage URL and the results files from the
  operator's configuration only (environment or ``st.secrets``), never from a visitor.

A student running the app on a laptop points it at their own folders by setting
``DLTL_DATA_ROOTS`` (or ``DLTL_BIRDS_DIR``) before starting it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from dltl_core.cache import cache_dir

ROOTS_ENV = "DLTL_DATA_ROOTS"
REFUSED_MESSAGE = ("only folders inside the data folders configured for this server can be used "
                   "(the operator sets them with DLTL_DATA_ROOTS)")
_MAX_LEN = 1024


class PathRefused(ValueError):
    """A visitor's path lies outside the data roots (or is malformed); the message is fixed."""

    def __init__(self) -> None:
        super().__init__(REFUSED_MESSAGE)


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def upload_base() -> Path:
    """The folder holding every visitor's upload area (``<cache>/uploads``); never a root itself."""
    return cache_dir() / "uploads"


def _split(value: str) -> list[Path]:
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def default_roots() -> list[Path]:
    """The roots when ``DLTL_DATA_ROOTS`` is unset: bird folder, CIFAR-10 folder, CUB download."""
    from dltl_core.birds.cub import cub_root
    from dltl_core.birds.folder import default_birds_dir

    roots = [default_birds_dir(), cub_root()]
    cifar = os.environ.get("DLTL_CIFAR_DIR")
    roots.append(Path(cifar).expanduser() if cifar else cache_dir() / "cifar10")
    return [r for r in roots if r is not None]


def data_roots(extra: Iterable[str | Path] = ()) -> list[Path]:
    """The folders visitors may read, resolved (``DLTL_DATA_ROOTS`` or the defaults) + ``extra``.

    Args:
        extra: more roots for this visitor only, e.g. their own upload area.
    """
    env = os.environ.get(ROOTS_ENV, "")
    roots = _split(env) if env.strip() else default_roots()
    out: list[Path] = []
    for root in [*roots, *map(Path, extra)]:
        real = _real(root)
        if real not in out and real != Path(real.anchor):  # "/" as a root would undo the point
            out.append(real)
    return out


def root_names(roots: Sequence[str | Path]) -> dict[str, Path]:
    """A short public name for each root, in order: its folder's name (``cub100``), made unique
    (``images``, ``images-2``). Pages name folders by these, never by the server's paths."""
    names: dict[str, Path] = {}
    for root in roots:
        real = _real(root)
        base = real.name or "data"
        name, i = base, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names[name] = real
    return names


def shown_path(path: str | Path, roots: Sequence[str | Path] | None = None) -> str:
    """How a page names ``path``: ``<root name>/<part inside it>`` (what ``confine`` reads back).

    A path outside every root is named by its last part only: the visitor never sees a
    server path.
    """
    real = _real(path)
    names = root_names(data_roots() if roots is None else roots)
    for name, root in sorted(names.items(), key=lambda kv: len(kv[1].parts), reverse=True):
        if _inside(real, root):
            rel = real.relative_to(root)
            return name if not rel.parts else f"{name}/{rel.as_posix()}"
    return real.name


def confine(user_path: str | Path, roots: Sequence[str | Path] | None = None) -> Path:
    """The resolved ``user_path`` if it lies inside one of ``roots``; else ``PathRefused``.

    A relative path that starts with a root's public name (``root_names``: ``cub100/…``) is
    taken inside that root; another relative path is taken relative to the first root. An
    absolute path is accepted inside a root too (a student's own laptop). ``..`` components are refused
    outright, symlinks are resolved before the check, and paths inside the cache folder
    are accepted only through a root that itself lies inside the cache (the CUB download,
    the visitor's own upload area).

    Args:
        user_path: what the visitor typed.
        roots: allowed folders (default ``data_roots()``).

    Raises:
        PathRefused: outside every root, empty, too long, with ``..`` or a NUL byte. The
            message is the same whether or not the path exists.
    """
    text = os.fspath(user_path).strip() if isinstance(user_path, (str, Path)) else ""
    if not text or len(text) > _MAX_LEN or "\x00" in text or ".." in Path(text).parts:
        raise PathRefused()
    resolved_roots = [_real(r) for r in (data_roots() if roots is None else roots)]
    if not resolved_roots:
        raise PathRefused()
    candidate = Path(text)
    if not candidate.is_absolute():
        named = root_names(resolved_roots).get(candidate.parts[0]) if candidate.parts else None
        candidate = named / Path(*candidate.parts[1:]) if named is not None else resolved_roots[0] / candidate
    try:
        real = _real(candidate)
    except (OSError, ValueError, RuntimeError):  # symlink loops, odd bytes
        raise PathRefused() from None
    cache = _real(cache_dir())
    for root in sorted(resolved_roots, key=lambda r: len(r.parts), reverse=True):
        if _inside(real, root):
            if _inside(real, cache) and not _inside(root, cache):
                raise PathRefused()  # e.g. root /home/me would otherwise open ~/.cache/dltl/uploads
            return real
    raise PathRefused()


@dataclass(frozen=True)
class OperatorStorage:
    """Where results live, as the operator configured it.

    Attributes:
        storage: an Optuna storage URL (``DLTL_STORAGE``), or None.
        results: results files (``DLTL_RESULTS``, ``os.pathsep``-separated), in order.
    """

    storage: str | None
    results: tuple[Path, ...]


def _secret(secrets: Mapping[str, Any] | None, name: str) -> Any:
    if not secrets:
        return None
    try:
        if name in secrets:
            return secrets[name]
        section = secrets.get("dltl") or {}
        return section.get(name.removeprefix("DLTL_").lower())
    except (AttributeError, KeyError, TypeError, FileNotFoundError):
        return None


def operator_storage(secrets: Mapping[str, Any] | None = None) -> OperatorStorage:
    """The operator's storage URL and results files: environment first, then ``secrets``.

    Args:
        secrets: ``st.secrets`` (passed in by the UI; the core never imports Streamlit),
            with ``DLTL_STORAGE`` / ``DLTL_RESULTS`` at the top level or ``storage`` /
            ``results`` under a ``[dltl]`` section. ``results`` may be a list.
    """
    storage = os.environ.get("DLTL_STORAGE") or _secret(secrets, "DLTL_STORAGE") or None
    raw = os.environ.get("DLTL_RESULTS") or _secret(secrets, "DLTL_RESULTS") or ()
    files = _split(raw) if isinstance(raw, str) else [Path(str(p)).expanduser() for p in raw]
    return OperatorStorage(str(storage).strip() if storage else None, tuple(files))
