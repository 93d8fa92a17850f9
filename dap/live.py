"""The live tree: a live execution's status events, streamed to a client that draws the tree,
one by one or coalesced into batches.

A wide tree ticking fast changes thousands of node statuses a second. Sent one DAP event each,
they cost the adapter, the editor's debug service and every extension listening far more than
drawing them does; a client needs only each node's latest status a few dozen times a second.
:class:`StatusBatch` keeps exactly that between two flushes, so a batch is bounded by the size
of the tree, not by the event rate.

The same stream carries the workflow's agent calls (:data:`AGENT_EVENTS`) as they start, retry,
call tools, run late and end, each cut down to what a timeline of calls draws
(:func:`agent_call`): a call's prompt and answer can be megabytes, its lane needs only when, how
long and how it ended.
They are not coalesced (every start and end is a bar's edge), and a client that opens the view
late can ask for them from an earlier offset than the statuses (``agents_after``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

from canopy.bridge.events import RecordedEvent
from canopy.server.runtime.control import ExecutionControl

__all__ = [
    "AGENT_EVENTS",
    "LAST_BATCH_WAIT",
    "LIVE_TREE_EVENTS",
    "MAX_BATCH_MS",
    "MIN_BATCH_MS",
    "StatusBatch",
    "agent_call",
    "stream_batches",
    "stream_statuses",
]

LIVE_TREE_EVENTS: Final = ("NodeStatusChanged", "TickCompleted", "TreeReloaded")
AGENT_EVENTS: Final = (
    "AgentCallStarted",
    "AgentRetried",
    "AgentToolCalled",
    "AgentSlow",
    "AgentCallCompleted",
    "AgentCallFailed",
    "AgentCallCancelled",
)
_AGENT_FIELDS: Final = (
    "tick",
    "node_id",
    "call_id",
    "agent",
    "model",
    "function",
    "latency_ms",
    "retries",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "rounds",
    "served_from",
    "error_type",
    "message",
    "status",
    "reason",
    "attempt",
    "delay_s",
    "round",
    "tool",
    "error",
    "elapsed_ms",
    "expected_ms",
    "basis",
)
"""What the live stream keeps of an agent event: timing, usage and outcome, not content."""
MIN_BATCH_MS: Final = 10
MAX_BATCH_MS: Final = 1000
LAST_BATCH_WAIT: Final = 2.0
"""Seconds an ending session waits for the live tree's last batch."""

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Sends one DAP event (name, body) to the client."""


def agent_call(event: RecordedEvent) -> dict[str, Any]:
    """An agent event as the live stream sends it: its type, offset and time (milliseconds
    since the epoch, the envelope's) and the payload's fields of :data:`_AGENT_FIELDS`."""
    payload = event.payload
    kept: dict[str, Any] = {name: payload[name] for name in _AGENT_FIELDS if name in payload}
    return {"type": event.type, "offset": event.offset, "time": event.time_us / 1000, **kept}


class StatusBatch:
    """The latest status of each node that changed since the last :meth:`take`, the tick and
    root status reached, the node that changed last, whether the tree was reloaded, and the
    agent events in log order. Status events at or before ``after`` are left out (only agent
    events are read from further back)."""

    def __init__(self, after: int = 0) -> None:
        self._after = after
        self._agents: list[dict[str, Any]] = []
        self._changes: dict[str, str] = {}
        self._current: str | None = None
        self._tick = 0
        self._root_status: str | None = None
        self._reloaded = False
        self._offset = 0
        self._events = 0

    def add(self, event: RecordedEvent) -> None:
        """Fold one ``NodeStatusChanged``, ``TickCompleted`` or ``TreeReloaded`` event in, keep
        an agent event (others only count: the batch is sent with them)."""
        payload = event.payload
        if event.type in AGENT_EVENTS:
            self._agents.append(agent_call(event))
        elif event.offset <= self._after:
            return
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
            "agents": self._agents,
        }
        self._changes, self._reloaded, self._events, self._agents = {}, False, 0, []
        return body


async def stream_statuses(
    control: ExecutionControl,
    execution_id: str,
    after: int,
    emit: Emit,
    agents_after: int | None = None,
) -> None:
    """One ``canopy/nodeStatus`` event per status change, tick end and reload after ``after``,
    and one ``canopy/agentCall`` event per agent event after ``agents_after`` (default
    ``after``)."""
    start = after if agents_after is None else min(after, agents_after)
    events = control.events(execution_id, after=start, types=(*LIVE_TREE_EVENTS, *AGENT_EVENTS))
    async for event in events:
        if event.type in AGENT_EVENTS:
            await emit("canopy/agentCall", agent_call(event))
        elif event.offset > after:
            await emit(
                "canopy/nodeStatus", {"offset": event.offset, "type": event.type, **event.payload}
            )


async def stream_batches(
    control: ExecutionControl,
    execution_id: str,
    batch_ms: int,
    after: int,
    emit: Emit,
    agents_after: int | None = None,
) -> None:
    """Collect status and agent events as they come; every ``batch_ms`` after the first one of
    a batch, send what changed as one ``canopy/nodeStatuses`` event. The batch holds one entry
    per node at most, so a fast, wide tree costs the client a bounded amount per batch. Agent
    events are sent from ``agents_after`` on (default ``after``): reading from there, the
    status events up to ``after`` are skipped. Ends after the execution's last batch."""
    start = after if agents_after is None else min(after, agents_after)
    batch = StatusBatch(after)
    arrived = asyncio.Event()
    ended = False

    async def collect() -> None:
        nonlocal ended
        types = (*LIVE_TREE_EVENTS, *AGENT_EVENTS, "ExecutionEnded")
        try:
            async for event in control.events(execution_id, after=start, types=types):
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
