"""Per-execution blackboards on top of py_trees' process-global one.

py_trees keeps every blackboard value in one class attribute, ``Blackboard.storage``, and every
write goes through ``storage[key] = value`` or ``del storage[key]``. Each execution therefore
owns a :class:`RecordingStorage` that tells the engine of every write, and installs it as *the*
storage only while it ticks, under one process-wide lock: two executions in one process never
share keys by accident, and no write escapes the recording.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from py_trees.blackboard import Blackboard

__all__ = [
    "MISSING",
    "BlackboardView",
    "Installation",
    "RecordingStorage",
    "absolute",
    "absolute_key",
]


class _Missing:
    """Marks an absent value (a new key's old value, an unset key's new value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()

WriteHook = Callable[[str, Any, Any], None]

# The resource it guards, py_trees' class-level storage, is itself process-global.
_INSTALL_LOCK: Final = threading.RLock()


def absolute(key: str) -> str:
    """A key as py_trees stores it: ``battery`` → ``/battery`` (absolute keys unchanged)."""
    return key if key.startswith("/") else "/" + key


def absolute_key(name: str) -> str:
    """A dotted or slashed name as a key: ``battery.level`` or ``battery/level`` →
    ``/battery/level`` (how users name keys in watches, the Variables view and expressions)."""
    return "/" + name.strip("/").replace(".", "/")


class RecordingStorage(dict[str, Any]):
    """A dict that reports each change as ``on_write(key, old, new)`` (``MISSING`` for absent)."""

    __slots__ = ("_namespaces", "on_write")

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        super().__init__(values or {})
        self.on_write: WriteHook | None = None
        self._namespaces: frozenset[str] | None = None

    def __setitem__(self, key: str, value: Any) -> None:
        old = dict.get(self, key, MISSING)
        dict.__setitem__(self, key, value)
        if old is MISSING:
            self._namespaces = None
        if self.on_write is not None:
            self.on_write(key, old, value)

    def __delitem__(self, key: str) -> None:
        old = dict.__getitem__(self, key)
        dict.__delitem__(self, key)
        self._namespaces = None
        if self.on_write is not None:
            self.on_write(key, old, MISSING)

    def namespaces(self) -> frozenset[str]:
        """Every namespace prefix in use (``/robot/``, ``/robot/pose/``), cached until a key is
        added or removed: expressions resolve dotted names against it on every breakpoint hit."""
        if self._namespaces is None:
            self._namespaces = namespaces_of(self)
        return self._namespaces

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            value = self[key]
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        for key in list(self):
            del self[key]


class Installation:
    """Makes one execution's storage py_trees' blackboard while it ticks.

    One execution ticks at a time per process; a stopped execution suspends its installation
    so that the others can tick meanwhile.
    """

    __slots__ = ("_previous", "active", "storage")

    def __init__(self, storage: RecordingStorage) -> None:
        self.storage = storage
        self.active = False
        self._previous: dict[str, Any] = {}

    def __enter__(self) -> Installation:
        _INSTALL_LOCK.acquire()
        self._previous = Blackboard.storage
        Blackboard.storage = self.storage
        self.active = True
        return self

    def __exit__(self, *_exc: object) -> None:
        self.active = False
        Blackboard.storage = self._previous
        _INSTALL_LOCK.release()

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Give the blackboard back for the duration, if it is held."""
        if not self.active:
            yield
            return
        self.__exit__()
        try:
            yield
        finally:
            self.__enter__()


def namespaces_of(keys: Iterable[str]) -> frozenset[str]:
    """The namespace prefixes of absolute keys: ``/a/b/c`` gives ``/a/`` and ``/a/b/``."""
    found: set[str] = set()
    for key in keys:
        cut = key.find("/", 1)
        while cut != -1:
            found.add(key[: cut + 1])
            cut = key.find("/", cut + 1)
    return frozenset(found)


class BlackboardView(Mapping[str, Any]):
    """Absolute keys (``/battery/level``) seen as nested names (``battery.level``) for the
    expression language.

    A name that is both a key and a namespace (``/battery`` and ``/battery/level``) resolves to
    the namespace, like :func:`~server.runtime.expressions.flatten_blackboard`; the key's own
    value stays reachable as ``battery[""]``.
    """

    __slots__ = ("_namespaces", "_prefix", "_storage")

    def __init__(
        self,
        storage: Mapping[str, Any],
        prefix: str = "/",
        namespaces: frozenset[str] | None = None,
    ) -> None:
        self._storage = storage
        self._prefix = prefix
        if namespaces is None:
            namespaces = (
                storage.namespaces()
                if isinstance(storage, RecordingStorage)
                else namespaces_of(storage)
            )
        self._namespaces = namespaces

    def __getitem__(self, name: str) -> Any:
        if name == "":
            own = self._prefix[:-1]
            if own in self._storage:
                return self._storage[own]
            raise KeyError(name)
        key = self._prefix + name
        if key + "/" in self._namespaces:
            return BlackboardView(self._storage, key + "/", self._namespaces)
        if key in self._storage:
            return self._storage[key]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key in self._storage:
            if key.startswith(self._prefix):
                name = key[len(self._prefix) :].split("/", 1)[0]
                if name and name not in seen:
                    seen.add(name)
                    yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)
