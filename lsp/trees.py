"""What an editor needs to know about a tree file, from the runtime's own loaders.

Nothing here speaks LSP: positions are the runtime's (1-based lines and columns, in characters)
and :mod:`.convert` turns them into the protocol's. A tree file is checked exactly as a launch
loads it (:func:`~canopy.server.runtime.definition.load_tree` on the editor's text, Groot2 tags
mapped through the project's ``canopy.toml``), so the editor and the debugger never disagree
about a tree. Loading imports the behaviour modules the tree names, as a launch does, so
:func:`analyse` and :func:`kind_definition` run in the checking process (:mod:`.worker`), never
in the server; the outline and the classes a tree could name import nothing (they read the
files), and run in the server.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from canopy.server.runtime.definition import (
    AGENT_KINDS,
    FILE_BUILTINS,
    TREE_FILE_SUFFIXES,
    DefinitionError,
    Problem,
    SourceLocation,
    TreeDefinition,
    load_tree,
)
from canopy.server.runtime.definition.class_kinds import (
    ClassKind,
    class_location,
    is_import_path,
    short_name,
)
from canopy.server.runtime.definition.documents import Document, read_document
from canopy.server.runtime.definition.resolve import folder_of, resolve_kind
from canopy.server.runtime.definition.xml_elements import Element, parse_xml
from canopy.server.runtime.definition.xml_trees import GENERIC_TAGS, TAGS
from canopy.server.runtime.project import Project, read_project

__all__ = [
    "Analysis",
    "Symbol",
    "analyse",
    "behaviour_classes",
    "is_tree_file",
    "kind_definition",
    "kind_prefix",
    "kinds",
    "outline",
]


def is_tree_file(path: Path) -> bool:
    """Whether ``path`` names a tree file (by its suffix, as the runtime decides)."""
    return path.suffix.lower() in TREE_FILE_SUFFIXES


@dataclass(frozen=True)
class Analysis:
    """A tree file's problems, and its definition when it loads without any."""

    problems: tuple[Problem, ...]
    definition: TreeDefinition | None


def analyse(path: Path, text: str) -> Analysis:
    """Load the tree file ``path`` holding ``text`` as a launch would; every problem found."""
    problems: list[Problem] = []
    project = _project(path, problems)
    try:
        definition = load_tree(str(path), registry=project.nodes, text=text)
    except DefinitionError as error:
        return Analysis((*problems, *error.problems), None)
    return Analysis(tuple(problems), definition)


def _project(path: Path, problems: list[Problem]) -> Project:
    """The project governing ``path``; a broken ``canopy.toml`` is a problem, and no project."""
    try:
        return read_project(path)
    except DefinitionError as error:
        problems.extend(error.problems)
        return Project()


def kind_definition(definition: TreeDefinition, path: Path, line: int) -> SourceLocation | None:
    """Where the class of the node defined around ``line`` of ``path`` is written; None for a
    built-in kind or no node there."""
    node = definition.node_at_line(str(path), line)
    if node is None or not is_import_path(node.kind):
        return None
    kind = resolve_kind(node.kind, folder_of(node))
    return class_location(kind.cls) if isinstance(kind, ClassKind) else None


@dataclass(frozen=True)
class Symbol:
    """One entry of a tree file's outline: a node (or, in XML, a ``<BehaviorTree>``)."""

    name: str
    kind: str
    """The node's type as written (``Sequence``, ``robot:Scan``, a Groot2 tag)."""
    source: SourceLocation
    """Where its block starts, ``end_line`` its last line."""
    leaf: bool
    children: tuple[Symbol, ...] = ()


def outline(path: Path, text: str) -> tuple[Symbol, ...]:
    """The nodes of the tree file as written (a Subtree is one entry, not the file it includes);
    empty when the file cannot be parsed at all (its diagnostic says why)."""
    try:
        if path.suffix.lower() == ".xml":
            top = parse_xml(str(path), text.encode("utf-8"))
            return tuple(_xml_tree(tree) for tree in top.children if tree.tag == "BehaviorTree")
        document = read_document(str(path), text, is_json=path.suffix.lower() == ".json")
    except DefinitionError:
        return ()
    found = _yaml_node(document, ("root",)) if isinstance(document.data, dict) else None
    return (found,) if found else ()


def _yaml_node(document: Document, where: tuple[Any, ...]) -> Symbol | None:
    data = _at(document.data, where)
    if not isinstance(data, dict):
        return None
    written = data.get("type")
    kind = written if isinstance(written, str) else "?"
    named = data.get("name")
    name = named if isinstance(named, str) and named else short_name(kind)
    wheres: list[tuple[Any, ...]] = []
    if isinstance(data.get("children"), list):
        wheres += [(*where, "children", i) for i in range(len(data["children"]))]
    if "child" in data:
        wheres.append((*where, "child"))
    children = [_yaml_node(document, child) for child in wheres]
    found = tuple(child for child in children if child is not None)
    return Symbol(name, kind, document.block(where), not wheres, found)


