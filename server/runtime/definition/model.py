"""A tree definition as the runtime sees it, whatever file format or factory it came from.

A definition is plain data: node ids, kinds, parameters and source locations, with no py_trees
objects in it. Breakpoints, history, statistics and diagnostics key on the stable node ids kept
here, and the source locations let an editor go from a node to its line and back.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

TreeFormat = Literal["yaml", "json", "xml", "python"]


@dataclass(frozen=True)
class SourceLocation:
    """Where something is defined; ``line`` and ``column`` are 1-based, as editors show them.

    ``end_line`` is the last line of the definition's block (a node's YAML mapping or JSON object
    with its fields and children, or its XML element), so that a line breakpoint on a node's
    ``name:`` or ``params:`` line binds to that node; None where a block has no meaning (a
    Python class, a problem's position).
    """

    path: str
    line: int
    column: int
    end_line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class NodeSpec:
    """One node of a tree.

    ``kind`` is a built-in name (``Sequence``, ``Inverter``, ``Success``...) or the import path of
    a behaviour class (``package.module:Class``). ``params`` are the values handed to that kind's
    constructor (built-ins: normalised, defaults filled in). The dataclass is frozen but
    ``params`` is a plain dict: treat it as read-only.
    """

    id: str
    name: str
    kind: str
    params: dict[str, Any]
    children: tuple[NodeSpec, ...]
    source: SourceLocation

    def walk(self) -> Iterator[NodeSpec]:
        """This node and all below it, in pre-order (the order they appear in a tree file)."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class TreeDefinition:
    """A whole tree: its root node, the blackboard's initial values and where it came from.

    ``path`` is the tree file (or the factory's module file for ``format == "python"``);
    ``factory`` is the ``file.py:function`` or ``package.module:function`` reference that
    :func:`~server.runtime.definition.build_tree` calls again for a Python tree.
    """

    name: str
    root: NodeSpec
    blackboard: dict[str, Any]
    path: str
    format: TreeFormat
    factory: str | None = None

    def nodes(self) -> tuple[NodeSpec, ...]:
        """Every node, in pre-order."""
        return self._nodes

    def node(self, node_id: str) -> NodeSpec | None:
        """The node with this stable id, or None."""
        return self._by_id.get(node_id)

    def files(self) -> tuple[str, ...]:
        """Every file that defines a node of this tree (a file and the files it includes)."""
        return tuple(dict.fromkeys(node.source.path for node in self._nodes))

    def breakpoint_lines(
        self, path: str, first: int = 1, last: int | None = None
    ) -> tuple[int, ...]:
        """The definition lines where line breakpoints set on lines ``first`` to ``last`` of
        ``path`` land (every definition line of the file without a range), ascending.

        A landing line may lie before ``first``: a breakpoint inside a node's block lands on the
        line that defines the node.
        """
        by_line = self._by_file.get(_file_key(path), {})
        if not by_line:
            return ()
        end = max(_last_line(node) for nodes in by_line.values() for node in nodes)
        last = end if last is None else min(last, end)
        # Lines start at 1: a range from far below must not mean a loop of that length.
        landed = (self.nodes_at_line(path, line) for line in range(max(first, 1), last + 1))
        return tuple(sorted({found[0].source.line for found in landed if found}))

    def nodes_at_line(self, path: str, line: int) -> tuple[NodeSpec, ...]:
        """The nodes a line breakpoint on ``line`` of ``path`` binds to.

        That is the innermost node whose block contains the line (its definition line, or a
        field or child line of it), else the nodes defined on the next definition line (for a
        comment or blank line between nodes); empty past the last node. Several nodes share a
        line when a subtree file is included twice or when Python nodes share a class; a line
        breakpoint applies to all of them.
        """
        by_line = self._by_file.get(_file_key(path), {})
        lines = list(by_line)
        index = bisect.bisect_right(lines, line)
        # Blocks nest, so the latest-starting block that reaches the line is the innermost.
        for start in reversed(lines[:index]):
            inside = tuple(node for node in by_line[start] if _last_line(node) >= line)
            if inside:
                return inside
        return by_line[lines[index]] if index < len(lines) else ()

    def node_at_line(self, path: str, line: int) -> NodeSpec | None:
        """The first node a line breakpoint on ``line`` of ``path`` binds to, or None."""
        found = self.nodes_at_line(path, line)
        return found[0] if found else None

    @cached_property
    def _nodes(self) -> tuple[NodeSpec, ...]:
        return tuple(self.root.walk())

    @cached_property
    def _by_id(self) -> dict[str, NodeSpec]:
        return {node.id: node for node in self._nodes}

    @cached_property
    def _by_file(self) -> dict[str, dict[int, tuple[NodeSpec, ...]]]:
        """file -> line -> nodes on that line (lines ascending, nodes by column then pre-order)."""
        grouped: dict[str, dict[int, list[tuple[int, int, NodeSpec]]]] = {}
        for order, node in enumerate(self._nodes):
            lines = grouped.setdefault(_file_key(node.source.path), {})
            lines.setdefault(node.source.line, []).append((node.source.column, order, node))
        return {
            path: {
                line: tuple(node for _, _, node in sorted(entries, key=lambda e: e[:2]))
                for line, entries in sorted(lines.items())
            }
            for path, lines in grouped.items()
        }


def _last_line(node: NodeSpec) -> int:
    """The last line of a node's block: its definition line when the block is unknown."""
    return node.source.end_line or node.source.line


def _file_key(path: str) -> str:
    """Compare files by their real path, so a symlinked or relative spelling still matches.
    A path holding a NUL byte names no file (and ``realpath`` refuses it): kept as it is."""
    if "\0" in path:
        return path
    return os.path.normcase(os.path.realpath(path))
