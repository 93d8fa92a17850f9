"""Per-node and per-tick statistics of an execution, rebuilt from its event stream.

Why: code lenses ("ticked 1,204 times, 3% FAILURE, p95 running 2.1 s"), hovers and the incident
pipeline all want the same numbers, and DESIGN.md makes every view a projection of the log. The
fold below is shared by :func:`execution_statistics` (one execution, on demand) and by the
:class:`ExecutionStatistics` projection (every execution, kept live by a
:class:`bridge.ProjectionRunner`), so both always agree.

Definitions:

- **visit**: a node is *visited* in tick N when, between ``TickStarted(N)`` and
  ``TickCompleted(N)``, it has a ``NodeStatusChanged`` to a status other than INVALID (or a
  ``BehaviourRaised``); or it is the ``writer`` of a ``BlackboardChanged`` (only a ticked
  behaviour writes); or it was RUNNING before the tick, has no such event in the tick and is
  still RUNNING after it (a RUNNING node ticked again reports no change). A change to INVALID
  alone is a reset or a halt, not a visit. ``visits`` counts such ticks. The engine records
  changes only, so a node updated again with the same non-RUNNING status, without being reset
  in between and without writing, is not seen: py_trees composites reset their children when
  they start afresh, so this concerns e.g. the children of a running Parallel or a memoryless
  Selector re-ticking a failing condition.
- **results**: for each visit, the node's last non-INVALID status in that tick (its status
  after the tick for a visit seen only by its writes or by staying RUNNING);
  ``sum(results.values()) == visits``.
- **changes**: how many ``NodeStatusChanged`` events set each status (INVALID included).
- **running durations**: a *running span* starts at the event that makes a node RUNNING and ends
  at the event that makes it anything else; its length is measured in milliseconds from the two
  events' times (``time_us``) and in ticks (end tick - start tick). Spans cut by a reload or
  contradicted by a snapshot are dropped; spans still open are not counted. A node that
  completes within one update (never RUNNING) has no span: its own run time is not recorded.
- **tick durations**: ``TickCompleted.duration_ms``, the tree's own time (the tick's wall time
  less the time it spent stopped for the debugger); root status counts from
  ``TickCompleted.root_status``. The time stopped is not in the distribution: ``paused_ms`` is
  its total over the execution and ``paused_ticks`` the number of ticks that stopped. A
  ``TickCompleted`` without ``paused_ms`` did not stop (a log written before paused time was
  measured counts its wall time as work time and nothing as paused).
- **percentiles**: nearest rank (the smallest value with at least p% of the values at or below
  it). Millisecond values are kept in a log-bucketed histogram (buckets 1% wide) so documents stay
  small whatever the length of the execution: p50/p95 are within 1% of the exact nearest-rank
  value; ``min``, ``max``, ``mean`` and every tick count are exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from canopy.bridge import (
    ALL_TENANTS,
    Documents,
    EventFilter,
    EventStore,
    Projection,
    RecordedEvent,
    Topic,
)

from .engine import end_text
from .history import HistoryError, stream_of

__all__ = [
    "STATS_TYPES",
    "Distribution",
    "ExecutionStatistics",
    "ExecutionStats",
    "NodeStats",
    "TickStats",
    "execution_statistics",
    "fold",
    "new_document",
]

STATS_TYPES: Final = (
    "ExecutionStarted",
    "TickStarted",
    "TickCompleted",
    "NodeStatusChanged",
    "BehaviourRaised",
    "BlackboardChanged",
    "StateSnapshot",
    "TreeReloaded",
    "ExecutionEnded",
)
"""The event types statistics are computed from (blackboard writes only tell who was ticked)."""

GROWTH: Final = 1.01
"""Width of a histogram bucket: values within 1% of each other may share one."""
PAGE: Final = 4096
RUNNING: Final = "RUNNING"
INVALID: Final = "INVALID"


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a set of durations (see the module docstring for the precision)."""

    count: int
    p50: float
    p95: float
    min: float
    max: float
    mean: float

    def to_json(self) -> dict[str, Any]:
        """A JSON form."""
        return {
            "count": self.count,
            "p50": self.p50,
            "p95": self.p95,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
        }


