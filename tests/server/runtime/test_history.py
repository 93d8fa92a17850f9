"""Execution history rebuilt from the real log (SQLite and PostgreSQL): states at ticks and
offsets, snapshots, reloads, stops, stepping back, errors, and the cost of a jump.

:class:`Recording` writes what the engine writes for one execution and remembers the true state
after every tick, so rebuilt states are checked against what actually happened. The other suites
of this package import it from here.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest

from canopy.bridge import EventStore, NewEvent, Producer, ReadPage, Topic
from canopy.bridge.events import datetime_to_us
from canopy.server.runtime.history import ExecutionHistory, HistoryError, Position

TENANT: Final = "tenant-a"
PRODUCER: Final = Producer("tests", "1")
EPOCH: Final = datetime(2025, 1, 1, tzinfo=UTC)
UNSET: Final = object()
"""Marks a blackboard key removed by a write."""

PATROL: Final = [
    {
        "id": "patrol",
        "name": "patrol",
        "kind": "Sequence",
        "parent": None,
        "path": "trees/patrol.yaml",
        "line": 1,
        "column": 1,
    },
    {
        "id": "patrol/check_battery",
        "name": "check_battery",
        "kind": "CheckBlackboardVariableValue",
        "parent": "patrol",
        "path": "trees/patrol.yaml",
        "line": 3,
        "column": 5,
    },
    {
        "id": "patrol/move",
        "name": "move",
        "kind": "robot.behaviours:Move",
        "parent": "patrol",
        "path": "trees/patrol.yaml",
        "line": 7,
        "column": 5,
    },
]
DOCK: Final = {
    "id": "patrol/dock",
    "name": "dock",
    "kind": "Success",
    "parent": "patrol",
    "path": "trees/patrol.yaml",
    "line": 11,
    "column": 5,
}
ROOT, CHECK, MOVE, DOCK_ID = "patrol", "patrol/check_battery", "patrol/move", "patrol/dock"


class Recording:
    """The events an engine writes for one execution, and the truth after every tick.

    Status changes are emitted only when the status changes (as the engine does); snapshots are
    written right after ``TickCompleted`` every ``snapshot_every`` ticks. Event times are
    deterministic: tick N starts at N seconds, and each event is 1 ms after the previous one.
    """

    def __init__(
        self,
        execution_id: str,
        nodes: list[dict[str, Any]] = PATROL,
        *,
        blackboard: dict[str, Any] | None = None,
        snapshot_every: int | None = 5,
        tenant_id: str = TENANT,
    ) -> None:
        self.execution_id = execution_id
        self.tenant_id = tenant_id
        self.snapshot_every = snapshot_every
        self.nodes = list(nodes)
        self.initial = dict(blackboard or {})
        self.statuses = {node["id"]: "INVALID" for node in nodes}
        self.blackboard = dict(self.initial)
        self.tick_count = 0
        self.events: list[NewEvent] = []
        self.offsets: list[int] = []
        self.marks: dict[str, int] = {}
        self.truth: dict[int, tuple[dict[str, str], dict[str, Any], str | None]] = {}
        self.times: dict[tuple[str, int, str], int] = {}  # (node, tick, status) -> time_us
        self.root_status: str | None = None
        self._clock = EPOCH
        self._emit(
            "ExecutionStarted",
            {
                "tree": {"name": "patrol", "program": "trees/patrol.yaml", "nodes": self.nodes},
                "mode": "manual",
                "capture": "verbose",
                "blackboard": dict(self.initial),
            },
        )
        self.mark("start")
        self.truth[0] = (dict(self.statuses), dict(self.blackboard), None)

    # -- what the engine does ----------------------------------------------------------------

    def tick(
        self, *steps: tuple[Any, ...], duration_ms: float = 1.0, paused_ms: float = 0.0
    ) -> None:
        """One tick: each step is ``(node_id, status)``, ``("/key", value)`` (``UNSET``
        removes it), ``("raise", node_id)`` or ``("stop", reason, node_id, position)``;
        ``paused_ms`` is written, as the engine does, only when not 0."""
        self.tick_count += 1
        tick = self.tick_count
        self._clock = EPOCH + timedelta(seconds=tick)
        self._emit("TickStarted", {"tick": tick})
        for step in steps:
            self._step(tick, step)
        root = self.nodes[0]["id"]
        self.root_status = self.statuses[root]
        completed = {"tick": tick, "root_status": self.root_status, "duration_ms": duration_ms}
        if paused_ms:
            completed["paused_ms"] = paused_ms
        self._emit("TickCompleted", completed)
        self.mark(f"completed {tick}")
        if self.snapshot_every and tick % self.snapshot_every == 0:
            self._emit(
                "StateSnapshot",
                {
                    "tick": tick,
                    "statuses": dict(self.statuses),
                    "blackboard": copy.deepcopy(self.blackboard),
                },
            )
        self.truth[tick] = (dict(self.statuses), dict(self.blackboard), self.root_status)

    def _step(self, tick: int, step: tuple[Any, ...]) -> None:
        head = step[0]
        if head == "raise":
            self._emit(
                "BehaviourRaised",
                {
                    "tick": tick,
                    "node_id": step[1],
                    "exception": "builtins.RuntimeError",
                    "message": "motor stalled",
                    "traceback": [{"path": "robot/behaviours.py", "line": 42, "function": "f"}],
                },
            )
            self._status(tick, step[1], "FAILURE")
        elif head == "stop":
            self.stop(step[1], step[2], step[3])
        elif head.startswith("/"):
            self.write(head, step[1], writer=step[2] if len(step) > 2 else "patrol/move")
        else:
            self._status(tick, head, step[1])

    def _status(self, tick: int, node_id: str, status: str) -> None:
        previous = self.statuses.get(node_id, "INVALID")
        if previous == status:
            return
        self.statuses[node_id] = status
        self._emit(
            "NodeStatusChanged",
            {"tick": tick, "node_id": node_id, "status": status, "previous": previous},
        )
        self.times[(node_id, tick, status)] = self._time_us()
        self.mark(f"{node_id} {status} {tick}")

    def write(self, key: str, value: Any, *, writer: str = "client") -> None:
        """A blackboard write (between ticks when called directly: a client's edit)."""
        payload: dict[str, Any] = {"tick": self.tick_count, "key": key, "writer": writer}
        if key in self.blackboard:
            payload["old"] = self.blackboard[key]
        if value is UNSET:
            self.blackboard.pop(key, None)
        else:
            payload["new"] = value
            self.blackboard[key] = value
        self._emit("BlackboardChanged", payload)

    def stop(self, reason: str, node_id: str | None = None, position: str = "tick") -> None:
        """A debugger stop (mid-tick when called as a step of :meth:`tick`)."""
        payload: dict[str, Any] = {"tick": self.tick_count, "reason": reason, "position": position}
        if node_id is not None:
            payload["node_id"] = node_id
        self._emit("DebuggerStopped", payload)
        self.mark(f"stop {self.tick_count}")

    def reload(self, nodes: list[dict[str, Any]], *, kept_blackboard: bool = True) -> None:
        """Hot reload between ticks: the new tree starts INVALID."""
        self.nodes = list(nodes)
        self.statuses = {node["id"]: "INVALID" for node in nodes}
        if not kept_blackboard:
            self.blackboard = dict(self.initial)
        self._emit(
            "TreeReloaded",
            {
                "tick": self.tick_count,
                "tree": {"name": "patrol", "program": "trees/patrol.yaml", "nodes": self.nodes},
                "kept_blackboard": kept_blackboard,
            },
        )
        self.mark("reload")

    def end(self, reason: str = "completed") -> None:
        """ExecutionEnded."""
        payload: dict[str, Any] = {"reason": reason, "ticks": self.tick_count}
        if self.root_status is not None:
            payload["root_status"] = self.root_status
        self._emit("ExecutionEnded", payload)

    # -- bookkeeping -------------------------------------------------------------------------

    def mark(self, name: str) -> None:
        """Name the last event, to find its offset after :meth:`append`."""
        self.marks[name] = len(self.events) - 1

    def offset(self, name: str) -> int:
        """The offset of the event marked ``name``."""
        return self.offsets[self.marks[name]]

    async def append(self, store: EventStore, batch: int = 5000) -> None:
        """Write the events not yet written."""
        pending = self.events[len(self.offsets) :]
        for index in range(0, len(pending), batch):
            self.offsets += await store.append(pending[index : index + batch])

    def _time_us(self) -> int:
        return datetime_to_us(self._clock)

    def _emit(self, event_type: str, payload: dict[str, Any]) -> None:
        self._clock += timedelta(milliseconds=1)
        self.events.append(
            NewEvent(
                self.tenant_id,
                Topic.EXECUTION,
                f"execution/{self.execution_id}",
                event_type,
                {"execution_id": self.execution_id, **payload},
                PRODUCER,
                time=self._clock,
            )
        )


def patrol(execution_id: str = "e1", **options: Any) -> Recording:
    """Twelve ticks of a patrol: a mid-tick breakpoint stop at tick 3, snapshots at 5 and 10, a
    key removed at tick 6, a reload adding ``dock`` after tick 7, a step stop and a client's
    blackboard edit after tick 9."""
    rec = Recording(execution_id, blackboard={"/battery/level": 100, "/goal": "dock A"}, **options)
    rec.tick((CHECK, "SUCCESS"), ("/battery/level", 95), (MOVE, "RUNNING"), (ROOT, "RUNNING"))
    rec.tick(("/battery/level", 90))
    rec.tick(
        ("stop", "breakpoint", MOVE, "before"),
        (MOVE, "SUCCESS"),
        ("/battery/level", 85),
        (ROOT, "SUCCESS"),
    )
    rec.tick(*restart(), ("/battery/level", 80))
    rec.tick((MOVE, "FAILURE"), ("/battery/level", 75), (ROOT, "FAILURE"), duration_ms=4.0)
    rec.tick(*restart(), ("/goal", UNSET))
    rec.tick((MOVE, "SUCCESS"), ("/battery/level", 65), (ROOT, "SUCCESS"))
    rec.reload([*PATROL, DOCK])
    rec.tick((CHECK, "SUCCESS"), (MOVE, "RUNNING"), (ROOT, "RUNNING"), ("/battery/level", 60))
    rec.tick((MOVE, "SUCCESS"), (DOCK_ID, "SUCCESS"), (ROOT, "SUCCESS"), duration_ms=3.0)
    rec.stop("step", ROOT, "tick")
    rec.write("/goal", "dock B")
    rec.mark("client write")
    rec.tick(*restart(DOCK_ID))
    rec.tick(("/battery/level", 50), duration_ms=2.0)
    rec.tick((MOVE, "FAILURE"), (ROOT, "FAILURE"))
    rec.end()
    return rec


def restart(*extra: str) -> list[tuple[str, str]]:
    """A Sequence starting afresh: children reset to INVALID, then ticked again."""
    resets = [(node, "INVALID") for node in (CHECK, MOVE, *extra)]
    return [*resets, (CHECK, "SUCCESS"), (MOVE, "RUNNING"), (ROOT, "RUNNING")]


class ReadCounter:
    """Counts the events and calls that go through ``store.read`` (a thin wrapper)."""

    def __init__(self, store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events = 0
        self.calls = 0
        original: Callable[..., Awaitable[ReadPage]] = store.read

        async def counting(*args: Any, **kwargs: Any) -> ReadPage:
            page = await original(*args, **kwargs)
            self.events += len(page.events)
            self.calls += 1
            return page

        monkeypatch.setattr(store, "read", counting)

    def take(self) -> tuple[int, int]:
        """Events and calls since the last call."""
        counted, self.events, self.calls = (self.events, self.calls), 0, 0
        return counted


def assert_matches(rec: Recording, tick: int, state: Any) -> None:
    """The rebuilt state at ``tick`` is what the recording says was true."""
    statuses, blackboard, root_status = rec.truth[tick]
    assert (state.tick, state.in_tick) == (tick, False)
    assert state.statuses == statuses, f"statuses at tick {tick}"
    assert state.blackboard == blackboard, f"blackboard at tick {tick}"
    assert state.root_status == root_status
    assert state.current_node is None


# -- states at ticks ---------------------------------------------------------------------------


@pytest.mark.parametrize("snapshot_every", [5, None])
async def test_every_tick_rebuilds_to_what_happened(
    store: EventStore, snapshot_every: int | None
) -> None:
    rec = patrol(snapshot_every=snapshot_every)
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    for tick in [*range(13), 5, 4, 10, 0]:  # out of order and repeated
        assert_matches(rec, tick, await history.state_at_tick(tick))
    assert await history.ticks() == 12


async def test_tick_zero_is_the_initial_state(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    state = await ExecutionHistory(store, TENANT, "e1").state_at_tick(0)
    assert state.offset == rec.offset("start")
    assert state.statuses == {ROOT: "INVALID", CHECK: "INVALID", MOVE: "INVALID"}
    assert state.blackboard == {"/battery/level": 100, "/goal": "dock A"}
    assert state.root_status is None
    assert [node.id for node in state.tree] == [ROOT, CHECK, MOVE]
    assert state.tree[2].line == 7
    assert state.root is not None
    assert state.root.kind == "Sequence"


async def test_ticks_around_a_snapshot(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    before, at, after = [await history.state_at_tick(tick) for tick in (4, 5, 6)]
    assert before.statuses == {ROOT: "RUNNING", CHECK: "SUCCESS", MOVE: "RUNNING"}
    assert before.blackboard["/battery/level"] == 80
    assert before.offset == rec.offset("completed 4")
    assert at.statuses == {ROOT: "FAILURE", CHECK: "SUCCESS", MOVE: "FAILURE"}
    assert at.root_status == "FAILURE"
    assert at.blackboard == {"/battery/level": 75, "/goal": "dock A"}
    assert after.statuses == {ROOT: "RUNNING", CHECK: "SUCCESS", MOVE: "RUNNING"}
    assert after.blackboard == {"/battery/level": 75}  # /goal was removed in tick 6
    assert after.offset == rec.offset("completed 6")


async def test_the_tree_in_force_follows_a_reload(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    assert [node.id for node in (await history.state_at_tick(7)).tree] == [ROOT, CHECK, MOVE]
    just_reloaded = await history.state_at_offset(rec.offset("reload"))
    assert [node.id for node in just_reloaded.tree] == [ROOT, CHECK, MOVE, DOCK_ID]
    assert set(just_reloaded.statuses.values()) == {"INVALID"}
    assert just_reloaded.blackboard == {"/battery/level": 65}  # kept
    for tick in (8, 9, 10, 11):  # 10 and 11 start from the snapshot taken after the reload
        state = await history.state_at_tick(tick)
        assert state.node(DOCK_ID) is not None
        assert_matches(rec, tick, state)


async def test_a_reload_that_drops_the_blackboard_restores_the_initial_one(
    store: EventStore,
) -> None:
    rec = Recording("e2", blackboard={"/speed": 1}, snapshot_every=2)
    rec.tick((CHECK, "SUCCESS"), ("/speed", 2), ("/extra", [1, 2]), (ROOT, "RUNNING"))
    rec.reload(PATROL, kept_blackboard=False)
    rec.tick((CHECK, "SUCCESS"), (ROOT, "RUNNING"))
    rec.tick(("/speed", 3))
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e2")
    assert (await history.state_at_tick(1)).blackboard == {"/speed": 2, "/extra": [1, 2]}
    assert (await history.state_at_tick(2)).blackboard == {"/speed": 1}
    for tick in range(4):
        assert_matches(rec, tick, await history.state_at_tick(tick))


# -- states at offsets -------------------------------------------------------------------------


async def test_state_mid_tick_at_a_node_status_change(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    state = await history.state_at_offset(rec.offset(f"{MOVE} RUNNING 4"))
    assert (state.tick, state.in_tick) == (4, True)
    assert state.current_node == MOVE
    assert state.statuses == {ROOT: "SUCCESS", CHECK: "SUCCESS", MOVE: "RUNNING"}
    assert state.root_status == "SUCCESS"  # tick 3's: tick 4 has not completed
    assert state.blackboard["/battery/level"] == 85
    assert state.offset == rec.offset(f"{MOVE} RUNNING 4")
    # the next event (the root's change) is one offset later in this log
    later = await history.state_at_offset(rec.offset(f"{ROOT} RUNNING 4"))
    assert later.current_node == ROOT
    assert later.statuses[ROOT] == "RUNNING"


async def test_state_at_a_between_ticks_edit_belongs_to_no_tick(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    edited = await history.state_at_offset(rec.offset("client write"))
    assert (edited.tick, edited.in_tick) == (9, False)
    assert edited.blackboard == {"/battery/level": 60, "/goal": "dock B"}
    assert "/goal" not in (await history.state_at_tick(9)).blackboard
    assert (await history.state_at_tick(10)).blackboard["/goal"] == "dock B"


async def test_state_at_an_offset_just_after_a_snapshot(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    snapshot_offset = rec.offset("completed 10") + 1
    state = await history.state_at_offset(snapshot_offset)
    assert state.offset == snapshot_offset
    assert_matches(rec, 10, state)


# -- stops and stepping ------------------------------------------------------------------------


async def test_stops_are_listed_for_reverse_continue(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    stops = await history.stops()
    assert [(s.offset, s.tick, s.reason, s.node_id, s.position) for s in stops] == [
        (rec.offset("stop 3"), 3, "breakpoint", MOVE, "before"),
        (rec.offset("stop 9"), 9, "step", ROOT, "tick"),
    ]
    assert await history.stops() == stops  # cached, not duplicated
    end = rec.offset("completed 12")
    assert await history.previous_position(end, "stop") == Position(rec.offset("stop 9"), 9)
    assert await history.previous_position(rec.offset("stop 9"), "stop") == Position(
        rec.offset("stop 3"), 3
    )
    assert await history.previous_position(rec.offset("stop 3"), "stop") is None
    at_stop = await history.state_at_offset(rec.offset("stop 3"))
    assert (at_stop.tick, at_stop.in_tick, at_stop.statuses[MOVE]) == (3, True, "RUNNING")


async def test_stepping_back_by_tick_and_by_node(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    at_ten = rec.offset("completed 10")
    assert await history.previous_position(at_ten, "tick") == Position(rec.offset("completed 9"), 9)
    mid_four = rec.offset(f"{MOVE} RUNNING 4")
    assert await history.previous_position(mid_four, "tick") == Position(
        rec.offset("completed 3"), 3
    )
    first_change = rec.offset(f"{CHECK} SUCCESS 1")
    assert await history.previous_position(first_change, "tick") == Position(rec.offset("start"), 0)
    assert await history.previous_position(rec.offset("start"), "tick") is None
    # node by node: tick 10's last change, then the one before it
    back = await history.previous_position(at_ten, "node")
    assert back == Position(rec.offset(f"{ROOT} RUNNING 10"), 10)
    state = await history.step_back(back.offset, "node")
    assert state is not None
    assert state.offset == rec.offset(f"{MOVE} RUNNING 10")
    assert (state.current_node, state.in_tick) == (MOVE, True)
    assert await history.previous_position(first_change, "node") is None
    state_back = await history.step_back(at_ten, "tick")
    assert state_back is not None
    assert_matches(rec, 9, state_back)


async def test_stepping_forward_through_the_past(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    start = rec.offset("start")
    assert await history.next_position(start, "tick") == Position(rec.offset("completed 1"), 1)
    assert await history.next_position(start, "node") == Position(
        rec.offset(f"{CHECK} SUCCESS 1"), 1
    )
    assert await history.next_position(start, "stop") == Position(rec.offset("stop 3"), 3)
    assert await history.next_position(rec.offset("completed 12"), "tick") is None


# -- errors and summaries ----------------------------------------------------------------------


async def test_unknown_execution_and_out_of_range_ticks(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    with pytest.raises(HistoryError, match="no execution nope"):
        await ExecutionHistory(store, TENANT, "nope").state_at_tick(1)
    with pytest.raises(HistoryError, match="no execution e1"):  # another tenant's execution
        await ExecutionHistory(store, "tenant-b", "e1").ticks()
    history = ExecutionHistory(store, TENANT, "e1")
    with pytest.raises(HistoryError, match=r"tick 13 is beyond .* \(ticks 0\.\.12\)"):
        await history.state_at_tick(13)
    with pytest.raises(HistoryError, match=r"tick 5000 is beyond .* \(ticks 0\.\.12\)"):
        await history.state_at_tick(5000)
    with pytest.raises(HistoryError, match="ticks count from 0"):
        await history.state_at_tick(-1)
    with pytest.raises(HistoryError, match="before execution e1 started"):
        await history.state_at_offset(rec.offset("start") - 1)
    with pytest.raises(HistoryError, match="beyond the end of the log"):
        await history.state_at_offset(rec.offsets[-1] + 100)


async def test_summary_and_a_running_execution(store: EventStore) -> None:
    rec = Recording("live", snapshot_every=2)
    rec.tick((CHECK, "SUCCESS"), (MOVE, "RUNNING"), (ROOT, "RUNNING"))
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "live")
    summary = await history.summary()
    assert (summary.ticks, summary.root_status, summary.ended) == (1, "RUNNING", None)
    with pytest.raises(HistoryError, match=r"\(ticks 0\.\.1\)"):
        await history.state_at_tick(2)
    rec.tick((MOVE, "SUCCESS"), (ROOT, "SUCCESS"))
    rec.tick(*restart())
    rec.end("stopped")
    await rec.append(store)  # the same history object sees what was appended since
    assert await history.ticks() == 3
    assert_matches(rec, 2, await history.state_at_tick(2))
    assert_matches(rec, 3, await history.state_at_tick(3))
    summary = await history.summary()
    assert (summary.ticks, summary.root_status, summary.ended) == (3, "RUNNING", "stopped")
    assert summary.tree_name == "patrol"
    ended = await history.state_at_offset(rec.offsets[-1])
    assert ended.ended


# -- the cost of a jump ------------------------------------------------------------------------

LONG_TICKS: Final = 20_000
SNAPSHOT_EVERY: Final = 100


def long_run(execution_id: str = "long") -> Recording:
    """20,000 ticks (about 100,000 events) with a snapshot every 100 ticks and a reload at
    tick 12,000."""
    rec = Recording(execution_id, blackboard={"/count": 0}, snapshot_every=SNAPSHOT_EVERY)
    for tick in range(1, LONG_TICKS + 1):
        if tick % 2:
            rec.tick((CHECK, "SUCCESS"), (MOVE, "RUNNING"), (ROOT, "RUNNING"), ("/count", tick))
        else:
            rec.tick((MOVE, "SUCCESS"), (ROOT, "SUCCESS"), ("/count", tick), (CHECK, "INVALID"))
        if tick == 12_000:
            rec.reload([*PATROL, DOCK])
    return rec


async def test_a_jump_reads_a_bounded_number_of_events(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = long_run()
    await rec.append(store)
    total = len(rec.events)
    per_tick = total / LONG_TICKS
    # one snapshot interval of events, the page that overshoots it, and the one-event probes
    bound = int(2 * SNAPSHOT_EVERY * per_tick) + 200
    counter = ReadCounter(store, monkeypatch)
    history = ExecutionHistory(store, TENANT, "long")
    costs = {}
    for tick in (12_345, 19_999, 20_000, 1, 99, 100, 101, 12_001, 7_777, 12_345):
        state = await history.state_at_tick(tick)
        assert_matches(rec, tick, state)
        costs[tick] = counter.take()
        assert costs[tick][0] <= bound, (tick, costs[tick], bound, total)
    # a repeated jump needs no search: only the replay from its snapshot
    assert costs[12_345][1] <= 4, costs
    assert total > 50 * bound
    state = await history.state_at_offset(rec.offset("completed 15000") - 3)
    assert (state.tick, state.in_tick) == (15_000, True)
    assert counter.take()[0] <= bound
    assert await history.ticks() == LONG_TICKS
    assert counter.take()[0] <= 40  # O(log n) one-event probes


async def test_a_first_jump_into_a_short_run_finds_its_snapshot_in_one_read(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recording("short", blackboard={"/count": 0}, snapshot_every=SNAPSHOT_EVERY)
    for tick in range(1, 3 * SNAPSHOT_EVERY):
        rec.tick((CHECK, "SUCCESS"), (MOVE, "RUNNING"), (ROOT, "RUNNING"), ("/count", tick))
    await rec.append(store)
    counter = ReadCounter(store, monkeypatch)
    state = await ExecutionHistory(store, TENANT, "short").state_at_tick(2 * SNAPSHOT_EVERY + 5)
    assert_matches(rec, 2 * SNAPSHOT_EVERY + 5, state)
    # its start, its two snapshots and its reloads (none) in one read each, one replay page
    assert counter.take()[1] == 4
