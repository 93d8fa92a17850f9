"""Answers a fork may take from its source's log instead of calling a model again.

Every agent call that completed is in the log with the node that made it and a hash of its
resolved inputs (its request's fingerprint). A fork (or a restart) gathers them before it
starts; an agent leaf of the fork whose inputs hash the same as a recorded call of the same
node is answered from that record:
no model call, no tool run, the same outputs. What the user edited changes the inputs of the
leaves it reaches, so exactly those run live.

Two rules keep a fork honest. Keys the fork edited are pinned: an answer served from the log
never overwrites them (the edit is the point of the fork). Nodes named ``live`` always run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from canopy.bridge import EventFilter, EventStore

__all__ = ["COMPLETED_CALL", "RecordedCall", "RecordedCalls", "read_recorded_calls"]

COMPLETED_CALL: Final = "AgentCallCompleted"
"""The event that records an agent call's answer (its ``node_id`` and ``fingerprint`` key it;
only a completion that kept its ``outputs``, not silent capture's digests, can be served)."""

_PAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One completed call: where it is in the log and what it answered."""

    execution_id: str
    offset: int
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RecordedCalls:
    """The answers of a fork's source, by node id and input hash."""

    source: str
    calls: Mapping[tuple[str, str], RecordedCall] = field(default_factory=dict)
    pinned: frozenset[str] = frozenset()
    """Blackboard keys (absolute) the fork edited: never overwritten by a served answer."""
    live: frozenset[str] = frozenset()
    """Node ids that always run live."""

    def answer(self, node_id: str, input_hash: str) -> RecordedCall | None:
        """The recorded call for this node and these inputs, unless the node must run live."""
        if node_id in self.live:
            return None
        return self.calls.get((node_id, input_hash))

    @classmethod
    def of(
        cls,
        source: str,
        calls: Iterable[RecordedCall],
        *,
        pinned: Iterable[str] = (),
        live: Iterable[str] = (),
    ) -> RecordedCalls:
        """The table of ``calls``; of two calls with the same key the later one answers."""
        table = {
            (str(call.payload["node_id"]), str(call.payload["fingerprint"])): call
            for call in calls
            if {"node_id", "fingerprint", "outputs"} <= call.payload.keys()
        }
        return cls(source, table, frozenset(pinned), frozenset(live))


async def read_recorded_calls(
    store: EventStore,
    tenant_id: str,
    execution_id: str,
    *,
    pinned: Iterable[str] = (),
    live: Iterable[str] = (),
) -> RecordedCalls:
    """Every completed agent call of execution ``execution_id``, read from its stream."""
    wanted = EventFilter.of(
        tenant_id, streams=[f"execution/{execution_id}"], types=[COMPLETED_CALL]
    )
    calls: list[RecordedCall] = []
    head = await store.last_offset()
    after = 0
    while after < head:
        page = await store.read(wanted, after=after, limit=_PAGE, until=head)
        calls += [RecordedCall(execution_id, event.offset, event.payload) for event in page.events]
        after = page.scanned_to
        if len(page.events) < _PAGE:
            break
    return RecordedCalls.of(execution_id, calls, pinned=pinned, live=live)
