"""The embedded runtime records its user's actions in the audit log of its event log, as the
server does for its clients: the OS user, ``via: dap``."""

from __future__ import annotations

from pathlib import Path

from canopy.bridge import EventFilter, open_store
from canopy.server.auth import os_user

from ..bridge.helpers import read_all
from .client import adapter_over_stdio, launch_configured
from .helpers import PATROL, scopes, step


async def test_embedded_actions_are_audited_as_the_os_user(tmp_path: Path) -> None:
    data_dir = tmp_path / ".canopy"
    async with adapter_over_stdio(data_dir) as client:
        await launch_configured(
            client, PATROL, mode="manual", blackboard={"battery": 100}, breakpoints=[]
        )
        await client.wait_for("stopped")
        await step(client, "next")
        board = (await scopes(client))["Blackboard"]
        await client.ok(
            "setVariable", {"variablesReference": board, "name": "battery", "value": "42"}
        )
        await client.ok("disconnect", {"terminateDebuggee": True})
        await client.wait_closed()

    async with open_store(f"sqlite:///{data_dir / 'events.db'}") as store:
        found = read_all(store, EventFilter.of("local", types=["AuditAction"]))
        events = [e async for e in found]
    actions = [e.payload["action"] for e in events]
    assert actions[0] == "launch"
    assert actions[-1] == "terminate"
    assert actions.count("launch") == actions.count("terminate") == 1
    assert {"set_breakpoints", "set_blackboard"} <= set(actions)
    (edit,) = [e.payload for e in events if e.payload["action"] == "set_blackboard"]
    assert edit["details"] == {"key": "/battery", "value": "42"}
    execution_id = events[0].payload["execution_id"]
    for event in events:
        assert event.stream == "audit/local"
        payload = event.payload
        assert (payload["user_id"], payload["via"]) == (os_user(), "dap")
        assert (payload["execution_id"], payload["outcome"]) == (execution_id, "succeeded")
