"""The session's breakpoint ledger: every breakpoint as the client set it, with the id the
client was given, and the mapping of the runtime's ids back to those.

The runtime numbers breakpoints afresh each time they are set, per execution, while a client
knows a breakpoint by the id it was answered with (``hitBreakpointIds``, ``breakpoint``
events). The ledger keeps both sides, so the session only moves answers between the client
and the control contract. Source paths are kept in their one spelling
(:func:`source_of`), so a file named two ways is one file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from canopy.server.runtime.breakpoints import BreakpointSpec, ExceptionFilter, Position, WatchSpec
from canopy.server.runtime.control import BreakpointView, WatchView

__all__ = ["NOT_LOADED", "BreakpointLedger", "one_spelling", "source_of"]

NOT_LOADED: Final = "the tree is not loaded yet"
"""Why a breakpoint set before any launch is not verified (yet)."""

Lines = Callable[[int], int]


def one_spelling(path: str) -> str:
    """The one spelling of a file the client sees: its resolved absolute path, so that a
    symlink, a relative program or the client's own spelling never open it twice ("" stays
    "", meaning no file)."""
    return os.path.realpath(path) if path else path


def source_of(path: str) -> dict[str, Any]:
    """A DAP ``Source`` for a file, in its one spelling."""
    real = one_spelling(path)
    return {"path": real, "name": os.path.basename(real)}


class BreakpointLedger:
    """Node breakpoints (by source line, or by node name: "function" breakpoints), data
    breakpoints and exception filters of one session."""

    def __init__(self) -> None:
        self._source: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._functions: list[tuple[int, dict[str, Any]]] = []
        self._data: list[tuple[int, WatchSpec]] = []
        self.exception_filters: list[ExceptionFilter] | None = None
        self._node_ids: dict[str, dict[int, int]] = {}
        self._watch_ids: dict[str, dict[int, int]] = {}
        self._next_id = 1

    @property
    def has_nodes(self) -> bool:
        """Whether any node breakpoint (by line or by name) is set."""
        return bool(self._source or self._functions)

    @property
    def has_data(self) -> bool:
        """Whether any data breakpoint is set."""
        return bool(self._data)

    def set_source(self, path: str, breakpoints: Iterable[dict[str, Any]]) -> str:
        """Replace the line breakpoints of one file (checked ``SourceBreakpoint``s); returns
        the file's one spelling, under which the answers are filed."""
        path = one_spelling(path)
        numbered = [(self._new_id(), bp) for bp in breakpoints]
        if numbered:
            self._source[path] = numbered
        else:
            self._source.pop(path, None)
        return path

    def set_functions(self, breakpoints: Iterable[dict[str, Any]]) -> None:
        """Replace the breakpoints on nodes by name or id (checked ``FunctionBreakpoint``s)."""
        self._functions = [(self._new_id(), bp) for bp in breakpoints]

    def set_data(self, specs: Iterable[WatchSpec]) -> None:
        """Replace the data breakpoints."""
        self._data = [(self._new_id(), spec) for spec in specs]

    def node_specs(self, line_in: Lines) -> list[BreakpointSpec]:
        """Every node breakpoint as the runtime takes it (``line_in``: client line → 1-based)."""
        specs = []
        for path, bp, _ in self._all():
            condition = bp.get("condition") or None
            hit_condition = bp.get("hitCondition") or None
            if path:
                spec = BreakpointSpec(
                    path=path,
                    line=line_in(bp["line"]),
                    position=Position.BEFORE,
                    condition=condition,
                    hit_condition=hit_condition,
                    log_message=bp.get("logMessage") or None,
                )
            else:
                spec = BreakpointSpec(
                    node=bp["name"],
                    position=Position.BEFORE,
                    condition=condition,
                    hit_condition=hit_condition,
                )
            specs.append(spec)
        return specs

    def watch_specs(self) -> list[WatchSpec]:
        """Every data breakpoint as the runtime takes it."""
        return [spec for _, spec in self._data]

    def bound(self, execution_id: str, views: Sequence[BreakpointView]) -> None:
        """Remember which runtime id each node breakpoint got in an execution (``views`` in
        the order of :meth:`node_specs`)."""
        self._node_ids[execution_id] = {
            view.id: number for (_, _, number), view in zip(self._all(), views, strict=True)
        }

    def placed(
        self, views: Sequence[BreakpointView] | None, line_out: Lines
    ) -> dict[str, list[dict[str, Any]]]:
        """The node breakpoints as DAP breakpoints per source path ("" for those by name),
        with the client's ids: where the runtime placed them (``views``, in the order of
        :meth:`node_specs`), or unverified when no tree is loaded (None)."""
        placed: dict[str, list[dict[str, Any]]] = {}
        entries = list(self._all())
        for index, (path, bp, number) in enumerate(entries):
            view = views[index] if views is not None else None
            answer: dict[str, Any] = {
                "id": number,
                "verified": view.verified if view else False,
            }
            message = view.message if view else NOT_LOADED
            if message:
                answer["message"] = message
            if path:
                answer["line"] = line_out(view.line) if view and view.line else bp["line"]
                answer["source"] = source_of(path)
            placed.setdefault(path, []).append(answer)
        return placed

    def watches_placed(
        self, execution_id: str | None, watches: Sequence[WatchView] | None
    ) -> list[dict[str, Any]]:
        """The data breakpoints as DAP breakpoints with the client's ids, remembering the
        runtime's ids for the execution (unverified when no tree is loaded: None)."""
        if execution_id is None or watches is None:
            return [{"id": n, "verified": False, "message": NOT_LOADED} for n, _ in self._data]
        pairs = list(zip(self._data, watches, strict=True))
        self._watch_ids[execution_id] = {watch.id: number for (number, _), watch in pairs}
        return [
            {
                "id": number,
                "verified": watch.verified,
                **({"message": watch.message} if watch.message else {}),
            }
            for (number, _), watch in pairs
        ]

    def client_ids(self, execution_id: str, runtime_ids: Iterable[int]) -> list[int]:
        """The client's ids of the breakpoints (node or data) the runtime says were hit."""
        ids = {**self._node_ids.get(execution_id, {}), **self._watch_ids.get(execution_id, {})}
        return [ids[number] for number in runtime_ids if number in ids]

    def _all(self) -> Iterable[tuple[str, dict[str, Any], int]]:
        """Node breakpoints as (path, breakpoint, client id): by line, then by name ("")."""
        for path, breakpoints in self._source.items():
            for number, bp in breakpoints:
                yield path, bp, number
        for number, bp in self._functions:
            yield "", bp, number

    def _new_id(self) -> int:
        number = self._next_id
        self._next_id += 1
        return number
