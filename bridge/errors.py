"""The event log's own exceptions: driver and validation errors are translated into these once,
at the boundary, so callers (server, CLI, runtime) handle one small hierarchy."""

from __future__ import annotations


class BridgeError(Exception):
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


class ConcurrencyConflict(BridgeError):
    """An append's ``expected_version`` did not match its stream; nothing of it was written."""

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


class InvalidFilter(BridgeError):
    """A read or subscription asked for something the log cannot answer (bad offset, limit...)."""


class StoreUnavailable(BridgeError):
    """The database could not be reached or refused the write; the append may be retried with
    the same idempotency keys without risk of duplicates."""


class StoreClosed(BridgeError):
    """The store was closed while the call was waiting."""


class ConfigurationError(BridgeError):
    """A database URL or retention rule that cannot be used."""
