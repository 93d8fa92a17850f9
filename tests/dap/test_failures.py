"""A behaviour that raises is reported when it raises, with no exception filter set: on stderr,
naming the exception, the node, the node's line in the tree file and the line of the user's
code that raised; and the execution that ends because of it ends ``failed``, saying why."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ..server.runtime.quitters import quitting_tree
from .client import DapClient, launch_configured
from .helpers import PATROL, step

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NODES_ONLY = """[nodes]
CheckBattery = "robot:CheckBattery"
MoveTo = "robot:MoveTo"
Scan = "robot:Scan"
"""


def groot_project_without_values(folder: Path) -> Path:
    """The demo's Groot2 tree in a project that gives it no initial blackboard values: the
    battery check reads a key nobody wrote."""
    (folder / "patrol").mkdir()
    for name in ("patrol.xml", "robot.py"):
        shutil.copy(EXAMPLES / "patrol" / name, folder / "patrol" / name)
    (folder / "canopy.toml").write_text(NODES_ONLY, encoding="utf-8")
    return folder / "patrol" / "patrol.xml"


async def test_an_exception_with_no_filter_is_reported_on_stderr_and_fails_the_execution(
    client: DapClient, tmp_path: Path
) -> None:
    tree = groot_project_without_values(tmp_path)
    robot = tmp_path / "patrol" / "robot.py"
    await launch_configured(client, str(tree), mode="auto", cwd=str(tmp_path))

    raised = await client.wait_for("output", category="stderr")
    first, node, frame = raised["output"].splitlines()
    assert first == (
        "KeyError in check_battery (tick 1): \"client 'check_battery' tried to access"
        " '/battery' but it does not yet exist on the blackboard\""
    )
    assert node == f"  node patrol/round/check_battery at {tree}:8"
    assert frame == f"  raised in update at {robot}:26: level = self.blackboard.battery"

    ended = await client.next_event("output")
    assert ended["category"] == "stderr"
    assert ended["output"].endswith(" ended: failed: KeyError in check_battery\n")
    assert await client.next_event("canopy/executionEnded") == {
        "threadId": 1,
        "executionId": ended["output"].split()[1],
        "reason": "failed",
        "detail": "KeyError in check_battery",
        "rootStatus": "FAILURE",
        "text": "failed: KeyError in check_battery",
    }
    assert await client.next_event("exited") == {"exitCode": 1}
    await client.next_event("terminated")
    assert client.pending_events("stopped") == []
    # The end is in the log: statistics, rebuilt from it, say so too.
    statistics = await client.ok("canopy/statistics")
    assert statistics["ended"] == "failed: KeyError in check_battery"


async def test_the_exception_is_reported_too_when_the_raised_filter_stops_on_it(
    client: DapClient,
) -> None:
    # From battery 50, check_battery raises on tick 5 (battery -10).
    await launch_configured(
        client, PATROL, mode="auto", blackboard={"battery": 50}, exception_filters=["raised"]
    )
    # The stop comes first, its report right after: told before the stop, VS Code would
    # fetch the stack twice and show no exception widget.
    assert (await client.next_event("stopped"))["reason"] == "exception"
    raised = await client.wait_for("output", category="stderr")
    assert raised["output"].startswith(
        "ValueError in check_battery (tick 5): battery level -10 is negative\n"
    )
    assert raised["output"].endswith(
        'factories.py:36: raise ValueError(f"battery level {level} is negative")\n'
    )
    await client.ok("continue", {"threadId": 1})
    ended = await client.next_event("output")
    assert ended["output"].endswith(" ended: failed: ValueError in check_battery\n")
    assert await client.next_event("exited") == {"exitCode": 1}


async def test_a_tree_that_fails_without_an_exception_completes(client: DapClient) -> None:
    # From battery 100, check_battery returns FAILURE on tick 7: no exception, no stderr.
    await launch_configured(client, PATROL, mode="auto", blackboard={"battery": 100})
    ended = await client.next_event("output")
    assert (ended["category"], ended["output"].split(" ended: ")[1]) == ("console", "completed\n")
    assert (await client.next_event("canopy/executionEnded"))["reason"] == "completed"
    assert [o for o in client.pending_events("output") if o["category"] == "stderr"] == []


@pytest.mark.parametrize(
    ("how", "where", "exception"),
    [("exit", "update", "SystemExit"), ("interrupt", "initialise", "KeyboardInterrupt")],
)
async def test_a_behaviour_that_exits_fails_its_execution_not_the_adapter(
    client: DapClient, tmp_path: Path, how: str, where: str, exception: str
) -> None:
    await launch_configured(client, quitting_tree(tmp_path, how, where), mode="auto")
    raised = await client.wait_for("output", category="stderr")
    assert raised["output"].startswith(f"{exception} in quit (tick 1)"), raised
    ended = await client.wait_for("canopy/executionEnded")
    assert (ended["reason"], ended["detail"]) == ("failed", f"{exception} in quit")
    assert await client.next_event("exited") == {"exitCode": 1}
    # The adapter still answers: the ended execution's state can be read.
    assert (await client.ok("evaluate", {"expression": "1 + 1"}))["result"] == "2"


async def test_a_factory_that_exits_is_refused_and_the_next_launch_runs(client: DapClient) -> None:
    await client.ok("initialize", {"adapterID": "canopy"})
    message = await client.fails(
        "launch", {"program": "tests.server.runtime.quitters:exiting_factory"}
    )
    assert "raised SystemExit: no tree today" in message, message
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    assert (await client.next_event("stopped"))["reason"] == "entry"
    assert (await step(client, "next"))["reason"] == "step"


async def test_a_failed_agent_call_is_reported_on_stderr_as_it_happens(client: DapClient) -> None:
    """The triage example's deliberate bug with no filter set: the policy agent's function
    raises, and the console says so at once, down to the line of triage_tools.py; the tree
    then fails by itself, so the execution completes with the root FAILURE."""
    tree = EXAMPLES / "triage" / "triage.yaml"
    tools = EXAMPLES / "triage" / "triage_tools.py"
    await launch_configured(client, str(tree), mode="auto", cwd=str(EXAMPLES))

    raised = await client.wait_for("output", category="stderr")
    first, node, frame = raised["output"].splitlines()
    assert re.fullmatch(r"agent policy failed \(tick \d+\): KeyError: 'critical'", first)
    assert node == f"  node triage/analysts/policy at {tree}:{line_of(tree, 'name: policy') - 1}"
    raising = line_of(tools, "hours = RESPONSE_HOURS[urgency]")
    assert frame == (
        f"  raised in response_policy at {tools}:{raising}: hours = RESPONSE_HOURS[urgency]"
        "  # the deliberate bug: 'critical' is not in the table"
    )
    ended = await client.wait_for("canopy/executionEnded")
    assert (ended["text"], ended["rootStatus"]) == ("completed", "FAILURE")
    assert await client.next_event("exited") == {"exitCode": 1}
    told = [o for o in client.pending_events("output") if o["category"] == "stderr"]
    assert told == []  # once, not again when the tree fails through the agent


def line_of(path: Path, text: str) -> int:
    """The first line of ``path`` that holds ``text``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)
