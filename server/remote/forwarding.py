"""An ``ExecutionControl`` that hands every call, by name and arguments, to somewhere else.

Both remote implementations (the server's, towards a pod, and the HTTP client's, towards a
server) are this with a different :meth:`ForwardingControl.forward`; the method list is
written once here, so a call added to the contract is added to both by adding it here.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from ..runtime.breakpoints import BreakpointSpec, ExceptionFilter, WatchSpec
from ..runtime.control import (
    BreakpointView,
    ExecutionControl,
    ExecutionInfo,
    ExecutionView,
    LaunchSpec,
    WatchView,
)
from ..runtime.diff import ExecutionDiff, StateDiff
from ..runtime.engine import Mode, StepKind, StopInfo
from ..runtime.history import ExecutionState
from ..runtime.python_debug import PythonMethod, PythonTarget
from ..runtime.stats import ExecutionStats

__all__ = ["ForwardingControl"]


class ForwardingControl(ExecutionControl):
    """Every request/response call of the contract, forwarded; streams and ``close`` are
    left to the subclass."""

    @abstractmethod
    async def forward(self, call: str, **arguments: Any) -> Any:
        """Carry out ``call`` with ``arguments`` (Python values) and return its result.

        The wire decodes each call's result to the type the contract gives it; the methods
        below name that type for the checker, where the result leaves ``Any``."""

    async def launch(self, spec: LaunchSpec) -> ExecutionInfo:
        result: ExecutionInfo = await self.forward("launch", spec=spec)
        return result

    async def fork(
        self,
        execution_id: str,
        *,
        tick: int | None = None,
        blackboard: Mapping[str, Any] | None = None,
        live: Sequence[str] = (),
        mode: Mode | None = None,
    ) -> ExecutionInfo:
        result: ExecutionInfo = await self.forward(
            "fork",
            execution_id=execution_id,
            tick=tick,
            blackboard=blackboard,
            live=live,
            mode=mode,
        )
        return result

    async def executions(self) -> list[ExecutionInfo]:
        result: list[ExecutionInfo] = await self.forward("executions")
        return result

    async def info(self, execution_id: str) -> ExecutionInfo:
        result: ExecutionInfo = await self.forward("info", execution_id=execution_id)
        return result

    async def tick(self, execution_id: str, count: int = 1) -> None:
        await self.forward("tick", execution_id=execution_id, count=count)

    async def set_mode(
        self, execution_id: str, mode: Mode, *, interval_ms: float | None = None
    ) -> None:
        await self.forward(
            "set_mode", execution_id=execution_id, mode=mode, interval_ms=interval_ms
        )

    async def pause(self, execution_id: str, *, reason: str = "pause") -> StopInfo:
        result: StopInfo = await self.forward("pause", execution_id=execution_id, reason=reason)
        return result

    async def resume(self, execution_id: str, action: StepKind = StepKind.CONTINUE) -> None:
        await self.forward("resume", execution_id=execution_id, action=action)

    async def settle(self, execution_id: str) -> ExecutionInfo:
        result: ExecutionInfo = await self.forward("settle", execution_id=execution_id)
        return result

    async def wait_for_stop(self, execution_id: str) -> StopInfo:
        result: StopInfo = await self.forward("wait_for_stop", execution_id=execution_id)
        return result

    async def wait_for_end(self, execution_id: str) -> ExecutionInfo:
        result: ExecutionInfo = await self.forward("wait_for_end", execution_id=execution_id)
        return result

    async def terminate(self, execution_id: str) -> ExecutionInfo:
        result: ExecutionInfo = await self.forward("terminate", execution_id=execution_id)
        return result

    async def set_breakpoints(
        self, execution_id: str, specs: Sequence[BreakpointSpec]
    ) -> list[BreakpointView]:
        result: list[BreakpointView] = await self.forward(
            "set_breakpoints", execution_id=execution_id, specs=specs
        )
        return result

    async def set_watches(self, execution_id: str, specs: Sequence[WatchSpec]) -> list[WatchView]:
        result: list[WatchView] = await self.forward(
            "set_watches", execution_id=execution_id, specs=specs
        )
        return result

    async def set_exception_filters(
        self, execution_id: str, filters: Sequence[ExceptionFilter]
    ) -> None:
        await self.forward("set_exception_filters", execution_id=execution_id, filters=filters)

    async def view(self, execution_id: str) -> ExecutionView:
        result: ExecutionView = await self.forward("view", execution_id=execution_id)
        return result

    async def evaluate(
        self, execution_id: str, expression: str, *, node_id: str | None = None
    ) -> Any:
        return await self.forward(
            "evaluate", execution_id=execution_id, expression=expression, node_id=node_id
        )

    async def expression_names(self, execution_id: str) -> list[str]:
        names: list[str] = await self.forward("expression_names", execution_id=execution_id)
        return names

    async def set_blackboard(self, execution_id: str, key: str, value: Any) -> str:
        stored: str = await self.forward(
            "set_blackboard", execution_id=execution_id, key=key, value=value
        )
        return stored

    async def reload(
        self, execution_id: str, program: str | None = None, *, keep_blackboard: bool = True
    ) -> list[str]:
        result: list[str] = await self.forward(
            "reload", execution_id=execution_id, program=program, keep_blackboard=keep_blackboard
        )
        return result

    async def step_back(self, execution_id: str) -> ExecutionView:
        result: ExecutionView = await self.forward("step_back", execution_id=execution_id)
        return result

    async def reverse_continue(self, execution_id: str) -> ExecutionView:
        result: ExecutionView = await self.forward("reverse_continue", execution_id=execution_id)
        return result

    async def state_at(self, execution_id: str, tick: int | None = None) -> ExecutionState:
        result: ExecutionState = await self.forward(
            "state_at", execution_id=execution_id, tick=tick
        )
        return result

    async def statistics(self, execution_id: str) -> ExecutionStats:
        result: ExecutionStats = await self.forward("statistics", execution_id=execution_id)
        return result

    async def picture(
        self, execution_id: str, *, tick: int | None = None, format: str = "dot"
    ) -> str | dict[str, Any]:
        result: str | dict[str, Any] = await self.forward(
            "picture", execution_id=execution_id, tick=tick, format=format
        )
        return result

    async def diff_ticks(self, execution_id: str, first: int, second: int) -> StateDiff:
        result: StateDiff = await self.forward(
            "diff_ticks", execution_id=execution_id, first=first, second=second
        )
        return result

    async def diff_executions(self, first_id: str, second_id: str) -> ExecutionDiff:
        result: ExecutionDiff = await self.forward(
            "diff_executions", first_id=first_id, second_id=second_id
        )
        return result

    async def python_debug(
        self, execution_id: str, node_id: str, stop_in: str | None = None
    ) -> PythonTarget:
        result: PythonTarget = await self.forward(
            "python_debug", execution_id=execution_id, node_id=node_id, stop_in=stop_in
        )
        return result

    async def python_methods(self, execution_id: str, node_id: str) -> list[PythonMethod]:
        result: list[PythonMethod] = await self.forward(
            "python_methods", execution_id=execution_id, node_id=node_id
        )
        return result

    async def breakpoint_lines(
        self, execution_id: str, path: str, first: int = 1, last: int | None = None
    ) -> list[int]:
        result: list[int] = await self.forward(
            "breakpoint_lines", execution_id=execution_id, path=path, first=first, last=last
        )
        return result
