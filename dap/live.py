"""The live tree: a live execution's status events, streamed to a client that draws the tree,
one by one or coalesced into batches.

A wide tree ticking fast changes thousands of node statuses a second. Sent one DAP event each,
they cost the adapter, the editor's debug service and every extension listening far more than
drawing them does; a client needs only each node's latest status a few dozen times a second.
:class:`StatusBatch` keeps exactly that between two flushes, so a batch is bounded by the size
of the tree, not by the event rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

from canopy.bridge.events import RecordedEvent
from canopy.server.runtime.control import ExecutionControl

__all__ = [
    "LAST_BATCH_WAIT",
    "LIVE_TREE_EVENTS",
    "MAX_BATCH_MS",
    "MIN_BATCH_MS",
    "StatusBatch",
    "stream_batches",
    "stream_statuses",
]

LIVE_TREE_EVENTS: Final = ("NodeStatusChanged", "TickCompleted", "TreeReloaded")
MIN_BATCH_MS: Final = 10
MAX_BATCH_MS: Final = 1000
LAST_BATCH_WAIT: Final = 2.0
"""Seconds an ending session waits for the live tree's last batch."""

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Sends one DAP event (name, body) to the client."""


class StatusBatch:
    """The latest status of each node that changed since the last :meth:`take`, the tick and
    root status reached, the node that changed last, and whether the tree was reloaded."""

    def __init__(self) -> None:
        self._changes: dict[str, str] = {}
        self._current: str | None = None
        self._tick = 0
        self._root_status: str | None = None
        self._reloaded = False
        self._offset = 0
        self._events = 0

    def add(self, event: RecordedEvent) -> None:
        """Fold one ``NodeStatusChanged``, ``TickCompleted`` or ``TreeReloaded`` event in
        (others only count: the batch is sent with them)."""
        payload = event.payload
        self._events += 1
        self._offset = event.offset
        tick = payload.get("tick")
        if isinstance(tick, int):
            self._tick = max(self._tick, tick)
        if event.type == "NodeStatusChanged":
            node = payload["node_id"]
            self._changes.pop(node, None)  # re-inserted last: the order is "last changed last"
            self._changes[node] = payload["status"]
            self._current = node
        elif event.type == "TickCompleted":
            self._root_status = payload.get("root_status")
        elif event.type == "TreeReloaded":
            self._reloaded = True
            self._changes.clear()

    def take(self) -> dict[str, Any] | None:
        """The batch's body (and a fresh start), or None when nothing arrived."""
        if self._events == 0:
            return None
        body = {
            "changes": self._changes,
            "current": self._current,
            "tick": self._tick,
            "rootStatus": self._root_status,
            "reloaded": self._reloaded,
            "offset": self._offset,
            "events": self._events,
        }
        self._changes, self._reloaded, self._events = {}, False, 0
        return body


async def stream_statuses(
    control: ExecutionControl, execution_id: str, after: int, emit: Emit
) -> None:
    """One ``canopy/nodeStatus`` event per status change, tick end and reload after ``after``."""
    events = control.events(execution_id, after=after, types=LIVE_TREE_EVENTS)
    async for event in events:
        await emit(
            "canopy/nodeStatus", {"offset": event.offset, "type": event.type, **event.payload}
        )


async def stream_batches(
    control: ExecutionControl, execution_id: str, batch_ms: int, after: int, emit: Emit
) -> None:
    """Collect status events as they come; every ``batch_ms`` after the first one of a batch,
    send what changed as one ``canopy/nodeStatuses`` event. The batch holds one entry per node
    at most, so a fast, wide tree costs the client a bounded amount per batch. Ends after the
    execution's last batch."""
    batch = StatusBatch()
    arrived = asyncio.Event()
    ended = False

    async def collect() -> None:
        nonlocal ended
        types = (*LIVE_TREE_EVENTS, "ExecutionEnded")
        try:
            async for event in control.events(execution_id, after=after, types=types):
                # After the end, everything the execution did is in the batch.
                ended = ended or event.type == "ExecutionEnded"
                batch.add(event)
                arrived.set()
        finally:
            arrived.set()

    collector = asyncio.ensure_future(collect())
    try:
        while not (ended or collector.done()):
            await arrived.wait()
            await asyncio.sleep(batch_ms / 1000)
            arrived.clear()
            body = batch.take()
            if body is not None:
                await emit("canopy/nodeStatuses", body)
        if collector.done():
            await collector  # the stream's own error, if it ended with one
    finally:
        collector.cancel()
