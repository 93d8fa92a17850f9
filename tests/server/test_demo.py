"""``canopy demo`` on a copy of the demo workspace: the breakpoint, the data breakpoint, the
step over and back, and the deliberate bug, through a real server and a real local pod; then
the triage workflow's breakpoint, blackboard edit, fork answered from the log, and diff, its
models answering from the offline fixtures beside the tree."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from canopy.server.demo import WorkflowReport, run_demo

from .conftest import WAIT
from .test_cli import CANOPY, environment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def line_of(path: Path, text: str) -> int:
    """The first line of ``path`` that holds ``text``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def workspace_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES, copy, ignore=shutil.ignore_patterns(".canopy", "__pycache__"))
    return copy


async def test_the_demo_finds_the_bug(tmp_path: Path) -> None:
    workspace = workspace_copy(tmp_path)
    said: list[str] = []
    report = await asyncio.wait_for(run_demo(workspace, said.append), 4 * WAIT)
    assert report.steps[:4] == [
        "tick 2: stopped on breakpoint at patrol/round/scan (before its update)",
        "  blackboard: battery=35, scans=0, waypoint=1",
        "tick 2: stopped on step at the end of the tick",
        "stepped back to tick 1: battery=45, scans=0, waypoint=0 (read-only past)",
    ]
    assert "tick 8: stopped on data breakpoint at patrol/round/move" in report.steps[4]
    assert report.failure is not None
    assert report.failure["exception"] == "builtins.ZeroDivisionError"
    assert (report.failure["node_id"], report.failed_at_tick) == ("patrol/round/scan", 8)
    last = report.failure["traceback"][-1]
    assert (Path(last["path"]), last["function"]) == (workspace / "patrol" / "robot.py", "update")
    assert report.statistics["patrol/round/scan"] == 3
    head, node, frame = report.told.splitlines()
    assert head == "ZeroDivisionError in scan (tick 8): integer division or modulo by zero"
    assert node == f"  node patrol/round/scan at {workspace / 'patrol' / 'patrol.yaml'}:29"
    assert frame.startswith(f"  raised in update at {workspace / 'patrol' / 'robot.py'}:68: ")
    assert report.ended == "failed: ZeroDivisionError in scan"
    assert report.steps[-1] == "continued: the execution ended failed: ZeroDivisionError in scan"
    assert (workspace / ".canopy" / "events.db").is_file()
    if shutil.which("dot"):
        assert report.picture is not None
        assert report.picture.read_text().lstrip().startswith("<?xml")
    assert_the_workflow_part(report.workflow, workspace)


def assert_the_workflow_part(workflow: WorkflowReport | None, workspace: Path) -> None:
    """The run goes through once the urgency is edited; the fork puts the model's answer back,
    is answered from the log up to the policy agent, and fails there."""
    assert workflow is not None
    tick = workflow.forked_from_tick
    assert workflow.steps[1:4] == [
        f"tick {tick}: stopped on breakpoint at triage/classify (after its update)",
        "  classify answered category='billing', urgency='critical'",
        "  policy's table has no urgency 'critical': "
        "set urgency='high' on the blackboard and continue",
    ]
    assert workflow.answer == {"category": "billing", "urgency": "critical"}
    run = workflow.run
    assert (run.ended, run.served, run.failed) == ("completed, the tree SUCCESS", [], [])
    first, *analysts, summarise, reply = run.live  # the analysts end in the order they finish
    assert (first, sorted(analysts), summarise, reply) == (
        "classify",
        ["billing_analyst", "policy", "sentiment"],
        "summarise",
        "reply",
    )
    assert workflow.reply.splitlines() == [
        "[T-5821] You were charged twice for order A-1042: payment pay_7746 duplicates pay_7731. "
        "We are refunding the 89 EUR of the duplicate today, and we are sorry you had to write "
        "three times.",
        "Escalated to a supervisor. We will get back to you within 4 hours.",
    ]
    fork = workflow.fork
    assert fork.ended == "completed, the tree FAILURE"
    assert fork.served == ["classify", "billing_analyst", "sentiment"]
    assert fork.live == ["policy (failed)"]
    assert {p["served_from"]["execution_id"] for p in fork.completed} == {run.execution_id}
    assert all(p["cost_usd"] == 0.0 for p in fork.completed if "cost_usd" in p)
    assert workflow.failure == "node 'triage/analysts/policy': KeyError: 'critical'"
    (failed,) = fork.failed
    assert failed["error_type"] == "builtins.KeyError"
    # Told as it happened, down to the line of the user's function that raised.
    tree, tools = workspace / "triage" / "triage.yaml", workspace / "triage" / "triage_tools.py"
    stopped = next(i for i, step in enumerate(workflow.steps) if "stopped on failure" in step)
    assert workflow.steps[stopped + 1 : stopped + 4] == [
        f"  agent policy failed (tick {failed['tick']}): KeyError: 'critical'",
        f"    node triage/analysts/policy at {tree}:{line_of(tree, 'name: policy') - 1}",
        f"    raised in response_policy at {tools}:{line_of(tools, 'RESPONSE_HOURS[urgency]')}:"
        " hours = RESPONSE_HOURS[urgency]  # the deliberate bug: 'critical' is not in the table",
    ]
    assert (
        workflow.told == "\n".join(s[2:] for s in workflow.steps[stopped + 1 : stopped + 4]) + "\n"
    )
    assert workflow.diverged == (
        "they part at tick 0 on key category: unset in the run, 'billing' in the fork"
    )


async def test_canopy_demo_prints_a_summary(tmp_path: Path) -> None:
    workspace = workspace_copy(tmp_path)
    process = await asyncio.create_subprocess_exec(
        str(CANOPY),
        "demo",
        "--workspace",
        str(workspace),
        env=environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 4 * WAIT)
    text = out.decode()
    assert process.returncode == 0, err.decode()
    assert "debug mode on: local pod ready" in text
    assert "builtins.ZeroDivisionError: integer division or modulo by zero" in text
    assert "robot.py:68: exposure_ms = 100 //" in text
    assert "the execution ended failed: ZeroDivisionError in scan" in text
    assert text.index("visits: patrol") < text.index("A workflow of agents")
    assert "  classify answered category='billing', urgency='critical'\n" in text
    assert "answered from the log: classify, billing_analyst, sentiment (no model called)" in text
    assert "  agent policy failed (tick " in text
    assert "triage_tools.py:42: hours = RESPONSE_HOURS[urgency]" in text
    assert "the fork ended completed, the tree FAILURE\n" in text


async def test_canopy_demo_without_the_workspace_says_so(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        str(CANOPY),
        "demo",
        "--workspace",
        str(tmp_path),
        env=environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode == 1
    assert err.decode().strip() == f"Error: {tmp_path} has no patrol/patrol.yaml: pass --workspace"


async def test_canopy_demo_without_the_workflow_says_so(tmp_path: Path) -> None:
    workspace = workspace_copy(tmp_path)
    shutil.rmtree(workspace / "triage")
    process = await asyncio.create_subprocess_exec(
        str(CANOPY),
        "demo",
        "--workspace",
        str(workspace),
        env=environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode == 1
    assert err.decode().strip() == f"Error: {workspace} has no triage/triage.yaml: pass --workspace"
