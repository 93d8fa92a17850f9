"""The audit log of debug sessions: who did what to which execution, as events in the log.

Every action that changes a debug session (attaching a debugger, starting and ending
executions, their mode, breakpoints, watches, blackboard edits, hot reload, Python debugging)
becomes one ``AuditAction`` event on the stream ``audit/<tenant>`` of topic
``debugging.internal``. One stream per tenant keeps a tenant's audit facts apart from the much
larger execution telemetry, so that reading them back by execution or by user only scans
audit events (see :mod:`server.api.audit`).

The trail is written at the edges that know who acts: the HTTP API (the bearer token's user)
and the editor's embedded runtime (the OS user). The runtime itself knows nothing of users;
the pod worker's runtime writes no audit events, so an action is never recorded twice.

Atomicity: an audited call and its audit event run together, shielded from the caller's
cancellation, and the call's answer is given only once its event is in the log. A call that
succeeded always has its ``succeeded`` event: if the log cannot take it, the caller gets the
log's error instead of the result (the action may still have happened, as with any write whose
acknowledgement is lost). A call that raised gets one ``refused`` or ``failed`` event; its
error is answered even when that event cannot be written (that is logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from canopy.bridge import (
    BridgeError,
    CanopyError,
    EventStore,
    NewEvent,
    Producer,
    RecordedEvent,
    Topic,
)

from . import __version__
from .pods.provider import PodError
from .remote.forwarding import ForwardingControl
from .remote.wire import RemoteFailure
from .runtime.breakpoints import BreakpointSpec
from .runtime.control import ExecutionControl, ExecutionInfo
from .runtime.engine import Notification

__all__ = [
    "AUDIT_EVENT_TYPE",
    "Actor",
    "AuditTrail",
    "AuditedControl",
    "audit_stream",
]

log = logging.getLogger(__name__)

AUDIT_EVENT_TYPE: Final = "AuditAction"
PRODUCER: Final = Producer("canopy-server", __version__)
_CLIP: Final = 200
"""Longest text (program, blackboard value) kept in an audit event's details."""
_MAX_LISTED: Final = 100
"""Most breakpoint places or watched keys listed in one event (the count is always there)."""


_UNAVAILABLE: Final = (BridgeError, RemoteFailure, PodError)
"""Errors that say a part of Canopy did not answer (the log, a pod): the action may or may
not have happened, so it is ``failed``; every other Canopy error is a ``refused`` action."""


def _outcome(error: BaseException) -> str:
    refused = isinstance(error, CanopyError) and not isinstance(error, _UNAVAILABLE)
    return "refused" if refused else "failed"


