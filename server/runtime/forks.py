"""Making a fork's launch: the source's program and settings, its blackboard at a tick with
the user's edits on top, and (read from the log) the answers its agents may be served.

Both controls use it: the in-process one for an execution it does not hold (an earlier
session's), and the pods' one for an execution whose pod is gone, since a pod reads no log
but its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from canopy.bridge import EventStore
from canopy.bridge.jsondata import refuse_wide_integers

from .blackboard import absolute_key
from .control import ForkSpec, InvalidRequest, LaunchSpec, as_control_errors
from .engine import CaptureLevel, Mode
from .history import ExecutionHistory, ExecutionState
from .recorded import read_recorded_calls

__all__ = ["fork_spec", "fork_spec_from_log"]


def fork_spec(
    source: LaunchSpec,
    state: ExecutionState,
    *,
    blackboard: Mapping[str, Any] | None,
    live: Sequence[str],
    mode: Mode | None,
) -> LaunchSpec:
    """The launch of a fork of ``source`` from ``state``; InvalidRequest for a node ``live``
    names that the source's tree lacks, InvalidArgument for an edit the log cannot keep."""
    unknown = sorted(set(live) - {node.id for node in state.tree})
    if unknown:
        raise InvalidRequest(f"no node {unknown[0]!r} in execution {state.execution_id}")
    edits = {absolute_key(key): value for key, value in (blackboard or {}).items()}
    refuse_wide_integers({"blackboard": edits}, "fork")
    return replace(
        source,
        mode=mode or source.mode,
        blackboard={**state.blackboard, **edits},
        stop_on_entry=False,
        fork=ForkSpec(state.execution_id, state.tick, tuple(sorted(edits)), tuple(live)),
    )


async def fork_spec_from_log(
    store: EventStore,
    tenant_id: str,
    execution_id: str,
    *,
    tick: int | None,
    blackboard: Mapping[str, Any] | None,
    live: Sequence[str],
    mode: Mode | None,
) -> LaunchSpec:
    """The launch of a fork of an execution known only from the log, its answers included
    (UnknownExecution when the tenant has no such execution)."""
    history = ExecutionHistory(store, tenant_id, execution_id)
    with as_control_errors():
        started = await history.started()
        state = await history.state_at_tick(await history.ticks() if tick is None else tick)
    tree = started["tree"]
    source = LaunchSpec(
        program=tree.get("factory") or tree["program"],
        mode=Mode(started["mode"]),
        interval_ms=started.get("interval_ms", 100.0),
        max_ticks=started.get("max_ticks"),
        keep_ticking=started.get("keep_ticking", False),
        capture=CaptureLevel(started["capture"]),
    )
    spec = fork_spec(source, state, blackboard=blackboard, live=live, mode=mode)
    answers = await read_recorded_calls(store, tenant_id, execution_id)
    return replace(spec, answers=tuple(answers.calls.values()) + tuple(answers.tools.values()))
