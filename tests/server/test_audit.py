"""The audit log of debug sessions, end to end: a real server, real local pod workers, real
HTTP clients and the real ``canopy audit`` command, on each store.

Each action that changes a session leaves exactly one ``AuditAction`` event naming the token's
user and the execution; reads leave none; the log is read back by execution, by user and by
action, one tenant at a time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canopy.bridge import EventFilter, EventStore, RecordedEvent
from canopy.bridge.client import CanopyClient, ServerError
from canopy.server.api.problems import PROBLEM_CONTENT_TYPE
from canopy.server.runtime.breakpoints import BreakpointSpec, ExceptionFilter, WatchSpec
from canopy.server.runtime.control import LaunchSpec, UnknownExecution
from canopy.server.runtime.engine import Mode, StepKind

from ..bridge.helpers import read_all
from .conftest import Running, bearer, eventually
from .pods.remote import pod_server, remote_control
from .test_cli import canopy

PATROL = "tests.server.runtime.factories:patrol"


@pytest.fixture
async def running(store: EventStore, tmp_path: Path) -> AsyncIterator[Running]:
    async with pod_server(store, tmp_path / ".canopy") as server:
        yield server


async def audit(client: CanopyClient, **query: Any) -> list[RecordedEvent]:
    """Every audit event the query finds, following ``next_after`` to the end."""
    found: list[RecordedEvent] = []
    after = 0
    while True:
        page = await client.read_audit(after=after, limit=1000, **query)
        found += page.events
        if page.next_after >= page.head:
            return found
        after = page.next_after


def actions(events: list[RecordedEvent]) -> list[str]:
    return [e.payload["action"] for e in events]


async def test_each_action_on_an_execution_leaves_one_event_as_its_user(
    running: Running,
) -> None:
    async with remote_control(running, "ann") as control:
        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        await control.set_breakpoints(info.id, [BreakpointSpec(node="drain")])
        await control.set_watches(info.id, [WatchSpec(key="battery")])
        await control.set_exception_filters(info.id, [ExceptionFilter.RAISED])
        await control.set_blackboard(info.id, "battery", 90)
        await control.tick(info.id, 1)  # moving through the execution: not audited
        await control.settle(info.id)  # a read: not audited
        await control.view(info.id)  # a read: not audited
        await control.set_mode(info.id, Mode.MANUAL)
        await control.step_back(info.id)  # not audited
        await control.pause(info.id)  # not audited
        await control.resume(info.id, StepKind.OVER)  # not audited
        await control.reload(info.id)
        await control.terminate(info.id)
        events = await audit(control.client, execution=info.id)

    assert actions(events) == [
        "launch",
        "set_breakpoints",
        "set_watches",
        "set_exception_filters",
        "set_blackboard",
        "set_mode",
        "reload",
        "terminate",
    ]
    for event in events:
        assert event.tenant_id == "acme"
        assert event.topic == "debugging.internal"
        assert event.stream == "audit/acme"
        assert event.type == "AuditAction"
        payload = event.payload
        assert (payload["user_id"], payload["execution_id"]) == ("ann", info.id)
        assert (payload["outcome"], payload["via"]) == ("succeeded", "http")
        assert "error" not in payload
    details = {e.payload["action"]: e.payload.get("details") for e in events}
    assert details["launch"] == {"program": PATROL, "mode": "manual"}
    assert details["set_breakpoints"] == {"count": 1, "at": ["drain"]}
    assert details["set_watches"] == {"count": 1, "keys": ["battery"]}
    assert details["set_exception_filters"] == {"filters": ["raised"]}
    assert details["set_blackboard"] == {"key": "/battery", "value": "90"}
    assert details["set_mode"] == {"mode": "manual"}
    assert details["reload"] == {"program": None, "keep_blackboard": True, "unbound": 0}
    assert details["terminate"] is None


async def test_a_fork_is_audited_on_the_new_execution_naming_its_source(
    running: Running,
) -> None:
    async with remote_control(running, "ann") as control:
        source = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        await control.tick(source.id, 2)
        await control.settle(source.id)
        fork = await control.fork(source.id, tick=1, blackboard={"battery": 5}, live=["patrol"])
        (event,) = await audit(control.client, execution=fork.id)
    assert (event.payload["action"], event.payload["outcome"]) == ("fork", "succeeded")
    assert event.payload["details"] == {
        "source": source.id,
        "tick": 1,
        "edited": ["battery"],
        "live": ["patrol"],
    }


async def test_a_refused_action_leaves_one_refused_event_and_changes_nothing(
    running: Running,
) -> None:
    async with remote_control(running, "ann") as control:
        with pytest.raises(UnknownExecution):
            await control.set_blackboard("nope", "battery", 1)
        with pytest.raises(UnknownExecution):
            await control.info("nope")  # a read: not audited, even refused
        events = await audit(control.client, execution="nope")
    assert len(events) == 1
    payload = events[0].payload
    assert payload["action"] == "set_blackboard"
    assert (payload["user_id"], payload["outcome"]) == ("ann", "refused")
    assert payload["error"] == {"code": "UnknownExecution", "message": "no execution 'nope'"}


async def test_attaching_and_detaching_a_debugger_are_audited(
    running: Running, http: aiohttp.ClientSession
) -> None:
    async with remote_control(running, "ann"):  # listens to all of ann's executions
        await eventually(lambda: _seen(running.store, "ann", 1), "the attach is in the log")
    await eventually(lambda: _seen(running.store, "ann", 2), "the detach is in the log")
    token = await running.issue("ann", "acme")
    url = f"{running.url}/api/v1/notifications?execution_id=e1"
    async with http.ws_connect(url, headers=bearer(token)):
        await eventually(lambda: _seen(running.store, "ann", 3), "the attach to e1 is in the log")
    await eventually(lambda: _seen(running.store, "ann", 4), "the detach from e1 is in the log")

    found = read_all(running.store, EventFilter.of("acme", types=["AuditAction"]))
    assert [(e.payload["action"], e.payload.get("execution_id")) async for e in found] == [
        ("attach", None),
        ("detach", None),
        ("attach", "e1"),
        ("detach", "e1"),
    ]


async def _seen(store: EventStore, user: str, count: int) -> bool:
    found = read_all(store, EventFilter.of("acme", types=["AuditAction"]))
    return len([e async for e in found if e.payload["user_id"] == user]) >= count


async def test_queries_by_execution_user_and_action_stay_in_the_tenant(
    running: Running,
) -> None:
    async with (
        remote_control(running, "ann", attach=False) as ann,
        remote_control(running, "bob", attach=False) as bob,
        remote_control(running, "carol", "globex", attach=False) as carol,
    ):
        mine = await ann.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        theirs = await bob.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        other = await carol.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        await ann.set_blackboard(mine.id, "battery", 50)
        await bob.set_mode(theirs.id, Mode.MANUAL)
        await carol.set_blackboard(other.id, "battery", 10)
        with pytest.raises(UnknownExecution):  # users reach only their own pod
            await bob.set_blackboard(mine.id, "battery", 0)

        by_execution = await audit(ann.client, execution=mine.id)
        by_user = await audit(ann.client, user="bob")
        by_action = await audit(ann.client, action="set_blackboard")
        everything = await audit(ann.client)
        from_globex = await audit(carol.client)
        across = await audit(carol.client, execution=mine.id)
        across_users = await audit(carol.client, user="ann")

    assert [(e.payload["user_id"], e.payload["action"]) for e in by_execution] == [
        ("ann", "launch"),
        ("ann", "set_blackboard"),
        ("bob", "set_blackboard"),  # refused: bob tried ann's execution
    ]
    assert [e.payload["outcome"] for e in by_execution] == ["succeeded", "succeeded", "refused"]
    assert [(e.payload["action"], e.payload.get("execution_id")) for e in by_user] == [
        ("launch", theirs.id),
        ("set_mode", theirs.id),
        ("set_blackboard", mine.id),
    ]
    assert [e.payload["user_id"] for e in by_action] == ["ann", "bob"]
    assert {e.payload["user_id"] for e in everything} == {"ann", "bob"}
    assert {e.tenant_id for e in everything} == {"acme"}
    assert [(e.payload["user_id"], e.payload["action"]) for e in from_globex] == [
        ("carol", "launch"),
        ("carol", "set_blackboard"),
    ]
    assert across == across_users == []


async def test_pages_follow_next_after_to_the_end(running: Running) -> None:
    async with remote_control(running, "ann", attach=False) as control:
        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        for level in range(5):
            await control.set_blackboard(info.id, "battery", level)
        pages = []
        after = 0
        while True:
            page = await control.client.read_audit(after=after, limit=2, execution=info.id)
            pages.append([e.payload.get("details", {}).get("value") for e in page.events])
            if page.next_after >= page.head:
                break
            after = page.next_after
    assert pages[:3] == [[None, "0"], ["1", "2"], ["3", "4"]]
    assert all(page == [] for page in pages[3:])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("after=-1", "after"),
        ("action=teleport", "action"),
        ("execution=", "execution"),
        ("user=ann&user=bob", "user"),
        ("tenant=globex", "tenant"),
    ],
)
async def test_bad_parameters_are_refused_by_name(
    running: Running, http: aiohttp.ClientSession, query: str, field: str
) -> None:
    token = await running.issue("ann", "acme")
    url = f"{running.url}/api/v1/audit?{query}"
    async with http.get(url, headers=bearer(token)) as response:
        assert response.status == 400
        assert response.content_type == PROBLEM_CONTENT_TYPE
        problem = await response.json(content_type=None)
    assert problem["field"] == field
    assert field in problem["detail"]


async def test_the_audit_log_needs_a_token_and_cannot_be_forged(
    running: Running, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{running.url}/api/v1/audit") as response:
        assert response.status == 401
    forged = {
        "topic": "debugging.internal",
        "stream": "audit/acme",
        "type": "AuditAction",
        "payload": {"user_id": "bob", "action": "reload", "outcome": "succeeded", "via": "http"},
        "producer": {"name": "tests", "version": "1"},
    }
    async with running.client(await running.issue("ann", "acme")) as client:
        with pytest.raises(ServerError) as refused:
            await client.append([forged])
        assert await audit(client) == []
    assert refused.value.status == 403
    assert refused.value.field == "type"


async def test_the_audit_command_prints_the_log(running: Running, tmp_path: Path) -> None:
    token = await running.issue("ann", "acme")
    async with remote_control(running, "ann", attach=False) as control:
        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        await control.set_blackboard(info.id, "battery", 42)
        with pytest.raises(UnknownExecution):
            await control.terminate("gone")
    where = ("--url", running.url, "--token", token)

    shown = await canopy("audit", "--execution", info.id, *where, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[2:6] == ["ann", "launch", "succeeded", info.id]
    assert lines[1].split()[2:6] == ["ann", "set_blackboard", "succeeded", info.id]
    assert lines[1].endswith('{"key":"/battery","value":"42"}')

    shown = await canopy("audit", "--user", "ann", "--json", *where, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    events = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [e["payload"]["action"] for e in events] == ["launch", "set_blackboard", "terminate"]
    assert events[-1]["payload"]["outcome"] == "refused"
    assert events[-1]["payload"]["error"]["code"] == "UnknownExecution"

    shown = await canopy("audit", "--user", "ann", "--limit", "1", *where, cwd=tmp_path)
    assert len(shown.stdout.splitlines()) == 1

    shown = await canopy("audit", "--action", "teleport", *where, cwd=tmp_path)
    assert shown.returncode == 1
    assert "unknown action 'teleport'" in shown.stderr
    assert "Traceback" not in shown.stderr
