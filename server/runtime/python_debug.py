"""Python-level debugging of a behaviour's own code, through debugpy, next to the tree.

A client asks for a node; the runtime makes this process debuggable (``debugpy.listen``, once)
and answers where to attach and where to break: the node's ``update()`` with a condition that
matches that node only (many nodes can share one class). The client — the VS Code extension, or
any DAP client — attaches a standard ``debugpy`` session there, linked to the tree session.

At a debugpy breakpoint every traced thread of the process stops. Only execution threads run
behaviour code; every other thread (the event loop, the event log's threads) is marked
``pydev_do_not_trace`` so that the tree session keeps answering while Python is stopped.
"""

from __future__ import annotations

import dis
import os
import threading
from dataclasses import dataclass
from typing import Final

from py_trees.behaviour import Behaviour

from canopy.bridge import CanopyError

from .engine import EXECUTION_THREAD_PREFIX

__all__ = ["PythonDebugError", "PythonTarget", "python_target"]

_LISTEN_LOCK: Final = threading.Lock()
_endpoint: list[tuple[str, int]] = []  # debugpy listens once per process: the one endpoint


class PythonDebugError(CanopyError):
    """The node cannot be debugged at the Python level (no code of its own, no debugpy)."""


@dataclass(frozen=True, slots=True)
class PythonTarget:
    """Where a client attaches (``host``:``port``) and the breakpoint that stops in the
    node's ``update()``."""

    node_id: str
    host: str
    port: int
    path: str
    line: int
    condition: str


def python_target(node: Behaviour, node_id: str) -> PythonTarget:
    """Make this process debuggable and say how to stop in ``node``'s ``update()``."""
    path, line = _update_location(node, node_id)
    host, port = _listen()
    _spare_threads()
    return PythonTarget(node_id, host, port, path, line, f"self.canopy_id == {node_id!r}")


def _update_location(node: Behaviour, node_id: str) -> tuple[str, int]:
    """The file of ``update()`` and the line of its first statement (where a breakpoint in it
    stops; a docstring is not a statement)."""
    update = type(node).update
    if update is Behaviour.update or update.__module__.startswith("py_trees."):
        raise PythonDebugError(
            f"node {node_id!r} has no update() of its own to debug (py_trees built-in)"
        )
    code = getattr(update, "__code__", None)
    if code is None:
        raise PythonDebugError(f"{type(node).__qualname__}.update is not Python code")
    body = sorted(
        line for _, line in dis.findlinestarts(code) if line and line > code.co_firstlineno
    )
    return code.co_filename, body[0] if body else code.co_firstlineno


def _listen() -> tuple[str, int]:
    with _LISTEN_LOCK:
        if not _endpoint:
            # Breakpoints go in the project's code, not in frozen standard-library modules.
            os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
            try:
                import debugpy
            except ImportError as exc:  # pragma: no cover - debugpy is a dependency
                raise PythonDebugError("debugpy is not installed") from exc
            host, port = debugpy.listen(("127.0.0.1", 0))
            _endpoint.append((str(host), int(port)))
        return _endpoint[0]


def _spare_threads() -> None:
    for thread in threading.enumerate():
        if not thread.name.startswith(EXECUTION_THREAD_PREFIX):
            thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
