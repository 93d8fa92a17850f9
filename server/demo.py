"""``canopy demo``: the whole product on the demo workspace, with nothing configured.

It starts a server on a free local port, switches debug mode on (a local debug pod), runs the
patrol tree of ``examples/`` in it with a breakpoint and a data breakpoint, steps over, steps
back through history, runs on to the deliberate bug, reports it and lets the execution end
``failed`` by it. Every step goes through
the same HTTP API and pod link the editor uses; the events land in ``<workspace>/.canopy``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from canopy.bridge.client import CanopyClient

from .api.keys import LOCAL_TOKEN
from .app import create_app, stop_pods
from .config import Settings
from .connections import listen, make_runner
from .remote.client import HttpExecutionControl
from .runtime.breakpoints import BreakpointSpec, ExceptionFilter, WatchSpec
from .runtime.control import LaunchSpec
from .runtime.engine import Mode, StepKind, StopInfo, end_text

__all__ = ["DEMO_PROGRAM", "DemoReport", "run_demo"]

DEMO_PROGRAM: Final = "patrol/patrol.yaml"
INITIAL: Final = {"battery": 45, "waypoint": 0, "scans": 0}


@dataclass
class DemoReport:
    """What the demo saw, step by step (printed by the CLI, checked by the tests)."""

    pod_ready_ms: float = 0.0
    execution_id: str = ""
    steps: list[str] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    failed_at_tick: int = 0
    told: str = ""
    """How the exception was told as it happened (the stderr output of a debug console)."""
    ended: str = ""
    """How the execution ended, e.g. ``failed: ZeroDivisionError in scan``."""
    picture: Path | None = None
    statistics: dict[str, int] = field(default_factory=dict)


def _stop_line(stop: StopInfo) -> str:
    if stop.position in ("before", "after"):
        where = f"at {stop.node_id} ({stop.position} its update)"
    else:
        where = "at the end of the tick"
    return f"tick {stop.tick}: stopped on {stop.reason} {where}"


async def run_demo(workspace: Path, say: Callable[[str], None]) -> DemoReport:
    """Run the demo on ``workspace`` (the folder holding ``patrol/patrol.yaml``)."""
    settings = Settings(
        port=0, data_dir=workspace / ".canopy", log_level="WARNING", pod_spare=False
    )
    app = create_app(settings, workspace=workspace)
    runner = make_runner(app, settings)
    await runner.setup()
    try:
        url = await listen(runner, "127.0.0.1", 0)
        say(f"server on {url}, event log {settings.database_url}")
        async with CanopyClient(url, app[LOCAL_TOKEN]) as client:
            control = HttpExecutionControl(client)
            await control.connect()
            try:
                return await _debug(client, control, workspace, say)
            finally:
                await control.close()
    finally:
        await stop_pods(app)
        await runner.cleanup()


async def _debug(
    client: CanopyClient, control: HttpExecutionControl, workspace: Path, say: Callable[[str], None]
) -> DemoReport:
    report = DemoReport()
    started = time.perf_counter()
    async with client.session.put(client.url_for("api/v1/pods/me")) as answer:
        answer.raise_for_status()
    report.pod_ready_ms = round((time.perf_counter() - started) * 1000, 1)
    say(f"debug mode on: local pod ready in {report.pod_ready_ms:.0f} ms")

    notes = control.notifications()  # subscribed from here on: nothing of the run is missed
    info = await control.launch(LaunchSpec(DEMO_PROGRAM, mode=Mode.MANUAL, blackboard=INITIAL))
    report.execution_id = eid = info.id
    say(f"launched {DEMO_PROGRAM} as execution {eid}")
    await control.set_breakpoints(eid, [BreakpointSpec(node="scan")])
    await control.set_watches(eid, [WatchSpec("battery", condition="battery < 10")])
    await control.set_exception_filters(eid, [ExceptionFilter.RAISED])
    say("breakpoint on scan; data breakpoint on battery < 10; stop when a behaviour raises")

    def step(line: str) -> None:
        report.steps.append(line)
        say(line)

    await control.tick(eid, 10)
    step(_stop_line(await control.wait_for_stop(eid)))
    view = await control.view(eid)
    step(f"  blackboard: {_blackboard(view.blackboard)}")
    await control.resume(eid, StepKind.OVER)
    step(_stop_line(await control.wait_for_stop(eid)))
    past = await control.step_back(eid)
    step(f"stepped back to tick {past.tick}: {_blackboard(past.blackboard)} (read-only past)")
    await control.set_breakpoints(eid, [])
    await control.set_mode(eid, Mode.AUTO)
    while True:
        await control.resume(eid, StepKind.CONTINUE)
        stop = await control.wait_for_stop(eid)
        step(_stop_line(stop))
        if stop.reason == "exception":
            report.failure = stop.exception
            report.failed_at_tick = stop.tick
            break
    view = await control.view(eid)
    step(f"  blackboard: {_blackboard(view.blackboard)}")
    stats = await control.statistics(eid)
    report.statistics = {node_id: node.visits for node_id, node in stats.nodes.items()}
    if shutil.which("dot"):
        svg = await control.picture(eid, format="svg")
        report.picture = workspace / ".canopy" / "demo-tree.svg"
        report.picture.write_text(str(svg), encoding="utf-8")
    async for note in notes:
        if note.execution_id == eid and note.kind == "output" and note.category == "stderr":
            report.told = note.text
            break
    await control.resume(eid, StepKind.CONTINUE)
    ended = await control.wait_for_end(eid)
    report.ended = end_text(ended.end_reason or "", ended.end_detail)
    step(f"continued: the execution ended {report.ended}")
    return report


def _blackboard(values: dict[str, Any]) -> str:
    return ", ".join(f"{key.lstrip('/')}={value!r}" for key, value in sorted(values.items()))
