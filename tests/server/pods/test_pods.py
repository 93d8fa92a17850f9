"""Debug pods end to end: a real server, real local worker processes, real HTTP clients.

Lifecycle (start once, reuse, limit, reap, orphan policy) and faults (a worker killed
mid-tick, a link dropped during a burst, wrong tokens, another user's ids, bad requests).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canopy.bridge import EventFilter, EventStore, SequenceGap
from canopy.bridge.client import CanopyClient
from canopy.server.api.keys import PODS
from canopy.server.auth import Principal
from canopy.server.pods.protocol import CONNECT_PATH, POD_HEADER
from canopy.server.remote.client import HttpExecutionControl
from canopy.server.remote.wire import PodTimeout, PodUnavailable, TooManySessions
from canopy.server.runtime.breakpoints import BreakpointSpec
from canopy.server.runtime.control import InvalidRequest, LaunchSpec, UnknownExecution
from canopy.server.runtime.engine import Mode, RunState

from ...bridge.helpers import read_all
from ..conftest import WAIT, Running, bearer, eventually
from ..runtime import factories, quitters
from .remote import pod_server, remote_control

PATROL = "tests.server.runtime.factories:patrol"
FOREVER = "tests.server.runtime.factories:forever"
QUITTERS = quitters.__name__
PAIR = "tests/server/runtime/trees/pair.yaml"


@pytest.fixture
async def running(store: EventStore, tmp_path: Path) -> AsyncIterator[Running]:
    async with pod_server(store, tmp_path / ".canopy") as server:
        yield server


async def facts(store: EventStore, tenant: str = "acme") -> list[tuple[str, dict[str, Any]]]:
    found = read_all(store, EventFilter.of(tenant, topics=["debugging.internal"]))
    return [(e.type, e.payload) async for e in found if e.stream.startswith("pod/")]


async def stream(store: EventStore, execution_id: str) -> list[Any]:
    return [
        e
        async for e in read_all(
            store, EventFilter.of("acme", streams=[f"execution/{execution_id}"])
        )
    ]


async def first(notes: AsyncIterator[Any], kind: str) -> Any:
    async for note in notes:
        if note.kind == kind:
            return note
    raise AssertionError(f"the notifications ended without {kind!r}")


def pod_of(running: Running, user: str = "ann", tenant: str = "acme") -> Any:
    return running.app[PODS].current(Principal(user, tenant, "-"))


# -- lifecycle -------------------------------------------------------------------------------------


async def test_the_debug_mode_toggle_starts_one_pod_and_reuses_it(
    running: Running, http: aiohttp.ClientSession
) -> None:
    token = await running.issue("ann", "acme")
    me = f"{running.url}/api/v1/pods/me"
    async with http.get(me, headers=bearer(token)) as response:
        assert response.status == 404  # debug mode off
    async with http.put(me, headers=bearer(token)) as response:
        first = await response.json()
        assert (response.status, first["state"], first["provider"]) == (200, "ready", "local")
    async with http.put(me, headers=bearer(token)) as response:
        assert (await response.json())["pod_id"] == first["pod_id"]
    recorded = await facts(running.store)
    assert [kind for kind, _ in recorded] == ["PodRequested", "PodReady"]
    requested, ready = recorded[0][1], recorded[1][1]
    assert (requested["user_id"], requested["provider"]) == ("ann", "local")
    assert len(requested["token_sha256"]) == 64
    assert ready["startup_ms"] > 0
    async with http.delete(me, headers=bearer(token)) as response:
        assert response.status == 204
    assert [kind for kind, _ in await facts(running.store)][-1] == "PodStopped"
    assert pod_of(running) is None


async def test_sessions_per_user_are_limited(store: EventStore, tmp_path: Path) -> None:
    async with (
        pod_server(store, tmp_path / ".canopy", pod_max_sessions=2) as running,
        remote_control(running) as control,
    ):
        for _ in range(2):
            await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        with pytest.raises(TooManySessions, match="at most 2"):
            await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        first = (await control.executions())[0]
        await control.terminate(first.id)
        await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))


async def test_idle_pods_are_reaped(store: EventStore, tmp_path: Path) -> None:
    async with (
        pod_server(store, tmp_path / ".canopy", pod_idle_timeout=0.3) as running,
        remote_control(running) as control,
    ):

        async def reaped() -> bool:
            return [kind for kind, _ in await facts(running.store)][-1] == "PodReaped"

        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        await control.terminate(info.id)
        await eventually(lambda: pod_of(running) is None, "the idle pod is reaped")
        await eventually(reaped, "PodReaped is recorded")
        again = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        assert (await control.info(again.id)).state is RunState.IDLE


async def test_an_execution_left_stopped_by_a_vanished_client_is_stopped(
    store: EventStore, tmp_path: Path
) -> None:
    async with pod_server(store, tmp_path / ".canopy", pod_orphan_timeout=0.3) as running:
        async with remote_control(running) as control:
            info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
            await control.set_breakpoints(info.id, [BreakpointSpec(node="drain")])
            await control.tick(info.id, 2)
            stop = await control.wait_for_stop(info.id)
            assert stop.node_id == "patrol/round/drain"
        # The client is gone; nobody listens to the execution any more.
        async with remote_control(running, attach=False) as observer:
            ended = await asyncio.wait_for(observer.wait_for_end(info.id), WAIT)
        assert (ended.state, ended.end_reason) == (RunState.ENDED, "stopped")


async def test_a_behaviours_exception_is_told_over_the_notifications_socket_and_fails_the_run(
    running: Running, http: aiohttp.ClientSession
) -> None:
    """What an HTTP client hears, frame by frame, when a behaviour raises with no exception
    filter set: the report on stderr as it happens, then an end that says the run failed."""
    token = await running.issue("ann", "acme")
    async with remote_control(running, attach=False) as control:
        # From battery 50, check_battery raises on tick 5 (battery -10).
        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 50}))
        url = f"{running.url}/api/v1/notifications?execution_id={info.id}"
        async with http.ws_connect(url, headers=bearer(token)) as ws:
            await control.set_mode(info.id, Mode.AUTO)
            heard = []
            async with asyncio.timeout(WAIT):
                async for message in ws:
                    note = message.json()["notification"]
                    heard.append(note)
                    if note["kind"] == "ended":
                        break
        told = [n for n in heard if n["kind"] == "output" and n["category"] == "stderr"]
        head, node, frame = told[0]["text"].splitlines()
        assert head == "ValueError in check_battery (tick 5): battery level -10 is negative"
        # A factory's tree has no file: its node is where its class is defined.
        lines = inspect.getsource(factories).splitlines()
        defined = next(n for n, line in enumerate(lines, 1) if "class CheckBattery" in line)
        raising = next(n for n, line in enumerate(lines, 1) if "raise ValueError" in line)
        assert node == f"  node patrol/round/check_battery at {factories.__file__}:{defined}"
        assert frame == (
            f"  raised in update at {factories.__file__}:{raising}:"
            ' raise ValueError(f"battery level {level} is negative")'
        )
        ended = heard[-1]
        assert (ended["reason"], ended["text"], ended["status"]) == (
            "failed",
            "ValueError in check_battery",
            "FAILURE",
        )
        async with http.get(
            f"{running.url}/api/v1/executions/{info.id}", headers=bearer(token)
        ) as response:
            after = await response.json()
        assert (after["end_reason"], after["end_detail"]) == (
            "failed",
            "ValueError in check_battery",
        )


# -- faults ----------------------------------------------------------------------------------------


async def test_a_pod_killed_mid_tick_ends_its_executions_with_the_reason(
    running: Running,
) -> None:
    async with remote_control(running) as control:
        info = await control.launch(
            LaunchSpec(FOREVER, mode=Mode.AUTO, blackboard={"battery": 10**6})
        )
        notes = control.notifications(info.id)
        pod = pod_of(running)
        os.kill(running.app[PODS].provider.pid(pod.pod_id), signal.SIGKILL)
        ended = await asyncio.wait_for(first(notes, "ended"), WAIT)
        assert ended.reason == "pod_died"
        assert "killed by signal 9" in ended.text
        after = await control.info(info.id)
        assert (after.state, after.end_reason) == (RunState.ENDED, "pod_died")
        with pytest.raises(InvalidRequest, match="pod_died"):
            await control.tick(info.id)
        recorded = await stream(running.store, info.id)
        assert recorded[-1].type == "ExecutionEnded"
        assert recorded[-1].payload["reason"] == "pod_died"
        versions = [e.stream_version for e in recorded]
        assert versions == list(range(1, len(recorded) + 1))
        kinds = [kind for kind, _ in await facts(running.store)]
        assert kinds[-1] == "PodFailed"
        # The next request gets a fresh pod.
        fresh = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        assert pod_of(running).pod_id != pod.pod_id
        await control.tick(fresh.id)
        assert (await control.settle(fresh.id)).tick == 1


async def test_a_pod_killed_while_an_agent_call_is_in_flight_loses_no_recorded_call(
    running: Running,
) -> None:
    async with remote_control(running) as control:
        info = await control.launch(LaunchSpec(PAIR, mode=Mode.AUTO))
        notes = control.notifications(info.id)

        async def slow_call_started() -> bool:
            recorded = await stream(running.store, info.id)
            return any(
                e.type == "AgentCallStarted" and "slow" in e.payload["node_id"] for e in recorded
            )

        await eventually(slow_call_started, "the slow agent's call starts")
        pod = pod_of(running)
        os.kill(running.app[PODS].provider.pid(pod.pod_id), signal.SIGKILL)
        assert (await asyncio.wait_for(first(notes, "ended"), WAIT)).reason == "pod_died"
    recorded = await stream(running.store, info.id)
    agents = [(e.type, e.payload["node_id"]) for e in recorded if e.type.startswith("Agent")]
    assert agents == [
        ("AgentCallStarted", "pair/quick"),
        ("AgentCallCompleted", "pair/quick"),
        ("AgentCallStarted", "pair/slow"),
    ]
    assert [e.stream_version for e in recorded] == list(range(1, len(recorded) + 1))
    assert recorded[-1].payload["reason"] == "pod_died"

    # Restarted in a fresh pod: the quick agent is answered from the log, the slow one runs.
    async with remote_control(running) as control:
        restart = await control.fork(info.id, tick=0)
        assert pod_of(running).pod_id != pod.pod_id

        async def slow_call_restarted() -> bool:
            recorded = await stream(running.store, restart.id)
            return [e.type for e in recorded if e.type.startswith("Agent")] == [
                "AgentCallStarted",
                "AgentCallCompleted",
                "AgentCallStarted",
            ]

        await eventually(slow_call_restarted, "the restart reaches the slow agent")
        await control.terminate(restart.id)
    served = [e.payload for e in await stream(running.store, restart.id)]
    assert [p["served_from"]["execution_id"] for p in served if "served_from" in p] == [info.id]


async def test_user_code_that_ends_the_worker_fails_its_execution_and_the_pod_is_replaced(
    running: Running,
) -> None:
    async with remote_control(running) as control:
        info = await control.launch(LaunchSpec(f"{QUITTERS}:os_exiting", blackboard={}))
        notes = control.notifications(info.id)
        pod = pod_of(running)
        # update() calls os._exit(3): the tick's answer may come first, or the pod's end.
        (answer,) = await asyncio.gather(control.tick(info.id), return_exceptions=True)
        if answer is not None:
            assert isinstance(answer, PodUnavailable)
            assert "the debug pod ended: exited with code 3" in str(answer)
        ended = await asyncio.wait_for(first(notes, "ended"), WAIT)
        assert ended.reason == "pod_died"
        assert "exited with code 3" in ended.text
        assert pod.state == "stopped"
        recorded = await stream(running.store, info.id)
        assert (recorded[-1].type, recorded[-1].payload["reason"]) == ("ExecutionEnded", "pod_died")
        assert "exited with code 3" in recorded[-1].payload["detail"]
        assert [p for k, p in await facts(running.store) if k == "PodFailed"][-1]["exit_code"] == 3
        with pytest.raises(InvalidRequest, match="pod_died"):
            await asyncio.wait_for(control.tick(info.id), WAIT)
        # The next request gets a fresh pod at once.
        fresh = await asyncio.wait_for(
            control.launch(LaunchSpec(PATROL, mode=Mode.AUTO, blackboard={"battery": 100})), WAIT
        )
        assert pod_of(running).pod_id != pod.pod_id
        assert (await asyncio.wait_for(control.wait_for_end(fresh.id), WAIT)).tick == 7


async def test_a_call_the_pod_does_not_answer_in_time_fails_and_the_pod_goes_on(
    store: EventStore, tmp_path: Path
) -> None:
    async with (
        pod_server(store, tmp_path / ".canopy", pod_call_timeout=1.0) as running,
        remote_control(running) as control,
    ):
        hung = LaunchSpec(f"{QUITTERS}:hanging_factory", blackboard={})
        with pytest.raises(PodTimeout) as late:
            await asyncio.wait_for(control.launch(hung), WAIT)
        assert str(late.value) == "the debug pod did not answer launch within 1 s"
        info = await asyncio.wait_for(
            control.launch(LaunchSpec(PATROL, mode=Mode.AUTO, blackboard={"battery": 100})), WAIT
        )
        # Waiting is what these calls are for: no deadline cuts them.
        assert (await asyncio.wait_for(control.wait_for_end(info.id), WAIT)).tick == 7


async def test_a_worker_exits_when_asked_whatever_threads_user_code_left(
    running: Running,
) -> None:
    async with remote_control(running) as control:
        info = await control.launch(LaunchSpec(f"{QUITTERS}:lingering", blackboard={}))
        await control.tick(info.id)
        assert (await control.wait_for_end(info.id)).end_reason == "completed"
        pod = pod_of(running)
        await running.app[PODS].stop(pod, reason="done")
        ended = await running.app[PODS].provider.wait(pod.pod_id)
        assert (ended.exit_code, ended.reason) == (0, "exited normally")  # not killed


async def test_a_dropped_link_loses_and_duplicates_nothing(running: Running) -> None:
    async with remote_control(running) as control:
        info = await control.launch(
            LaunchSpec(FOREVER, mode=Mode.AUTO, max_ticks=3000, blackboard={"battery": 10**6})
        )
        pod = pod_of(running)
        for _ in range(3):
            dropped = pod.link
            await dropped.ws.close()  # events pile up in the pod until it links again
            await eventually(
                lambda dropped=dropped: pod.link not in (None, dropped), "the pod links again"
            )
        ended = await asyncio.wait_for(control.wait_for_end(info.id), 60)
        assert (ended.end_reason, ended.tick) == ("max_ticks", 3000)
        recorded = await stream(running.store, info.id)
        assert [e.stream_version for e in recorded] == list(range(1, len(recorded) + 1))
        ticks = [e.payload["tick"] for e in recorded if e.type == "TickCompleted"]
        assert ticks == list(range(1, 3001))


async def test_a_pods_resent_overlapping_and_skipping_batches_are_written_once(
    running: Running,
) -> None:
    async with remote_control(running) as control:
        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        await control.tick(info.id)
        await control.terminate(info.id)

    async def ended() -> bool:
        return any(e.type == "ExecutionEnded" for e in await stream(running.store, info.id))

    await eventually(ended, "the pod's events are in the log")
    link = pod_of(running).link
    stream_name = f"execution/{info.id}"

    def batch(first: int, count: int) -> list[list[Any]]:
        return [
            [
                n,
                "debugging.execution",
                stream_name,
                "TickStarted",
                1,
                {"execution_id": info.id, "tick": n},
            ]
            for n in range(first, first + count)
        ]

    # The execution's stream, not the head: the server's own audit facts may still land.
    recorded = await stream(running.store, info.id)
    # a batch that skips: refused, and it says which event to resend from
    with pytest.raises(SequenceGap) as skipped:
        await link._append(batch(10**6, 1))
    held = skipped.value.expected - 1
    assert held == len(recorded)  # every event of the stream is the pod's
    # a batch the log already holds (its ack was lost): answered, nothing written
    await link._append(batch(1, 3))
    assert await stream(running.store, info.id) == recorded
    # a batch overlapping what is held: only its new event is written
    await link._append(batch(held - 1, 3))
    *same, newest = await stream(running.store, info.id)
    assert same == recorded
    assert (newest.type, newest.payload["tick"]) == ("TickStarted", held + 1)


async def test_wrong_tokens_are_refused(running: Running, http: aiohttp.ClientSession) -> None:
    url = running.url + CONNECT_PATH
    for headers in ({}, {**bearer("forged"), POD_HEADER: "nope"}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers=headers)
        assert refused.value.status == 401
    async with remote_control(running) as control:
        await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
    pod = pod_of(running)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url, headers={**bearer("forged"), POD_HEADER: pod.pod_id})
    assert refused.value.status == 401
    async with http.get(f"{running.url}/api/v1/executions", headers=bearer("forged")) as answer:
        assert answer.status == 401


def pod_token(pid: int) -> str:
    """The token in a worker's environment, as code running in that worker reads it."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    (token,) = [v for k, _, v in (e.partition(b"=") for e in environ) if k == b"CANOPY_POD_TOKEN"]
    return token.decode()


