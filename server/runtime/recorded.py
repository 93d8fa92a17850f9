"""Answers a fork may take from its source's log instead of calling a model again.

Every agent call that completed is in the log with the node that made it and a hash of its
resolved inputs (its request's fingerprint). A fork (or a restart) gathers them before it
starts; an agent leaf of the fork whose inputs hash the same as a recorded call of the same
node is answered from that record:
no model call, no tool run, the same outputs. What the user edited changes the inputs of the
leaves it reaches, so exactly those run live.

Two rules keep a fork honest. Keys the fork edited are pinned: an answer served from the log
never overwrites them (the edit is the point of the fork). Nodes named ``live`` always run.

A tool marked ``effects: true`` (it sends mail, charges a card) never runs again in a fork,
even for an agent that runs live: the result it gave the source for the same input is served
instead, and a call the source never made is refused unless the agent's node is ``live``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from canopy.bridge import EventFilter, EventStore, RecordedEvent

__all__ = [
    "COMPLETED_CALL",
    "TOOL_CALL",
    "RecordedCall",
    "RecordedCalls",
    "execution_events",
    "read_recorded_calls",
    "tool_key",
]

TOOL_CALL: Final = "AgentToolCalled"
"""The event that records a tool's run (its node, tool name and input key it)."""
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
    tools: Mapping[tuple[str, str, str], RecordedCall] = field(default_factory=dict)
    """Results of tools with effects, by node id, tool name and :func:`tool_key` of the input."""

    def answer(self, node_id: str, input_hash: str) -> RecordedCall | None:
        """The recorded call for this node and these inputs, unless the node must run live."""
        if node_id in self.live:
            return None
        return self.calls.get((node_id, input_hash))

    def tool_result(self, node_id: str, tool: str, given: Mapping[str, Any]) -> RecordedCall | None:
        """The recorded run of an effectful ``tool`` with input ``given`` by this node."""
        return self.tools.get((node_id, tool, tool_key(given)))

    @classmethod
    def of(
        cls,
        source: str,
        calls: Iterable[RecordedCall],
        *,
        pinned: Iterable[str] = (),
        live: Iterable[str] = (),
    ) -> RecordedCalls:
        """The tables of ``calls`` (completions and tool runs); of two with the same key the
        later one answers."""
        answers: dict[tuple[str, str], RecordedCall] = {}
        tools: dict[tuple[str, str, str], RecordedCall] = {}
        for call in calls:
            payload = call.payload
            if {"node_id", "fingerprint", "outputs"} <= payload.keys():
                answers[(str(payload["node_id"]), str(payload["fingerprint"]))] = call
            elif payload.get("effects") and {"tool", "input", "output"} <= payload.keys():
                key = (str(payload["node_id"]), str(payload["tool"]), tool_key(payload["input"]))
                tools[key] = call
        return cls(source, answers, frozenset(pinned), frozenset(live), tools)


def tool_key(given: Mapping[str, Any]) -> str:
    """A tool input as canonical JSON: equal inputs, equal keys, whatever their order."""
    return orjson.dumps(given, option=orjson.OPT_SORT_KEYS).decode()


async def read_recorded_calls(
    store: EventStore,
    tenant_id: str,
    execution_id: str,
    *,
    pinned: Iterable[str] = (),
    live: Iterable[str] = (),
) -> RecordedCalls:
    """Every completed agent call and tool run of ``execution_id``, read from its stream."""
    calls = [
        RecordedCall(execution_id, event.offset, event.payload)
        async for event in execution_events(
            store, tenant_id, execution_id, (COMPLETED_CALL, TOOL_CALL)
        )
    ]
    return RecordedCalls.of(execution_id, calls, pinned=pinned, live=live)


async def execution_events(
    store: EventStore, tenant_id: str, execution_id: str, types: Sequence[str]
) -> AsyncIterator[RecordedEvent]:
    """The events of ``types`` an execution has recorded so far, a page at a time."""
    wanted = EventFilter.of(tenant_id, streams=[f"execution/{execution_id}"], types=types)
    head = await store.last_offset()
    after = 0
    while after < head:
        page = await store.read(wanted, after=after, limit=_PAGE, until=head)
        for event in page.events:
            yield event
        after = page.scanned_to
        if len(page.events) < _PAGE:
            break
