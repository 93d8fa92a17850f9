"""Per-node and per-tick statistics from the real log, on demand and as a live projection."""

from __future__ import annotations

import asyncio

import pytest

from canopy.bridge import EventStore, ProjectionRunner
from canopy.server.runtime.history import HistoryError
from canopy.server.runtime.stats import ExecutionStatistics, ExecutionStats, execution_statistics

from .test_history import CHECK, DOCK_ID, MOVE, ROOT, TENANT, Recording, patrol, restart


def spans_ms(rec: Recording, node: str, spans: list[tuple[int, int, str]]) -> list[float]:
    """Expected running spans of ``node``: (tick it became RUNNING, tick it left, status)."""
    return [
        (rec.times[(node, end, status)] - rec.times[(node, start, "RUNNING")]) / 1000
        for start, end, status in spans
    ]


MOVE_SPANS = [(1, 3, "SUCCESS"), (4, 5, "FAILURE"), (6, 7, "SUCCESS"), (8, 9, "SUCCESS")]
MOVE_SPANS += [(10, 12, "FAILURE")]


async def test_node_statistics_of_a_patrol(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    stats = await execution_statistics(store, TENANT, "e1")
    move, check, root = stats.nodes[MOVE], stats.nodes[CHECK], stats.nodes[ROOT]
    # move: visited every tick (ticks 2 and 11 while RUNNING without a change)
    assert move.visits == 12
    assert move.results == {"RUNNING": 7, "SUCCESS": 3, "FAILURE": 2}
    assert move.changes == {"RUNNING": 5, "SUCCESS": 3, "FAILURE": 2, "INVALID": 3}
    assert (move.name, move.kind, move.raised) == ("move", "robot.behaviours:Move", 0)
    # check_battery: only when the sequence starts afresh; its resets are not visits
    assert check.visits == 5
    assert check.results == {"SUCCESS": 5}
    assert check.changes == {"SUCCESS": 5, "INVALID": 3}
    assert check.running_ms is None
    assert check.running_ticks is None
    assert root.visits == 12
    assert root.results == move.results
    # dock: added by the reload, visited once
    assert stats.nodes[DOCK_ID].visits == 1
    assert stats.nodes[DOCK_ID].results == {"SUCCESS": 1}
    for node in stats.nodes.values():
        assert sum(node.results.values()) == node.visits


async def test_running_durations(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    move = (await execution_statistics(store, TENANT, "e1")).nodes[MOVE]
    assert move.running_ticks is not None
    ticks = move.running_ticks
    assert (ticks.count, ticks.p50, ticks.p95, ticks.min, ticks.max) == (5, 1, 2, 1, 2)
    assert ticks.mean == pytest.approx(1.4)
    expected = sorted(spans_ms(rec, MOVE, MOVE_SPANS))
    running = move.running_ms
    assert running is not None
    assert running.count == 5
    assert running.p50 == pytest.approx(expected[2], rel=0.01)  # nearest rank: 3rd of 5
    assert running.p95 == pytest.approx(expected[4], rel=0.01)  # 5th of 5
    assert (running.min, running.max) == (expected[0], expected[-1])
    assert running.mean == pytest.approx(sum(expected) / 5)


async def test_tick_statistics(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    stats = await execution_statistics(store, TENANT, "e1")
    assert (stats.ticks.count, stats.ticks.last, stats.ended) == (12, 12, "completed")
    assert stats.ticks.root_statuses == {"RUNNING": 7, "SUCCESS": 3, "FAILURE": 2}
    duration = stats.ticks.duration_ms
    assert duration is not None
    assert (duration.count, duration.p50, duration.p95, duration.max) == (12, 1.0, 4.0, 4.0)
    assert duration.mean == pytest.approx(18 / 12)
    body = stats.to_json()
    assert body["ticks"]["duration_ms"]["p95"] == 4.0
    assert body["nodes"][MOVE]["results"]["FAILURE"] == 2


async def test_time_stopped_for_the_debugger_is_not_tree_time(store: EventStore) -> None:
    rec = Recording("stopped", snapshot_every=None)
    rec.tick((CHECK, "SUCCESS"), (MOVE, "RUNNING"), (ROOT, "RUNNING"), duration_ms=2.0)
    rec.tick(("stop", "breakpoint", MOVE, "before"), duration_ms=3.0, paused_ms=1500.0)
    rec.tick(duration_ms=1.0, paused_ms=250.5)
    rec.tick(duration_ms=2.0)  # as a log written before paused time was measured reads too
    await rec.append(store)
    ticks = (await execution_statistics(store, TENANT, "stopped")).ticks
    duration = ticks.duration_ms
    assert duration is not None
    assert (duration.count, duration.min, duration.max, duration.mean) == (4, 1.0, 3.0, 2.0)
    assert (ticks.paused_ms, ticks.paused_ticks) == (1750.5, 2)
    body = ticks.to_json()
    assert (body["paused_ms"], body["paused_ticks"], body["duration_ms"]["max"]) == (1750.5, 2, 3.0)


async def test_an_execution_that_never_stopped_paused_for_nothing(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    ticks = (await execution_statistics(store, TENANT, "e1")).ticks
    assert (ticks.paused_ms, ticks.paused_ticks) == (0.0, 0)


async def test_a_raise_counts_as_a_failed_visit(store: EventStore) -> None:
    rec = Recording("raising", snapshot_every=None)
    rec.tick((CHECK, "SUCCESS"), (MOVE, "RUNNING"), (ROOT, "RUNNING"))
    rec.tick(("raise", MOVE), (ROOT, "FAILURE"))
    rec.tick(*restart())
    await rec.append(store)
    move = (await execution_statistics(store, TENANT, "raising")).nodes[MOVE]
    assert move.raised == 1
    assert move.visits == 3
    assert move.results == {"RUNNING": 2, "FAILURE": 1}
    assert move.running_ticks is not None
    assert move.running_ticks.count == 1


async def test_a_node_that_writes_was_ticked_even_without_a_change(store: EventStore) -> None:
    rec = Recording("writer", snapshot_every=None)
    rec.tick((CHECK, "SUCCESS"), ("/battery/level", 90, CHECK), (ROOT, "RUNNING"))
    rec.tick(("/battery/level", 80, CHECK))  # re-ticked by a running parent: SUCCESS again
    rec.write("/battery/level", 75)  # a client's edit between ticks is nobody's visit
    rec.tick(("/battery/level", 70, "client"))
    await rec.append(store)
    stats = await execution_statistics(store, TENANT, "writer")
    assert stats.nodes[CHECK].visits == 2
    assert stats.nodes[CHECK].results == {"SUCCESS": 2}
    assert stats.nodes[ROOT].visits == 3


async def test_unknown_execution(store: EventStore) -> None:
    with pytest.raises(HistoryError, match="no execution nobody"):
        await execution_statistics(store, TENANT, "nobody")


# -- the projection ----------------------------------------------------------------------------


async def test_the_projection_agrees_with_the_on_demand_fold(store: EventStore) -> None:
    first, second = patrol("p1"), patrol("p2", tenant_id="tenant-b")
    await first.append(store)
    await second.append(store)
    # small pages: ticks are split across pages and the document is saved mid-tick
    runner = ProjectionRunner(store, ExecutionStatistics(), page_size=7)
    await runner.load()
    await runner.catch_up()
    on_demand = await execution_statistics(store, TENANT, "p1")
    live = ExecutionStatistics.statistics(runner.documents, "p1", TENANT)
    assert live == on_demand
    assert ExecutionStatistics.statistics(runner.documents, "p2", TENANT) is None
    other = ExecutionStatistics.statistics(runner.documents, "p2", "tenant-b")
    assert other is not None
    assert other.nodes[MOVE].visits == 12
    # what was saved is what a restarted server loads, and a replay from 0 is identical
    reloaded = ProjectionRunner(store, ExecutionStatistics())
    await reloaded.load()
    assert reloaded.digest() == runner.digest()
    await reloaded.rebuild()
    assert reloaded.digest() == runner.digest()


async def test_the_projection_follows_a_live_execution(store: EventStore) -> None:
    rec = Recording("growing", snapshot_every=None)
    rec.tick((CHECK, "SUCCESS"), (MOVE, "RUNNING"), (ROOT, "RUNNING"))
    await rec.append(store)
    runner = ProjectionRunner(store, ExecutionStatistics(TENANT))
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(runner.wait_for(rec.offset("completed 1")), 10)
        stats = ExecutionStatistics.statistics(runner.documents, "growing")
        assert stats is not None
        assert stats.ticks.count == 1
        rec.tick((MOVE, "SUCCESS"), (ROOT, "SUCCESS"), duration_ms=7.5)
        await rec.append(store)
        await asyncio.wait_for(runner.wait_for(rec.offset("completed 2")), 10)
        stats = ExecutionStatistics.statistics(runner.documents, "growing")
        assert isinstance(stats, ExecutionStats)
        assert stats.ticks.count == 2
        assert stats.ticks.duration_ms is not None
        assert stats.ticks.duration_ms.max == 7.5
        assert stats.nodes[MOVE].running_ticks is not None
        assert stats.nodes[MOVE].running_ticks.count == 1
        assert stats == await execution_statistics(store, TENANT, "growing")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