async def test_a_frame_nested_too_deep_closes_that_link_and_the_pod_links_again(
    running: Running, http: aiohttp.ClientSession
) -> None:
    """User code in a pod can read the pod's token and speak on its link: the server's JSON
    decoder refuses a frame nested 100,000 deep, closes that link and serves on."""
    async with remote_control(running) as control:
        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        pod = pod_of(running)
        pid = running.app[PODS].provider.pid(pod.pod_id)
        headers = {**bearer(pod_token(pid)), POD_HEADER: pod.pod_id}
        async with http.ws_connect(running.url + CONNECT_PATH, headers=headers) as ws:
            await ws.send_json({"op": "hello", "pod_id": pod.pod_id})
            assert (await ws.receive_bytes()) == b'{"op":"welcome"}'
            intruding = pod.link
            await ws.send_bytes(b'{"op": "result", "value": ' + b"[" * 100_000 + b"]" * 100_000)
            async for _ in ws:  # what the server sends first (the clients frame)
                pass
            assert ws.close_code == 1003
        await eventually(lambda: pod.link not in (None, intruding), "the worker links again")
        await control.tick(info.id)
        assert (await asyncio.wait_for(control.settle(info.id), WAIT)).tick == 1
    async with http.get(f"{running.url}/healthz") as answer:
        assert answer.status == 200


