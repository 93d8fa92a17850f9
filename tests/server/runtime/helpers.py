"""Small helpers shared by the runtime tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import py_trees
import pytest
from py_trees.common import Status

from canopy.server.runtime.definition import (
    BuiltTree,
    DefinitionError,
    NodeSpec,
    Problem,
    TreeDefinition,
)


def problems(load: Callable[[], Any]) -> list[Problem]:
    """The problems ``load()`` reports (it must raise DefinitionError)."""
    with pytest.raises(DefinitionError) as caught:
        load()
    return caught.value.problems


def only_problem(load: Callable[[], Any]) -> Problem:
    """The single problem ``load()`` reports."""
    found = problems(load)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def seed_blackboard(built: BuiltTree) -> None:
    """Write the tree's initial blackboard values, as the engine will."""
    for key, value in built.blackboard.items():
        py_trees.blackboard.Blackboard.set(key, value)


def tick(built: BuiltTree, times: int = 1) -> list[Status]:
    """Tick the root ``times`` times; the root's status after each tick."""
    statuses = []
    for _ in range(times):
        built.root.tick_once()
        statuses.append(built.root.status)
    return statuses


def node(definition: TreeDefinition, node_id: str) -> NodeSpec:
    """The node with this id, which must exist."""
    found = definition.node(node_id)
    assert found is not None, f"no node {node_id!r}"
    return found


def at_line(definition: TreeDefinition, path: str, line: int) -> str | None:
    """The id of the node a breakpoint on ``line`` of ``path`` lands on."""
    found = definition.node_at_line(path, line)
    return found.id if found is not None else None


ALIAS_BOMB: Final = "\n".join(
    [f"a: &a [{', '.join(['lol'] * 9)}]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    + ["root: {type: Success, params: {lols: *i}}", ""]
)
"""Nine nested aliases: under 500 bytes that stand for 9**9 strings once expanded."""
