"""Coalescing a live execution's status events for a client that draws the tree.

A wide tree ticking fast changes thousands of node statuses a second. Sent one DAP event each,
they cost the adapter, the editor's debug service and every extension listening far more than
drawing them does; a client needs only each node's latest status a few dozen times a second.
:class:`StatusBatch` keeps exactly that between two flushes, so a batch is bounded by the size
of the tree, not by the event rate.
"""

from __future__ import annotations

from typing import Any

from canopy.bridge.events import RecordedEvent

__all__ = ["StatusBatch"]


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
