"""Evidence: error reports from running services, and the store that keeps them.

Evidence lives in its own tables behind :class:`EvidenceStore`, never in the event log: it
arrives in volume from outside, is pruned by age and is queried by aggregate (how often, since
when, at what rate), while the log keeps the facts Canopy derives from it. Every read names the
tenant it reads as, so one tenant never sees another's evidence.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from canopy.bridge import InvalidArgument

__all__ = [
    "ERROR_LEVELS",
    "MAX_FRAMES",
    "MAX_RAW_BYTES",
    "MAX_TEXT",
    "ErrorRate",
    "Evidence",
    "EvidenceStore",
    "FirstSeen",
    "Frame",
    "Frequency",
    "InvalidEvidence",
    "StoredEvidence",
    "iso",
]

ERROR_LEVELS: Final = frozenset({"error", "fatal"})
"""The levels an error rate counts (Sentry's; a warning or an info message is not an error)."""
MAX_RAW_BYTES: Final = 64 * 1024
"""The most of a report kept as received; the parsed fields are kept whole."""
MAX_FRAMES: Final = 250
"""Frames kept per report, the innermost ones (Sentry's SDKs cut deep stacks the same way)."""
MAX_TEXT: Final = 8 * 1024
"""Characters kept of a message or a line of context."""


def iso(moment: datetime) -> str:
    """A time as the API writes it: RFC 3339 in UTC."""
    return moment.isoformat().replace("+00:00", "Z")


class InvalidEvidence(InvalidArgument):
    """A report that cannot be taken: malformed, or a field of the wrong kind (the message
    says which, and where)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a stack trace, outermost call first as Sentry sends them."""

    file: str
    function: str
    line: int | None = None
    in_app: bool = False
    module: str = ""
    context_line: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "function": self.function,
            "line": self.line,
            "in_app": self.in_app,
            "module": self.module,
            "context_line": self.context_line,
        }

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Frame:
        return cls(**item)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One error report of one service. ``raw`` is the report as received, cut at the
    store's bound; ``raw_size`` is its whole size, so a cut is never silent."""

    tenant_id: str
    service: str
    environment: str
    release: str
    time: datetime
    level: str
    exception_type: str
    message: str
    frames: tuple[Frame, ...]
    signature: str
    event_id: str
    raw: bytes
    raw_size: int


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    """A kept report and its id (ascending in the order reports were stored)."""

    id: int
    evidence: Evidence

    def to_json(self) -> dict[str, Any]:
        """The report as the API shows it (``raw`` as text; ``raw_size`` above its length
        says it was cut)."""
        item = self.evidence
        return {
            "id": self.id,
            "event_id": item.event_id,
            "service": item.service,
            "environment": item.environment,
            "release": item.release,
            "time": iso(item.time),
            "level": item.level,
            "exception_type": item.exception_type,
            "message": item.message,
            "signature": item.signature,
            "frames": [frame.to_json() for frame in item.frames],
            "raw": item.raw.decode("utf-8", "replace"),
            "raw_size": item.raw_size,
        }


@dataclass(frozen=True, slots=True)
class Frequency:
    """How many reports of one signature a service had in the bucket starting at ``bucket``."""

    service: str
    signature: str
    bucket: datetime
    count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "signature": self.signature,
            "bucket": iso(self.bucket),
            "count": self.count,
        }


@dataclass(frozen=True, slots=True)
class FirstSeen:
    """When a signature first (and last) appeared in a release of a service: a signature
    whose first sighting is in the newest release is new with it."""

    service: str
    signature: str
    release: str
    exception_type: str
    first_seen: datetime
    last_seen: datetime
    count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "signature": self.signature,
            "release": self.release,
            "exception_type": self.exception_type,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "count": self.count,
        }


@dataclass(frozen=True, slots=True)
class ErrorRate:
    """A service's reports in the bucket starting at ``bucket``: ``errors`` of ``total`` at
    an error level (see :data:`ERROR_LEVELS`)."""

    service: str
    bucket: datetime
    errors: int
    total: int

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "bucket": iso(self.bucket),
            "errors": self.errors,
            "total": self.total,
        }


@dataclass(frozen=True, slots=True)
class Scope:
    """Which of a tenant's reports an aggregate counts: one service (or all), those at or after
    ``since`` and before ``until``, and at most ``limit`` rows of the answer."""

    service: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 1000


ALL_REPORTS: Final = Scope()
"""The scope of every report of a tenant (up to the default limit)."""


class EvidenceStore(ABC):
    """Where evidence is kept and aggregated. ``since`` and ``until`` bound report times
    (``since`` included, ``until`` excluded); buckets are aligned on the Unix epoch."""

    @abstractmethod
    async def record(self, items: Sequence[Evidence]) -> list[bool]:
        """Keep ``items`` in one transaction; for each, whether it is new (a report whose
        ``event_id`` the tenant already has is a client's retry, and is kept once)."""

    @abstractmethod
    async def reports(
        self,
        tenant_id: str,
        *,
        service: str | None = None,
        signature: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[StoredEvidence]:
        """Up to ``limit`` reports with ids above ``after``, oldest first."""

    @abstractmethod
    async def frequency(
        self, tenant_id: str, bucket: timedelta, scope: Scope = ALL_REPORTS
    ) -> list[Frequency]:
        """Reports per (service, signature, bucket), by bucket then service and signature."""

    @abstractmethod
    async def first_seen(self, tenant_id: str, scope: Scope = ALL_REPORTS) -> list[FirstSeen]:
        """First sighting per (service, signature, release), earliest first."""

    @abstractmethod
    async def error_rate(
        self, tenant_id: str, bucket: timedelta, scope: Scope = ALL_REPORTS
    ) -> list[ErrorRate]:
        """Error and total counts per (service, bucket), by bucket then service."""

    @abstractmethod
    async def delete_older_than(self, age: timedelta, *, now: datetime | None = None) -> int:
        """Retention: delete every tenant's reports older than ``age``; how many went."""
