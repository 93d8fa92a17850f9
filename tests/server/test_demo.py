"""``canopy demo`` on a copy of the demo workspace: the breakpoint, the data breakpoint, the
step over and back, and the deliberate bug, through a real server and a real local pod."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from canopy.server.demo import run_demo

from .conftest import WAIT
from .test_cli import CANOPY, environment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


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
