"""The debug engine ticking real trees, step by step, through the in-process control and into
the real event log (the ``store`` fixture runs each test on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from canopy.bridge import EventFilter, InvalidArgument, ProjectionRunner
from canopy.bridge.sql import SqlEventStore
from canopy.server.runtime.breakpoints import BreakpointSpec, ExceptionFilter, Position, WatchSpec
from canopy.server.runtime.control import (
    ExecutionControl,
    InvalidRequest,
    LaunchSpec,
    UnknownExecution,
)
from canopy.server.runtime.definition import DefinitionError
from canopy.server.runtime.engine import CaptureLevel, Mode, RunState, StepKind
from canopy.server.runtime.inprocess import InProcessControl
from canopy.server.runtime.stats import ExecutionStatistics, execution_statistics

from ...bridge.helpers import collect, read_all
from ..pods.remote import SharedPodServer, own_remote_control
from . import quitters
from .quitters import quitting_tree

PATROL = "tests.server.runtime.factories:patrol"
FOREVER = "tests.server.runtime.factories:forever"
FACTORIES = Path(__file__).with_name("factories.py")
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CHECK_BATTERY_LINE = next(
    number
    for number, line in enumerate(FACTORIES.read_text(encoding="utf-8").splitlines(), 1)
    if line.startswith("class CheckBattery")
)


@pytest.fixture(scope="module")
def store_url(module_store_url: str) -> str:
    """One log per store kind for the module: the pod server on it is shared by its tests,
    whose executions, streams and pods are their own."""
    return module_store_url


@pytest.fixture(scope="module")
def shared_pod_server(
    store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedPodServer]:
    # The tests write their own trees and modules in their temporary folders, made as they
    # run: the pods may read the folder that holds them all, so the server's data lies outside.
    with (
        tempfile.TemporaryDirectory() as data,
        SharedPodServer(store_url, Path(data), (tmp_path_factory.getbasetemp(),)) as server,
    ):
        yield server


@pytest.fixture(params=["inprocess", "pod"])
async def control(
    request: pytest.FixtureRequest, store: SqlEventStore
) -> AsyncIterator[ExecutionControl]:
    """The same tests, in this process and through a server and a real local pod worker."""
    if request.param == "inprocess":
        control = InProcessControl(store, tenant_id="acme")
        yield control
        await control.close()
        return
    async with own_remote_control(request.getfixturevalue("shared_pod_server")) as remote:
        yield remote


async def events(store: SqlEventStore, execution_id: str) -> list[tuple[str, dict[str, Any]]]:
    stream = EventFilter.of("acme", streams=[f"execution/{execution_id}"])
    return [(e.type, e.payload) async for e in read_all(store, stream)]


def statuses(view: Any) -> dict[str, str]:
    return {node["id"]: node["status"] for node in view.nodes}


async def launch(control: ExecutionControl, program: str = PATROL, **kwargs: Any) -> str:
    kwargs.setdefault("blackboard", {"battery": 100})
    info = await control.launch(LaunchSpec(program, **kwargs))
    return info.id


async def tick_and_wait(control: ExecutionControl, execution_id: str, count: int = 1) -> None:
    """Tick in manual mode and wait until the engine has settled again."""
    await control.tick(execution_id, count)
    await control.settle(execution_id)


# -- ticking and recording -------------------------------------------------------------------


async def test_manual_ticks_drive_the_tree_and_record_every_change(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    eid = await launch(control)
    await tick_and_wait(control, eid)
    view = await control.view(eid)
    assert statuses(view) == {
        "patrol": "RUNNING",
        "patrol/round": "RUNNING",
        "patrol/round/check_battery": "SUCCESS",
        "patrol/round/move": "RUNNING",  # Wait: 1 of 2 ticks
        "patrol/round/drain": "INVALID",
    }
    await tick_and_wait(control, eid)
    view = await control.view(eid)
    assert view.blackboard["/battery"] == 70
    await control.terminate(eid)
    recorded = await events(store, eid)
    types = [t for t, _ in recorded]
    assert types[0] == "ExecutionStarted"
    assert types[-1] == "ExecutionEnded"
    started = recorded[0][1]
    assert [n["id"] for n in started["tree"]["nodes"]] == [
        "patrol",
        "patrol/round",
        "patrol/round/check_battery",
        "patrol/round/move",
        "patrol/round/drain",
    ]
    assert started["blackboard"] == {"/battery": 100}
    changes = [
        (p["tick"], p["node_id"], p["status"]) for t, p in recorded if t == "NodeStatusChanged"
    ]
    assert (1, "patrol/round/check_battery", "SUCCESS") in changes
    assert (2, "patrol/round/drain", "SUCCESS") in changes
    writes = [p for t, p in recorded if t == "BlackboardChanged"]
    assert writes == [
        {
            "execution_id": eid,
            "tick": 2,
            "key": "/battery",
            "old": 100,
            "new": 70,
            "writer": "patrol/round/drain",
        }
    ]
    assert [p["root_status"] for t, p in recorded if t == "TickCompleted"] == ["RUNNING", "RUNNING"]
    assert recorded[-1][1]["reason"] == "stopped"


async def test_an_execution_completes_on_a_terminal_root_status(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    eid = await launch(control, mode=Mode.AUTO)
    info = await control.wait_for_end(eid)
    assert (info.state, info.end_reason, info.tick) == (RunState.ENDED, "completed", 7)
    ended = (await events(store, eid))[-1][1]
    assert (ended["reason"], ended["root_status"], ended["ticks"]) == ("completed", "FAILURE", 7)


async def test_auto_mode_stops_at_max_ticks(control: ExecutionControl) -> None:
    eid = await launch(control, FOREVER, mode=Mode.AUTO, max_ticks=25)
    info = await control.wait_for_end(eid)
    assert (info.end_reason, info.tick) == ("max_ticks", 25)


async def test_an_interval_the_clock_cannot_wait_is_refused(control: ExecutionControl) -> None:
    with pytest.raises(InvalidRequest, match=r"at most 86400000 \(a day\), not 1e\+18"):
        await launch(control, mode=Mode.INTERVAL, interval_ms=1e18)
    eid = await launch(control, mode=Mode.INTERVAL, interval_ms=86_400_000)
    with pytest.raises(InvalidRequest, match=r"intervalMs must be more than 0 .* not 0"):
        await control.set_mode(eid, Mode.INTERVAL, interval_ms=0)
    await control.terminate(eid)


async def test_interval_mode_keeps_ticking_until_paused(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    eid = await launch(control, FOREVER, mode=Mode.INTERVAL, interval_ms=5)
    ticks = store.subscribe(
        EventFilter.of("acme", streams=[f"execution/{eid}"], types=["TickCompleted"])
    )
    assert [e.payload["tick"] for e in await collect(ticks, 3)] == [1, 2, 3]
    stop = await control.pause(eid)
    assert stop.reason == "pause"


async def test_silent_capture_records_lifecycle_and_summaries_only(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    eid = await launch(control, capture=CaptureLevel.SILENT, mode=Mode.AUTO)
    await control.wait_for_end(eid)
    types = {t for t, _ in await events(store, eid)}
    assert types == {"ExecutionStarted", "TickCompleted", "ExecutionEnded"}


async def test_two_executions_in_one_process_keep_their_blackboards_apart(
    control: ExecutionControl,
) -> None:
    first = await launch(control, blackboard={"battery": 100})
    second = await launch(control, blackboard={"battery": 50})
    await tick_and_wait(control, first, 2)
    await tick_and_wait(control, second, 2)
    assert (await control.view(first)).blackboard["/battery"] == 70
    assert (await control.view(second)).blackboard["/battery"] == 20


# -- breakpoints -----------------------------------------------------------------------------


async def test_a_breakpoint_before_a_node_stops_before_its_update(
    control: ExecutionControl,
) -> None:
    eid = await launch(control)
    (bp,) = await control.set_breakpoints(eid, [BreakpointSpec(node="patrol/round/drain")])
    assert bp.verified
    assert bp.node_ids == ("patrol/round/drain",)
    await control.tick(eid, 2)
    stop = await control.wait_for_stop(eid)
    assert (stop.reason, stop.node_id, stop.position, stop.tick) == (
        "breakpoint",
        "patrol/round/drain",
        "before",
        2,
    )
    assert stop.breakpoint_ids == (bp.id,)
    view = await control.view(eid)
    assert view.blackboard["/battery"] == 100  # drain has not run yet
    assert [f.node_id for f in view.frames] == ["patrol/round/drain", "patrol/round", "patrol"]
    await control.resume(eid)
    await control.settle(eid)
    assert (await control.view(eid)).blackboard["/battery"] == 70


HOLD_S = 0.3


async def test_a_tick_held_at_a_breakpoint_records_its_work_and_paused_time_apart(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    eid = await launch(control)
    await control.set_breakpoints(eid, [BreakpointSpec(node="patrol/round/drain")])
    await control.tick(eid, 2)
    await control.wait_for_stop(eid)
    await asyncio.sleep(HOLD_S)  # the user looking at the stop
    await control.resume(eid)
    await control.settle(eid)
    stats = await control.statistics(eid)
    await control.terminate(eid)
    completed = {p["tick"]: p for t, p in await events(store, eid) if t == "TickCompleted"}
    assert "paused_ms" not in completed[1]
    held = completed[2]
    assert held["paused_ms"] >= HOLD_S * 1000
    assert held["duration_ms"] < held["paused_ms"]
    duration = stats.ticks.duration_ms
    assert duration is not None
    assert duration.max == max(p["duration_ms"] for p in completed.values())
    assert duration.max < held["paused_ms"]
    assert (stats.ticks.paused_ms, stats.ticks.paused_ticks) == (held["paused_ms"], 1)
    # the log alone gives the same numbers: on demand, and as a projection replayed from 0
    assert (await execution_statistics(store, "acme", eid)).ticks == stats.ticks
    runner = ProjectionRunner(store, ExecutionStatistics("acme"))
    await runner.rebuild()
    replayed = ExecutionStatistics.statistics(runner.documents, eid, "acme")
    assert replayed is not None
    assert replayed.ticks == stats.ticks


async def test_a_breakpoint_after_a_node_and_by_name(control: ExecutionControl) -> None:
    eid = await launch(control)
    await control.set_breakpoints(eid, [BreakpointSpec(node="drain", position=Position.AFTER)])
    await control.tick(eid, 2)
    stop = await control.wait_for_stop(eid)
    assert (stop.node_id, stop.position) == ("patrol/round/drain", "after")
    assert (await control.view(eid)).blackboard["/battery"] == 70


async def test_conditions_and_hit_conditions_choose_when_to_stop(
    control: ExecutionControl,
) -> None:
    eid = await launch(control)
    await control.set_breakpoints(
        eid,
        [
            BreakpointSpec(node="check_battery", condition="battery < 50"),
            BreakpointSpec(node="move", hit_condition="== 3"),
        ],
    )
    await control.tick(eid, 10)
    first = await control.wait_for_stop(eid)
    assert (first.node_id, first.tick) == ("patrol/round/move", 3)
    await control.resume(eid)
    second = await control.wait_for_stop(eid)
    assert (second.node_id, second.tick) == ("patrol/round/check_battery", 5)
    assert (await control.view(eid)).blackboard["/battery"] == 40


async def test_bad_breakpoints_are_reported_not_raised(control: ExecutionControl) -> None:
    eid = await launch(control)
    views = await control.set_breakpoints(
        eid,
        [
            BreakpointSpec(node="nowhere"),
            BreakpointSpec(node="move", condition="battery <"),
            BreakpointSpec(node="move", condition="__import__('os')"),
            BreakpointSpec(),
        ],
    )
    assert [v.verified for v in views] == [False, False, False, False]
    assert "no node with id or name 'nowhere'" in (views[0].message or "")
    assert "invalid expression" in (views[1].message or "")
    assert "invalid expression" in (views[2].message or "")
    assert "needs a node" in (views[3].message or "")
    await tick_and_wait(control, eid, 2)  # nothing stops
    assert (await control.info(eid)).state is RunState.IDLE


async def test_a_condition_failing_at_run_time_stops_and_says_why(
    control: ExecutionControl,
) -> None:
    eid = await launch(control)
    await control.set_breakpoints(eid, [BreakpointSpec(node="move", condition="batery < 50")])
    await control.tick(eid)
    stop = await control.wait_for_stop(eid)
    assert stop.node_id == "patrol/round/move"
    assert "batery" in stop.description


async def test_logpoints_log_and_do_not_stop(control: ExecutionControl) -> None:
    eid = await launch(control)
    messages = control.notifications(eid)
    await control.set_breakpoints(
        eid, [BreakpointSpec(node="drain", log_message="draining from {battery}")]
    )
    await tick_and_wait(control, eid, 2)
    async with asyncio.timeout(10):
        note = await anext(n async for n in messages if n.kind == "output")
    assert note.text == "draining from 100\n"
    assert (await control.info(eid)).state is RunState.IDLE


# -- stepping --------------------------------------------------------------------------------


async def test_step_over_into_and_out(control: ExecutionControl) -> None:
    eid = await launch(control, stop_on_entry=True)
    entry = await control.wait_for_stop(eid)
    assert (entry.reason, entry.tick) == ("entry", 0)

    await control.resume(eid, StepKind.OVER)
    await control.tick(eid)
    over = await control.wait_for_stop(eid)
    assert (over.reason, over.position, over.tick, over.node_id) == ("step", "tick", 1, "patrol")

    await control.resume(eid, StepKind.INTO)
    await control.tick(eid)
    into = await control.wait_for_stop(eid)
    assert (into.position, into.tick) == ("after", 2)
    assert into.node_id == "patrol/round/move"  # RUNNING -> SUCCESS is the first change of tick 2

    await control.resume(eid, StepKind.OUT)
    out = await control.wait_for_stop(eid)
    assert (out.node_id, out.tick) == ("patrol/round", 2)


async def test_pause_stops_a_running_tree_at_a_node_boundary(control: ExecutionControl) -> None:
    eid = await launch(control, FOREVER, mode=Mode.AUTO)
    stop = await control.pause(eid)
    assert stop.reason == "pause"
    assert (await control.info(eid)).state is RunState.STOPPED
    await control.set_mode(eid, Mode.MANUAL)
    await control.resume(eid)


async def test_resume_needs_a_stop(control: ExecutionControl) -> None:
    eid = await launch(control)
    with pytest.raises(InvalidRequest, match="idle"):
        await control.resume(eid)


# -- data breakpoints and exceptional events ---------------------------------------------------


async def test_a_data_breakpoint_stops_after_the_writer(control: ExecutionControl) -> None:
    eid = await launch(control)
    (watch,) = await control.set_watches(eid, [WatchSpec("battery")])
    assert (watch.key, watch.verified) == ("/battery", True)
    await control.tick(eid, 5)
    stop = await control.wait_for_stop(eid)
    assert (stop.reason, stop.node_id, stop.tick) == ("data breakpoint", "patrol/round/drain", 2)
    assert stop.description == "/battery changed to 70"


async def test_a_data_breakpoint_with_a_condition(control: ExecutionControl) -> None:
    eid = await launch(control)
    await control.set_watches(eid, [WatchSpec("battery", condition="battery < 50")])
    await control.tick(eid, 10)
    stop = await control.wait_for_stop(eid)
    assert (stop.tick, stop.description) == (4, "/battery changed to 40")


async def test_exception_filter_stops_where_a_behaviour_raised(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    eid = await launch(control, blackboard={"battery": 50})
    await control.set_exception_filters(eid, [ExceptionFilter.RAISED])
    await control.tick(eid, 10)
    stop = await control.wait_for_stop(eid)
    assert (stop.reason, stop.node_id, stop.tick) == ("exception", "patrol/round/check_battery", 5)
    assert stop.exception is not None
    assert stop.exception["exception"] == "builtins.ValueError"
    assert "negative" in stop.exception["message"]
    assert any(f["function"] == "update" for f in stop.exception["traceback"])
    await control.resume(eid)
    info = await control.wait_for_end(eid)
    assert (info.end_reason, info.end_detail) == ("failed", "ValueError in check_battery")
    recorded = await events(store, eid)
    raised = [p for t, p in recorded if t == "BehaviourRaised"]
    assert [(p["node_id"], p["tick"]) for p in raised] == [("patrol/round/check_battery", 5)]
    assert recorded[-1][1]["root_status"] == "FAILURE"


async def test_the_users_raising_frame_and_its_locals_are_recorded_with_the_exception(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    eid = await launch(control, blackboard={"battery": 50})
    await control.set_exception_filters(eid, [ExceptionFilter.RAISED])
    await control.tick(eid, 10)
    await control.wait_for_stop(eid)
    view = await control.view(eid)
    assert view.raised is not None
    (frame,) = view.raised["user_frames"]  # py_trees' and Canopy's frames are not the user's
    assert {k: v for k, v in frame.items() if k != "locals"} == {
        "path": str(FACTORIES),
        "line": 36,
        "function": "CheckBattery.update",
        "code": 'raise ValueError(f"battery level {level} is negative")',
    }
    assert frame["locals"] == [
        {
            "name": "self",
            "type": "CheckBattery",
            "value": {
                "name": "check_battery",
                "status": "INVALID",  # reset as its sequence started again
                "feedback_message": "",
                "threshold": 20,
                "blackboard": {"/battery": -10},
            },
        },
        {"name": "level", "type": "int", "value": -10},
    ]
    await control.resume(eid)
    await control.wait_for_end(eid)
    (recorded,) = [p for t, p in await events(store, eid) if t == "BehaviourRaised"]
    assert recorded["user_frames"] == view.raised["user_frames"]


async def test_an_exception_with_no_filter_is_told_as_it_happens_and_fails_the_execution(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    # From battery 50, check_battery raises on tick 5; nothing asks to stop on it.
    notes = control.notifications()
    eid = await launch(control, mode=Mode.AUTO, blackboard={"battery": 50})
    seen = []
    async with asyncio.timeout(20):
        async for note in notes:
            if note.execution_id == eid and note.kind in ("output", "stopped", "ended"):
                seen.append(note)
            if note.kind == "ended":
                break
    told, ended = seen
    assert (told.kind, told.category) == ("output", "stderr")
    head, node, frame = told.text.splitlines()
    assert head == "ValueError in check_battery (tick 5): battery level -10 is negative"
    assert node.startswith("  node patrol/round/check_battery at ")
    assert node.endswith(f"{FACTORIES}:{CHECK_BATTERY_LINE}")
    assert frame == (
        f"  raised in update at {FACTORIES}:36:"
        ' raise ValueError(f"battery level {level} is negative")'
    )
    assert (ended.kind, ended.reason, ended.text) == (
        "ended",
        "failed",
        "ValueError in check_battery",
    )
    info = await control.wait_for_end(eid)
    assert (info.end_reason, info.end_detail) == ("failed", "ValueError in check_battery")
    # The end is a fact of the log: what is rebuilt from it says so too.
    recorded = await events(store, eid)
    assert recorded[-1] == (
        "ExecutionEnded",
        {
            "execution_id": eid,
            "reason": "failed",
            "detail": "ValueError in check_battery",
            "ticks": 5,
            "root_status": "FAILURE",
        },
    )
    assert (await control.statistics(eid)).ended == "failed: ValueError in check_battery"
    with pytest.raises(InvalidRequest, match=r"has ended \(failed: ValueError in check_battery\)"):
        await control.tick(eid)


async def test_a_tree_kept_ticking_past_an_exception_does_not_end_failed(
    control: ExecutionControl,
) -> None:
    eid = await launch(
        control, mode=Mode.AUTO, blackboard={"battery": 50}, keep_ticking=True, max_ticks=8
    )
    info = await control.wait_for_end(eid)
    assert (info.end_reason, info.end_detail) == ("max_ticks", None)


async def test_failure_filter_stops_on_a_failing_node(control: ExecutionControl) -> None:
    eid = await launch(control)
    await control.set_exception_filters(eid, [ExceptionFilter.FAILED])
    await control.tick(eid, 10)
    stop = await control.wait_for_stop(eid)
    assert (stop.reason, stop.node_id, stop.tick) == ("failure", "patrol/round/check_battery", 7)


# -- editing, reloading and travelling ---------------------------------------------------------


async def test_integers_beyond_64_bits_are_shown_exactly_or_refused(
    control: ExecutionControl,
) -> None:
    eid = await launch(control, stop_on_entry=True)
    await control.wait_for_stop(eid)
    assert await control.evaluate(eid, "2**64") == "18446744073709551616"
    assert await control.evaluate(eid, "-(2**63)") == -(2**63)
    with pytest.raises(InvalidArgument) as raised:
        await control.set_blackboard(eid, "battery", {"cells": [1, 2**64]})
    assert str(raised.value) == (
        "set_blackboard: argument 'value.cells.1': integer 18446744073709551616 is outside "
        "the signed 64-bit range"
    )
    assert await control.evaluate(eid, "battery") == 100
    with pytest.raises(
        InvalidArgument, match=r"'spec\.blackboard\.battery': integer -9223372036854775809"
    ):
        await launch(control, blackboard={"battery": -(2**63) - 1})


async def test_editing_the_blackboard_while_stopped(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    eid = await launch(control, stop_on_entry=True)
    await control.wait_for_stop(eid)
    assert await control.set_blackboard(eid, "battery", 55) == "/battery"
    assert await control.evaluate(eid, "battery + 1") == 56
    assert await control.evaluate(eid, "status", node_id="patrol") == "INVALID"
    await control.terminate(eid)
    writes = [p for t, p in await events(store, eid) if t == "BlackboardChanged"]
    assert writes == [
        {
            "execution_id": eid,
            "tick": 0,
            "key": "/battery",
            "old": 100,
            "new": 55,
            "writer": "client",
        }
    ]


async def test_hot_reload_keeps_the_execution_and_rebinds_breakpoints(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    eid = await launch(control)
    await control.set_breakpoints(
        eid, [BreakpointSpec(node="patrol/round/move"), BreakpointSpec(node="patrol/round/drain")]
    )
    await control.tick(eid)
    await control.wait_for_stop(eid)
    unbound = await control.reload(eid, FOREVER)
    assert unbound == ["patrol/round/drain", "patrol/round/move"]
    stop = await control.wait_for_stop(eid)
    assert stop.description == "reloaded"
    view = await control.view(eid)
    assert view.execution_id == eid
    assert {n["id"] for n in view.nodes} == {"forever", "forever/spin", "forever/drain"}
    assert view.blackboard["/battery"] == 100
    await control.terminate(eid)
    types = [t for t, _ in await events(store, eid)]
    assert "TreeReloaded" in types


async def test_step_back_and_reverse_continue_show_the_past(control: ExecutionControl) -> None:
    eid = await launch(control)
    await control.set_breakpoints(eid, [BreakpointSpec(node="drain", position=Position.AFTER)])
    await control.tick(eid, 4)
    await control.wait_for_stop(eid)  # tick 2
    await control.resume(eid)
    await control.wait_for_stop(eid)  # tick 4
    assert (await control.view(eid)).blackboard["/battery"] == 40

    back = await control.step_back(eid)
    assert (back.past, back.tick, back.blackboard["/battery"]) == (True, 3, 70)
    # Expressions and completion read the past the client looks at, not the live tree.
    assert await control.evaluate(eid, "battery + tick") == 73
    assert await control.evaluate(eid, "name", node_id="patrol/round/drain") == "drain"
    names = await control.expression_names(eid)
    assert {"battery", "drain", "patrol", "status", "tick"} <= set(names)
    assert names == sorted(names)
    with pytest.raises(InvalidRequest, match="read-only"):
        await control.set_blackboard(eid, "battery", 1)

    previous = await control.reverse_continue(eid)
    assert previous.past
    assert previous.tick == 2
    assert previous.frames[0].node_id == "patrol/round/drain"  # where that stop was
    assert previous.blackboard["/battery"] == 70

    await control.resume(eid)  # back to the live execution
    view = await control.view(eid)
    assert not view.past


async def test_a_fork_starts_from_the_blackboard_at_a_tick_with_edits(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    source = await launch(control)
    await tick_and_wait(control, source, 4)  # battery 100 -> 70 (tick 2) -> 40 (tick 4)

    info = await control.fork(source, tick=2, blackboard={"battery": 55}, mode=Mode.MANUAL)
    assert info.id != source
    assert (info.program, info.tick) == (PATROL, 0)
    await tick_and_wait(control, info.id, 2)
    assert (await control.view(info.id)).blackboard["/battery"] == 25
    assert (await control.view(source)).blackboard["/battery"] == 40  # the source is untouched

    # Without a tick, from the last one; tick 0 restarts from the start.
    latest = await control.fork(source)
    restart = await control.fork(source, tick=0, live=["patrol/round/move"])
    for execution in (info.id, latest.id, restart.id):
        await control.terminate(execution)
    started = {e: (await events(store, e))[0] for e in (info.id, latest.id, restart.id)}
    assert started[info.id][0] == "ExecutionStarted"
    assert started[info.id][1]["forked_from"] == {
        "execution_id": source,
        "tick": 2,
        "edited": ["/battery"],
        "live": [],
    }
    assert started[info.id][1]["blackboard"] == {"/battery": 55}
    assert started[latest.id][1]["blackboard"] == {"/battery": 40}
    assert started[latest.id][1]["forked_from"]["tick"] == 4
    assert started[restart.id][1]["blackboard"] == {"/battery": 100}
    assert started[restart.id][1]["forked_from"]["live"] == ["patrol/round/move"]


async def test_a_factorys_execution_no_process_holds_forks_from_its_log(
    store: SqlEventStore,
) -> None:
    first = InProcessControl(store, tenant_id="acme")
    source = await launch(first, mode=Mode.AUTO, max_ticks=3)
    await first.wait_for_end(source)
    await first.close()
    second = InProcessControl(store, tenant_id="acme")
    fork = await second.fork(source, tick=2, blackboard={"battery": 90})
    assert (fork.program, fork.mode) == (PATROL, Mode.AUTO)
    await second.wait_for_end(fork.id)
    assert (await second.view(fork.id)).blackboard["/battery"] == 60  # one round from 90
    await second.close()


async def test_a_fork_that_cannot_be_made_says_why(control: ExecutionControl) -> None:
    source = await launch(control)
    await tick_and_wait(control, source, 2)
    with pytest.raises(UnknownExecution):
        await control.fork("nope")
    with pytest.raises(InvalidRequest, match="beyond the recorded range"):
        await control.fork(source, tick=9)
    with pytest.raises(InvalidRequest, match="no node 'patrol/nowhere'"):
        await control.fork(source, live=["patrol/nowhere"])
    with pytest.raises(InvalidArgument, match="64"):
        await control.fork(source, blackboard={"battery": 2**64})
    assert [i.id for i in await control.executions()] == [source]


# -- bad requests ----------------------------------------------------------------------------


async def test_unknown_executions_and_bad_requests_say_what_is_wrong(
    control: ExecutionControl,
) -> None:
    with pytest.raises(UnknownExecution, match="no execution 'nope'"):
        await control.info("nope")
    eid = await launch(control, FOREVER, mode=Mode.AUTO, max_ticks=100_000)
    with pytest.raises(InvalidRequest, match="manual mode"):
        await control.tick(eid)
    await control.terminate(eid)
    with pytest.raises(InvalidRequest, match="has ended"):
        await control.set_mode(eid, Mode.AUTO)
    with pytest.raises(DefinitionError):
        await control.launch(LaunchSpec("tests.server.runtime.factories:missing"))


# -- tree files, and the recorded past through the control -----------------------------------

TREES = Path(__file__).parent / "trees"


async def test_a_line_breakpoint_lands_on_the_node_whose_block_holds_the_line(
    control: ExecutionControl,
) -> None:
    patrol_yaml = str(TREES / "patrol.yaml")
    eid = await launch(control, patrol_yaml, blackboard={})
    assert await control.breakpoint_lines(eid, patrol_yaml, 26, 30) == [24, 29]
    (bp,) = await control.set_breakpoints(eid, [BreakpointSpec(path=patrol_yaml, line=26)])
    assert (bp.verified, bp.line, bp.node_ids) == (True, 24, ("patrol/route/retry_a",))
    await control.tick(eid)
    stop = await control.wait_for_stop(eid)
    assert (stop.node_id, stop.position) == ("patrol/route/retry_a", "before")
    frame = (await control.view(eid)).frames[0]
    assert (Path(frame.path or "").name, frame.line) == ("patrol.yaml", 24)
    (past_end,) = await control.set_breakpoints(eid, [BreakpointSpec(path=patrol_yaml, line=99)])
    assert not past_end.verified
    assert "no node at or after line 99" in (past_end.message or "")


async def test_statistics_pictures_and_diffs_come_from_the_log(control: ExecutionControl) -> None:
    first = await launch(control, mode=Mode.AUTO)
    second = await launch(control, mode=Mode.AUTO, blackboard={"battery": 50})
    await control.wait_for_end(first)
    await control.wait_for_end(second)

    stats = await control.statistics(first)
    assert stats.ticks.count == 7
    dot = await control.picture(first, tick=7)
    assert isinstance(dot, str)
    assert "check_battery" in dot
    model = await control.picture(first, tick=1, format="json")
    assert isinstance(model, dict)
    assert {n["id"]: n["status"] for n in model["nodes"]}["patrol/round/move"] == "RUNNING"
    with pytest.raises(InvalidRequest, match="dot, svg or json"):
        await control.picture(first, format="png")

    changes = await control.diff_ticks(first, 1, 2)
    assert changes.changed["/battery"] == (100, 70)
    diverged = await control.diff_executions(first, second)
    assert diverged.diverged_at == 0  # they start apart: battery 100 against 50
    assert diverged.diff is not None
    assert diverged.diff.changed["/battery"] == (100, 50)
    assert diverged.ticks_a == stats.ticks
    assert diverged.ticks_b == (await control.statistics(second)).ticks
    assert diverged.ticks_a.paused_ms == 0.0  # it never stopped
    same = await launch(control, mode=Mode.AUTO)
    await control.wait_for_end(same)
    assert (await control.diff_executions(first, same)).identical

    with pytest.raises(InvalidRequest, match="beyond"):
        await control.state_at(first, 99)
    with pytest.raises(UnknownExecution):
        await control.statistics("nope")


async def test_groot2_tags_map_to_classes_through_the_project_file(
    control: ExecutionControl, tmp_path: Path
) -> None:
    project = tmp_path / "robot"
    (project / "trees").mkdir(parents=True)
    for name in ("patrol.xml", "robot_behaviours.py"):
        (project / "trees" / name).write_text((TREES / name).read_text())
    (project / "canopy.toml").write_text(
        "[nodes]\n"
        'BatteryLow = "robot_behaviours:BatteryLow"\n'
        'Recharge = "robot_behaviours:Recharge"\n'
        'MoveTo = "robot_behaviours:MoveTo"\n'
    )
    eid = await launch(control, str(project / "trees" / "patrol.xml"), blackboard={})
    await tick_and_wait(control, eid)
    assert "patrol/route/retry_a/go_to_a" in statuses(await control.view(eid))

    (project / "canopy.toml").write_text("[nodes\n")
    with pytest.raises(DefinitionError, match=r"canopy\.toml:1:1: malformed TOML"):
        await launch(control, str(project / "trees" / "patrol.xml"))


def demo_project(folder: Path) -> Path:
    """A copy of the demo workspace: its trees, behaviours and project file."""
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns(".canopy", ".vscode"))
    return folder / "patrol"


async def started_blackboard(store: SqlEventStore, execution_id: str) -> dict[str, Any]:
    return next(p for t, p in await events(store, execution_id) if t == "ExecutionStarted")[
        "blackboard"
    ]


async def test_a_groot2_tree_runs_as_its_twin_with_the_project_files_initial_values(
    control: ExecutionControl, store: SqlEventStore, tmp_path: Path
) -> None:
    patrol = demo_project(tmp_path / "demo")
    ends = []
    for tree in ("patrol.xml", "patrol.yaml"):
        eid = await launch(control, str(patrol / tree), mode=Mode.AUTO, blackboard={})
        info = await control.wait_for_end(eid)
        ends.append((await started_blackboard(store, eid), info.end_reason, info.end_detail))
    from_xml, from_yaml = ends
    assert from_xml == from_yaml
    assert from_xml == (
        {"/battery": 45, "/waypoint": 0, "/scans": 0},
        "failed",
        "ZeroDivisionError in scan",
    )
    # A launch's own values override the project's.
    eid = await launch(control, str(patrol / "patrol.xml"), blackboard={"battery": 90})
    await control.terminate(eid)
    await control.wait_for_end(eid)  # its events are in the log
    assert await started_blackboard(store, eid) == {"/battery": 90, "/waypoint": 0, "/scans": 0}


async def test_bad_initial_values_in_the_project_file_are_refused_with_where(
    control: ExecutionControl, tmp_path: Path
) -> None:
    patrol = demo_project(tmp_path / "demo")
    (tmp_path / "demo" / "canopy.toml").write_text(
        "[nodes]\n"
        'CheckBattery = "robot:CheckBattery"\n'
        '[trees."patrol/patrol.xml".blackboard]\n'
        "battery = 45\n"
        "charged = 2026-12-07T10:00:00Z\n"
        '[trees."patrol/patrl.xml"]\n'
        "blackbord = {battery = 1}\n",
        encoding="utf-8",
    )
    with pytest.raises(DefinitionError) as refused:
        await launch(control, str(patrol / "patrol.xml"), blackboard={})
    project = tmp_path / "demo" / "canopy.toml"
    assert [str(problem) for problem in refused.value.problems] == [
        f'{project}:5:1: [trees."patrol/patrol.xml".blackboard] charged: a TOML date-time is'
        " not a blackboard value; write it as a string",
        f'{project}:6:1: [trees."patrol/patrl.xml"]: no tree file {patrol / "patrl.xml"}',
        f"{project}:6:1: [trees.\"patrol/patrl.xml\"]: unknown setting 'blackbord'"
        " (known: blackboard)",
    ]


async def test_a_large_tree_keeps_its_history(control: ExecutionControl) -> None:
    eid = await launch(control, "tests.server.runtime.factories:big", blackboard={})
    await tick_and_wait(control, eid)
    state = await control.state_at(eid, 1)
    assert len(state.tree) > 1400
    assert state.statuses["a_rather_large_mission_control_tree"] == "RUNNING"


async def test_a_tree_too_large_to_record_is_refused(store: SqlEventStore) -> None:
    """In-process only: the limit is lowered in this process's log, and the control that
    checks it must be the one using that log (a pod checks against its own)."""
    control = InProcessControl(store, tenant_id="acme")
    rule = store.validator._types["ExecutionStarted"]
    rule.max_bytes, saved = 1000, rule.max_bytes
    try:
        with pytest.raises(InvalidRequest, match=r"over the \d+ bytes the event log records"):
            await control.launch(LaunchSpec("tests.server.runtime.factories:big"))
    finally:
        rule.max_bytes = saved
        await control.close()


async def test_a_quiet_tick_costs_one_event_and_history_still_sees_it(
    control: ExecutionControl, store: SqlEventStore
) -> None:
    eid = await launch(control, "tests.server.runtime.factories:idle", blackboard={})
    await tick_and_wait(control, eid, 5)
    await control.terminate(eid)
    types = [t for t, _ in await events(store, eid)]
    assert types.count("TickStarted") == 1  # only tick 1 changed anything
    assert types.count("TickCompleted") == 5
    state = await control.state_at(eid, 3)
    assert (state.tick, state.statuses) == (3, {"spin": "RUNNING"})
    stats = await control.statistics(eid)
    assert stats.ticks.count == 5
    assert stats.nodes["spin"].visits == 5


ANSWER = """
import py_trees
from py_trees.common import Status


