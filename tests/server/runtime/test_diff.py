"""Differences between states, ticks and executions, rebuilt from the real log."""

from __future__ import annotations

from typing import Any

import pytest

from canopy.bridge import EventStore
from canopy.server.runtime.diff import (
    Change,
    Divergence,
    diff_executions,
    diff_states,
    diff_ticks,
    same_value,
)
from canopy.server.runtime.history import ExecutionHistory, ExecutionState, HistoryError

from .test_history import (
    CHECK,
    DOCK,
    DOCK_ID,
    MOVE,
    PATROL,
    ROOT,
    TENANT,
    UNSET,
    Recording,
    patrol,
    restart,
)


def route(
    execution_id: str,
    *,
    tick_seven: tuple[int, str] = (65, "SUCCESS"),
    ticks: int = 10,
    nodes: list[dict[str, Any]] = PATROL,
    blackboard: dict[str, Any] | None = None,
    paused_ms: float = 0.0,
    before_seven: tuple[tuple[Any, ...], ...] = (),
) -> Recording:
    """A ten-tick run whose tick 7 can be made to go differently (battery, move's result,
    ``before_seven``'s steps first); each tick spends ``paused_ms`` stopped for the
    debugger."""
    rec = Recording(
        execution_id, nodes, blackboard=blackboard or {"/battery/level": 100}, snapshot_every=4
    )
    for tick in range(1, ticks + 1):
        battery = 100 - 5 * tick
        if tick == 7:
            battery, result = tick_seven
            steps: tuple[tuple[Any, ...], ...] = (
                *before_seven,
                (MOVE, result),
                ("/battery/level", battery),
                (ROOT, result),
            )
        elif tick % 2:
            steps = (*restart(), ("/battery/level", battery))
        else:
            steps = ((MOVE, "SUCCESS"), ("/battery/level", battery), (ROOT, "SUCCESS"))
        rec.tick(*steps, paused_ms=paused_ms)
    rec.end()
    return rec


def state(**blackboard: Any) -> ExecutionState:
    return ExecutionState("x", 0, 0, {}, dict(blackboard), (), None, None)


# -- states and ticks --------------------------------------------------------------------------


