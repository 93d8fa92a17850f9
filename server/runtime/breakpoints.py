"""Breakpoints and watches: what a client asks for, and what the engine binds it to.

A client sets breakpoints on a node id or name, or on a line of a tree file; each one resolves
against the execution's tree definition to zero or more nodes. An expression that does not
compile leaves the breakpoint unverified with the reason, instead of ever reaching the tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from .blackboard import absolute_key
from .expressions import Expression, ExpressionError, HitCondition, Template

if TYPE_CHECKING:
    from .definition import TreeDefinition

__all__ = [
    "Breakpoint",
    "BreakpointSpec",
    "ExceptionFilter",
    "Position",
    "Watch",
    "WatchSpec",
    "resolve_breakpoint",
    "resolve_watch",
]


class Position(StrEnum):
    """Where around a node's update a breakpoint stops."""

    BEFORE = "before"
    AFTER = "after"


class ExceptionFilter(StrEnum):
    """Stop when a behaviour raises, or when any node returns FAILURE."""

    RAISED = "raised"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class BreakpointSpec:
    """A breakpoint as a client asks for it: on ``node`` (id or name) or on ``path``:``line``."""

    node: str | None = None
    path: str | None = None
    line: int | None = None
    position: Position = Position.BEFORE
    condition: str | None = None
    hit_condition: str | None = None
    log_message: str | None = None


@dataclass(slots=True)
class Breakpoint:
    """A resolved breakpoint; ``hits`` counts the times its condition held."""

    id: int
    spec: BreakpointSpec
    node_ids: tuple[str, ...] = ()
    line: int | None = None
    verified: bool = False
    message: str | None = None
    hits: int = 0
    condition: Expression | None = field(default=None, repr=False)
    hit_condition: HitCondition | None = field(default=None, repr=False)
    log_message: Template | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """A data breakpoint on a blackboard key (absolute ``/battery/level`` or ``battery.level``):
    stop when it changes, or when ``condition`` holds after a change."""

    key: str
    condition: str | None = None


@dataclass(slots=True)
class Watch:
    """A resolved data breakpoint."""

    id: int
    spec: WatchSpec
    key: str
    verified: bool = True
    message: str | None = None
    condition: Expression | None = field(default=None, repr=False)


def resolve_breakpoint(number: int, spec: BreakpointSpec, definition: TreeDefinition) -> Breakpoint:
    """Bind ``spec`` to nodes of ``definition`` and compile its expressions."""
    found = Breakpoint(id=number, spec=spec)
    try:
        found.condition = Expression.compile(spec.condition) if spec.condition else None
        found.hit_condition = HitCondition.parse(spec.hit_condition) if spec.hit_condition else None
        found.log_message = Template.compile(spec.log_message) if spec.log_message else None
    except ExpressionError as error:
        found.message = f"invalid expression: {error}"
        return found
    if spec.node is not None:
        found.node_ids = _nodes_named(spec.node, definition)
        if not found.node_ids:
            found.message = f"no node with id or name {spec.node!r} in tree {definition.name!r}"
    elif spec.path is not None and spec.line is not None:
        nodes = definition.nodes_at_line(spec.path, spec.line)
        if not nodes:
            found.message = f"no node at or after line {spec.line} of {spec.path}"
        else:
            found.node_ids = tuple(node.id for node in nodes)
            found.line = nodes[0].source.line
    else:
        found.message = "a breakpoint needs a node, or a path and a line"
    found.verified = bool(found.node_ids)
    return found


def resolve_watch(number: int, spec: WatchSpec) -> Watch:
    """Normalise the key and compile the condition of a data breakpoint."""
    watch = Watch(id=number, spec=spec, key=absolute_key(spec.key))
    if spec.condition:
        try:
            watch.condition = Expression.compile(spec.condition)
        except ExpressionError as error:
            watch.verified = False
            watch.message = f"invalid expression: {error}"
    return watch


def _nodes_named(wanted: str, definition: TreeDefinition) -> tuple[str, ...]:
    """A node id matches exactly; otherwise every node with that name."""
    if any(node.id == wanted for node in definition.nodes()):
        return (wanted,)
    return tuple(node.id for node in definition.nodes() if node.name == wanted)
