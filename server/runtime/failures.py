"""How a behaviour's exception is told to a person, whether or not a debugger stops on it.

The engine records every exception a behaviour raises (``BehaviourRaised``), but a user who set
no exception filter never looks at the log: without a word at the moment it happens, a tree
that fails on its first tick just "completes". So each exception is also reported as it
happens, in a few lines that name the exception, the node, where the node is defined in the
tree file and the line of the user's own code that raised (not py_trees' or Canopy's, which are
rarely where the fault is); and an execution that ends because of one ends ``failed``, with a
one-line summary that every view of the end (the debug console, the HTTP API, history,
comparisons) shows alike.

An agent's failed call is told the same way as it happens (an exception of its function, a
timeout, a model's error), with the line of the user's code that raised when a function or tool
of theirs did. Its execution still ends ``completed`` if the tree then fails: unlike a
behaviour's exception, which resets the tree, an agent's failure is a status the tree handles
(a fallback may follow it).
"""

from __future__ import annotations

import linecache
import sysconfig
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import py_trees

from .definition import SourceLocation

__all__ = [
    "agent_failure_report",
    "exception_name",
    "failure_summary",
    "in_user_code",
    "raised_report",
    "user_frame",
]

_LIBRARY_FOLDERS: Final = tuple(
    str(Path(folder).resolve()) + "/"
    for folder in {
        str(Path(py_trees.__file__).parent),
        str(Path(__file__).parents[1]),  # canopy.server: the engine that drives the tree
        *(sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")),
    }
)
"""Code that is not the user's: a frame there is not where a user looks first."""


def exception_name(qualified: str) -> str:
    """``KeyError`` for a built-in exception, the qualified name of any other."""
    return qualified.removeprefix("builtins.")


def failure_summary(exception: str, node_name: str) -> str:
    """The end detail of an execution failed by an exception: ``KeyError in check_battery``."""
    return f"{exception_name(exception)} in {node_name}"


def raised_report(raised: Mapping[str, Any], node_name: str, source: SourceLocation | None) -> str:
    """A ``BehaviourRaised`` payload as a few lines for a console, e.g.::

    KeyError in check_battery (tick 1): "client 'check_battery' tried to access ..."
      node patrol/round/check_battery at /ws/patrol/patrol.xml:7
      raised in update at /ws/patrol/robot.py:26: level = self.blackboard.battery
    """
    head = failure_summary(raised["exception"], node_name)
    return _report(
        f"{head} (tick {raised['tick']}): {raised['message']}",
        raised["node_id"],
        source,
        _raising_frame(raised),
    )


def agent_failure_report(
    node_name: str,
    node_id: str,
    tick: int,
    message: str,
    source: SourceLocation | None,
    frame: Mapping[str, Any] | None,
) -> str:
    """An agent's failed call as a few lines for a console, e.g.::

    agent policy failed (tick 3): KeyError: 'critical'
      node triage/analysts/policy at /ws/triage/triage.yaml:72
      raised in response_policy at /ws/triage/triage_tools.py:42: hours = RESPONSE_HOURS[urgency]
    """
    return _report(f"agent {node_name} failed (tick {tick}): {message}", node_id, source, frame)


def _report(
    head: str, node_id: str, source: SourceLocation | None, frame: Mapping[str, Any] | None
) -> str:
    lines = [head]
    where = f" at {source.path}:{source.line}" if source is not None and source.path else ""
    lines.append(f"  node {node_id}{where}")
    if frame is not None:
        code = f": {frame['code']}" if frame.get("code") else ""
        function = str(frame["function"]).rpartition(".")[2]  # ``update``, not ``Scan.update``
        lines.append(f"  raised in {function} at {frame['path']}:{frame['line']}{code}")
    return "\n".join(lines) + "\n"


def user_frame(tb: types.TracebackType | None) -> dict[str, Any] | None:
    """The innermost frame of a traceback in the user's code, as a report names it
    (``path``, ``line``, ``function``, ``code``); None when no frame of theirs is on it."""
    found: tuple[types.CodeType, int] | None = None
    while tb is not None:
        if in_user_code(tb.tb_frame.f_code.co_filename):
            found = (tb.tb_frame.f_code, tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return None
    code, line = found
    return {
        "path": code.co_filename,
        "line": line,
        "function": code.co_qualname,
        "code": linecache.getline(code.co_filename, line).strip(),
    }


def _raising_frame(raised: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The innermost frame in the user's code, as the engine found it (``user_frames``,
    innermost first); else the innermost frame of the whole traceback."""
    frames: Sequence[Mapping[str, Any]] = raised.get("user_frames") or raised["traceback"][-1:]
    return frames[0] if frames else None


def in_user_code(path: str) -> bool:
    """Whether a frame's file is the user's own code: outside py_trees, Canopy, the standard
    library and installed packages, and a real file (not ``<string>`` or ``<frozen ...>``)."""
    if path.startswith("<"):
        return False
    try:
        resolved = str(Path(path).resolve())
    except OSError:
        return True
    return not resolved.startswith(_LIBRARY_FOLDERS)
