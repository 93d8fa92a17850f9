"""Where each ``ExecutionControl`` call lives in the HTTP API (``/api/v1``).

One table serves both ends: the server registers a handler per route, and the HTTP client
builds its requests from the same entries, so the two cannot disagree on a path or a verb.
Arguments named in the path travel there; the others go in the query string for ``GET`` and
``DELETE`` and as a JSON object body otherwise. Every answer is the JSON form of the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["EXECUTION", "ROUTES", "Route", "route_of"]

EXECUTION: Final = "/api/v1/executions/{execution_id}"


@dataclass(frozen=True, slots=True)
class Route:
    """One call's place in the API."""

    call: str
    verb: str
    path: str
    summary: str

    @property
    def path_arguments(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))

    @property
    def in_query(self) -> bool:
        return self.verb in ("GET", "DELETE")


ROUTES: Final = (
    Route("launch", "POST", "/api/v1/executions", "Start an execution in the caller's pod"),
    Route(
        "fork",
        "POST",
        EXECUTION + "/fork",
        "Start a new execution from this one's blackboard at a tick, with edits; agents "
        "whose inputs are unchanged are answered from the log",
    ),
    Route("executions", "GET", "/api/v1/executions", "List the caller's executions"),
    Route("info", "GET", EXECUTION, "One execution at a glance"),
    Route("terminate", "DELETE", EXECUTION, "End an execution"),
    Route("tick", "POST", EXECUTION + "/tick", "Tick a manual execution"),
    Route("set_mode", "PUT", EXECUTION + "/mode", "Switch to manual, auto or interval"),
    Route("pause", "POST", EXECUTION + "/pause", "Stop at the next node boundary"),
    Route("resume", "POST", EXECUTION + "/resume", "Continue or step (over, in, out)"),
    Route("settle", "POST", EXECUTION + "/settle", "Wait until idle, stopped or ended"),
    Route("wait_for_stop", "POST", EXECUTION + "/wait-for-stop", "Wait for a debugger stop"),
    Route("wait_for_end", "POST", EXECUTION + "/wait-for-end", "Wait until it has ended"),
    Route("set_breakpoints", "PUT", EXECUTION + "/breakpoints", "Replace node breakpoints"),
    Route("set_watches", "PUT", EXECUTION + "/watches", "Replace data breakpoints"),
    Route(
        "set_exception_filters",
        "PUT",
        EXECUTION + "/exception-filters",
        "Stop on raised behaviours and/or failed nodes",
    ),
    Route("view", "GET", EXECUTION + "/view", "The state a debugger inspects"),
    Route("evaluate", "POST", EXECUTION + "/evaluate", "Evaluate a safe expression"),
    Route(
        "expression_names",
        "GET",
        EXECUTION + "/expression-names",
        "Names an expression can use here (for completion)",
    ),
    Route("set_blackboard", "PUT", EXECUTION + "/blackboard", "Write a blackboard value"),
    Route("reload", "POST", EXECUTION + "/reload", "Hot reload the tree"),
    Route("step_back", "POST", EXECUTION + "/step-back", "Move the view one tick back"),
    Route(
        "reverse_continue",
        "POST",
        EXECUTION + "/reverse-continue",
        "Move the view back to the previous stop",
    ),
    Route("state_at", "GET", EXECUTION + "/history/state", "The recorded state at a tick"),
    Route("diff_ticks", "GET", EXECUTION + "/history/diff", "What changed between two ticks"),
    Route("statistics", "GET", EXECUTION + "/statistics", "Per-node and per-tick statistics"),
    Route("picture", "GET", EXECUTION + "/picture", "The tree as DOT, SVG or JSON"),
    Route(
        "diff_executions",
        "GET",
        "/api/v1/executions/{first_id}/diff/{second_id}",
        "Where two executions diverge",
    ),
    Route("python_debug", "POST", EXECUTION + "/python-debug", "Debug a node's Python code"),
    Route(
        "python_methods",
        "GET",
        EXECUTION + "/python-methods",
        "The methods of a node that run its own Python code",
    ),
    Route(
        "breakpoint_lines",
        "GET",
        EXECUTION + "/breakpoint-lines",
        "Lines of a tree file where breakpoints land",
    ),
)

_BY_CALL: Final = {route.call: route for route in ROUTES}


def route_of(call: str) -> Route:
    """The route of a contract call."""
    return _BY_CALL[call]