async def test_other_users_executions_do_not_exist_for_them(running: Running) -> None:
    async with remote_control(running, "ann", "acme") as ann:
        info = await ann.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        for user, tenant in (("bob", "acme"), ("ann", "globex")):
            async with remote_control(running, user, tenant) as other:
                with pytest.raises(UnknownExecution):
                    await other.view(info.id)
                with pytest.raises(UnknownExecution):
                    await other.terminate(info.id)
                assert await other.executions() == []
        assert (await ann.info(info.id)).state is RunState.IDLE


async def test_malformed_and_oversized_requests(
    running: Running, http: aiohttp.ClientSession
) -> None:
    token = await running.issue("ann", "acme")
    headers = {**bearer(token), "Content-Type": "application/json"}
    url = f"{running.url}/api/v1/executions"
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 400, "JSON object"),
        (b'{"spec": {"program": "x"}, "colour": 1}', 400, "no argument 'colour'"),
        (b'{"spec": {"program": "x", "mode": "sideways"}}', 400, "sideways"),
        (b'{"spec": {"program": "x", "max_ticks": "many"}}', 400, "max_ticks"),
        (b'{"spec": {"program": "missing.yaml"}}', 422, "missing.yaml"),
    ]
    for body, status, detail in cases:
        async with http.post(url, data=body, headers=headers) as answer:
            problem = await answer.json()
            assert (answer.status, answer.content_type) == (status, "application/problem+json")
            assert detail in problem["detail"], problem
    async with http.post(url, data=b"x" * (5 * 1024 * 1024), headers=headers) as answer:
        assert answer.status == 413
    async with http.get(f"{url}/nope/view", headers=headers) as answer:
        problem = await answer.json()
        assert (answer.status, problem["error"]) == (404, "UnknownExecution")
    async with http.get(f"{url}/nope/history/state?tick=soon", headers=headers) as answer:
        assert answer.status == 400


