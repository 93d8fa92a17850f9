"""``/api/v1/audit``: the audit log of debug sessions, by execution and by user, always of
the caller's tenant; and the caller's audit trail for the handlers that act.

Audit events live on one stream per tenant (:func:`server.audit.audit_stream`), so a query
reads only audit events and keeps those of the execution, user and action asked for. A page
scans at most :data:`MAX_SCANNED` audit events: ``next_after`` then says where the next page
starts, as with ``/api/v1/events`` (a page may be short, even empty, before the end).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web
from multidict import MultiMapping

from canopy import schemas
from canopy.bridge import EventFilter, RecordedEvent, Topic
from canopy.bridge.jsondata import INT_MAX

from ..audit import AUDIT_EVENT_TYPE, Actor, AuditTrail, audit_stream
from .keys import PRINCIPAL, STORE
from .params import bad_parameter, integer_parameter, single_parameter

__all__ = [
    "AUDIT_ACTIONS",
    "DEFAULT_AUDIT_LIMIT",
    "MAX_AUDIT_LIMIT",
    "MAX_SCANNED",
    "AuditQuery",
    "read_audit",
    "trail_of",
]

AUDIT_ACTIONS: Final[tuple[str, ...]] = tuple(
    schemas.event_type_schemas()[AUDIT_EVENT_TYPE]["properties"]["action"]["enum"]
)
DEFAULT_AUDIT_LIMIT: Final = 100
MAX_AUDIT_LIMIT: Final = 1000
MAX_SCANNED: Final = 10_000
_SCAN_PAGE: Final = 1000
_PARAMETERS: Final = ("after", "limit", "execution", "user", "action")


def trail_of(request: web.Request) -> AuditTrail:
    """Where the caller's actions are recorded: as the token's user, over HTTP."""
    principal = request[PRINCIPAL]
    actor = Actor(principal.user_id, principal.tenant_id, "http", principal.token_id)
    return AuditTrail(request.app[STORE], actor)


def _text(query: MultiMapping[str], name: str) -> str | None:
    value = single_parameter(query, name)
    if value == "":
        raise bad_parameter(name, f"'{name}' cannot be empty")
    return value


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """``after``, ``limit`` and the optional ``execution``, ``user`` and ``action``."""

    after: int
    limit: int
    execution: str | None = None
    user: str | None = None
    action: str | None = None

    @classmethod
    def parse(cls, query: MultiMapping[str]) -> AuditQuery:
        """Check ``query``: unknown, repeated or empty parameters are refused, by name."""
        if unknown := sorted(set(query) - set(_PARAMETERS)):
            raise bad_parameter(
                unknown[0],
                f"unknown query parameter {unknown[0]!r} (allowed: {', '.join(_PARAMETERS)})",
            )
        action = _text(query, "action")
        if action is not None and action not in AUDIT_ACTIONS:
            raise bad_parameter(
                "action", f"unknown action {action!r} (actions: {', '.join(AUDIT_ACTIONS)})"
            )
        return cls(
            after=integer_parameter(query, "after", 0, 0, INT_MAX),
            limit=integer_parameter(query, "limit", DEFAULT_AUDIT_LIMIT, 1, MAX_AUDIT_LIMIT),
            execution=_text(query, "execution"),
            user=_text(query, "user"),
            action=action,
        )

    def keeps(self, event: RecordedEvent) -> bool:
        payload = event.payload
        return (
            (self.execution is None or payload.get("execution_id") == self.execution)
            and (self.user is None or payload.get("user_id") == self.user)
            and (self.action is None or payload.get("action") == self.action)
        )


async def read_audit(request: web.Request) -> web.Response:
    """``GET /api/v1/audit``: one page of the caller's tenant's audit events after ``after``,
    oldest first, as ``{"events": [...], "next_after": n, "head": h}``."""
    query = AuditQuery.parse(request.query)
    tenant = request[PRINCIPAL].tenant_id
    store = request.app[STORE]
    audit = EventFilter(tenant, (Topic.INTERNAL,), (audit_stream(tenant),), (AUDIT_EVENT_TYPE,))
    found: list[RecordedEvent] = []
    position = query.after
    scanned = 0
    while len(found) < query.limit and scanned < MAX_SCANNED:
        page = await store.read(audit, after=position, limit=_SCAN_PAGE)
        for event in page.events:
            position = event.offset
            if query.keeps(event):
                found.append(event)
                if len(found) == query.limit:
                    break
        else:
            position = page.scanned_to
            if len(page.events) < _SCAN_PAGE:
                break  # the end of the log
        scanned += len(page.events)
    head = await store.last_offset()
    return web.json_response(
        {"events": [event.to_json() for event in found], "next_after": position, "head": head}
    )
