"""An execution's past, rebuilt from its event stream: the state at any tick or log offset.

Why: the log *is* the history (DESIGN.md, "The event log"). Step back, reverse-continue and
"show me tick N" all rebuild state by replaying stream ``execution/<id>``; nothing else stores it.

How a jump stays cheap on a long execution: replay starts at the nearest ``StateSnapshot`` at or
before the target. That snapshot is found by a binary search over log offsets in which every
probe is a one-event read filtered by type (``types=("StateSnapshot",)``, ``limit=1``), so a cold
jump reads O(log n) single events plus the events of at most one snapshot interval. What the
probes learn -- only ``(offset, tick)`` pairs and "no snapshot between these offsets" -- is kept
in a small :class:`_Landmarks` index, so a repeated or nearby jump needs no probe at all. States
themselves are never cached: memory stays bounded by the number of snapshots, not of ticks.
The same index (over other event types) answers "last completed tick", "previous tick
boundary", "previous node status change" and "tree in force".

Definitions (the contract DAP's time travel maps onto):

- *State at tick N* is the state after ``TickCompleted(N)``; tick 0 is the state right after
  ``ExecutionStarted`` (every node INVALID, the start blackboard).
- *State at offset O* is the state right after the last event of this execution at or before O,
  whatever its type (so stepping through a tick node by node is stepping through offsets).
- Between ``TickStarted(N)`` and ``TickCompleted(N)`` the state is *in* tick N
  (``in_tick=True``) and ``current_node`` is the last node whose status changed in that tick.
- ``TreeReloaded`` replaces the tree: every node of the new tree is INVALID, and the blackboard
  is the ``ExecutionStarted`` one again unless ``kept_blackboard`` (this is what the engine does).
- ``BehaviourRaised`` makes its node FAILURE (the schema: "counts as FAILURE for that tick").
- A ``StateSnapshot`` replaces statuses and blackboard wholesale; a node missing from it does
  not exist at that point. ``root_status`` after a snapshot is the snapshot's status of the root.

What the writer of the stream (the engine) must guarantee for this to be exact:

- ``ExecutionStarted`` is the first event of the stream; tick numbers start at 1 and never
  decrease; every tick ends with ``TickCompleted(N)``, and ``TickStarted(N)`` precedes the first
  other event of tick N (a tick in which nothing happened has no ``TickStarted``).
- ``StateSnapshot(N)`` is written at the end of tick N -- right after ``TickCompleted(N)``
  (before any between-tick event such as a client's blackboard edit or a reload) or just
  before it -- and holds every node of the tree in force and the whole blackboard.
- Every status change is a ``NodeStatusChanged`` (including INVALID from ``stop()``) and every
  blackboard write a ``BlackboardChanged`` with ``new`` absent for an unset key, except the
  blackboard reset implied by ``TreeReloaded(kept_blackboard=false)``.
- Without snapshots everything still works; a jump then replays from the start.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from canopy.bridge import CanopyError, EventFilter, EventStore, RecordedEvent

from .agent_summary import AGENT_EVENTS, CallState, fold
from .engine import end_text

__all__ = [
    "STATUSES",
    "ExecutionHistory",
    "ExecutionState",
    "ExecutionSummary",
    "Granularity",
    "HistoryError",
    "Position",
    "Replay",
    "Stop",
    "TreeNode",
    "stream_of",
]

STATUSES: Final = ("SUCCESS", "FAILURE", "RUNNING", "INVALID")
INVALID: Final = "INVALID"

Granularity = Literal["tick", "node", "stop"]
"""How far one step back (or forward) moves: to the previous tick boundary, the previous node
status change, or the previous debugger stop."""

FIRST_PAGE: Final = 128
"""Replay reads pages that start small and double, so that a replay which ends early (a jump to
just after a snapshot) reads few events it does not need."""
MAX_PAGE: Final = 4096
MAX_LANDMARKS: Final = 100_000
"""An index that grows past this forgets everything and relearns: a bound, not a tuning knob."""
SCAN_PAGE: Final = 8
"""Events of a sparse type (snapshots, reloads) read at once before searching among them."""
TREE_CACHE: Final = 8


class HistoryError(CanopyError):
    """A question the recorded history cannot answer (unknown execution, tick out of range)."""


def stream_of(execution_id: str) -> str:
    """The stream every event of an execution is appended to."""
    return f"execution/{execution_id}"


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One node of a recorded tree (``ExecutionStarted.tree.nodes``), with its stable id."""

    id: str
    name: str
    kind: str
    parent: str | None = None
    path: str | None = None
    line: int | None = None
    column: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TreeNode:
        """Read a node as the schema describes it (optional fields may be absent)."""
        return cls(
            id=data["id"],
            name=data.get("name", data["id"]),
            kind=data.get("kind", ""),
            parent=data.get("parent"),
            path=data.get("path"),
            line=data.get("line"),
            column=data.get("column"),
        )

    def to_json(self) -> dict[str, Any]:
        """The schema's form of the node."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "parent": self.parent,
        }
        for field_name in ("path", "line", "column"):
            value = getattr(self, field_name)
            if value is not None:
                data[field_name] = value
        return data


def tree_from_payload(tree: Mapping[str, Any]) -> tuple[TreeNode, ...]:
    """The node list of a recorded ``tree`` object (pre-order, root first)."""
    return tuple(TreeNode.from_json(node) for node in tree.get("nodes", ()))


@dataclass(frozen=True)
class ExecutionState:
    """An execution as it was at one point of its log. Read-only: the past does not change.

    ``offset`` is the offset of the last event folded in (``TickCompleted(N)`` or the
    ``StateSnapshot`` of tick N for a state at tick N). ``statuses`` holds exactly the nodes that
    exist at that point; ``tree`` is the node list in force (pre-order, root first).
    """

    execution_id: str
    tick: int
    offset: int
    statuses: dict[str, str]
    blackboard: dict[str, Any]
    tree: tuple[TreeNode, ...]
    root_status: str | None
    current_node: str | None
    in_tick: bool = False
    ended: bool = False
    end_reason: str | None = None
    """How it ended (``failed: KeyError in check_battery``), once it has."""
    raised: dict[str, Any] | None = None
    """The ``BehaviourRaised`` payload when the state is right at it (or at the debugger's
    stop on it): the user's frames and locals of that moment."""
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Agent node id -> its last call as the debugger shows it (:mod:`.agent_summary`),
    folded from the ``Agent*`` events replayed: the calls since the state snapshot replay
    started from (one every 100 ticks), which does not hold them."""

    @property
    def root(self) -> TreeNode | None:
        """The root node of the tree in force (None for an empty tree)."""
        return self.tree[0] if self.tree else None

    def node(self, node_id: str) -> TreeNode | None:
        """The node with stable id ``node_id`` in the tree in force."""
        return next((node for node in self.tree if node.id == node_id), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON form for APIs and tests."""
        return {
            "execution_id": self.execution_id,
            "tick": self.tick,
            "offset": self.offset,
            "in_tick": self.in_tick,
            "ended": self.ended,
            "end_reason": self.end_reason,
            "root_status": self.root_status,
            "current_node": self.current_node,
            "statuses": dict(self.statuses),
            "blackboard": dict(self.blackboard),
            "tree": [node.to_json() for node in self.tree],
            "agents": {node_id: dict(summary) for node_id, summary in self.agents.items()},
        }


