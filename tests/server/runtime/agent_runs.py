"""Running workflow trees for the agent tests: real executions through the in-process control
into a real SQLite log, offline fixture files keyed by real request fingerprints, and every
recorded event checked against its type's schema."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from canopy import schemas
from canopy.bridge import EventFilter, RecordedEvent
from canopy.server.llm import ModelRequest
from canopy.server.runtime.control import ExecutionInfo, LaunchSpec
from canopy.server.runtime.engine import CaptureLevel, Mode
from canopy.server.runtime.inprocess import InProcessControl

from ...bridge.helpers import read_all


def user(text: str) -> tuple[dict[str, Any], ...]:
    """One user message, as an agent's first request carries its prompt."""
    return ({"role": "user", "content": text},)


def write_fixtures(path: Path, answers: Iterable[tuple[ModelRequest, Mapping[str, Any]]]) -> Path:
    """An offline fixture file answering each request (by its fingerprint) as given."""
    responses = {request.fingerprint(): dict(answer) for request, answer in answers}
    path.write_text(yaml.safe_dump({"responses": responses}, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Run:
    """An execution that ended, and its events in log order."""

    info: ExecutionInfo
    events: list[RecordedEvent]
    blackboard: dict[str, Any]

    def of(self, event_type: str) -> list[dict[str, Any]]:
        """The payloads of every event of that type."""
        return [event.payload for event in self.events if event.type == event_type]

    def one(self, event_type: str) -> dict[str, Any]:
        """The payload of the only event of that type."""
        found = self.of(event_type)
        assert len(found) == 1, f"{len(found)} {event_type} events: {found}"
        return found[0]

    def types(self, prefix: str = "Agent") -> list[str]:
        return [event.type for event in self.events if event.type.startswith(prefix)]


async def events_of(control: InProcessControl, execution_id: str) -> list[RecordedEvent]:
    """Every event of the execution in the log, each checked against its type's schema."""
    stream = EventFilter.of("acme", streams=[f"execution/{execution_id}"])
    found = [event async for event in read_all(control.store, stream)]
    known = schemas.event_type_schemas()
    for event in found:
        jsonschema.Draft202012Validator(known[event.type]).validate(event.payload)
    return found


async def run_tree(
    control: InProcessControl,
    program: Path | str,
    *,
    capture: CaptureLevel = CaptureLevel.VERBOSE,
    blackboard: Mapping[str, Any] | None = None,
) -> Run:
    """Launch ``program`` ticking every 5 ms and wait (30 s at most) until it has ended."""
    spec = LaunchSpec(
        str(program),
        mode=Mode.INTERVAL,
        interval_ms=5,
        capture=capture,
        blackboard=dict(blackboard or {}),
    )
    info = await control.launch(spec)
    async with asyncio.timeout(30):
        info = await control.wait_for_end(info.id)
    view = await control.view(info.id)
    return Run(info, await events_of(control, info.id), dict(view.blackboard))