async def test_a_pod_that_cannot_start_is_reported(store: EventStore, tmp_path: Path) -> None:
    from canopy.server.pods.local import LocalPodProvider

    broken = LocalPodProvider(tmp_path / "pods", command=["/nonexistent/python"])
    config = tmp_path / ".canopy"
    async with pod_server(store, config, pod_provider=broken) as running:
        secret = await running.issue("ann", "acme")
        async with CanopyClient(running.url, secret) as client:
            control = HttpExecutionControl(client)
            await control.connect()
            with pytest.raises(PodUnavailable, match="cannot start"):
                await control.launch(LaunchSpec(PATROL))
            await control.close()
        kinds = [kind for kind, _ in await facts(running.store)]
        assert kinds == ["PodRequested", "PodFailed"]


async def test_event_subscriptions_filter_by_node_and_status(running: Running) -> None:
    async with remote_control(running) as control:
        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        await control.tick(info.id, 4)
        await control.settle(info.id)
        secret = await running.issue("ann", "acme")
        async with CanopyClient(running.url, secret) as client:
            followed = client.subscribe(
                streams=[f"execution/{info.id}"],
                types=["NodeStatusChanged"],
                nodes=["patrol/round/move"],
                statuses=["SUCCESS"],
            )
            first = await asyncio.wait_for(anext(followed), WAIT)
            await followed.close()
        assert (first.payload["node_id"], first.payload["status"]) == (
            "patrol/round/move",
            "SUCCESS",
        )
        everything = await stream(running.store, info.id)
        earlier = [
            e for e in everything if e.type == "NodeStatusChanged" and e.offset < first.offset
        ]
        assert earlier, "other nodes and statuses were left out, not absent"


