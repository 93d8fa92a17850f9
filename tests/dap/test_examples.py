"""Every configuration of the demo workspace's ``launch.json``, run as VS Code runs it: a real
``canopy dap`` started in the workspace with nothing else running (a ``pod`` configuration
makes the adapter start a server and a debug pod of its own), the launch arguments as written
with ``${workspaceFolder}`` filled in, and the exception filters VS Code sends by default. Each
runs to its first stop or its end, and that outcome is checked: an example cannot rot.

A configuration added to ``launch.json`` without an expected outcome here fails, on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from .client import DapClient, spawn_stdio_adapter, speaking_to
from .helpers import frames, scope_values, values, variables

WORKSPACE = Path(__file__).resolve().parents[2] / "examples"
CONFIGURATIONS: list[dict[str, Any]] = json.loads(
    (WORKSPACE / ".vscode" / "launch.json").read_text(encoding="utf-8")
)["configurations"]
Outcome = Callable[[DapClient], Awaitable[None]]


def workspace_line(relative: str, text: str) -> int:
    """The first line of a workspace file that holds ``text``."""
    lines = (WORKSPACE / relative).read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


async def stops_at_entry_on_the_root(client: DapClient) -> None:
    assert (await client.next_event("stopped"))["reason"] == "entry"
    (top,) = await frames(client)
    assert top["name"] == "patrol [Repeat] INVALID"
    assert top["source"]["path"] == str(WORKSPACE / "patrol" / "patrol.yaml")
    assert top["line"] == workspace_line("patrol/patrol.yaml", "type: Repeat")


async def stops_on_the_deliberate_bug_then_fails(client: DapClient) -> None:
    """The Groot2 twin of patrol.yaml, with the project's initial values: it runs the rounds
    down to the scan that divides by zero, exactly as the YAML tree does."""
    stopped = await client.next_event("stopped")  # the stop first, then its report
    told = await client.wait_for("output", category="stderr")
    head, node, frame = told["output"].splitlines()
    assert head == "ZeroDivisionError in scan (tick 8): integer division or modulo by zero"
    tree_line = workspace_line("patrol/patrol.xml", 'name="scan"')
    assert node == f"  node patrol/round/scan at {WORKSPACE / 'patrol' / 'patrol.xml'}:{tree_line}"
    robot = WORKSPACE / "patrol" / "robot.py"
    assert frame.startswith(
        f"  raised in update at {robot}:{workspace_line('patrol/robot.py', 'exposure_ms =')}:"
    )
    assert (stopped["reason"], stopped["description"]) == (
        "exception",
        "builtins.ZeroDivisionError: integer division or modulo by zero",
    )
    # One click on the top frame opens the raising line of robot.py; the exception widget
    # starts there too, not in Canopy's engine.
    raising = workspace_line("patrol/robot.py", "exposure_ms =")
    top, node, *_ = await frames(client)
    assert (top["name"], top["source"]["path"], top["line"]) == ("Scan.update", str(robot), raising)
    assert node["name"].startswith("scan [Scan]")
    info = await client.ok("exceptionInfo", {"threadId": 1})
    first = info["details"]["stackTrace"].splitlines()[0]
    assert first == f'  File "{robot}", line {raising}, in Scan.update'
    (locals_, *_) = (await client.ok("scopes", {"frameId": top["id"]}))["scopes"]
    (me,) = await variables(client, locals_["variablesReference"])
    assert me["name"] == "self"
    scan = await values(client, me["variablesReference"])
    assert scan["name"] == "'scan'"
    assert scan["blackboard"].startswith("{'/battery': 5")  # why it divides by zero
    await client.ok("continue", {"threadId": 1})
    ended = await client.wait_for("canopy/executionEnded")
    assert ended["text"] == "failed: ZeroDivisionError in scan"
    assert await client.next_event("exited") == {"exitCode": 1}
    await client.next_event("terminated")


async def runs_the_workflow_into_its_deliberate_bug(client: DapClient) -> None:
    """The triage workflow from its entry: classify's model answers urgency ``critical``, which
    the policy agent's table does not know; with the "Node failed" filter on, the run stops
    where the policy agent failed, the reason in its frame, then ends with the tree failed."""
    assert (await client.next_event("stopped"))["reason"] == "entry"
    (top,) = await frames(client)
    assert top["name"] == "triage [Sequence] INVALID"
    assert top["source"]["path"] == str(WORKSPACE / "triage" / "triage.yaml")
    assert top["line"] == workspace_line("triage/triage.yaml", "type: Sequence")
    await client.ok("setExceptionBreakpoints", {"filters": ["raised", "failed"]})
    await client.ok("continue", {"threadId": 1})
    # Told on stderr as it happens, as any failed agent call is, filter or no filter (right
    # after the stop when there is one).
    stopped = await client.next_event("stopped")
    told = await client.wait_for("output", category="stderr")
    policy = workspace_line("triage/triage.yaml", "name: policy") - 1  # its `- type:` line
    assert told["output"].splitlines()[1:] == [
        f"  node triage/analysts/policy at {WORKSPACE / 'triage' / 'triage.yaml'}:{policy}",
        f"  raised in response_policy at {WORKSPACE / 'triage' / 'triage_tools.py'}:"
        f"{workspace_line('triage/triage_tools.py', 'hours = RESPONSE_HOURS')}:"
        " hours = RESPONSE_HOURS[urgency]  # the deliberate bug: 'critical' is not in the table",
    ]
    assert (stopped["reason"], stopped["description"]) == (
        "exception",
        "policy returned FAILURE: node 'triage/analysts/policy': KeyError: 'critical'",
    )
    top, *_ = await frames(client)
    assert (top["name"], top["line"]) == ("policy [python] FAILURE", policy)
    node = await scope_values(client, "Node")
    assert node["feedback"] == "\"node 'triage/analysts/policy': KeyError: 'critical'\""
    board = await scope_values(client, "Blackboard")
    assert (board["category"], board["urgency"]) == ("'billing'", "'critical'")
    await client.ok("setExceptionBreakpoints", {"filters": ["raised"]})
    await client.ok("continue", {"threadId": 1})
    ended = await client.wait_for("canopy/executionEnded")
    assert (ended["text"], ended["rootStatus"]) == ("completed", "FAILURE")
    assert await client.next_event("exited") == {"exitCode": 1}
    await client.next_event("terminated")


EXPECTED: dict[str, Outcome] = {
    "Debug the patrol (YAML)": stops_at_entry_on_the_root,
    "Debug the patrol in a local pod (Groot2 XML)": stops_on_the_deliberate_bug_then_fails,
    "Debug the triage workflow": runs_the_workflow_into_its_deliberate_bug,
}


def filled_in(configuration: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(configuration).replace("${workspaceFolder}", str(WORKSPACE))
    assert "${" not in text, f"a variable this test does not fill in: {text}"
    filled: dict[str, Any] = json.loads(text)
    return filled


@pytest.mark.parametrize("configuration", CONFIGURATIONS, ids=[c["name"] for c in CONFIGURATIONS])
async def test_each_configuration_of_the_demo_workspace_runs(
    configuration: dict[str, Any], tmp_path: Path
) -> None:
    outcome = EXPECTED.get(configuration["name"])
    assert outcome is not None, f"say what {configuration['name']!r} must do in EXPECTED"
    adapter = spawn_stdio_adapter(tmp_path / "canopy", WORKSPACE)
    async with speaking_to(adapter) as client:
        capabilities = await client.ok(
            "initialize", {"adapterID": "canopy", "linesStartAt1": True, "pathFormat": "path"}
        )
        await client.ok("launch", filled_in(configuration))
        await client.wait_for("initialized")
        defaults = [
            f["filter"] for f in capabilities["exceptionBreakpointFilters"] if f.get("default")
        ]
        await client.ok("setExceptionBreakpoints", {"filters": defaults})
        await client.ok("configurationDone")
        await outcome(client)
        await client.ok("disconnect", {"terminateDebuggee": True})
