"""YAML and JSON files read as data plus the position of every value in them.

``yaml.compose`` keeps a mark (line, column) on every node, so a schema error's path
(``root.children[2].params``) maps back to the exact place in the file. JSON is read with the
``json`` module (its own error messages and number rules) and composed as YAML only for the
positions, tabs turned into spaces (JSON allows tab indentation, YAML does not; a JSON string
cannot hold a raw tab, so only whitespace changes).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from .model import SourceLocation
from .problems import DefinitionError, Problem

DataPath = tuple[Any, ...]
"""Keys and indices from the document's top to a value, as jsonschema reports them."""


@dataclass(frozen=True)
class Document:
    """A parsed file: ``data``, where each value (and each mapping key) starts, and the last
    line of each value's text (``ends``)."""

    path: str
    data: Any
    values: dict[DataPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[DataPath, tuple[int, int]] = field(default_factory=dict)
    ends: dict[DataPath, int] = field(default_factory=dict)

    def location(self, where: Sequence[Any]) -> SourceLocation:
        """Where the value at ``where`` starts (or its nearest known container)."""
        return self._nearest(tuple(where), self.values)

    def block(self, where: Sequence[Any]) -> SourceLocation:
        """Where the value at ``where`` starts, with the last line of its text as ``end_line``
        (a node's block, for line breakpoints)."""
        return dataclasses.replace(self.location(where), end_line=self.ends.get(tuple(where)))

    def key_location(self, where: Sequence[Any]) -> SourceLocation:
        """Where the key of the value at ``where`` starts (for "unexpected field" errors)."""
        where = tuple(where)
        if where in self.keys:
            return SourceLocation(self.path, *self.keys[where])
        return self.location(where)

    def _nearest(self, where: DataPath, table: dict[DataPath, tuple[int, int]]) -> SourceLocation:
        for end in range(len(where), -1, -1):
            if where[:end] in table:
                return SourceLocation(self.path, *table[where[:end]])
        return SourceLocation(self.path, 1, 1)


def read_document(path: str, text: str, *, is_json: bool) -> Document:
    """The document in ``text``; DefinitionError (with the parser's position) when malformed."""
    if is_json:
        return _read_json(path, text)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        return _with_positions(Document(path, data), node, loader, text)
    except yaml.MarkedYAMLError as exc:
        raise DefinitionError([_yaml_problem(path, exc)]) from None
    finally:
        loader.dispose()


def _read_json(path: str, text: str) -> Document:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = Problem(path, exc.lineno, exc.colno, f"malformed JSON: {exc.msg}")
        raise DefinitionError([problem]) from None
    spaced = text.replace("\t", " ")
    loader = yaml.SafeLoader(spaced)
    try:
        return _with_positions(Document(path, data), loader.get_single_node(), loader, spaced)
    except yaml.YAMLError:  # valid JSON that YAML 1.1 cannot read: no positions, still usable
        return Document(path, data)
    finally:
        loader.dispose()


def _yaml_problem(path: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    context = f" ({exc.context})" if exc.context else ""
    return Problem(path, line, column, f"malformed YAML: {exc.problem}{context}")


def _with_positions(
    document: Document, node: yaml.Node | None, loader: yaml.SafeLoader, text: str
) -> Document:
    if node is None:
        return document
    problems: list[Problem] = []
    _index(node, (), document, loader, text, problems, set())
    if problems:
        raise DefinitionError(problems)
    return document


def _index(
    node: yaml.Node,
    where: DataPath,
    document: Document,
    loader: yaml.SafeLoader,
    text: str,
    problems: list[Problem],
    ancestors: set[int],
) -> int:
    """Record where every value and key starts and the last line of every value's text;
    report duplicate keys and recursive aliases. Returns the last line of ``node``.

    A block collection ends with its last item: its own end mark lies past the comments and
    blank lines that follow it, which belong to no value. A scalar or flow collection ends at
    its end mark, less the line breaks and indentation a block scalar's mark runs over.
    """
    document.values[where] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if id(node) in ancestors:
        problems.append(_problem(document.path, node, "a recursive alias is not supported"))
        return node.start_mark.line + 1
    inner = ancestors | {id(node)}
    last = 0
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            last = max(last, _index(item, (*where, index), document, loader, text, problems, inner))
    elif isinstance(node, yaml.MappingNode):
        seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = _key(key_node, loader)
            if key in seen:
                line = seen[key].start_mark.line + 1
                problems.append(
                    _problem(
                        document.path, key_node, f"duplicate key {key!r} (first at line {line})"
                    )
                )
                continue
            seen[key] = key_node
            document.keys[(*where, key)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            last = max(
                last, _index(value_node, (*where, key), document, loader, text, problems, inner)
            )
    if not isinstance(node, yaml.CollectionNode) or node.flow_style:
        last = text[: node.end_mark.index].rstrip().count("\n") + 1
    document.ends[where] = last
    return last


def _key(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    """A mapping key as the constructed data has it (``1`` for ``1:``); unhashable keys become
    their source text, only for position lookups."""
    try:
        key = loader.construct_object(node, deep=True)
        hash(key)
    except (yaml.YAMLError, TypeError):
        return str(node.value)
    return key


def _problem(path: str, node: yaml.Node, message: str) -> Problem:
    return Problem(path, node.start_mark.line + 1, node.start_mark.column + 1, message)