# -- the tree library -----------------------------------------------------------------------------

COUNT = """{
  "name": "count",
  "root": {
    "type": "TickCounter",
    "name": "count",
    "params": {"duration": 2, "completion_status": "SUCCESS"}
  }
}
"""


async def test_trees_are_uploaded_in_versions_and_run_in_the_pod(
    running: Running, http: aiohttp.ClientSession
) -> None:
    token = await running.issue("ann", "acme")
    trees = f"{running.url}/api/v1/trees"
    upload = {"name": "count", "format": "json", "content": COUNT}
    async with http.post(trees, json=upload, headers=bearer(token)) as answer:
        assert (answer.status, (await answer.json())["version"]) == (201, 1)
    async with http.post(trees, json=upload, headers=bearer(token)) as answer:
        assert (answer.status, (await answer.json())["version"]) == (200, 1)  # same content
    changed = {**upload, "content": COUNT.replace('"duration": 2', '"duration": 3')}
    async with http.post(trees, json=changed, headers=bearer(token)) as answer:
        assert (answer.status, (await answer.json())["version"]) == (201, 2)
    async with http.get(trees, headers=bearer(token)) as answer:
        (listed,) = (await answer.json())["trees"]
        assert (listed["name"], listed["versions"]) == ("count", 2)
    async with http.get(f"{trees}/count?version=1", headers=bearer(token)) as answer:
        assert (await answer.json())["content"] == COUNT
    async with remote_control(running) as control:
        first = await control.launch(LaunchSpec("tree:count@1", mode=Mode.AUTO))
        latest = await control.launch(LaunchSpec("tree:count", mode=Mode.AUTO))
        first, latest = [await control.wait_for_end(e.id) for e in (first, latest)]
        assert (first.tree, first.end_reason) == ("count", "completed")
        assert (first.tick, latest.tick) == (3, 4)  # the counter succeeds after 2, then 3 ticks
        with pytest.raises(InvalidRequest, match="versions 1 to 2"):
            await control.launch(LaunchSpec("tree:count@7"))
        with pytest.raises(InvalidRequest, match="no tree 'nope'"):
            await control.launch(LaunchSpec("tree:nope"))
    async with remote_control(running, "eve", "globex") as other:
        with pytest.raises(InvalidRequest, match="no tree"):
            await other.launch(LaunchSpec("tree:count"))


