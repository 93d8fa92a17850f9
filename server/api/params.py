"""Query parameters of the event endpoints, checked into a typed value before the log is
asked anything. Unknown parameters are refused rather than ignored: a misspelt ``topics=``
would otherwise silently return every topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from multidict import MultiMapping

from bridge import TOPICS, EventFilter

from .problems import Problem

__all__ = ["MAX_LIMIT", "EventQuery"]

MAX_LIMIT: Final = 10_000
DEFAULT_LIMIT: Final = 1000
_FILTERS: Final = ("topic", "stream", "type")


def _bad(name: str, detail: str) -> Problem:
    return Problem(400, "invalid-request", detail, title="Invalid query parameter", field=name)


def _single(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise _bad(name, f"'{name}' is given {len(values)} times; give it once")
    return values[0] if values else None


def _integer(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    raw = _single(query, name)
    if raw is None:
        return default
    number = raw.isascii() and raw.isdigit() and len(raw) <= 19
    if not number or not low <= int(raw) <= high:
        raise _bad(name, f"'{name}' must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


def _values(query: MultiMapping[str], name: str) -> tuple[str, ...]:
    values = tuple(query.getall(name, []))
    if any(not v for v in values):
        raise _bad(name, f"'{name}' cannot be empty")
    if name == "topic" and (unknown := sorted(set(values) - TOPICS)):
        raise _bad(name, f"unknown topic {unknown[0]!r} (topics: {', '.join(sorted(TOPICS))})")
    return values


@dataclass(frozen=True, slots=True)
class EventQuery:
    """``after``, ``limit`` and the repeatable ``topic``/``stream``/``type`` filters."""

    after: int
    limit: int
    topics: tuple[str, ...]
    streams: tuple[str, ...]
    types: tuple[str, ...]

    @classmethod
    def parse(cls, query: MultiMapping[str], *, with_limit: bool) -> EventQuery:
        """Check ``query``; ``limit`` is only accepted by reads (a subscription pages itself)."""
        allowed = {"after", *_FILTERS} | ({"limit"} if with_limit else set())
        if unknown := sorted(set(query) - allowed):
            raise _bad(
                unknown[0],
                f"unknown query parameter {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            )
        return cls(
            after=_integer(query, "after", 0, 0, 2**63 - 1),
            limit=_integer(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT) if with_limit else 0,
            topics=_values(query, "topic"),
            streams=_values(query, "stream"),
            types=_values(query, "type"),
        )

    def event_filter(self, tenant_id: str) -> EventFilter:
        """The filter for the caller's tenant: a client never chooses the tenant it reads."""
        return EventFilter(tenant_id, self.topics, self.streams, self.types)