class Answer(py_trees.behaviour.Behaviour):
    def update(self) -> Status:
        self.feedback_message = "{version}"
        return Status.RUNNING
"""


async def launch_answer(control: ExecutionControl, folder: Path, module: str) -> tuple[Path, str]:
    """Launch a one-node tree of ``module``'s ``Answer`` (written to ``folder``, version
    "first"), tick it once; the module's file and the execution id."""
    source = folder / f"{module}.py"
    source.write_text(ANSWER.format(version="first"))
    tree = folder / "answer.yaml"
    tree.write_text(f"name: answer\nroot:\n  type: {module}:Answer\n  name: answer\n")
    eid = await launch(control, str(tree), blackboard={})
    await tick_and_wait(control, eid)
    return source, eid


def feedback_of(view: Any) -> dict[str, str]:
    return {n["id"]: n["feedback"] for n in view.nodes}


async def test_hot_reload_runs_the_edited_code_of_behaviours(
    control: ExecutionControl, tmp_path: Path
) -> None:
    module, eid = await launch_answer(control, tmp_path, "answers_v")
    assert feedback_of(await control.view(eid))["answer"] == "first"

    module.write_text(ANSWER.format(version="second"))
    await control.reload(eid)
    await tick_and_wait(control, eid)
    assert feedback_of(await control.view(eid))["answer"] == "second"

    module.write_text(ANSWER.format(version="third").replace("def update", "def update(("))
    with pytest.raises(DefinitionError, match=r"answers_v\.py:\d+:\d+: cannot reload"):
        await control.reload(eid)
    await tick_and_wait(control, eid)  # the tree goes on with the code it had
    assert feedback_of(await control.view(eid))["answer"] == "second"