async def test_bad_tree_uploads_are_refused_with_their_position(
    running: Running, http: aiohttp.ClientSession
) -> None:
    token = await running.issue("ann", "acme")
    trees = f"{running.url}/api/v1/trees"
    cases = [
        ({"name": "x", "format": "json", "content": "{"}, 422, "x.json:"),
        ({"name": "x", "format": "yaml", "content": "root: {type: 3}"}, 422, "x.yaml:1"),
        ({"name": "x", "format": "xml", "content": "<root><a></root>"}, 422, "malformed XML"),
        ({"name": "../x", "format": "json", "content": "{}"}, 400, "tree name"),
        ({"name": "x", "format": "toml", "content": ""}, 400, "format"),
        ({"name": "x", "format": "json"}, 400, "'content' must be a string"),
    ]
    for body, status, detail in cases:
        async with http.post(trees, json=body, headers=bearer(token)) as answer:
            problem = await answer.json()
            assert answer.status == status, problem
            assert detail in problem["detail"], problem
    async with http.get(f"{trees}/x", headers=bearer(token)) as answer:
        assert answer.status == 404


async def test_a_warm_spare_worker_becomes_the_first_pod(store: EventStore, tmp_path: Path) -> None:
    async with pod_server(store, tmp_path / ".canopy", pod_spare=True) as running:
        provider = running.app[PODS].provider
        await eventually(lambda: provider._spare is not None, "a spare worker is started")
        spare_pid = provider._spare.process.pid
        async with remote_control(running) as control:
            info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
            assert pod_of(running).pid == spare_pid
            await control.tick(info.id)
            assert (await control.settle(info.id)).tick == 1
            await eventually(lambda: provider._spare is not None, "the next spare is on its way")
            assert provider._spare.process.pid != spare_pid


