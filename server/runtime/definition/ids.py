"""Stable node ids: what breakpoints, history, statistics and diagnostics key on.

A node's id is its explicit ``id``, else its parent's id and its own name joined with ``/``
(``patrol/check_battery``); the root's implicit id is its name. Deriving from the parent's id
(not from the raw names) means an explicit ``id`` on a node also disambiguates everything below
it. py_trees' uuid is fresh per process, so it is never used.
"""

from __future__ import annotations

import os

from .model import NodeSpec, SourceLocation
from .problems import Problem


def child_id(parent_id: str | None, name: str) -> str:
    """The implicit id of a node called ``name`` under the node ``parent_id`` (None: the root)."""
    return name if parent_id is None else f"{parent_id}/{name}"


def unique_id(candidate: str, taken: set[str]) -> str:
    """``candidate``, or ``candidate#2``, ``#3``... whichever is free first; marks it taken.

    Used for Python factories, whose users cannot add ids: repeated sibling names get a
    deterministic suffix in tree order instead of an error.
    """
    chosen, number = candidate, 1
    while chosen in taken:
        number += 1
        chosen = f"{candidate}#{number}"
    taken.add(chosen)
    return chosen


def duplicate_id_problems(root: NodeSpec, fix: str) -> list[Problem]:
    """One problem per node whose id an earlier node already has, naming both places.

    ``fix`` is the advice for this file format (e.g. "add a distinct `id` to one of them").
    """
    first: dict[str, NodeSpec] = {}
    problems = []
    for node in root.walk():
        earlier = first.setdefault(node.id, node)
        if earlier is not node:
            where = _relative_place(earlier.source, node.source)
            problems.append(
                Problem.at(node.source, f"duplicate id '{node.id}' (also {where}); {fix}")
            )
    return problems


def _relative_place(earlier: SourceLocation, here: SourceLocation) -> str:
    """``at line 4, column 7`` in the same file, else ``at other.yaml:4:7``."""
    if earlier.path == here.path:
        return f"at line {earlier.line}, column {earlier.column}"
    other = os.path.relpath(earlier.path, os.path.dirname(here.path))
    return f"at {other}:{earlier.line}:{earlier.column}"