@dataclass(frozen=True)
class NodeStats:
    """What one node did during an execution."""

    node_id: str
    name: str
    kind: str
    visits: int
    results: dict[str, int]
    changes: dict[str, int]
    raised: int
    running_ms: Distribution | None
    running_ticks: Distribution | None

    def to_json(self) -> dict[str, Any]:
        """A JSON form."""
        return {
            "node_id": self.node_id,
            "name": self.name,
            "kind": self.kind,
            "visits": self.visits,
            "results": dict(self.results),
            "changes": dict(self.changes),
            "raised": self.raised,
            "running_ms": self.running_ms.to_json() if self.running_ms else None,
            "running_ticks": self.running_ticks.to_json() if self.running_ticks else None,
        }


@dataclass(frozen=True)
class TickStats:
    """The ticks of an execution: how many, how long, with which root status."""

    count: int
    last: int
    duration_ms: Distribution | None
    """The tree's own time per tick (time stopped for the debugger left out)."""
    root_statuses: dict[str, int]
    paused_ms: float
    """Total time the ticks spent stopped for the debugger."""
    paused_ticks: int
    """How many ticks stopped."""

    def to_json(self) -> dict[str, Any]:
        """A JSON form."""
        return {
            "count": self.count,
            "last": self.last,
            "duration_ms": self.duration_ms.to_json() if self.duration_ms else None,
            "root_statuses": dict(self.root_statuses),
            "paused_ms": self.paused_ms,
            "paused_ticks": self.paused_ticks,
        }