@dataclass(frozen=True, slots=True)
class Position:
    """A place in an execution's history to move to: the event's offset and its tick."""

    offset: int
    tick: int


@dataclass(frozen=True, slots=True)
class Stop:
    """A ``DebuggerStopped`` event: where reverse-continue goes back to."""

    offset: int
    tick: int
    reason: str
    node_id: str | None = None
    position: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    """How an execution went, in one line: for comparisons and listings."""

    execution_id: str
    ticks: int
    root_status: str | None
    ended: str | None
    tree_name: str

    def to_json(self) -> dict[str, Any]:
        """A JSON form for the API."""
        return {
            "execution_id": self.execution_id,
            "ticks": self.ticks,
            "root_status": self.root_status,
            "ended": self.ended,
            "tree_name": self.tree_name,
        }


class Replay:
    """Folds an execution's events, in offset order, into its state.

    Every change goes through :meth:`reset`, :meth:`set_status`, :meth:`set_value` and
    :meth:`unset`, so a subclass can follow changes (``server.runtime.diff`` keeps running
    digests that way) without re-reading the state.
    """

    def __init__(
        self,
        execution_id: str,
        *,
        tree: tuple[TreeNode, ...] = (),
        initial_blackboard: Mapping[str, Any] | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.tree = tree
        self.initial_blackboard: dict[str, Any] = dict(initial_blackboard or {})
        self.statuses: dict[str, str] = {}
        self.blackboard: dict[str, Any] = {}
        self.tick = 0
        self.offset = 0
        self.in_tick = False
        self.ended = False
        self.end_reason: str | None = None
        self.root_status: str | None = None
        self.current_node: str | None = None
        self.raised: dict[str, Any] | None = None
        self.agents: dict[str, dict[str, Any]] = {}

    # -- the hooks through which every change goes -------------------------------------------

    def reset(self, statuses: Mapping[str, str], blackboard: Mapping[str, Any]) -> None:
        """Replace every status and the whole blackboard (start, snapshot, reload)."""
        self.statuses = dict(statuses)
        self.blackboard = dict(blackboard)

    def set_status(self, node_id: str, status: str) -> None:
        """One node's status changed."""
        self.statuses[node_id] = status

    def set_value(self, key: str, value: Any) -> None:
        """One blackboard key was written."""
        self.blackboard[key] = value

    def unset(self, key: str) -> None:
        """One blackboard key was removed."""
        self.blackboard.pop(key, None)

    # -- folding -----------------------------------------------------------------------------

    def apply(self, event: RecordedEvent) -> None:
        """Fold one event of this execution's stream (unknown types only move the offset)."""
        handler = _HANDLERS.get(event.type)
        if event.type not in _AT_RAISE:
            self.raised = None
        if handler is not None:
            handler(self, event.payload)
        elif event.type in AGENT_EVENTS:
            node_id = event.payload["node_id"]
            idle = {"state": CallState.IDLE}
            self.agents[node_id] = fold(self.agents.get(node_id, idle), event.type, event.payload)
        self.offset = event.offset

    def state(self) -> ExecutionState:
        """The state folded so far (copies: the replay may go on)."""
        return ExecutionState(
            execution_id=self.execution_id,
            tick=self.tick,
            offset=self.offset,
            statuses=dict(self.statuses),
            blackboard=dict(self.blackboard),
            tree=self.tree,
            root_status=self.root_status,
            current_node=self.current_node,
            in_tick=self.in_tick,
            ended=self.ended,
            end_reason=self.end_reason,
            raised=self.raised,
            agents={node_id: dict(summary) for node_id, summary in self.agents.items()},
        )

    @property
    def root_id(self) -> str | None:
        """The stable id of the root of the tree in force."""
        return self.tree[0].id if self.tree else None

    def _started(self, payload: Mapping[str, Any]) -> None:
        self.tree = tree_from_payload(payload["tree"])
        self.initial_blackboard = dict(payload.get("blackboard") or {})
        self.reset({node.id: INVALID for node in self.tree}, self.initial_blackboard)
        self.tick, self.in_tick, self.root_status, self.current_node = 0, False, None, None
        self.agents = {}

    def _tick_started(self, payload: Mapping[str, Any]) -> None:
        self.tick, self.in_tick, self.current_node = payload["tick"], True, None

    def _tick_completed(self, payload: Mapping[str, Any]) -> None:
        self.tick, self.in_tick, self.current_node = payload["tick"], False, None
        self.root_status = payload["root_status"]

    def _status_changed(self, payload: Mapping[str, Any]) -> None:
        self.set_status(payload["node_id"], payload["status"])
        if self.in_tick:
            self.current_node = payload["node_id"]

    def _raised(self, payload: Mapping[str, Any]) -> None:
        self.raised = dict(payload)
        self.set_status(payload["node_id"], "FAILURE")
        if self.in_tick:
            self.current_node = payload["node_id"]

    def _blackboard_changed(self, payload: Mapping[str, Any]) -> None:
        if "new" in payload:
            self.set_value(payload["key"], payload["new"])
        else:
            self.unset(payload["key"])

    def _snapshot(self, payload: Mapping[str, Any]) -> None:
        self.reset(payload["statuses"], payload["blackboard"])
        self.tick, self.in_tick, self.current_node = payload["tick"], False, None
        root = self.root_id
        self.root_status = self.statuses.get(root) if root and self.tick > 0 else None

    def _reloaded(self, payload: Mapping[str, Any]) -> None:
        self.tree = tree_from_payload(payload["tree"])
        blackboard = self.blackboard if payload.get("kept_blackboard") else self.initial_blackboard
        self.reset({node.id: INVALID for node in self.tree}, blackboard)
        self.current_node = None
        self.agents = {}  # the reloaded tree's agents start idle

    def _debugger_stopped(self, payload: Mapping[str, Any]) -> None:
        """Where the debugger stopped is the current node of that moment (a breakpoint before a
        node's update leaves no status change to tell it by)."""
        if payload.get("node_id"):
            self.current_node = payload["node_id"]

    def _ended(self, payload: Mapping[str, Any]) -> None:
        self.ended = True
        self.end_reason = end_text(payload["reason"], payload.get("detail"))


_HANDLERS: Final = {
    "ExecutionStarted": Replay._started,
    "TickStarted": Replay._tick_started,
    "TickCompleted": Replay._tick_completed,
    "NodeStatusChanged": Replay._status_changed,
    "BehaviourRaised": Replay._raised,
    "BlackboardChanged": Replay._blackboard_changed,
    "StateSnapshot": Replay._snapshot,
    "TreeReloaded": Replay._reloaded,
    "DebuggerStopped": Replay._debugger_stopped,
    "ExecutionEnded": Replay._ended,
}


_AT_RAISE: Final = frozenset({"BehaviourRaised", "DebuggerStopped"})
"""Events that leave a state at the exception just raised; any other moves past it."""


@dataclass(frozen=True, slots=True)
class _Landmark:
    offset: int
    tick: int


class _Landmarks:
    """Where the events of one type sit in one stream, learnt lazily: sorted ``(offset, tick)``
    pairs plus, per known offset, how far after it the log is known to hold no other such event.

    Why this shape: "the last event of this type at or before offset O / tick N" is answered by
    binary search over offsets with one-event probes, and what a search learns makes the next
    one free. Ticks never decrease along a stream, so both conditions are monotone.
    """

    def __init__(self, history: ExecutionHistory, event_type: str, *, sparse: bool = False) -> None:
        self._history = history
        self._sparse = sparse
        self._filter = EventFilter(
            history.tenant_id, streams=(history.stream,), types=(event_type,)
        )
        self._offsets: list[int] = []
        self._ticks: list[int] = []
        self._clear: dict[int, int] = {}  # known offset (or the start) -> none in (it, value]

    async def probe(self, after: int, until: int) -> RecordedEvent | None:
        """The first event of the type in ``(after, until]`` (one event read), remembered."""
        page = await self._history.store.read(self._filter, after=after, limit=1, until=until)
        if not page.events:
            return None
        event = page.events[0]
        self._learn(event.offset, event.payload.get("tick", 0))
        return event

    async def last(
        self, *, start: int, head: int, max_offset: int, max_tick: int | None = None
    ) -> _Landmark | None:
        """The last event of the type with offset <= ``max_offset`` and tick <= ``max_tick``.

        ``start`` is the stream's first offset (none of the type sits at or before it); ``head``
        the log's last offset when the question was asked.
        """
        max_offset = min(max_offset, head)
        best, low, high = self._bounds(start, max_offset, max_tick)
        if self._sparse and self._clear.get(low, low) < high:
            await self._scan(low, high)
            best, low, high = self._bounds(start, max_offset, max_tick)
        while True:
            cleared = self._clear.get(low, low)
            if cleared >= high:
                return best
            middle = (cleared + high) // 2
            found = await self.probe(middle, head)
            if middle == cleared:  # the probe started right at the known-clear boundary
                self.note_clear(low, found.offset - 1 if found else head)
            tick = found.payload.get("tick", 0) if found else 0
            if found and found.offset <= high and (max_tick is None or tick <= max_tick):
                best, low = _Landmark(found.offset, tick), found.offset
            else:
                high = middle

    def _bounds(
        self, start: int, max_offset: int, max_tick: int | None
    ) -> tuple[_Landmark | None, int, int]:
        """The best known answer, and the offsets between which a better one may still be:
        after ``low`` (that answer, or the start) and at or before ``high``."""
        index = bisect.bisect_right(self._offsets, max_offset)
        if max_tick is not None:
            index = min(index, bisect.bisect_right(self._ticks, max_tick))
        best = _Landmark(self._offsets[index - 1], self._ticks[index - 1]) if index else None
        low = best.offset if best else start
        high = max_offset
        if index < len(self._offsets):
            high = min(high, self._offsets[index] - 1)
        return best, low, high

    async def _scan(self, low: int, high: int) -> None:
        """Read the first few events of the type after ``low`` (a known one, or the start) up
        to ``high`` in one page: for a type written now and then (snapshots, reloads) that is
        usually all of them, and what lies between those read is known to hold no other."""
        after = self._clear.get(low, low)
        page = await self._history.store.read(
            self._filter, after=after, limit=SCAN_PAGE, until=high
        )
        known = low
        for event in page.events:
            self.note_clear(known, event.offset - 1)
            self._learn(event.offset, event.payload.get("tick", 0))
            known = event.offset
        self.note_clear(known, page.scanned_to)

    def _learn(self, offset: int, tick: int) -> None:
        index = bisect.bisect_left(self._offsets, offset)
        if index < len(self._offsets) and self._offsets[index] == offset:
            return
        if len(self._offsets) >= MAX_LANDMARKS:
            self._offsets.clear()
            self._ticks.clear()
            self._clear.clear()
            index = 0
        self._offsets.insert(index, offset)
        self._ticks.insert(index, tick)

    def note_clear(self, offset: int, upto: int) -> None:
        """A contiguous read showed no event of the type in ``(offset, upto]``, where ``offset``
        is a known one (or the stream's start): later searches need no probe there."""
        if upto > self._clear.get(offset, offset):
            self._clear[offset] = upto

    def note(self, offset: int, tick: int) -> None:
        """An event of the type seen by a read (not a probe)."""
        self._learn(offset, tick)


class ExecutionHistory:
    """Time travel over one execution, read from the log on demand.

    Keep one instance per execution and reuse it: its index makes repeated jumps cheap. Safe to
    use while the execution is still running (it only ever sees committed events).
    """

    def __init__(self, store: EventStore, tenant_id: str, execution_id: str) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.execution_id = execution_id
        self.stream = stream_of(execution_id)
        self._filter = EventFilter(tenant_id, streams=(self.stream,))
        self._started: RecordedEvent | None = None
        self._snapshots = _Landmarks(self, "StateSnapshot", sparse=True)
        self._reloads = _Landmarks(self, "TreeReloaded", sparse=True)
        self._completed = _Landmarks(self, "TickCompleted")
        self._changes = _Landmarks(self, "NodeStatusChanged")
        self._stops_index = _Landmarks(self, "DebuggerStopped")
        self._trees: OrderedDict[int, tuple[TreeNode, ...]] = OrderedDict()
        self._stops: list[Stop] = []
        self._stops_read_to = 0

    # -- states ------------------------------------------------------------------------------

    async def state_at_tick(self, tick: int) -> ExecutionState:
        """The state after ``TickCompleted(tick)``; tick 0 is the initial state."""
        started = await self._start()
        if tick < 0:
            raise HistoryError(f"tick {tick} is not a tick: ticks count from 0")
        if tick == 0:
            replay = Replay(self.execution_id)
            replay.apply(started)
            return replay.state()
        head = await self.store.last_offset()
        snapshot = await self._snapshots.last(
            start=started.offset, head=head, max_offset=head, max_tick=tick
        )
        replay, after = await self._replay_from(snapshot, started, head)
        async with aclosing(self._events(after, head)) as events:
            async for event in events:
                replay.apply(event)
                if event.type in _TICK_ENDS and replay.tick == tick and not replay.in_tick:
                    return replay.state()
                if event.type == "TickStarted" and replay.tick > tick:
                    break
        last = await self.ticks()
        raise HistoryError(
            f"tick {tick} is beyond the recorded range of execution {self.execution_id} "
            f"(ticks 0..{last})"
        )

    async def state_at_offset(self, offset: int) -> ExecutionState:
        """The state right after the last event of this execution at or before ``offset``."""
        started = await self._start()
        if offset < started.offset:
            raise HistoryError(
                f"offset {offset} is before execution {self.execution_id} started "
                f"(at offset {started.offset})"
            )
        head = await self.store.last_offset()
        if offset > head:
            raise HistoryError(f"offset {offset} is beyond the end of the log (offset {head})")
        snapshot = await self._snapshots.last(start=started.offset, head=head, max_offset=offset)
        replay, after = await self._replay_from(snapshot, started, head)
        async with aclosing(self._events(after, offset)) as events:
            async for event in events:
                replay.apply(event)
        return replay.state()

    # -- what was recorded -------------------------------------------------------------------

    async def ticks(self) -> int:
        """The number of the last completed tick (0 before the first one completes)."""
        started = await self._start()
        head = await self.store.last_offset()
        last = await self._completed.last(start=started.offset, head=head, max_offset=head)
        return last.tick if last else 0

    async def stops(self) -> list[Stop]:
        """Every debugger stop so far, in order (read once; later calls read only new ones)."""
        started = await self._start()
        head = await self.store.last_offset()
        stop_filter = EventFilter(
            self.tenant_id, streams=(self.stream,), types=("DebuggerStopped",)
        )
        after = max(self._stops_read_to, started.offset)
        while after < head:
            page = await self.store.read(stop_filter, after=after, limit=MAX_PAGE, until=head)
            known = self._stops[-1].offset if self._stops else 0  # a concurrent call may
            self._stops.extend(_stop(e) for e in page.events if e.offset > known)  # have read it
            after = page.scanned_to
            if len(page.events) < MAX_PAGE:
                break
        self._stops_read_to = max(self._stops_read_to, after)
        return list(self._stops)

    async def summary(self) -> ExecutionSummary:
        """Ticks, final root status and end reason (a few one-event reads)."""
        started = await self._start()
        head = await self.store.last_offset()
        last = await self._completed.last(start=started.offset, head=head, max_offset=head)
        root_status = None
        if last is not None:
            completed = await self._completed.probe(last.offset - 1, last.offset)
            root_status = completed.payload["root_status"] if completed else None
        end_filter = EventFilter(self.tenant_id, streams=(self.stream,), types=("ExecutionEnded",))
        ended = await self.store.read(end_filter, after=started.offset, limit=1, until=head)
        reason = None
        if ended.events:
            reason = ended.events[0].payload["reason"]
            root_status = ended.events[0].payload.get("root_status", root_status)
        return ExecutionSummary(
            execution_id=self.execution_id,
            ticks=last.tick if last else 0,
            root_status=root_status,
            ended=reason,
            tree_name=started.payload["tree"].get("name", ""),
        )

    # -- moving through the past -------------------------------------------------------------

    async def previous_position(self, offset: int, granularity: Granularity) -> Position | None:
        """Where one step back from ``offset`` lands, or None at the beginning.

        ``tick``: the last ``TickCompleted`` before ``offset`` (from mid-tick N, or from the end
        of tick N, that is the end of tick N-1), else the start (tick 0). ``node``: the last
        ``NodeStatusChanged`` before ``offset``. ``stop``: the last ``DebuggerStopped`` before it.
        """
        started = await self._start()
        head = await self.store.last_offset()
        if granularity == "stop":
            stops = await self.stops()
            index = bisect.bisect_left([stop.offset for stop in stops], offset)
            return Position(stops[index - 1].offset, stops[index - 1].tick) if index else None
        landmarks = self._completed if granularity == "tick" else self._changes
        found = await landmarks.last(start=started.offset, head=head, max_offset=offset - 1)
        if found is not None:
            return Position(found.offset, found.tick)
        if granularity == "tick" and offset > started.offset:
            return Position(started.offset, 0)
        return None

    async def next_position(self, offset: int, granularity: Granularity) -> Position | None:
        """Where one step forward through the recorded past from ``offset`` lands (the first
        ``TickCompleted`` / ``NodeStatusChanged`` / ``DebuggerStopped`` after it), or None when
        the recording holds nothing further (the live execution takes over from there)."""
        await self._start()
        head = await self.store.last_offset()
        index = {"tick": self._completed, "node": self._changes, "stop": self._stops_index}[
            granularity
        ]
        found = await index.probe(offset, head)
        return Position(found.offset, found.payload.get("tick", 0)) if found else None

    async def step_back(self, offset: int, granularity: Granularity) -> ExecutionState | None:
        """The state one step back from ``offset`` (see :meth:`previous_position`)."""
        position = await self.previous_position(offset, granularity)
        return await self.state_at_offset(position.offset) if position else None

    # -- internals ---------------------------------------------------------------------------

    async def started(self) -> Mapping[str, Any]:
        """The ``ExecutionStarted`` payload: the tree, its mode and capture level, the initial
        blackboard (what a fork of an execution no process holds starts from)."""
        return (await self._start()).payload

    async def _start(self) -> RecordedEvent:
        """The ``ExecutionStarted`` event (read once): the tree, the initial blackboard, and
        the lower bound of every search."""
        if self._started is None:
            start_filter = EventFilter(
                self.tenant_id, streams=(self.stream,), types=("ExecutionStarted",)
            )
            page = await self.store.read(start_filter, limit=1)
            if not page.events:
                raise HistoryError(f"no execution {self.execution_id}")
            self._started = page.events[0]
        return self._started

    async def _replay_from(
        self, snapshot: _Landmark | None, started: RecordedEvent, head: int
    ) -> tuple[Replay, int]:
        """A replay primed to start at ``snapshot`` (read as its first event) or at the start,
        and the offset to read after."""
        initial = started.payload.get("blackboard") or {}
        if snapshot is None:
            return Replay(self.execution_id, initial_blackboard=initial), started.offset - 1
        tree = await self._tree_at(snapshot.offset, started, head)
        replay = Replay(self.execution_id, tree=tree, initial_blackboard=initial)
        return replay, snapshot.offset - 1

    async def _tree_at(
        self, offset: int, started: RecordedEvent, head: int
    ) -> tuple[TreeNode, ...]:
        """The tree in force at ``offset``: the last reload's, else the starting one."""
        reload = await self._reloads.last(start=started.offset, head=head, max_offset=offset)
        if reload is None:
            return tree_from_payload(started.payload["tree"])
        cached = self._trees.get(reload.offset)
        if cached is not None:
            self._trees.move_to_end(reload.offset)
            return cached
        event = await self._reloads.probe(reload.offset - 1, reload.offset)
        if event is None:  # removed by retention since it was indexed
            raise HistoryError(f"the tree reloaded at offset {reload.offset} is gone")
        tree = tree_from_payload(event.payload["tree"])
        self._trees[reload.offset] = tree
        if len(self._trees) > TREE_CACHE:
            self._trees.popitem(last=False)
        return tree

    async def _events(self, after: int, until: int) -> AsyncGenerator[RecordedEvent]:
        """The stream's events in ``(after, until]``, in pages that start small and grow.

        ``after + 1`` is always a snapshot or the start, so the read is contiguous from a point
        the snapshot index knows: each snapshot met is indexed as directly following the
        previous one, and the stretch read after the last one as free of snapshots.
        """
        anchor = after + 1
        limit = FIRST_PAGE
        while after < until:
            page = await self.store.read(self._filter, after=after, limit=limit, until=until)
            for event in page.events:
                if event.type == "StateSnapshot" and event.offset > anchor:
                    self._snapshots.note(event.offset, event.payload.get("tick", 0))
                    self._snapshots.note_clear(anchor, event.offset - 1)
                    anchor = event.offset
            self._snapshots.note_clear(anchor, page.scanned_to)
            for event in page.events:
                yield event
            if len(page.events) < limit:
                return
            after = page.scanned_to
            limit = min(limit * 2, MAX_PAGE)


_TICK_ENDS: Final = frozenset({"TickCompleted", "StateSnapshot"})


def _stop(event: RecordedEvent) -> Stop:
    payload = event.payload
    return Stop(
        offset=event.offset,
        tick=payload["tick"],
        reason=payload["reason"],
        node_id=payload.get("node_id"),
        position=payload.get("position"),
        description=payload.get("description"),
    )
