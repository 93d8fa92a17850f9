"""Query parameters of the event endpoints, checked into a typed value before the log is
asked anything. Unknown parameters are refused rather than ignored: a misspelt ``topics=``
would otherwise silently return every topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from multidict import MultiMapping

from canopy.bridge import TOPICS, EventFilter, RecordedEvent
from canopy.bridge.errors import InvalidJson
from canopy.bridge.jsondata import INT_MAX, loads

from .problems import Problem

__all__ = [
    "MAX_LIMIT",
    "EventQuery",
    "bad_parameter",
    "integer_parameter",
    "json_body",
    "single_parameter",
    "whole_number",
]

MAX_LIMIT: Final = 10_000
DEFAULT_LIMIT: Final = 1000
_FILTERS: Final = ("topic", "stream", "type")
_PAYLOAD_FILTERS: Final = ("node", "status")
"""Subscription-only filters on the payload: a live tree view follows some nodes' statuses."""


def bad_parameter(name: str, detail: str) -> Problem:
    return Problem(400, "invalid-request", detail, title="Invalid query parameter", field=name)


def single_parameter(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise bad_parameter(name, f"'{name}' is given {len(values)} times; give it once")
    return values[0] if values else None


def integer_parameter(
    query: MultiMapping[str], name: str, default: int, low: int, high: int
) -> int:
    number = whole_number(query, name, low, high)
    return default if number is None else number


def whole_number(query: MultiMapping[str], name: str, low: int, high: int) -> int | None:
    """Query parameter ``name`` as an integer from ``low`` to ``high`` written in ASCII digits
    (None when absent); 400 for anything else, including digits ``int()`` would take from
    other scripts and numbers too long to convert."""
    raw = single_parameter(query, name)
    if raw is None:
        return None
    number = raw.isascii() and raw.isdigit() and len(raw) <= 19
    if not number or not low <= int(raw) <= high:
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise bad_parameter(
            name, f"'{name}' must be a whole number from {low} to {high}, not {shown!r}"
        )
    return int(raw)


def _values(query: MultiMapping[str], name: str) -> tuple[str, ...]:
    values = tuple(query.getall(name, []))
    if any(not v for v in values):
        raise bad_parameter(name, f"'{name}' cannot be empty")
    if name == "topic" and (unknown := sorted(set(values) - TOPICS)):
        raise bad_parameter(
            name, f"unknown topic {unknown[0]!r} (topics: {', '.join(sorted(TOPICS))})"
        )
    return values


@dataclass(frozen=True, slots=True)
class EventQuery:
    """``after``, ``limit`` and the repeatable ``topic``/``stream``/``type`` filters; for
    subscriptions also ``node`` and ``status``, which look into the payload."""

    after: int
    limit: int
    topics: tuple[str, ...]
    streams: tuple[str, ...]
    types: tuple[str, ...]
    nodes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    @classmethod
    def parse(cls, query: MultiMapping[str], *, with_limit: bool) -> EventQuery:
        """Check ``query``; ``limit`` is only accepted by reads (a subscription pages itself)."""
        allowed = {"after", *_FILTERS} | ({"limit"} if with_limit else set(_PAYLOAD_FILTERS))
        if unknown := sorted(set(query) - allowed):
            raise bad_parameter(
                unknown[0],
                f"unknown query parameter {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            )
        return cls(
            after=integer_parameter(query, "after", 0, 0, INT_MAX),
            limit=integer_parameter(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
            if with_limit
            else 0,
            topics=_values(query, "topic"),
            streams=_values(query, "stream"),
            types=_values(query, "type"),
            nodes=_values(query, "node"),
            statuses=_values(query, "status"),
        )

    def keeps(self, event: RecordedEvent) -> bool:
        """Whether the payload filters let ``event`` through: an event about a node (it has
        ``node_id``) must be about one of ``nodes``, and one with a ``status`` must have one
        of ``statuses``; events without those fields always pass."""
        payload = event.payload
        if self.nodes and "node_id" in payload and payload["node_id"] not in self.nodes:
            return False
        return not (
            self.statuses and "status" in payload and payload["status"] not in self.statuses
        )

    def event_filter(self, tenant_id: str) -> EventFilter:
        """The filter for the caller's tenant: a client never chooses the tenant it reads."""
        return EventFilter(tenant_id, self.topics, self.streams, self.types)


async def json_body(request: web.Request, shape: str = "{...}") -> dict[str, Any]:
    """The request body as a JSON object (``shape`` shows the client what is expected); 413
    past the size limit (raised by aiohttp while reading), 400 for anything that is not
    strict JSON."""
    raw = await request.read()
    try:
        body = loads(raw or b"{}")
    except InvalidJson as exc:
        raise Problem(400, "invalid-request", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Problem(400, "invalid-request", f"the body must be a JSON object {shape}")
    return body