# -- user code that exits or interrupts --------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "where", "exception", "message"),
    [
        ("exit", "update", "builtins.SystemExit", "3"),
        ("interrupt", "initialise", "builtins.KeyboardInterrupt", "interrupted by the behaviour"),
        ("exit", "terminate", "builtins.SystemExit", "3"),
        ("base", "update", f"{quitters.__name__}.Fatal", "a BaseException of the user's own"),
    ],
)
async def test_a_behaviour_that_exits_or_interrupts_fails_like_one_that_raises(
    control: ExecutionControl,
    store: SqlEventStore,
    tmp_path: Path,
    how: str,
    where: str,
    exception: str,
    message: str,
) -> None:
    eid = await launch(control, quitting_tree(tmp_path, how, where), blackboard={})
    await control.set_exception_filters(eid, [ExceptionFilter.RAISED])
    await control.tick(eid)
    stop = await control.wait_for_stop(eid)
    assert (stop.reason, stop.node_id, stop.tick) == ("exception", "seq/quit", 1)
    assert stop.exception is not None
    assert (stop.exception["exception"], stop.exception["message"]) == (exception, message)
    await control.resume(eid)
    info = await control.wait_for_end(eid)
    assert (info.state, info.end_reason) == (RunState.ENDED, "failed")
    recorded = await events(store, eid)
    raised = [p for t, p in recorded if t == "BehaviourRaised"]
    assert [(p["node_id"], p["exception"]) for p in raised] == [("seq/quit", exception)]
    ended = recorded[-1][1]
    short = exception.removeprefix("builtins.")
    assert (ended["reason"], ended["detail"]) == ("failed", f"{short} in quit")
    assert ended["root_status"] == "FAILURE"
    # The process that ran it carries on: another execution runs to its end.
    again = await launch(control, mode=Mode.AUTO)
    assert (await control.wait_for_end(again)).end_reason == "completed"


