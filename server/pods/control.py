"""``ExecutionControl`` for one user, carried out in that user's debug pod.

This is what the server's HTTP API drives: each call goes over the pod link to the worker's
in-process control, so breakpoints and steps are decided next to the tree. Events are read
from the shared log (the worker ships them there before it answers a call); executions that
ended with a dead pod are still answered, with their reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from canopy.bridge import EventFilter, RecordedEvent

from ..auth import Principal
from ..remote.forwarding import ForwardingControl
from ..remote.wire import TooManySessions
from ..runtime.control import ExecutionInfo, InvalidRequest, LaunchSpec, UnknownExecution
from ..runtime.engine import Mode, Notification
from ..runtime.forks import fork_spec_from_log
from ..trees import TreeLibrary, UnknownTree, parse_program
from .manager import Pod, PodManager
from .roots import WorkspaceRoots

__all__ = ["PodControl"]

OVER_ALREADY: Final = frozenset({"info", "settle", "wait_for_end", "terminate"})
"""Calls an execution that ended with its pod can still answer: it is over."""


class PodControl(ForwardingControl):
    """The executions of ``principal``, in their pod. ``workspace`` is where relative
    programs are found when the launch does not say (the server's working directory);
    ``roots`` are where programs may come from at all."""

    def __init__(
        self, manager: PodManager, principal: Principal, workspace: Path, roots: WorkspaceRoots
    ) -> None:
        self.manager = manager
        self.principal = principal
        self.workspace = workspace
        self.roots = roots

    async def forward(self, call: str, **arguments: Any) -> Any:
        execution_id = arguments.get("execution_id") or arguments["first_id"]
        ended = self.manager.ended_execution(self.principal, execution_id)
        if ended is not None:
            if call in OVER_ALREADY:
                return ended
            raise InvalidRequest(f"execution {execution_id} has ended (pod_died)")
        pod = self.manager.current(self.principal)
        if pod is None:
            raise UnknownExecution(execution_id)
        return await self.manager.call(pod, call, **arguments)

    async def launch(self, spec: LaunchSpec) -> ExecutionInfo:
        if spec.base_dir is None:
            spec = dataclasses.replace(spec, base_dir=str(self.workspace))
        try:
            wanted = parse_program(spec.program)
        except UnknownTree as error:
            raise InvalidRequest(str(error)) from None
        if wanted is None:
            self.roots.check_launch(spec.program, spec.base_dir or "")
        pod = await self.manager.ensure(self.principal)
        self._check_room(pod)
        if wanted is not None:
            spec = await self._uploaded(pod, spec, *wanted)
        info: ExecutionInfo = await self.manager.call(pod, "launch", spec=spec)
        return info

    async def fork(
        self,
        execution_id: str,
        *,
        tick: int | None = None,
        blackboard: Mapping[str, Any] | None = None,
        live: Sequence[str] = (),
        mode: Mode | None = None,
    ) -> ExecutionInfo:
        arguments: dict[str, Any] = {
            "tick": tick,
            "blackboard": blackboard,
            "live": live,
            "mode": mode,
        }
        pod = self.manager.current(self.principal)
        if pod is not None and self.manager.ended_execution(self.principal, execution_id) is None:
            self._check_room(pod)
            try:
                info: ExecutionInfo = await self.manager.call(
                    pod, "fork", execution_id=execution_id, **arguments
                )
                return info
            except UnknownExecution:
                pass  # not this pod's: an earlier one ran it
        # A pod reads no log but its own: the fork's launch, answers included, comes from the
        # shared log, which outlives pods.
        spec = await fork_spec_from_log(
            self.manager.store, self.principal.tenant_id, execution_id, **arguments
        )
        return await self.launch(spec)

    def _check_room(self, pod: Pod) -> None:
        """TooManySessions when the user's pod runs as many executions as allowed."""
        limit = self.manager.policy.max_sessions
        if len(pod.live) >= limit:
            raise TooManySessions(
                f"you have {len(pod.live)} debug sessions running (at most {limit}); "
                "end one before starting another"
            )

    async def reload(
        self, execution_id: str, program: str | None = None, *, keep_blackboard: bool = True
    ) -> list[str]:
        if program is not None:
            self.roots.check_reload(program)
        return await super().reload(execution_id, program, keep_blackboard=keep_blackboard)

    async def _uploaded(
        self, pod: Pod, spec: LaunchSpec, name: str, version: int | None
    ) -> LaunchSpec:
        """The launch of an uploaded tree: its content shipped to the pod, run from there."""
        library = TreeLibrary(self.manager.store, self.principal.tenant_id)
        try:
            tree = await library.get(name, version)
        except UnknownTree as error:
            raise InvalidRequest(str(error)) from None
        path = await self.manager.put_tree(pod, tree.file_name, tree.content)
        return dataclasses.replace(spec, program=path)

    async def executions(self) -> list[ExecutionInfo]:
        ended = self.manager.ended_executions(self.principal)
        pod = self.manager.current(self.principal)
        if pod is None:
            return ended
        return [*ended, *await self.manager.call(pod, "executions")]

    async def events(
        self, execution_id: str, *, after: int = 0, types: Sequence[str] = ()
    ) -> AsyncIterator[RecordedEvent]:
        await self.info(execution_id)
        stream = EventFilter.of(
            self.principal.tenant_id, streams=[f"execution/{execution_id}"], types=types
        )
        async for event in self.manager.store.subscribe(stream, after=after):
            yield event

    async def notifications(self, execution_id: str | None = None) -> AsyncIterator[Notification]:
        async with self.manager.subscribe(self.principal, execution_id) as queue:
            async for notification in queue:
                yield notification

    async def close(self) -> None:
        """Nothing to do: the pod and its executions belong to the manager."""
