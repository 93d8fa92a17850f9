"""How an audited call and its audit event hold together, over the real runtime in this
process and real stores: a success is never answered without its event, a refusal is always
answered, and a caller that goes away does not split an action from its event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from canopy.bridge import EventFilter, EventStore, StoreClosed, open_store
from canopy.server.audit import Actor, AuditedControl, AuditTrail
from canopy.server.runtime.control import LaunchSpec, UnknownExecution
from canopy.server.runtime.inprocess import InProcessControl

from ..bridge.helpers import read_all
from .conftest import eventually

PATROL = "tests.server.runtime.factories:patrol"
ANN = Actor("ann", "acme", "http", "t1")


@pytest.fixture
async def runtime(store: EventStore) -> AsyncIterator[InProcessControl]:
    control = InProcessControl(store, tenant_id="acme")
    yield control
    await control.close()


@pytest.fixture
async def closed_log(tmp_path: Path) -> EventStore:
    """A log that takes no more writes, as one that went away would."""
    store = open_store(f"sqlite:///{tmp_path / 'closed.db'}")
    await store.start()
    await store.close()
    return store


async def audit_events(store: EventStore) -> list[dict[str, object]]:
    return [e.payload async for e in read_all(store, EventFilter.of("acme", types=["AuditAction"]))]


async def test_a_success_is_not_answered_without_its_audit_event(
    runtime: InProcessControl, closed_log: EventStore
) -> None:
    audited = AuditedControl(runtime, AuditTrail(closed_log, ANN))
    with pytest.raises(StoreClosed):
        await audited.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
    # The launch itself took effect: the caller was told the log failed, not that it succeeded.
    assert len(await runtime.executions()) == 1


async def test_a_refusal_is_answered_even_when_its_audit_event_cannot_be_written(
    runtime: InProcessControl, closed_log: EventStore
) -> None:
    audited = AuditedControl(runtime, AuditTrail(closed_log, ANN))
    with pytest.raises(UnknownExecution):
        await audited.set_blackboard("nope", "battery", 1)


async def test_reads_pass_through_unrecorded(runtime: InProcessControl, store: EventStore) -> None:
    audited = AuditedControl(runtime, AuditTrail(store, ANN))
    info = await audited.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
    await audited.info(info.id)
    await audited.view(info.id)
    await audited.evaluate(info.id, "battery + 1")
    await audited.statistics(info.id)
    assert [p["action"] for p in await audit_events(store)] == ["launch"]


async def test_a_caller_that_goes_away_leaves_the_action_and_its_event_whole(
    runtime: InProcessControl, store: EventStore
) -> None:
    audited = AuditedControl(runtime, AuditTrail(store, ANN))
    call = asyncio.create_task(audited.launch(LaunchSpec(PATROL, blackboard={"battery": 100})))
    await asyncio.sleep(0)  # the call is under way
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    async def recorded() -> bool:
        return len(await audit_events(store)) == 1

    await eventually(recorded, "the launch's audit event is in the log")
    (launched,) = await runtime.executions()
    (event,) = await audit_events(store)
    assert (event["action"], event["execution_id"], event["user_id"]) == (
        "launch",
        launched.id,
        "ann",
    )