def audit_stream(tenant_id: str) -> str:
    """The stream holding every audit event of ``tenant_id``."""
    return f"audit/{tenant_id}"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, as plain data: the user, their tenant, the channel (``http`` or ``dap``)
    and, over HTTP, the id of the token the request carried."""

    user_id: str
    tenant_id: str
    via: str
    token_id: str | None = None


class AuditTrail:
    """Appends the audit events of one actor to the log."""

    def __init__(self, store: EventStore, actor: Actor) -> None:
        self.store = store
        self.actor = actor

    async def record(
        self,
        action: str,
        execution_id: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        error: BaseException | None = None,
    ) -> int:
        """Append one ``AuditAction`` event and return its offset; ``error`` makes it a
        ``refused`` or ``failed`` action (see :data:`_UNAVAILABLE`) naming the error."""
        actor = self.actor
        payload: dict[str, Any] = {
            "user_id": actor.user_id,
            "action": action,
            "outcome": "succeeded",
            "via": actor.via,
        }
        if execution_id:
            payload["execution_id"] = execution_id
        if actor.token_id:
            payload["token_id"] = actor.token_id
        if details:
            payload["details"] = dict(details)
        if error is not None:
            payload["outcome"] = _outcome(error)
            code = error.code if isinstance(error, CanopyError) else type(error).__name__
            payload["error"] = {"code": code, "message": _clip(str(error))}
        event = NewEvent(
            tenant_id=actor.tenant_id,
            topic=Topic.INTERNAL,
            stream=audit_stream(actor.tenant_id),
            type=AUDIT_EVENT_TYPE,
            payload=payload,
            producer=PRODUCER,
        )
        offsets = await self.store.append([event])
        return offsets[0]

    async def record_quietly(
        self, action: str, execution_id: str | None = None, *, error: BaseException | None = None
    ) -> None:
        """:meth:`record` where nothing waits for the outcome (a refusal being answered, a
        listener leaving): a log that cannot take the event is logged, not raised."""
        try:
            await self.record(action, execution_id, error=error)
        except Exception:
            log.exception("could not record the audit event of %s on %s", action, execution_id)


class AuditedControl(ForwardingControl):
    """``inner``, with every action that changes a session recorded on ``trail``. Reads
    (views, history, statistics, evaluation, waits) are passed through unrecorded."""

    def __init__(self, inner: ExecutionControl, trail: AuditTrail) -> None:
        self.inner = inner
        self.trail = trail

    async def forward(self, call: str, **arguments: Any) -> Any:
        method = getattr(self.inner, call)
        describe = _DETAILS.get(call)
        if describe is None:
            return await method(**arguments)
        # Shielded: a caller that goes away mid-call leaves the action and its event whole.
        return await asyncio.shield(self._audited(call, method, describe, arguments))

    async def _audited(
        self,
        call: str,
        method: Callable[..., Any],
        describe: _Describe,
        arguments: dict[str, Any],
    ) -> Any:
        execution_id: str | None = arguments.get("execution_id")
        try:
            result = await method(**arguments)
        except Exception as error:
            await self.trail.record_quietly(call, execution_id, error=error)
            raise
        if isinstance(result, ExecutionInfo):  # a launch or a fork: the id exists only now
            execution_id = result.id
        await self.trail.record(call, execution_id, details=describe(arguments, result))
        return result

    def events(
        self, execution_id: str, *, after: int = 0, types: Sequence[str] = ()
    ) -> AsyncIterator[RecordedEvent]:
        return self.inner.events(execution_id, after=after, types=types)

    def notifications(self, execution_id: str | None = None) -> AsyncIterator[Notification]:
        return self.inner.notifications(execution_id)

    async def close(self) -> None:
        await self.inner.close()


# -- what each audited call records ---------------------------------------------------------

_Describe = Callable[[Mapping[str, Any], Any], dict[str, Any]]


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 1] + "…"


def _value_text(value: Any) -> str:
    try:
        return _clip(json.dumps(value, ensure_ascii=False, default=repr))
    except ValueError:  # NaN or a cycle: still say what was written
        return _clip(repr(value))


def _place(spec: BreakpointSpec) -> str:
    """Where a breakpoint was asked for: ``node`` or ``path:line``."""
    if spec.node is not None:
        return spec.node
    return f"{spec.path or ''}:{spec.line}"


def _launch(arguments: Mapping[str, Any], result: Any) -> dict[str, Any]:
    spec = arguments["spec"]
    return {"program": _clip(spec.program), "mode": str(spec.mode)}


def _fork(arguments: Mapping[str, Any], result: Any) -> dict[str, Any]:
    edited = list(arguments.get("blackboard") or {})
    return {
        "source": arguments["execution_id"],
        "tick": arguments.get("tick"),
        "edited": [_clip(key) for key in edited[:_MAX_LISTED]],
        "live": [_clip(node) for node in list(arguments.get("live", ()))[:_MAX_LISTED]],
    }


def _breakpoints(arguments: Mapping[str, Any], result: Any) -> dict[str, Any]:
    specs = arguments["specs"]
    return {"count": len(specs), "at": [_clip(_place(s)) for s in specs[:_MAX_LISTED]]}


def _watches(arguments: Mapping[str, Any], result: Any) -> dict[str, Any]:
    specs = arguments["specs"]
    return {"count": len(specs), "keys": [_clip(s.key) for s in specs[:_MAX_LISTED]]}


def _set_mode(arguments: Mapping[str, Any], result: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"mode": str(arguments["mode"])}
    if arguments.get("interval_ms") is not None:
        details["interval_ms"] = arguments["interval_ms"]
    return details


def _reload(arguments: Mapping[str, Any], result: Any) -> dict[str, Any]:
    program = arguments.get("program")
    return {
        "program": _clip(program) if program else None,
        "keep_blackboard": arguments.get("keep_blackboard", True),
        "unbound": len(result),
    }


_DETAILS: Final[dict[str, _Describe]] = {
    "launch": _launch,
    "fork": _fork,
    "terminate": lambda arguments, result: {},
    "set_mode": _set_mode,
    "set_breakpoints": _breakpoints,
    "set_watches": _watches,
    "set_exception_filters": lambda arguments, result: {
        "filters": [str(f) for f in arguments["filters"]]
    },
    "set_blackboard": lambda arguments, result: {
        "key": _clip(result),
        "value": _value_text(arguments["value"]),
    },
    "reload": _reload,
    "python_debug": lambda arguments, result: {
        "node_id": _clip(arguments["node_id"]),
        "stop_in": arguments.get("stop_in"),
    },
}
"""The audited calls, each with what its event's ``details`` say about it. Moving through an
execution (tick, pause, continue, the steps, travelling back) changes neither its settings nor
its data beyond what the launch allowed, and a step's answer (and with it the stop it causes)
would wait on one more write to the log: those calls are not recorded."""
