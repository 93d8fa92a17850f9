"""Python-level debugging of a behaviour's own code, through debugpy, next to the tree.

A client asks for a node; the runtime makes this process debuggable (``debugpy.listen``, once)
and answers where to attach and where to break: the node's ``update()`` with a condition that
matches that node only (many nodes can share one class). The client — the VS Code extension, or
any DAP client — attaches a standard ``debugpy`` session there, linked to the tree session.

Stepping into a node's code (DAP ``stepInTargets`` / ``stepIn`` with a target) works by
*arming*: the attached debugpy session holds one breakpoint on the first line of every method a
node class of the tree defines itself (:data:`PYTHON_METHODS`), each with a condition that is
true only on the behaviour armed for that method, and disarms it (:func:`armed`). Arming a node
is then one attribute write in this process, with no round trip to the debugpy session, so one
attached session serves every later step into any node, and a node that never reaches the armed
method stops nowhere. An armed stop lasts until that method next runs with a session attached.

At a debugpy breakpoint every traced thread of the process stops. Only execution threads run
behaviour code; every other thread (the event loop, the event log's threads) is marked
``pydev_do_not_trace`` so that the tree session keeps answering while Python is stopped.
"""

from __future__ import annotations

import dis
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from py_trees.behaviour import Behaviour

from canopy.bridge import CanopyError

from .engine import EXECUTION_THREAD_PREFIX

__all__ = [
    "PYTHON_METHODS",
    "PythonBreakpoint",
    "PythonDebugError",
    "PythonMethod",
    "PythonTarget",
    "arm",
    "armed",
    "own_methods",
    "python_target",
    "release",
]

PYTHON_METHODS: Final = ("initialise", "update", "terminate")
"""The methods of a behaviour that run its own code during a tick, in the order they run."""

_LISTEN_LOCK: Final = threading.Lock()
_endpoint: list[tuple[str, int]] = []  # debugpy listens once per process: the one endpoint
_ARMED: Final = "canopy_stop_in_"  # + method: the attribute that arms a behaviour


class PythonDebugError(CanopyError):
    """The node cannot be debugged at the Python level (no code of its own, no debugpy)."""


@dataclass(frozen=True, slots=True)
class PythonMethod:
    """A method a node's class defines itself: where its first statement is."""

    method: str
    qualname: str
    path: str
    line: int


@dataclass(frozen=True, slots=True)
class PythonBreakpoint:
    """A debugpy breakpoint: file, line and Python condition."""

    path: str
    line: int
    condition: str


@dataclass(frozen=True, slots=True)
class PythonTarget:
    """Where a client attaches (``host``:``port``), the breakpoint that stops in the node's
    ``update()`` every time (``path``, ``line``, ``condition``), whether a debugpy session is
    attached to the process already, and the breakpoints that stop in any armed node's methods
    (``stops``: what a session placed for stepping into nodes must hold)."""

    node_id: str
    host: str
    port: int
    path: str
    line: int
    condition: str
    attached: bool = False
    stops: list[PythonBreakpoint] = field(default_factory=list)


def own_methods(node: Behaviour) -> list[PythonMethod]:
    """The methods of :data:`PYTHON_METHODS` that ``node``'s class (or a class of the
    user's between it and py_trees) defines, in the order they run in a tick."""
    found = []
    for method in PYTHON_METHODS:
        function = getattr(type(node), method)
        if function is getattr(Behaviour, method) or function.__module__.startswith("py_trees."):
            continue
        code = getattr(function, "__code__", None)
        if code is None:
            continue  # not Python code (a builtin or an extension): nothing to step through
        body = sorted(
            line for _, line in dis.findlinestarts(code) if line and line > code.co_firstlineno
        )
        first = body[0] if body else code.co_firstlineno  # a docstring is not a statement
        found.append(PythonMethod(method, function.__qualname__, code.co_filename, first))
    return found


def python_target(node: Behaviour, node_id: str, nodes: Iterable[Behaviour] = ()) -> PythonTarget:
    """Make this process debuggable and say how to stop in ``node``'s ``update()``, and in
    the methods of ``nodes`` once armed."""
    update = next((m for m in own_methods(node) if m.method == "update"), None)
    if update is None:
        raise PythonDebugError(
            f"node {node_id!r} has no update() of its own to debug (py_trees built-in)"
        )
    host, port = _listen()
    _spare_threads()
    return PythonTarget(
        node_id,
        host,
        port,
        update.path,
        update.line,
        f"self.canopy_id == {node_id!r}",
        attached=_attached(),
        stops=_stops(nodes),
    )


def arm(node: Behaviour, node_id: str, method: str) -> None:
    """Stop in ``node``'s ``method`` the next time it runs (under an attached session)."""
    if method not in {m.method for m in own_methods(node)}:
        raise PythonDebugError(
            f"node {node_id!r} has no {method}() of its own to step into"
            f" (its own: {', '.join(m.method + '()' for m in own_methods(node)) or 'none'})"
        )
    setattr(node, _ARMED + method, True)


def armed(node: Behaviour, method: str) -> bool:
    """True once after :func:`arm` (the condition of the breakpoints in :func:`_stops`)."""
    return bool(node.__dict__.pop(_ARMED + method, False))


def release(execution_id: str) -> None:
    """Let the execution's thread go if a debugpy session holds it stopped in a node's code:
    an execution that ends (a terminate, a client gone) must not wait on the Python session.
    The session sees the thread continue. Nothing happens unless debugpy listens here."""
    if not _endpoint:
        return
    # pydevd's own way to resume one thread (what its "continue" does); debugpy loaded it.
    from _pydevd_bundle.pydevd_additional_thread_info import (  # type: ignore[import-not-found]
        set_additional_thread_info,
    )
    from _pydevd_bundle.pydevd_thread_lifecycle import (  # type: ignore[import-not-found]
        internal_run_thread,
    )

    name = EXECUTION_THREAD_PREFIX + execution_id
    for thread in threading.enumerate():
        if thread.name == name:
            internal_run_thread(thread, set_additional_thread_info=set_additional_thread_info)


def _stops(nodes: Iterable[Behaviour]) -> list[PythonBreakpoint]:
    places: dict[tuple[str, int], PythonBreakpoint] = {}
    for node in nodes:
        for method in own_methods(node):
            # Evaluated by debugpy in the method's frame, where only builtins are sure to be.
            condition = (
                f"__import__({__name__!r}, fromlist=['armed']).armed(self, {method.method!r})"
            )
            places.setdefault(
                (method.path, method.line), PythonBreakpoint(method.path, method.line, condition)
            )
    return list(places.values())


def _attached() -> bool:
    import debugpy

    return bool(debugpy.is_client_connected())


def _listen() -> tuple[str, int]:
    with _LISTEN_LOCK:
        if not _endpoint:
            # Breakpoints go in the project's code, not in frozen standard-library modules.
            os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
            try:
                import debugpy
            except ImportError as exc:  # pragma: no cover - debugpy is a dependency
                raise PythonDebugError("debugpy is not installed") from exc
            try:
                host, port = debugpy.listen(("127.0.0.1", 0))
            except Exception as exc:  # debugpy says why in many ways (RuntimeError, OSError)
                raise PythonDebugError(f"debugpy could not start listening: {exc}") from exc
            _endpoint.append((str(host), int(port)))
        return _endpoint[0]


def _spare_threads() -> None:
    for thread in threading.enumerate():
        if not thread.name.startswith(EXECUTION_THREAD_PREFIX):
            thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