async def test_a_factory_or_constructor_that_exits_is_a_definition_problem(
    control: ExecutionControl, tmp_path: Path
) -> None:
    tree = quitting_tree(tmp_path, "interrupt", "constructor")
    with pytest.raises(DefinitionError, match=r"constructing .*quitters:Quit failed: Keyboard"):
        await control.launch(LaunchSpec(tree))
    factory = "tests.server.runtime.quitters:exiting_factory"
    with pytest.raises(DefinitionError, match=r"raised SystemExit: no tree today"):
        await control.launch(LaunchSpec(factory))
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(4)\n")
    (tmp_path / "on_import.yaml").write_text(
        "name: x\nroot:\n  type: exits_on_import:Nothing\n  name: x\n"
    )
    with pytest.raises(DefinitionError, match=r"importing module 'exits_on_import' failed: Sys"):
        await control.launch(LaunchSpec(str(tmp_path / "on_import.yaml")))
    eid = await launch(control, mode=Mode.AUTO)
    assert (await control.wait_for_end(eid)).end_reason == "completed"


async def test_a_hot_reload_into_code_that_exits_keeps_the_running_tree(
    control: ExecutionControl, tmp_path: Path
) -> None:
    module, eid = await launch_answer(control, tmp_path, "answers_x")
    module.write_text("import sys\nsys.exit(5)\n" + ANSWER.format(version="second"))
    with pytest.raises(DefinitionError, match=r"reloading module 'answers_x' failed: SystemExit"):
        await control.reload(eid)
    await tick_and_wait(control, eid)
    assert feedback_of(await control.view(eid))["answer"] == "first"