@dataclass(frozen=True)
class ExecutionStats:
    """Statistics of one execution, by node id (nodes of every tree it ran, reloads included)."""

    tenant_id: str
    execution_id: str
    ticks: TickStats
    nodes: dict[str, NodeStats]
    ended: str | None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ExecutionStats:
        """Read the statistics out of a fold document (computing percentiles)."""
        ticks = document["ticks"]
        nodes = {
            node_id: NodeStats(
                node_id=node_id,
                name=node["name"],
                kind=node["kind"],
                visits=node["visits"],
                results=dict(node["results"]),
                changes=dict(node["changes"]),
                raised=node["raised"],
                running_ms=_histogram_distribution(node["running_ms"]),
                running_ticks=_counter_distribution(node["running_ticks"]),
            )
            for node_id, node in document["nodes"].items()
        }
        return cls(
            tenant_id=document["tenant_id"],
            execution_id=document["execution_id"],
            ticks=TickStats(
                count=ticks["count"],
                last=ticks["last"],
                duration_ms=_histogram_distribution(ticks["duration_ms"]),
                root_statuses=dict(ticks["root"]),
                paused_ms=round(ticks["paused_ms"], 3),
                paused_ticks=ticks["paused_ticks"],
            ),
            nodes=nodes,
            ended=document["ended"],
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON form for the API and LSP code lenses."""
        return {
            "tenant_id": self.tenant_id,
            "execution_id": self.execution_id,
            "ticks": self.ticks.to_json(),
            "nodes": {node_id: node.to_json() for node_id, node in self.nodes.items()},
            "ended": self.ended,
        }


async def execution_statistics(
    store: EventStore, tenant_id: str, execution_id: str
) -> ExecutionStats:
    """Statistics of one execution, folded from its whole stream (only the types that count).

    Raises :class:`~server.runtime.history.HistoryError` when the execution is unknown.
    """
    event_filter = EventFilter(tenant_id, streams=(stream_of(execution_id),), types=STATS_TYPES)
    document = new_document(tenant_id, execution_id)
    after = 0
    while True:
        page = await store.read(event_filter, after=after, limit=PAGE)
        for event in page.events:
            fold(document, event)
        if len(page.events) < PAGE:
            break
        after = page.scanned_to
    if not document["started"]:
        raise HistoryError(f"no execution {execution_id}")
    return ExecutionStats.from_document(document)


class ExecutionStatistics(Projection):
    """Live statistics of every execution: one document per execution id (see :func:`fold`).

    Run one instance per server (over ``ALL_TENANTS``); each document records its tenant, and
    :meth:`statistics` only answers a caller of that tenant.
    """

    name: ClassVar[str] = "runtime.execution_statistics"
    version: ClassVar[int] = 3  # 2: ``ended`` holds the end's detail too; 3: paused time

    def __init__(self, tenant_id: str = ALL_TENANTS) -> None:
        self.tenant_id = tenant_id

    def event_filter(self) -> EventFilter:
        """Execution events of the types statistics use."""
        return EventFilter(self.tenant_id, topics=(Topic.EXECUTION,), types=STATS_TYPES)

    def apply(self, documents: Documents, event: RecordedEvent) -> None:
        """Fold the event into its execution's document.

        The document is updated in place and put back: it belongs to this projection alone,
        and copying it for every event would make replay quadratic in its size.
        """
        if not event.stream.startswith("execution/"):
            return
        execution_id = event.stream.removeprefix("execution/")
        document = documents.get(execution_id)
        if document is None:
            document = new_document(event.tenant_id, execution_id)
        fold(document, event)
        documents.put(execution_id, document)

    @staticmethod
    def statistics(
        documents: Documents, execution_id: str, tenant_id: str | None = None
    ) -> ExecutionStats | None:
        """The statistics of ``execution_id`` (None if unknown, or of another tenant)."""
        document = documents.get(execution_id)
        if document is None or (tenant_id is not None and document["tenant_id"] != tenant_id):
            return None
        return ExecutionStats.from_document(document)


# -- the fold ----------------------------------------------------------------------------------


def new_document(tenant_id: str, execution_id: str) -> dict[str, Any]:
    """An empty statistics document: plain JSON, so a projection can store it as is."""
    return {
        "tenant_id": tenant_id,
        "execution_id": execution_id,
        "started": False,
        "ended": None,
        "nodes": {},
        "statuses": {},
        "open": {},
        "tick": None,
        "ticks": {
            "count": 0,
            "last": 0,
            "root": {},
            "duration_ms": _new_histogram(),
            "paused_ms": 0.0,
            "paused_ticks": 0,
        },
    }


def fold(document: dict[str, Any], event: RecordedEvent) -> None:
    """Fold one event of the execution into its document (deterministic: replay-safe)."""
    handler = _FOLDS.get(event.type)
    if handler is not None:
        handler(document, event)


def _started(document: dict[str, Any], event: RecordedEvent) -> None:
    fresh = new_document(document["tenant_id"], document["execution_id"])
    document.clear()
    document.update(fresh)
    document["started"] = True
    _adopt_tree(document, event.payload["tree"])


def _reloaded(document: dict[str, Any], event: RecordedEvent) -> None:
    document["open"] = {}  # the new tree's behaviours start afresh: running spans are cut
    _adopt_tree(document, event.payload["tree"])


def _adopt_tree(document: dict[str, Any], tree: Mapping[str, Any]) -> None:
    """Make ``tree`` the tree in force: every node INVALID, an entry for each (kept if known)."""
    document["statuses"] = {}
    for node in tree.get("nodes", ()):
        entry = _node(document, node["id"])
        entry["name"], entry["kind"] = node.get("name", node["id"]), node.get("kind", "")
        document["statuses"][node["id"]] = INVALID


def _tick_started(document: dict[str, Any], event: RecordedEvent) -> None:
    document["tick"] = {"number": event.payload["tick"], "results": {}, "writers": {}}


def _blackboard_changed(document: dict[str, Any], event: RecordedEvent) -> None:
    tick, writer = document["tick"], event.payload.get("writer")
    if tick is not None and writer in document["statuses"]:
        tick["writers"][writer] = True


def _status_changed(document: dict[str, Any], event: RecordedEvent) -> None:
    payload = event.payload
    node_id, status = payload["node_id"], payload["status"]
    entry = _node(document, node_id)
    _count(entry["changes"], status)
    _set_status(document, event, node_id, status)


def _raised(document: dict[str, Any], event: RecordedEvent) -> None:
    node_id = event.payload["node_id"]
    _node(document, node_id)["raised"] += 1
    _set_status(document, event, node_id, "FAILURE")


def _set_status(document: dict[str, Any], event: RecordedEvent, node_id: str, status: str) -> None:
    """Record a visit result and open or close the node's running span."""
    tick = document["tick"]
    if tick is not None and status != INVALID:
        tick["results"][node_id] = status
    opened = document["open"]
    if status == RUNNING and node_id not in opened:
        opened[node_id] = [event.time_us, event.payload["tick"]]
    elif status != RUNNING and node_id in opened:
        start_us, start_tick = opened.pop(node_id)
        entry = _node(document, node_id)
        _add(entry["running_ms"], (event.time_us - start_us) / 1000)
        _count(entry["running_ticks"], str(event.payload["tick"] - start_tick))
    document["statuses"][node_id] = status


def _tick_completed(document: dict[str, Any], event: RecordedEvent) -> None:
    payload = event.payload
    ticks = document["ticks"]
    ticks["count"] += 1
    ticks["last"] = payload["tick"]
    _count(ticks["root"], payload["root_status"])
    _add(ticks["duration_ms"], payload["duration_ms"])
    paused = payload.get("paused_ms")
    if paused:
        ticks["paused_ms"] += paused
        ticks["paused_ticks"] += 1
    tick = document["tick"]
    statuses = document["statuses"]
    results: dict[str, str] = dict(tick["results"]) if tick is not None else {}
    for writer in tick["writers"] if tick is not None else ():
        if writer not in results and statuses.get(writer, INVALID) != INVALID:
            results[writer] = statuses[writer]  # ticked (it wrote) without changing status
    for node_id, status in statuses.items():
        if status == RUNNING and node_id not in results:
            results[node_id] = RUNNING  # re-ticked while running: no change to report
    for node_id, status in results.items():
        entry = _node(document, node_id)
        entry["visits"] += 1
        _count(entry["results"], status)
    document["tick"] = None


def _snapshot(document: dict[str, Any], event: RecordedEvent) -> None:
    statuses = dict(event.payload["statuses"])
    document["statuses"] = statuses
    document["open"] = {
        node_id: span
        for node_id, span in document["open"].items()
        if statuses.get(node_id) == RUNNING
    }


def _ended(document: dict[str, Any], event: RecordedEvent) -> None:
    document["ended"] = end_text(event.payload["reason"], event.payload.get("detail"))


_FOLDS: Final = {
    "ExecutionStarted": _started,
    "TreeReloaded": _reloaded,
    "TickStarted": _tick_started,
    "TickCompleted": _tick_completed,
    "NodeStatusChanged": _status_changed,
    "BehaviourRaised": _raised,
    "BlackboardChanged": _blackboard_changed,
    "StateSnapshot": _snapshot,
    "ExecutionEnded": _ended,
}


def _node(document: dict[str, Any], node_id: str) -> dict[str, Any]:
    """The node's entry, created on first sight (an id missing from the tree still counts)."""
    nodes: dict[str, dict[str, Any]] = document["nodes"]
    entry = nodes.get(node_id)
    if entry is None:
        entry = nodes[node_id] = {
            "name": node_id,
            "kind": "",
            "visits": 0,
            "results": {},
            "changes": {},
            "raised": 0,
            "running_ms": _new_histogram(),
            "running_ticks": {},
        }
    return entry


def _count(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


# -- distributions -----------------------------------------------------------------------------


def _new_histogram() -> dict[str, Any]:
    return {"count": 0, "sum": 0.0, "min": None, "max": None, "buckets": {}}


def _add(histogram: dict[str, Any], value: float) -> None:
    """Count ``value`` in its bucket: ``z`` for 0 (and below), else ``ceil(log_1.01(value))``."""
    value = float(value)
    histogram["count"] += 1
    histogram["sum"] += value
    histogram["min"] = value if histogram["min"] is None else min(histogram["min"], value)
    histogram["max"] = value if histogram["max"] is None else max(histogram["max"], value)
    key = "z" if value <= 0 else str(math.ceil(math.log(value) / math.log(GROWTH)))
    _count(histogram["buckets"], key)


def _histogram_distribution(histogram: Mapping[str, Any]) -> Distribution | None:
    count = histogram["count"]
    if not count:
        return None
    low: float = histogram["min"]
    high: float = histogram["max"]
    buckets = sorted(
        histogram["buckets"].items(), key=lambda item: -math.inf if item[0] == "z" else int(item[0])
    )

    def percentile(p: float) -> float:
        rank = _rank(p, count)
        seen = 0
        for key, number in buckets:
            seen += number
            if seen >= rank:
                middle = 0.0 if key == "z" else GROWTH ** (int(key) - 0.5)
                return min(max(middle, low), high)
        return float(high)

    return Distribution(count, percentile(50), percentile(95), low, high, histogram["sum"] / count)


def _counter_distribution(counter: Mapping[str, int]) -> Distribution | None:
    values = sorted((int(key), number) for key, number in counter.items())
    count = sum(number for _, number in values)
    if not count:
        return None

    def percentile(p: float) -> float:
        rank, seen = _rank(p, count), 0
        for value, number in values:
            seen += number
            if seen >= rank:
                return float(value)
        return float(values[-1][0])

    total = sum(value * number for value, number in values)
    return Distribution(
        count,
        percentile(50),
        percentile(95),
        float(values[0][0]),
        float(values[-1][0]),
        total / count,
    )


def _rank(p: float, count: int) -> int:
    """Nearest rank: the ``ceil(p% of count)``-th smallest value (at least the first)."""
    return max(1, math.ceil(p / 100 * count))
