"""Canopy's one error hierarchy, and the event log's own errors.

:class:`CanopyError` is the root of every error a client may see, from any layer; it lives here
because the event log is the lowest layer that code sits in. Each subclass has a stable
``code`` (its class name), and every edge translates by that code in one place: the remote
wire rebuilds an error from its code through :func:`error_class`, the HTTP API maps a code to a
status, DAP answers ``success: false`` with the readable message. Anything that is not a
``CanopyError`` is a bug, and is reported as an internal error with its traceback in the log.

Driver and validation errors of the event log are translated into its subclasses once, at the
boundary, so callers (server, CLI, runtime) handle one small hierarchy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

__all__ = [
    "BridgeError",
    "CanopyError",
    "ConcurrencyConflict",
    "ConfigurationError",
    "IdempotencyConflict",
    "InvalidArgument",
    "InvalidEvent",
    "InvalidFilter",
    "InvalidJson",
    "StoreClosed",
    "StoreUnavailable",
    "error_class",
    "error_codes",
]

_REGISTRY: dict[str, type[CanopyError]] = {}


class CanopyError(Exception):
    """Base of every error Canopy raises on purpose, for a client to see.

    A subclass is registered under its ``code`` (the class name) when it is defined, so that
    a new error travels between processes without a line written elsewhere. By default an
    error travels as its constructor arguments (``args``, when they are more than the
    message). One whose message is built from keyword-only fields names them in ``fields``
    (constructor parameter and attribute → JSON member), and travels as those; any other says
    what rebuilds it in :meth:`details` and :meth:`rebuild`.
    """

    code: ClassVar[str] = "CanopyError"
    fields: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = cls.__name__
        known = _REGISTRY.get(cls.code)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"two errors share the code {cls.code!r}: {known} and {cls}")
        _REGISTRY[cls.code] = cls

    def details(self) -> dict[str, Any]:
        """JSON members a client needs, besides the message, to rebuild this very error."""
        if self.fields:
            return {member: getattr(self, name) for name, member in self.fields.items()}
        arguments = list(self.args)
        return {} if arguments == [str(self)] else {"arguments": arguments}

    @classmethod
    def rebuild(cls, message: str, details: Mapping[str, Any]) -> Self:
        """The error a far side encoded as ``message`` and :meth:`details`."""
        if cls.fields:
            # A member left out stands for its default: a problem document omits null ones.
            given = {name: details[m] for name, m in cls.fields.items() if m in details}
            return cls(**given)
        arguments = details.get("arguments")
        if isinstance(arguments, list):
            try:
                return cls(*arguments)
            except TypeError:
                pass  # the constructor changed: keep at least the message
        error = cls.__new__(cls)
        Exception.__init__(error, message)
        return error


_REGISTRY[CanopyError.code] = CanopyError


def error_class(code: str) -> type[CanopyError] | None:
    """The error class registered under ``code``, if any."""
    return _REGISTRY.get(code)


def error_codes() -> dict[str, type[CanopyError]]:
    """Every registered code and its class (those of the modules imported so far)."""
    return dict(_REGISTRY)


class InvalidArgument(CanopyError):
    """An argument of a request is missing or malformed; the message names it."""


class InvalidJson(InvalidArgument):
    """A JSON text from outside was refused: malformed, nested too deeply, or holding an
    integer no edge could keep exactly. ``line`` and ``column`` say where, when known."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        self.reason = message
        self.line = line
        self.column = column
        where = f" (line {line}, column {column})" if line else ""
        super().__init__(f"{message}{where}")

    def details(self) -> dict[str, Any]:
        return {"arguments": [self.reason, self.line, self.column]}


class BridgeError(CanopyError):
    """Base of every error the event log raises on purpose."""


class InvalidEvent(BridgeError):
    """An event was refused before anything was written.

    ``field`` is a dotted path into the event (``payload.status``), ``index`` the position of
    the event in the append call, so a client can point at the exact culprit.
    """

    def __init__(self, message: str, *, field: str = "", index: int | None = None) -> None:
        self.message = message
        self.field = field
        self.index = index
        where = f"event[{index}]" if index is not None else "event"
        if field:
            where += f".{field}"
        super().__init__(f"{where}: {message}")

    def details(self) -> dict[str, Any]:
        return {"reason": self.message, "field": self.field, "index": self.index}

    @classmethod
    def rebuild(cls, message: str, details: Mapping[str, Any]) -> Self:
        return cls(
            str(details.get("reason", message)),
            field=str(details.get("field") or ""),
            index=details.get("index"),
        )


class ConcurrencyConflict(BridgeError):
    """An append's ``expected_version`` did not match its stream; nothing of it was written."""

    fields: ClassVar[Mapping[str, str]] = {
        "tenant_id": "tenant_id",
        "stream": "stream",
        "expected": "expected_version",
        "actual": "actual_version",
        "index": "index",
    }

    def __init__(
        self, *, tenant_id: str, stream: str, expected: int, actual: int, index: int
    ) -> None:
        self.tenant_id = tenant_id
        self.stream = stream
        self.expected = expected
        self.actual = actual
        self.index = index
        super().__init__(
            f"event[{index}]: stream {stream!r} is at version {actual}, expected {expected}"
        )


class IdempotencyConflict(BridgeError):
    """An event reused an idempotency key that a different event (another type, stream, topic
    or payload) already holds; nothing of its append call was written. A retry of the same
    event is not a conflict: it answers the original offset."""

    fields: ClassVar[Mapping[str, str]] = {
        "tenant_id": "tenant_id",
        "key": "idempotency_key",
        "offset": "offset",
        "differs": "differs",
        "index": "index",
    }

    def __init__(
        self, *, tenant_id: str, key: str, offset: int, differs: Sequence[str], index: int
    ) -> None:
        self.tenant_id = tenant_id
        self.key = key
        self.offset = offset
        self.differs = list(differs)
        self.index = index
        super().__init__(
            f"event[{index}]: idempotency key {key!r} already names event {offset}, whose "
            f"{', '.join(self.differs)} differ{'s' if len(self.differs) == 1 else ''}"
        )


class SequenceGap(BridgeError):
    """A producer appending with a sequence skipped numbers: the log holds its events through
    ``expected - 1``, and the call began at ``got``. Nothing of the call was written; the
    producer resends from ``expected``, out of its own buffer."""

    fields: ClassVar[Mapping[str, str]] = {
        "tenant_id": "tenant_id",
        "producer_id": "producer_id",
        "expected": "expected",
        "got": "got",
    }

    def __init__(self, *, tenant_id: str, producer_id: str, expected: int, got: int) -> None:
        self.tenant_id = tenant_id
        self.producer_id = producer_id
        self.expected = expected
        self.got = got
        super().__init__(
            f"producer {producer_id!r} sent events from sequence {got}, but the log holds its"
            f" events only through {expected - 1}: resend from {expected}"
        )


class InvalidFilter(BridgeError):
    """A read or subscription asked for something the log cannot answer (bad offset, limit...)."""


class StoreUnavailable(BridgeError):
    """The database could not be reached or refused the write; the append may be retried with
    the same idempotency keys without risk of duplicates."""


class StoreClosed(BridgeError):
    """The store was closed while the call was waiting."""


class ConfigurationError(BridgeError):
    """A database URL or retention rule that cannot be used."""
