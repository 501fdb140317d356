"""One small name -> object registry for the whole core, in the spirit of timm's.

Models, CIFAR architectures, backbones, loss surfaces and optimizers each keep one
``Registry``; pages and the command line refer to entries by name.

    >>> MODELS = Registry("model")
    >>> @MODELS.register("tiny", label="Tiny MLP")
    ... def tiny(width: int = 4) -> nn.Module:
    ...     return nn.Linear(2, width)
    >>> _ = MODELS.register("wide", functools.partial(tiny, width=64), label="Wide")  # call form
    >>> model = MODELS.create("tiny", seed=0, width=8)   # same weights for the same seed
    >>> MODELS.meta("tiny")["label"], MODELS.names(), "tiny" in MODELS
    ('Tiny MLP', ['tiny', 'wide'], True)

An entry may be any object (a factory, a dataclass describing an optimizer as
data, ...); ``create`` only needs it to be callable. ``meta`` holds free-form
keyword metadata (label, family, reference accuracy, ...) a picker can show.
"""

from __future__ import annotations

import warnings
from types import MappingProxyType
from typing import Any, Generic, Iterator, Mapping, TypeVar

import torch

from dltl_core import device

T = TypeVar("T")
_MISSING: Any = object()

# torch's global RNG is process-wide: seeded construction must not interleave with another
# thread's seeded work (a fit inside ``device.seeded``, another session's ``create``), or one
# seed leaks into the other's random numbers. So it takes turns on the same lock as ``seeded``.
SEED_LOCK = device._SEED_LOCK  # noqa: SLF001 - one lock for all seeded work in the process


class Registry(Generic[T]):
    """Named entries of one kind, with metadata and seeded construction.

    Args:
        kind: what the entries are, for messages (``"model"``, ``"surface"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._meta: dict[str, Mapping[str, Any]] = {}

    def register(self, name: str, obj: T = _MISSING, /, **meta: Any) -> Any:
        """Add ``obj`` under ``name``; without ``obj``, a decorator that adds what it wraps.

        A name registered twice warns (``RuntimeWarning``) and the later entry wins.

        Args:
            name: the registry key (the URL and command-line value).
            obj: the entry; omit it to use ``register`` as a decorator.
            **meta: free-form metadata, read back with ``meta(name)``.

        Returns:
            ``obj`` itself (call form) or the decorator (which returns the wrapped object).
        """
        if obj is _MISSING:
            def wrap(fn: T) -> T:
                self._add(name, fn, meta)
                return fn
            return wrap
        self._add(name, obj, meta)
        return obj

    def _add(self, name: str, obj: T, meta: dict[str, Any]) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            warnings.warn(f"{self.kind} {name!r} is registered twice; the later entry replaces the earlier",
                          RuntimeWarning, stacklevel=4)
        self._entries[name] = obj
        self._meta[name] = MappingProxyType(dict(meta))

    def _check(self, name: str) -> None:
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose from {', '.join(self._entries)}")

    def get(self, name: str) -> T:
        """The entry registered under ``name``.

        Raises:
            ValueError: unknown name (the message lists the known ones).
        """
        self._check(name)
        return self._entries[name]

    def meta(self, name: str) -> Mapping[str, Any]:
        """The read-only metadata given at registration (may be empty)."""
        self._check(name)
        return self._meta[name]

    def create(self, name: str, *, seed: int | None = None, **kwargs: Any) -> Any:
        """Call the entry ``name`` with ``kwargs``.

        Args:
            name: a registered name.
            seed: when given, torch's global RNG is seeded with it just before the call
                and restored afterwards, so the result (e.g. initial weights) depends only
                on the seed and the caller's RNG stream is untouched.
            **kwargs: the entry's own arguments.

        Raises:
            ValueError: unknown name (or whatever the entry raises for bad arguments).
            TypeError: the entry is not callable.
        """
        factory = self.get(name)
        if not callable(factory):
            raise TypeError(f"{self.kind} {name!r} is not callable")
        if seed is None:
            return factory(**kwargs)
        with SEED_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return factory(**kwargs)

    def remove(self, name: str) -> None:
        """Drop ``name`` (tests that register a temporary entry clean up with it)."""
        self._check(name)
        del self._entries[name], self._meta[name]

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, in registration order."""
        return list(self._entries.items())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def entry_label(registry: Registry[Any], name: str) -> str:
    """The ``label`` metadata of ``name``, or the name itself (for pickers)."""
    return str(registry.meta(name).get("label", name))


__all__ = ["Registry", "SEED_LOCK", "entry_label"]
