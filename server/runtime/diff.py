"""Differences between two states, two ticks, or two executions of (about) the same tree.

Why: "what changed between tick 40 and tick 41?" and "where did today's run stop behaving like
yesterday's?" are the first questions asked of a misbehaving tree. Both are answered from the
log alone (no tree file, no py_trees).

Two executions are compared tick by tick (tick 0 being the initial state) without building a
state per tick: each side folds its own events once, keeping a running digest of its statuses
and blackboard -- the XOR of one 64-bit hash per node status and per key/value, updated in O(1)
per change -- and the digests are compared after every ``TickCompleted``. The first tick whose
digests differ is where the executions diverge; only there is the full difference computed.
Each side also keeps the changes of the tick in progress (bounded by one tick), so that at the
diverging tick the first change the two runs recorded differently -- the node status or
blackboard write where they part -- is named too: that is where a user starts looking.
Node ids are stable across executions of the same tree; nodes that exist in only one of the two
trees are left out of the digests (they are reported apart, in ``nodes_only_in_a``/``_b``), so a
tree that gained a node still compares on everything the two have in common. Blackboard values
compare by their canonical JSON: ``1``, ``1.0`` and ``true`` are three different values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import asdict, dataclass, field
from difflib import SequenceMatcher
from typing import Any, Final

from canopy.bridge import EventFilter, EventStore

from .agent_diff import AgentComparison, compare_agents
from .history import (
    ExecutionHistory,
    ExecutionState,
    ExecutionSummary,
    HistoryError,
    Replay,
    stream_of,
)
from .stats import TickStats, execution_statistics

__all__ = [
    "Change",
    "Divergence",
    "ExecutionDiff",
    "StateDiff",
    "diff_executions",
    "diff_states",
    "diff_ticks",
]

PAGE: Final = 4096


@dataclass(frozen=True)
class StateDiff:
    """What differs from state ``a`` to state ``b``.

    ``nodes`` maps each node whose status differs to ``(status in a, status in b)``, None
    meaning the node does not exist on that side. ``added`` holds keys only in b (with b's
    value), ``removed`` keys only in a (with a's value), ``changed`` keys in both with
    ``(value in a, value in b)``.
    """

    tick_a: int
    tick_b: int
    offset_a: int
    offset_b: int
    nodes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    added: dict[str, Any] = field(default_factory=dict)
    removed: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when the two states hold the same statuses and blackboard."""
        return not (self.nodes or self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        """A JSON form (pairs become ``{"a": ..., "b": ...}``)."""
        return {
            "tick_a": self.tick_a,
            "tick_b": self.tick_b,
            "offset_a": self.offset_a,
            "offset_b": self.offset_b,
            "nodes": {node: {"a": a, "b": b} for node, (a, b) in self.nodes.items()},
            "added": dict(self.added),
            "removed": dict(self.removed),
            "changed": {key: {"a": a, "b": b} for key, (a, b) in self.changed.items()},
        }


@dataclass(frozen=True)
class Change:
    """One recorded change: a node's status (``node``, the status in ``value``) or a blackboard
    key (``key``) written with ``value``, or removed (``unset``; in an initial state, absent)."""

    node: str | None = None
    key: str | None = None
    value: Any = None
    unset: bool = False


@dataclass(frozen=True)
class Divergence:
    """Where two executions part within the tick they diverge at: the first change they
    recorded differently, as each side recorded it (None: that side recorded nothing there).

    Within the tick, the status changes and blackboard writes of both sides are lined up as
    sequences (nodes only one tree has left out), so that one extra write on one side does not
    make every later change look different. When the recorded changes do not tell (the
    initial state, a reload), it is the first entry of the state difference at that tick,
    nodes before keys, with each side's status or value.
    """

    a: Change | None
    b: Change | None


@dataclass(frozen=True)
class ExecutionDiff:
    """Where two executions part ways.

    ``diverged_at`` is the first tick (0 = initial state) at which their statuses or blackboard
    differ, comparing only nodes both trees have; None when every tick they both completed is
    the same. ``diverged_on`` names the node or key where they first part within that tick.
    ``diff`` is the full difference at that tick (including nodes only in one tree).
    ``same_through`` is the last tick compared equal (None if they differ from the start).
    ``ticks_a`` and ``ticks_b`` are each side's tick statistics: how long the tree's own work
    took per tick, the time stopped at breakpoints told apart, so that a run someone stepped
    through does not look slower than one that ran free. ``agents`` compares each agent node's
    outcome, outputs, tokens, cost and time (a run and its fork, say).
    """

    a: ExecutionSummary
    b: ExecutionSummary
    diverged_at: int | None
    diff: StateDiff | None
    same_through: int | None
    ticks_a: TickStats
    ticks_b: TickStats
    nodes_only_in_a: tuple[str, ...] = ()
    nodes_only_in_b: tuple[str, ...] = ()
    diverged_on: Divergence | None = None
    agents: tuple[AgentComparison, ...] = ()
    """Each agent node's outcome, output, tokens, cost and time on both sides."""

    @property
    def identical(self) -> bool:
        """Same trees, same states at every tick, same length and outcome."""
        return (
            self.diverged_at is None
            and not self.nodes_only_in_a
            and not self.nodes_only_in_b
            and self.a.ticks == self.b.ticks
            and self.a.root_status == self.b.root_status
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON form for the API."""
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "diverged_at": self.diverged_at,
            "diverged_on": asdict(self.diverged_on) if self.diverged_on else None,
            "same_through": self.same_through,
            "diff": self.diff.to_json() if self.diff else None,
            "ticks_a": self.ticks_a.to_json(),
            "ticks_b": self.ticks_b.to_json(),
            "nodes_only_in_a": list(self.nodes_only_in_a),
            "nodes_only_in_b": list(self.nodes_only_in_b),
            "agents": [asdict(agent) for agent in self.agents],
            "identical": self.identical,
        }


def diff_states(a: ExecutionState, b: ExecutionState) -> StateDiff:
    """Every node status and blackboard key that differs from ``a`` to ``b``."""
    nodes: dict[str, tuple[str | None, str | None]] = {}
    for node in _union(a.statuses, b.statuses):
        before, after = a.statuses.get(node), b.statuses.get(node)
        if before != after:
            nodes[node] = (before, after)
    added = {key: value for key, value in b.blackboard.items() if key not in a.blackboard}
    removed = {key: value for key, value in a.blackboard.items() if key not in b.blackboard}
    changed = {
        key: (value, b.blackboard[key])
        for key, value in a.blackboard.items()
        if key in b.blackboard and not same_value(value, b.blackboard[key])
    }
    return StateDiff(a.tick, b.tick, a.offset, b.offset, nodes, added, removed, changed)


async def diff_ticks(history: ExecutionHistory, tick_a: int, tick_b: int) -> StateDiff:
    """What changed in one execution from the end of ``tick_a`` to the end of ``tick_b``."""
    return diff_states(await history.state_at_tick(tick_a), await history.state_at_tick(tick_b))


async def diff_executions(
    store: EventStore, tenant_id: str, execution_a: str, execution_b: str
) -> ExecutionDiff:
    """Walk both executions tick by tick and report the first tick where they diverge.

    Reads each stream once up to the divergence (one page at a time, so memory stays bounded)
    plus a few one-event reads for the summaries and a read of each stream's tick and status
    events for the tick statistics. Raises :class:`HistoryError` for an unknown
    execution.
    """
    summary_a = await ExecutionHistory(store, tenant_id, execution_a).summary()
    summary_b = await ExecutionHistory(store, tenant_id, execution_b).summary()
    side_a, side_b = _DigestReplay(execution_a), _DigestReplay(execution_b)
    diverged_at: int | None = None
    diverged_on: Divergence | None = None
    same_through: int | None = None
    shared = _Shared()
    async with (
        aclosing(_completed_ticks(store, tenant_id, side_a)) as ticks_a,
        aclosing(_completed_ticks(store, tenant_id, side_b)) as ticks_b,
    ):
        while True:
            tick_a, tick_b = await anext(ticks_a, None), await anext(ticks_b, None)
            if tick_a is None or tick_b is None:
                break
            only_a, only_b = shared.exclusive(side_a, side_b)
            if tick_a != tick_b or side_a.digest(only_a) != side_b.digest(only_b):
                diverged_at = min(tick_a, tick_b)
                diverged_on = _first_change(side_a.changes, side_b.changes, {*only_a, *only_b})
                break
            same_through = tick_a
            side_a.changes.clear()
            side_b.changes.clear()
    if same_through is None and diverged_at is None:
        raise HistoryError(f"execution {execution_a} or {execution_b} recorded no start")
    diff = diff_states(side_a.state(), side_b.state()) if diverged_at is not None else None
    if diff is not None and diverged_on is None:
        diverged_on = _first_entry(diff, side_a.statuses.keys() & side_b.statuses.keys())
    ids_a, ids_b = [node.id for node in side_a.tree], [node.id for node in side_b.tree]
    set_a, set_b = set(ids_a), set(ids_b)
    return ExecutionDiff(
        a=summary_a,
        b=summary_b,
        diverged_at=diverged_at,
        diff=diff,
        same_through=same_through,
        ticks_a=(await execution_statistics(store, tenant_id, execution_a)).ticks,
        ticks_b=(await execution_statistics(store, tenant_id, execution_b)).ticks,
        nodes_only_in_a=tuple(node for node in ids_a if node not in set_b),
        nodes_only_in_b=tuple(node for node in ids_b if node not in set_a),
        diverged_on=diverged_on,
        agents=await compare_agents(store, tenant_id, execution_a, execution_b),
    )


def _first_change(
    changes_a: list[_Recorded], changes_b: list[_Recorded], excluded: set[str]
) -> Divergence | None:
    """The first change the two sides recorded differently, the sequences lined up (None if
    they recorded the same changes)."""
    mine = [change for change in changes_a if change.subject not in excluded]
    theirs = [change for change in changes_b if change.subject not in excluded]
    matcher = SequenceMatcher(
        None, [c.identity for c in mine], [c.identity for c in theirs], autojunk=False
    )
    for operation, start_a, end_a, start_b, end_b in matcher.get_opcodes():
        if operation != "equal":
            return Divergence(
                a=mine[start_a].change if start_a < end_a else None,
                b=theirs[start_b].change if start_b < end_b else None,
            )
    return None


def _first_entry(diff: StateDiff, shared: Iterable[str]) -> Divergence | None:
    """The first node (of those both trees have) or key of a state difference, each side's
    status or value."""
    both = set(shared)
    for node, (status_a, status_b) in diff.nodes.items():
        if node in both:
            return Divergence(Change(node=node, value=status_a), Change(node=node, value=status_b))
    for key, (value_a, value_b) in diff.changed.items():
        return Divergence(Change(key=key, value=value_a), Change(key=key, value=value_b))
    for key, value in diff.removed.items():
        return Divergence(Change(key=key, value=value), Change(key=key, unset=True))
    for key, value in diff.added.items():
        return Divergence(Change(key=key, unset=True), Change(key=key, value=value))
    return None


def same_value(a: Any, b: Any) -> bool:
    """JSON equality that tells ``1``, ``1.0`` and ``true`` apart (Python's ``==`` does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict | list):
        return canonical(a) == canonical(b)
    return bool(a == b)


def canonical(value: Any) -> str:
    """One text per JSON value: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class _Recorded:
    """A change as recorded, and what makes two of them the same: the subject and the
    status or the value's canonical JSON (values themselves may not be hashable)."""

    change: Change
    identity: tuple[str, str, str | None]

    @property
    def subject(self) -> str:
        return self.identity[1]


class _DigestReplay(Replay):
    """A replay that also keeps the XOR of one hash per node status and per blackboard entry,
    so two states compare in O(1) instead of O(size), and the changes since the caller last
    cleared them (one tick's worth), so a divergence can be placed within its tick."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(execution_id)
        self.changes: list[_Recorded] = []
        self.node_hashes: dict[str, int] = {}
        self.value_hashes: dict[str, int] = {}
        self.nodes_digest = 0
        self.values_digest = 0
        self.membership = 0  # changes whenever the set of existing nodes may have changed

    def reset(self, statuses: Mapping[str, str], blackboard: Mapping[str, Any]) -> None:
        super().reset(statuses, blackboard)
        self.node_hashes = {node: _status_hash(node, s) for node, s in self.statuses.items()}
        self.value_hashes = {key: _value_hash(key, v) for key, v in self.blackboard.items()}
        self.nodes_digest = _xor(self.node_hashes.values())
        self.values_digest = _xor(self.value_hashes.values())
        self.membership += 1

    def set_status(self, node_id: str, status: str) -> None:
        super().set_status(node_id, status)
        old = self.node_hashes.get(node_id)
        if old is None:
            self.membership += 1
        else:
            self.nodes_digest ^= old
        new = self.node_hashes[node_id] = _status_hash(node_id, status)
        self.nodes_digest ^= new
        self.changes.append(_Recorded(Change(node=node_id, value=status), ("s", node_id, status)))

    def set_value(self, key: str, value: Any) -> None:
        super().set_value(key, value)
        old = self.value_hashes.get(key)
        if old is not None:
            self.values_digest ^= old
        new = self.value_hashes[key] = _value_hash(key, value)
        self.values_digest ^= new
        self.changes.append(_Recorded(Change(key=key, value=value), ("v", key, canonical(value))))

    def unset(self, key: str) -> None:
        super().unset(key)
        old = self.value_hashes.pop(key, None)
        if old is not None:
            self.values_digest ^= old
        self.changes.append(_Recorded(Change(key=key, unset=True), ("v", key, None)))

    def digest(self, excluded: Iterable[str]) -> int:
        """The digest of the state, leaving out the statuses of ``excluded`` nodes."""
        digest = self.nodes_digest ^ self.values_digest
        for node in excluded:
            digest ^= self.node_hashes[node]
        return digest


class _Shared:
    """Which nodes exist on one side only, recomputed only when either side's set changes."""

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._only: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    def exclusive(
        self, a: _DigestReplay, b: _DigestReplay
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        key = (a.membership, b.membership)
        if key != self._key:
            self._key = key
            self._only = (
                tuple(node for node in a.node_hashes if node not in b.node_hashes),
                tuple(node for node in b.node_hashes if node not in a.node_hashes),
            )
        return self._only


async def _completed_ticks(
    store: EventStore, tenant_id: str, replay: Replay
) -> AsyncGenerator[int]:
    """Fold the execution's events into ``replay``, pausing (yielding the tick) at the start
    (0) and after every ``TickCompleted``, so the caller can look at the state in between."""
    event_filter = EventFilter(tenant_id, streams=(stream_of(replay.execution_id),))
    after = 0
    while True:
        page = await store.read(event_filter, after=after, limit=PAGE)
        for event in page.events:
            replay.apply(event)
            if event.type == "ExecutionStarted":
                yield 0
            elif event.type == "TickCompleted":
                yield replay.tick
        if len(page.events) < PAGE:
            return
        after = page.scanned_to


def _status_hash(node_id: str, status: str) -> int:
    return _hash(f"s\0{node_id}\0{status}")


def _value_hash(key: str, value: Any) -> int:
    return _hash(f"v\0{key}\0{canonical(value)}")


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _xor(values: Iterable[int]) -> int:
    digest = 0
    for value in values:
        digest ^= value
    return digest


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Keys of ``a`` then those only in ``b``, in their order (stable output for a UI)."""
    return [*a, *(key for key in b if key not in a)]