async def test_a_blackboard_value_beyond_64_bits_is_its_exact_text_in_views_and_the_log(
    running: Running,
) -> None:
    wide = str(2**64 + 100)
    async with remote_control(running) as control:
        info = await control.launch(
            LaunchSpec("tests.server.runtime.factories:widening", blackboard={"battery": 100})
        )
        await control.tick(info.id)
        await asyncio.wait_for(control.settle(info.id), WAIT)
        view = await asyncio.wait_for(control.view(info.id), WAIT)
        assert view.blackboard["/battery"] == wide
        assert await asyncio.wait_for(control.evaluate(info.id, "battery"), WAIT) == wide
        await control.terminate(info.id)
    changes = [e.payload for e in await stream(running.store, info.id)]
    assert [p["new"] for p in changes if "new" in p] == [wide]


async def test_values_beyond_64_bits_are_shown_exactly_or_refused_and_every_call_answers(
    running: Running, http: aiohttp.ClientSession
) -> None:
    headers = bearer(await running.issue("ann", "acme"))
    url = f"{running.url}/api/v1/executions"
    spec = {"program": PATROL, "blackboard": {"battery": 100}}
    async with http.post(url, json={"spec": spec}, headers=headers) as answer:
        execution = (await answer.json())["id"]

    async def call(method: str, path: str, body: bytes) -> tuple[int, Any]:
        async with http.request(
            method, f"{url}/{execution}/{path}", data=body, headers=headers
        ) as answer:
            return answer.status, await answer.json(content_type=None)

    assert await call("POST", "evaluate", b'{"expression": "2**64"}') == (
        200,
        "18446744073709551616",
    )
    # A result the pod cannot encode (a lone surrogate) is answered as an error, not lost.
    status, problem = await call("POST", "evaluate", b'{"expression": "\'\\\\ud800\'"}')
    assert (status, problem["error"]) == (502, "RemoteFailure"), problem
    assert "surrogates not allowed" in problem["detail"]
    status, problem = await call(
        "PUT", "blackboard", b'{"key": "battery", "value": [18446744073709551616]}'
    )
    assert (status, problem["error"]) == (400, "InvalidArgument"), problem
    assert problem["detail"] == (
        "set_blackboard: argument 'value.0': integer 18446744073709551616 is outside the "
        "signed 64-bit range"
    )
    status, problem = await call("POST", "tick", b'{"count": 18446744073709551616}')
    assert (status, problem["error"]) == (400, "InvalidArgument"), problem
    assert "'count': integer 18446744073709551616 is outside" in problem["detail"]
    assert await call("POST", "evaluate", b'{"expression": "battery"}') == (200, 100)
