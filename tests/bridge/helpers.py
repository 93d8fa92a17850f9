"""Small builders shared by the event-log tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from canopy.bridge import EventFilter, NewEvent, Producer, RecordedEvent, Subscription, Topic

PRODUCER = Producer("tests", "1")


def tick(
    execution: str = "e1",
    number: int = 1,
    *,
    tenant: str = "acme",
    key: str | None = None,
    expected: int | None = None,
) -> NewEvent:
    """A valid ``TickStarted`` event on stream ``execution/<execution>``."""
    return NewEvent(
        tenant,
        Topic.EXECUTION,
        f"execution/{execution}",
        "TickStarted",
        {"execution_id": execution, "tick": number},
        PRODUCER,
        idempotency_key=key,
        expected_version=expected,
    )


def incident(incident_id: str = "i1", *, tenant: str = "acme") -> NewEvent:
    """A valid ``IncidentDetected`` event on the timeline."""
    return NewEvent(
        tenant,
        Topic.TIMELINE,
        f"incident/{incident_id}",
        "IncidentDetected",
        {
            "incident_id": incident_id,
            "title": "patrol failed",
            "severity": "error",
            "fingerprint": "fp-1",
        },
        PRODUCER,
    )


def blackboard(value: Any, *, key: str = "battery", tenant: str = "acme") -> NewEvent:
    """A ``BlackboardChanged`` event, whose ``new`` value may be anything JSON can hold."""
    return NewEvent(
        tenant,
        Topic.EXECUTION,
        "execution/e1",
        "BlackboardChanged",
        {"execution_id": "e1", "tick": 1, "key": key, "new": value},
        PRODUCER,
    )


def event_with(payload: dict[str, Any], *, type_: str = "TickStarted", **changes: Any) -> NewEvent:
    """A ``TickStarted``-shaped event with a chosen payload and envelope fields."""
    fields: dict[str, Any] = {
        "tenant_id": "acme",
        "topic": Topic.EXECUTION,
        "stream": "execution/e1",
        "type": type_,
        "payload": payload,
        "producer": PRODUCER,
    }
    fields.update(changes)
    return NewEvent(**fields)


async def collect(subscription: Subscription, count: int) -> list[RecordedEvent]:
    """The next ``count`` events of a subscription (fails the test after 20 seconds)."""
    received: list[RecordedEvent] = []
    async with asyncio.timeout(20):
        async for event in subscription:
            received.append(event)
            if len(received) == count:
                break
    return received


async def read_all(store: Any, event_filter: EventFilter) -> AsyncIterator[RecordedEvent]:
    """Every committed event matching the filter, page by page."""
    after = 0
    while True:
        page = await store.read(event_filter, after=after, limit=1000)
        for event in page.events:
            yield event
        if page.scanned_to == after:
            return
        after = page.scanned_to
