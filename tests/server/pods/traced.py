"""A tree whose behaviour opens a GenAI span, run in a real pod by ``test_telemetry.py``: the
span leaves the pod only if the pod got the server's tracing settings and its worker flushed
them on the way out."""

from __future__ import annotations

import py_trees
from py_trees.common import Status

from canopy.server.telemetry import tool_span


class LookUp(py_trees.behaviour.Behaviour):
    """Runs a (pretend) tool inside an ``execute_tool`` span."""

    def update(self) -> Status:
        with tool_span("lookup_order", call_id="call_7"):
            return Status.SUCCESS


def lookup() -> py_trees.behaviour.Behaviour:
    return LookUp("lookup")
