"""The checks every tree file gets once it is parsed, whatever its format.

A loader turns its file into a tree of raw :class:`NodeSpec` values; :func:`finalize` then
resolves every kind (collecting all unknown classes, not just the first), checks child counts
and params, fills in built-in defaults and rejects duplicate ids, so all formats report the
same mistakes the same way.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from .agent_kinds import AGENT_KINDS, agent_kind
from .builtin_kinds import BUILTINS, FILE_BUILTINS
from .class_kinds import ClassKind, is_import_path, resolve_class
from .ids import duplicate_id_problems
from .kinds import Kind, ResolutionError, did_you_mean
from .model import NodeSpec, TreeDefinition, TreeFormat
from .problems import Problem, raise_if_any


def resolve_kind(kind: str, folder: Path | None) -> Kind:
    """The built-in called ``kind``, or the class its import path names (imported from
    ``folder`` first: the folder of the file that mentions it)."""
    builtin = BUILTINS.get(kind)
    if builtin is not None:
        return builtin
    agent = agent_kind(kind, folder)
    if agent is not None:
        return agent
    if is_import_path(kind):
        return ClassKind(kind, resolve_class(kind, folder))
    names = (*FILE_BUILTINS, *AGENT_KINDS)
    raise ResolutionError(
        f"unknown node type '{kind}'{did_you_mean(kind, names)}: use a built-in "
        f"({', '.join(names)}) or an import path 'package.module:Class'"
    )


def folder_of(node: NodeSpec) -> Path:
    """The folder custom classes of ``node`` are imported from: its file's folder."""
    return Path(node.source.path).parent


def resolve_tree(node: NodeSpec, problems: list[Problem]) -> NodeSpec:
    """``node`` with normalised params, all the way down; appends what is wrong to ``problems``."""
    children = tuple(resolve_tree(child, problems) for child in node.children)
    try:
        kind = resolve_kind(node.kind, folder_of(node))
    except ResolutionError as exc:
        problems.append(Problem.at(node.source, f"node '{node.id}': {exc}"))
        return replace(node, children=children)
    errors = [kind.role.child_count_error(node.kind, len(children))]
    params, param_errors = kind.normalize(node.params, children)
    for error in [*errors, *param_errors]:
        if error:
            problems.append(Problem.at(node.source, f"node '{node.id}': {error}"))
    return replace(node, params=params, children=children)


def finalize(
    *,
    name: str,
    root: NodeSpec,
    blackboard: dict[str, Any],
    path: str,
    format: TreeFormat,
    duplicate_fix: str,
) -> TreeDefinition:
    """The checked definition, or DefinitionError with every problem found."""
    problems = duplicate_id_problems(root, duplicate_fix)
    resolved = resolve_tree(root, problems)
    raise_if_any(problems)
    return TreeDefinition(name=name, root=resolved, blackboard=blackboard, path=path, format=format)
