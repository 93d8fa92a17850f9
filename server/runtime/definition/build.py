"""Turning a definition into live py_trees behaviours, each tagged with its stable id.

The engine sees behaviours (``Behaviour.tick()`` yields them) and needs their stable id on
every status change, so the id is stored on the behaviour itself (:data:`CANOPY_ID`): one
attribute read, no lookup. Every build makes fresh behaviours, so a hot reload or a restart
starts from a clean tree.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from py_trees.behaviour import Behaviour

from ..user_faults import RUNTIME_CONTROL_FLOW
from .model import NodeSpec, TreeDefinition
from .problems import Problem, raise_if_any
from .python_trees import call_factory, describe, resolve_factory
from .resolve import folder_of, resolve_kind

CANOPY_ID = "canopy_id"
"""Name of the attribute that holds a built behaviour's stable id."""


def stable_id(behaviour: Behaviour) -> str | None:
    """The stable id :func:`build_tree` gave ``behaviour`` (None if it did not build it)."""
    return getattr(behaviour, CANOPY_ID, None)


@dataclass(frozen=True)
class BuiltTree:
    """A fresh py_trees tree for a definition, and the ways from ids to behaviours and back."""

    definition: TreeDefinition
    root: Behaviour
    behaviours: Mapping[str, Behaviour]
    """Stable id -> behaviour, in pre-order."""
    ids: Mapping[uuid.UUID, str]
    """py_trees' per-process ``behaviour.id`` -> stable id."""
    blackboard: dict[str, Any]
    """Initial blackboard values (a copy: the engine may keep and change it)."""


def build_tree(definition: TreeDefinition) -> BuiltTree:
    """Construct the behaviours of ``definition``; DefinitionError with every node that could
    not be constructed (what its constructor raised)."""
    if definition.format == "python":
        pairs = _from_factory(definition)
    else:
        problems: list[Problem] = []
        pairs = []
        _construct(definition.root, pairs, problems)
        raise_if_any(problems)
    for node_id, behaviour in pairs:
        setattr(behaviour, CANOPY_ID, node_id)
    return BuiltTree(
        definition=definition,
        root=pairs[0][1],
        behaviours=dict(pairs),
        ids={behaviour.id: node_id for node_id, behaviour in pairs},
        blackboard=copy.deepcopy(definition.blackboard),
    )


def _construct(
    node: NodeSpec, pairs: list[tuple[str, Behaviour]], problems: list[Problem]
) -> Behaviour | None:
    """The behaviour for ``node`` (children first, as py_trees constructors take them), or None
    when it or a descendant failed; ``pairs`` gets (id, behaviour) in pre-order."""
    index = len(pairs)
    children = [_construct(child, pairs, problems) for child in node.children]
    if any(child is None for child in children):
        return None
    built = [child for child in children if child is not None]
    try:
        kind = resolve_kind(node.kind, folder_of(node))
        behaviour = kind.construct(node.name, node.params, built)
    except RUNTIME_CONTROL_FLOW:
        raise
    except BaseException as exc:  # a sys.exit() in a constructor too: see user_faults
        message = f"node '{node.id}': constructing {node.kind} failed: {type(exc).__name__}: {exc}"
        problems.append(Problem.at(node.source, message))
        return None
    pairs.insert(index, (node.id, behaviour))
    return behaviour


def _from_factory(definition: TreeDefinition) -> list[tuple[str, Behaviour]]:
    """Call the factory again; its tree must have the shape that was loaded."""
    if definition.factory is None:
        message = "a Python tree definition needs the factory reference it was loaded from"
        raise_if_any([Problem(definition.path, 1, 1, message)])
        return []
    factory = resolve_factory(definition.factory, Path(definition.path).parent)
    spec, pairs = describe(call_factory(factory), factory)
    loaded = [(node.id, node.kind) for node in definition.root.walk()]
    fresh = [(node.id, node.kind) for node in spec.walk()]
    if loaded != fresh:
        differs = next((a for a, b in zip(loaded, fresh, strict=False) if a != b), None)
        first = differs[0] if differs else "(a different number of nodes)"
        message = (
            f"factory '{definition.factory}' returned a different tree than when it was loaded "
            f"(first difference at node {first}); reload the tree"
        )
        raise_if_any([Problem.at(factory.source, message)])
    return pairs