def _at(data: Any, where: tuple[Any, ...]) -> Any:
    """The value at ``where``, or None where the file has none (a node without a root)."""
    for step in where:
        if not isinstance(data, dict | list) or (isinstance(data, dict) and step not in data):
            return None
        data = data[step]
    return data


def _xml_tree(tree: Element) -> Symbol:
    name = tree.attributes.get("ID") or "BehaviorTree"
    nodes = tuple(_xml_node(child) for child in tree.children)
    return Symbol(name, "BehaviorTree", tree.source, False, nodes)


def _xml_node(element: Element) -> Symbol:
    explicit = element.tag in GENERIC_TAGS or element.tag == "SubTree"
    kind = element.attributes.get("ID", element.tag) if explicit else element.tag
    name = element.attributes.get("name") or kind
    children = tuple(_xml_node(child) for child in element.children)
    return Symbol(name, kind, element.source, not element.children, children)


_YAML_KIND: Final = re.compile(r"""^\s*(?:-\s+)?type:\s*["']?(?P<prefix>[\w.:]*)$""")
_JSON_KIND: Final = re.compile(r"""["']type["']\s*:\s*"(?P<prefix>[\w.:]*)$""")
_XML_KIND: Final = re.compile(r"<(?P<prefix>[\w.:]*)$")


def kind_prefix(path: Path, before: str) -> str | None:
    """The part of a node type typed so far when ``before`` (the line up to the cursor) ends
    where a tree file expects a node type; None elsewhere."""
    suffix = path.suffix.lower()
    pattern = _XML_KIND if suffix == ".xml" else _JSON_KIND if suffix == ".json" else _YAML_KIND
    found = pattern.search(before)
    return found["prefix"] if found else None


def kinds(path: Path, max_files: int) -> list[tuple[str, str]]:
    """``(type, what it is)`` for each node type the tree file ``path`` may name: the built-ins
    of its format, then the behaviour classes in its folder (reading at most ``max_files``
    Python files) or, for a Groot2 file, the tags its project maps to classes."""
    if path.suffix.lower() == ".xml":
        project = _project(path, [])
        return [
            *((tag, "BehaviorTree.CPP built-in") for tag in TAGS),
            *((tag, f"{target} (canopy.toml)") for tag, target in project.nodes.items()),
        ]
    return [
        *((name, "py_trees built-in") for name in FILE_BUILTINS),
        *((name, "workflow agent") for name in AGENT_KINDS),
        ("Subtree", "another tree file, included"),
        *((name, "behaviour class") for name in behaviour_classes(path.parent, max_files)),
    ]


BEHAVIOUR_BASES: Final = frozenset(
    {"Behaviour", "Composite", "Sequence", "Selector", "Parallel", "Decorator"}
)
"""Names of py_trees base classes: a class deriving from one (or from a class of its module
that does) is taken for a behaviour. Read from the source, so an alias is missed."""

_SKIPPED: Final = frozenset({"__pycache__", "node_modules", "site-packages", "venv"})


def behaviour_classes(folder: Path, max_files: int) -> list[str]:
    """``module:Class`` for every behaviour class in the Python files under ``folder``, as the
    runtime imports them for a tree in that folder. Nothing is imported."""
    found: list[str] = []
    for number, (module, file) in enumerate(_modules(folder)):
        if number >= max_files:
            break
        found += (f"{module}:{name}" for name in _behaviours_in(file))
    return found


def _modules(folder: Path) -> Iterator[tuple[str, Path]]:
    """``(module name, file)`` for the Python files under ``folder``, in name order."""
    for where, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f not in _SKIPPED)
        base = Path(where).relative_to(folder).parts
        for file in sorted(f for f in files if f.endswith(".py")):
            parts = (*base, file[:-3]) if file != "__init__.py" else base
            if parts and all(part.isidentifier() for part in parts):
                yield ".".join(parts), Path(where, file)


def _behaviours_in(file: Path) -> list[str]:
    try:
        module = ast.parse(file.read_bytes(), filename=str(file))
    except (OSError, SyntaxError, ValueError, RecursionError):
        return []
    names: list[str] = []
    for statement in module.body:
        if isinstance(statement, ast.ClassDef) and any(
            _base_name(base) in BEHAVIOUR_BASES or _base_name(base) in names
            for base in statement.bases
        ):
            names.append(statement.name)
    return names


def _base_name(base: ast.expr) -> str | None:
    if isinstance(base, ast.Name):
        return base.id
    if isinstance(base, ast.Attribute):
        return base.attr
    return None
