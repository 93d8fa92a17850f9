"""Pictures of a tree at one point of its history: Graphviz DOT, SVG, and a JSON model.

Why three: DOT needs nothing installed and is what tests and text tools read; SVG is what a
browser or a VS Code webview shows, made by Graphviz's ``dot`` when the machine has it; the JSON
model lets a user interface lay the tree out itself. All three are drawn from an
:class:`~server.runtime.history.ExecutionState` alone (no tree file, no py_trees).

Drawing conventions: fill colour by status (SUCCESS green, FAILURE red, RUNNING blue, INVALID
grey; a node missing from the state's statuses -- it does not exist at that point -- is white
and dashed); the current node has a thick orange border; the shape tells the kind of node:
Sequence ``box``, Selector/Fallback ``octagon``, Parallel ``parallelogram``, decorators
``hexagon``, other nodes with children ``box3d``, behaviours (leaves) ``ellipse``. A label is the
node's name, its kind's short name and its status. Every text is escaped for DOT (quotes,
backslashes, newlines, control characters) and for Graphviz's entity decoding (``&``, ``<``,
``>``), so a name is always shown as written and can never inject attributes or markup.

JSON model (:func:`to_json_model`)::

    {
      "execution_id": "e1",
      "tick": 12,                  # the state's tick (in progress when "in_tick")
      "offset": 4711,              # log offset of the state
      "in_tick": false,
      "root_status": "RUNNING",    # or null before the first tick
      "current": "patrol/move",    # id of the current node, or null
      "nodes": [                   # pre-order, root first
        {
          "id": "patrol/move",     # stable node id
          "name": "move",
          "kind": "robot.behaviours:Move",
          "kind_short": "Move",
          "shape": "behaviour",    # sequence|selector|parallel|decorator|composite|behaviour
          "parent": "patrol",      # null for the root
          "status": "RUNNING",     # SUCCESS|FAILURE|RUNNING|INVALID, null if absent
          "source": {"path": "trees/patrol.yaml", "line": 6, "column": 5}  # or null
        }
      ],
      "edges": [{"from": "patrol", "to": "patrol/move"}]   # parent to child, in child order
    }
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any, Final

from canopy.bridge import CanopyError

from .history import ExecutionState, TreeNode

__all__ = [
    "COLOURS",
    "PictureError",
    "kind_short",
    "render_svg",
    "shape_of",
    "to_dot",
    "to_json_model",
    "to_svg",
]

COLOURS: Final = {
    "SUCCESS": ("#43a047", "white"),
    "FAILURE": ("#e53935", "white"),
    "RUNNING": ("#1e88e5", "white"),
    "INVALID": ("#bdbdbd", "black"),
}
"""Fill and font colour per status."""
ABSENT: Final = ("white", "#757575")
CURRENT_BORDER: Final = "#ff6f00"

SHAPES: Final = {
    "sequence": "box",
    "selector": "octagon",
    "parallel": "parallelogram",
    "decorator": "hexagon",
    "composite": "box3d",
    "behaviour": "ellipse",
}
_SEQUENCES: Final = frozenset({"Sequence", "ReactiveSequence", "SequenceWithMemory"})
_SELECTORS: Final = frozenset({"Selector", "Fallback", "ReactiveFallback", "SelectorWithMemory"})
_DECORATORS: Final = frozenset(
    {
        "Inverter",
        "Repeat",
        "Retry",
        "Timeout",
        "OneShot",
        "FailureIsSuccess",
        "SuccessIsFailure",
        "FailureIsRunning",
        "RunningIsFailure",
        "RunningIsSuccess",
        "SuccessIsRunning",
        "Condition",
        "EternalGuard",
        "StatusToBlackboard",
        "PassThrough",
        "Count",
    }
)
SVG_TIMEOUT: Final = 30.0


class PictureError(CanopyError):
    """A picture could not be made (Graphviz missing or failing); the message says why."""


def kind_short(kind: str) -> str:
    """``py_trees.composites.Sequence`` or ``pkg.mod:Class`` -> ``Sequence`` / ``Class``."""
    return kind.rpartition(":")[2].rpartition(".")[2] or kind


def shape_of(node: TreeNode, has_children: bool) -> str:
    """The node's category (a key of :data:`SHAPES`), from its kind and whether it has
    children: built-in names first, then py_trees module paths, then the structure."""
    short = kind_short(node.kind)
    if short in _SEQUENCES:
        return "sequence"
    if short in _SELECTORS:
        return "selector"
    if short == "Parallel":
        return "parallel"
    module = _module_of(node.kind)
    if short in _DECORATORS or "decorators" in module:
        return "decorator"
    if "composites" in module or has_children:
        return "composite"
    return "behaviour"


def _module_of(kind: str) -> list[str]:
    """The module path of ``pkg.mod:Class`` or ``pkg.mod.Class``, as its parts."""
    module = kind.partition(":")[0] if ":" in kind else kind.rpartition(".")[0]
    return module.split(".") if module else []


def to_dot(state: ExecutionState, *, title: str | None = None) -> str:
    """The tree in force at ``state`` as a DOT ``digraph``, coloured by status."""
    parents = _parents(state)
    heading = title if title is not None else _heading(state)
    lines = [
        f"digraph {_quote(state.execution_id)} {{",
        f"  graph [rankdir=TB, labelloc=t, fontname=Helvetica, label={_label(heading)}];",
        "  node [fontname=Helvetica, fontsize=11, penwidth=1, color=black];",
        "  edge [arrowhead=vee, arrowsize=0.6];",
    ]
    for node in state.tree:
        lines.append(f"  {_quote(node.id)} [{_node_attributes(state, node, node.id in parents)}];")
    for node in state.tree:
        if node.parent is not None:
            lines.append(f"  {_quote(node.parent)} -> {_quote(node.id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


async def to_svg(state: ExecutionState, *, title: str | None = None) -> str:
    """The picture as SVG, drawn by Graphviz ``dot`` (see :func:`render_svg`)."""
    return await render_svg(to_dot(state, title=title))


async def render_svg(dot_source: str) -> str:
    """Run ``dot -Tsvg`` on ``dot_source`` in a subprocess (never blocking the event loop).

    Raises :class:`PictureError` when Graphviz is not installed, fails, or takes longer than
    :data:`SVG_TIMEOUT` seconds (then the process is killed: a hung ``dot`` never lingers).
    """
    dot = shutil.which("dot")
    if dot is None:
        raise PictureError("Graphviz 'dot' is not installed; DOT is available")
    process = await asyncio.create_subprocess_exec(
        dot,
        "-Tsvg",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(SVG_TIMEOUT):
            output, errors = await process.communicate(dot_source.encode("utf-8"))
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PictureError(f"Graphviz 'dot' took longer than {SVG_TIMEOUT:g} s") from None
    if process.returncode != 0:
        detail = errors.decode("utf-8", "replace").strip()
        raise PictureError(f"Graphviz 'dot' failed (exit {process.returncode}): {detail}")
    return output.decode("utf-8")


def to_json_model(state: ExecutionState) -> dict[str, Any]:
    """The tree at ``state`` for a user interface to draw (shape in the module docstring)."""
    parents = _parents(state)
    nodes = []
    edges = []
    for node in state.tree:
        source = None
        if node.path is not None or node.line is not None:
            source = {"path": node.path, "line": node.line, "column": node.column}
        nodes.append(
            {
                "id": node.id,
                "name": node.name,
                "kind": node.kind,
                "kind_short": kind_short(node.kind),
                "shape": shape_of(node, node.id in parents),
                "parent": node.parent,
                "status": state.statuses.get(node.id),
                "source": source,
            }
        )
        if node.parent is not None:
            edges.append({"from": node.parent, "to": node.id})
    return {
        "execution_id": state.execution_id,
        "tick": state.tick,
        "offset": state.offset,
        "in_tick": state.in_tick,
        "root_status": state.root_status,
        "current": state.current_node,
        "nodes": nodes,
        "edges": edges,
    }


def _parents(state: ExecutionState) -> set[str]:
    return {node.parent for node in state.tree if node.parent is not None}


def _heading(state: ExecutionState) -> str:
    where = f"tick {state.tick}" + (" (in progress)" if state.in_tick else "")
    status = f" - {state.root_status}" if state.root_status else ""
    return f"{state.execution_id}: {where}{status}"


def _node_attributes(state: ExecutionState, node: TreeNode, has_children: bool) -> str:
    status = state.statuses.get(node.id)
    fill, font = COLOURS.get(status, ABSENT) if status is not None else ABSENT
    styles = ["filled"] + (["dashed"] if status is None else [])
    label = "\n".join([node.name, kind_short(node.kind), status or "absent"])
    attributes = [
        f"label={_label(label)}",
        f"shape={SHAPES[shape_of(node, has_children)]}",
        f'style="{",".join(styles)}"',
        f'fillcolor="{fill}"',
        f'fontcolor="{font}"',
        f"tooltip={_label(_tooltip(node))}",
        f"id={_quote(node.id)}",
    ]
    if node.id == state.current_node:
        attributes += ["penwidth=4", f'color="{CURRENT_BORDER}"']
    return ", ".join(attributes)


def _tooltip(node: TreeNode) -> str:
    where = ""
    if node.path is not None:
        where = f" at {node.path}" + (f":{node.line}" if node.line is not None else "")
    return f"{node.id} ({node.kind}){where}"


def _label(text: str) -> str:
    """A DOT string shown as written: Graphviz decodes entities in every label, so ``&``, ``<``
    and ``>`` become entities before the DOT escaping."""
    return _quote(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _quote(text: str) -> str:
    """A double-quoted DOT string: backslashes and quotes escaped, newlines as ``\\n`` (a
    centred line break in labels), other control characters dropped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    escaped = "".join(ch for ch in escaped if ch >= " " or ch == "\t")
    return f'"{escaped}"'
