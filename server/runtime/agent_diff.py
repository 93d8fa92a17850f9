"""How the agents of two executions compare: a run and its fork, today's run and yesterday's.

For each agent node of either run: how its last call ended (completed, answered from the log,
failed, cancelled), what it wrote, and what all its calls cost (tokens, dollars, time). Read
from the AgentCall events alone, so it works on any two executions in the log, live or ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from canopy.bridge import EventStore

from .recorded import execution_events

__all__ = ["AgentComparison", "AgentOutcome", "compare_agents"]

_ENDS: Final = ("AgentCallCompleted", "AgentCallFailed", "AgentCallCancelled")
_COMPARED: Final = ("status", "outputs", "text", "error")
"""What makes two agents' outcomes differ (cost and time vary between equal answers)."""


@dataclass(frozen=True)
class AgentOutcome:
    """One agent node in one execution: its last call's end and all its calls' totals.
    ``status`` is ``completed``, ``served`` (answered from the log), ``failed`` or
    ``cancelled``; ``outputs`` and ``text`` are None when not recorded (silent capture)."""

    status: str
    calls: int
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    outputs: Mapping[str, Any] | None = None
    text: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class AgentComparison:
    """An agent node in two executions (None where it made no call) and what differs."""

    node_id: str
    a: AgentOutcome | None
    b: AgentOutcome | None
    differs: tuple[str, ...] = field(default=())


async def compare_agents(
    store: EventStore, tenant_id: str, execution_a: str, execution_b: str
) -> tuple[AgentComparison, ...]:
    """Every agent node that made a call in either execution, in the order they first ended."""
    side_a = await _outcomes(store, tenant_id, execution_a)
    side_b = await _outcomes(store, tenant_id, execution_b)
    nodes = list(dict.fromkeys([*side_a, *side_b]))
    return tuple(_compared(node, side_a.get(node), side_b.get(node)) for node in nodes)


def _compared(node: str, a: AgentOutcome | None, b: AgentOutcome | None) -> AgentComparison:
    if a is None or b is None:
        return AgentComparison(node, a, b, ("calls",))
    differs = tuple(name for name in _COMPARED if getattr(a, name) != getattr(b, name))
    if {a.status, b.status} == {"completed", "served"}:
        differs = tuple(name for name in differs if name != "status")  # the same answer
    return AgentComparison(node, a, b, differs)


async def _outcomes(
    store: EventStore, tenant_id: str, execution_id: str
) -> dict[str, AgentOutcome]:
    outcomes: dict[str, AgentOutcome] = {}
    async for event in execution_events(store, tenant_id, execution_id, _ENDS):
        node = str(event.payload["node_id"])
        outcomes[node] = _folded(outcomes.get(node), event.type, event.payload)
    return outcomes


def _folded(before: AgentOutcome | None, kind: str, call: Mapping[str, Any]) -> AgentOutcome:
    """``before`` (the node's earlier calls) with one more call that ended as ``kind``."""
    if kind == "AgentCallCompleted":
        status = "served" if "served_from" in call else "completed"
    else:
        status = "failed" if kind == "AgentCallFailed" else "cancelled"
    return AgentOutcome(
        status=status,
        calls=(before.calls if before else 0) + 1,
        input_tokens=(before.input_tokens if before else 0) + int(call.get("input_tokens", 0)),
        output_tokens=(before.output_tokens if before else 0) + int(call.get("output_tokens", 0)),
        cost_usd=(before.cost_usd if before else 0.0) + float(call.get("cost_usd") or 0.0),
        latency_ms=(before.latency_ms if before else 0.0) + float(call.get("latency_ms", 0.0)),
        outputs=call.get("outputs"),
        text=call.get("text"),
        error=call.get("message") if kind == "AgentCallFailed" else None,
    )