async def test_diff_of_two_ticks(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    diff = await diff_ticks(history, 5, 6)
    assert diff.nodes == {ROOT: ("FAILURE", "RUNNING"), MOVE: ("FAILURE", "RUNNING")}
    assert diff.removed == {"/goal": "dock A"}
    assert (diff.added, diff.changed) == ({}, {})
    assert (diff.tick_a, diff.tick_b) == (5, 6)
    assert diff.offset_b == rec.offset("completed 6")
    diff = await diff_ticks(history, 3, 4)
    assert diff.changed == {"/battery/level": (85, 80)}
    assert diff.nodes == {ROOT: ("SUCCESS", "RUNNING"), MOVE: ("SUCCESS", "RUNNING")}


async def test_diff_across_a_reload_shows_the_new_node(store: EventStore) -> None:
    rec = patrol()
    await rec.append(store)
    history = ExecutionHistory(store, TENANT, "e1")
    diff = await diff_ticks(history, 7, 8)
    assert diff.nodes == {
        ROOT: ("SUCCESS", "RUNNING"),
        MOVE: ("SUCCESS", "RUNNING"),
        DOCK_ID: (None, "INVALID"),
    }
    assert diff.changed == {"/battery/level": (65, 60)}
    backwards = await diff_ticks(history, 8, 7)
    assert backwards.nodes[DOCK_ID] == ("INVALID", None)
    assert (await diff_ticks(history, 9, 9)).empty
    assert diff.to_json()["nodes"][DOCK_ID] == {"a": None, "b": "INVALID"}


def test_values_compare_as_json_not_as_python() -> None:
    diff = diff_states(state(a=1, b=[1, 2], c={"x": 1}), state(a=True, b=[1, 2.0], c={"x": 1}))
    assert diff.changed == {"a": (1, True), "b": ([1, 2], [1, 2.0])}
    assert same_value({"x": [1, {"y": None}]}, {"x": [1, {"y": None}]})
    assert not same_value(1, 1.0)
    assert diff_states(state(a="1"), state(a="1")).empty


# -- executions --------------------------------------------------------------------------------


async def test_two_executions_diverge_at_a_known_tick(store: EventStore) -> None:
    first, second = route("run-a"), route("run-b", tick_seven=(64, "FAILURE"))
    await first.append(store)
    await second.append(store)
    result = await diff_executions(store, TENANT, "run-a", "run-b")
    assert result.diverged_at == 7
    assert result.same_through == 6
    assert result.diff is not None
    assert result.diff.nodes == {MOVE: ("SUCCESS", "FAILURE"), ROOT: ("SUCCESS", "FAILURE")}
    assert result.diff.changed == {"/battery/level": (65, 64)}
    assert (result.diff.added, result.diff.removed) == ({}, {})
    assert (result.diff.offset_a, result.diff.offset_b) == (
        first.offset("completed 7"),
        second.offset("completed 7"),
    )
    assert (result.a.ticks, result.b.ticks) == (10, 10)
    assert (result.a.root_status, result.b.root_status) == ("SUCCESS", "SUCCESS")
    assert not result.identical
    body = result.to_json()
    assert body["diverged_at"] == 7
    assert body["a"]["execution_id"] == "run-a"
    assert body["ticks_a"]["count"] == 10


async def test_executions_compare_on_the_trees_own_time(store: EventStore) -> None:
    free, stepped = route("free"), route("stepped", paused_ms=2000.0)
    await free.append(store)
    await stepped.append(store)
    result = await diff_executions(store, TENANT, "free", "stepped")
    assert result.identical  # the same run: only the time stopped at breakpoints differs
    assert result.ticks_a.duration_ms == result.ticks_b.duration_ms
    assert (result.ticks_a.paused_ms, result.ticks_a.paused_ticks) == (0.0, 0)
    assert (result.ticks_b.paused_ms, result.ticks_b.paused_ticks) == (20000.0, 10)
    body = result.to_json()
    assert (body["ticks_a"]["paused_ms"], body["ticks_b"]["paused_ms"]) == (0.0, 20000.0)


async def test_identical_executions(store: EventStore) -> None:
    for execution_id in ("same-1", "same-2"):
        await route(execution_id).append(store)
    result = await diff_executions(store, TENANT, "same-1", "same-2")
    assert (result.diverged_at, result.diff, result.same_through) == (None, None, 10)
    assert result.identical


async def test_a_divergence_in_the_initial_state(store: EventStore) -> None:
    await route("full").append(store)
    await route("low", blackboard={"/battery/level": 30}).append(store)
    result = await diff_executions(store, TENANT, "full", "low")
    assert (result.diverged_at, result.same_through) == (0, None)
    assert result.diff is not None
    assert result.diff.changed == {"/battery/level": (100, 30)}


async def test_a_shorter_run_that_matches_so_far(store: EventStore) -> None:
    await route("long").append(store)
    await route("short", ticks=6).append(store)
    result = await diff_executions(store, TENANT, "long", "short")
    assert (result.diverged_at, result.same_through) == (None, 6)
    assert (result.a.ticks, result.b.ticks) == (10, 6)
    assert not result.identical


async def test_different_trees_compare_on_the_nodes_they_share(store: EventStore) -> None:
    extra = {**DOCK, "id": "patrol/extra", "name": "extra"}
    await route("plain").append(store)
    await route("bigger", nodes=[*PATROL, extra]).append(store)
    result = await diff_executions(store, TENANT, "plain", "bigger")
    assert result.diverged_at is None
    assert result.nodes_only_in_b == ("patrol/extra",)
    assert result.nodes_only_in_a == ()
    assert not result.identical
    # ...and once they diverge, the node only one side has is part of the difference
    await route("bigger-b", nodes=[*PATROL, extra], tick_seven=(65, "FAILURE")).append(store)
    result = await diff_executions(store, TENANT, "plain", "bigger-b")
    assert result.diverged_at == 7
    assert result.diff is not None
    assert result.diff.nodes == {
        MOVE: ("SUCCESS", "FAILURE"),
        ROOT: ("SUCCESS", "FAILURE"),
        "patrol/extra": (None, "INVALID"),
    }
    assert CHECK not in result.diff.nodes


async def test_unknown_executions(store: EventStore) -> None:
    await route("known").append(store)
    with pytest.raises(HistoryError, match="no execution ghost"):
        await diff_executions(store, TENANT, "known", "ghost")
    with pytest.raises(HistoryError, match="no execution known"):
        await diff_executions(store, "tenant-b", "known", "known")


# -- where, within the tick, they part ---------------------------------------------------------


async def test_the_divergence_names_the_first_change_that_differs(store: EventStore) -> None:
    # Tick 7: move stays SUCCESS in a (no event), fails in b; then each writes its battery.
    await route("ok").append(store)
    await route("failed", tick_seven=(64, "FAILURE")).append(store)
    result = await diff_executions(store, TENANT, "ok", "failed")
    assert result.diverged_on == Divergence(
        a=Change(key="/battery/level", value=65), b=Change(node=MOVE, value="FAILURE")
    )
    assert result.to_json()["diverged_on"] == {
        "a": {"node": None, "key": "/battery/level", "value": 65, "unset": False},
        "b": {"node": MOVE, "key": None, "value": "FAILURE", "unset": False},
    }


async def test_one_extra_write_is_the_divergence_not_every_change_after_it(
    store: EventStore,
) -> None:
    await route("quiet").append(store)
    await route("eager", before_seven=(("/goal", "dock A"),)).append(store)
    result = await diff_executions(store, TENANT, "quiet", "eager")
    assert result.diverged_at == 7
    assert result.diverged_on == Divergence(a=None, b=Change(key="/goal", value="dock A"))


async def test_a_removal_is_told_from_a_write_of_null(store: EventStore) -> None:
    await route("kept", before_seven=(("/goal", "dock A"), ("/goal", None))).append(store)
    await route("dropped", before_seven=(("/goal", "dock A"), ("/goal", UNSET))).append(store)
    result = await diff_executions(store, TENANT, "kept", "dropped")
    assert result.diverged_on == Divergence(
        a=Change(key="/goal", value=None), b=Change(key="/goal", unset=True)
    )


async def test_a_divergence_in_the_initial_state_names_its_key(store: EventStore) -> None:
    await route("full").append(store)
    await route("low", blackboard={"/battery/level": 30}).append(store)
    result = await diff_executions(store, TENANT, "full", "low")
    assert result.diverged_on == Divergence(
        a=Change(key="/battery/level", value=100), b=Change(key="/battery/level", value=30)
    )


async def test_executions_that_never_part_name_no_divergence(store: EventStore) -> None:
    for execution_id in ("twin-1", "twin-2"):
        await route(execution_id).append(store)
    result = await diff_executions(store, TENANT, "twin-1", "twin-2")
    assert result.diverged_on is None
    assert result.to_json()["diverged_on"] is None
