"""YAML and JSON files read as data plus the position of every value in them.

``yaml.compose`` keeps a mark (line, column) on every node, so a schema error's path
(``root.children[2].params``) maps back to the exact place in the file. JSON is read with the
bounded decoder every JSON edge uses and composed as YAML only for the positions, tabs turned
into spaces (JSON allows tab indentation, YAML does not; a JSON string cannot hold a raw tab, so
only whitespace changes).

A tree file is input from outside (uploaded over HTTP, opened by an editor), so reading it is
bounded: at most :data:`MAX_DOCUMENT_BYTES`, nesting no deeper than JSON may, and no YAML
anchors or aliases. An alias is a pointer: nine nested ones make a 300-byte file stand for a
billion values, and every walk over the data (positions, schema, building) visits each of them.
Tree files never need them (a shared part is a ``Subtree`` file), so they are refused where
they are written rather than bounded after the fact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from canopy.bridge.errors import InvalidJson
from canopy.bridge.jsondata import MAX_DEPTH, loads

from .model import SourceLocation
from .problems import DefinitionError, Problem

MAX_DOCUMENT_BYTES: Final = 1024 * 1024
"""The largest tree file read: hand-written trees are a few kilobytes."""

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


class _Refused(yaml.MarkedYAMLError):
    """Well-formed YAML that a tree file may not hold (its problem said as is, not as
    malformed)."""


class _TreeLoader(yaml.SafeLoader):
    """The safe loader, refusing anchors and aliases and nesting deeper than JSON may."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    @staticmethod
    def _refused(problem: str, event: yaml.Event) -> _Refused:
        mark = event.start_mark
        return _Refused(problem=problem, problem_mark=mark if isinstance(mark, yaml.Mark) else None)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise self._refused(f"an alias (*{event.anchor}) is not allowed in a tree file", event)
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise self._refused(f"an anchor (&{event.anchor}) is not allowed in a tree file", event)
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise self._refused(f"nested deeper than {MAX_DEPTH} levels", event)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def check_size(path: str, size: int) -> None:
    """Refuse a tree file of ``size`` bytes over :data:`MAX_DOCUMENT_BYTES`, whatever its
    format, before any parser starts on it."""
    if size > MAX_DOCUMENT_BYTES:
        message = f"the file is {size} bytes, over the limit of {MAX_DOCUMENT_BYTES}"
        raise DefinitionError([Problem(path, 1, 1, message)])


def read_document(path: str, text: str, *, is_json: bool) -> Document:
    """The document in ``text``; DefinitionError (with the position) when malformed, too large,
    too deep, or (YAML) holding anchors or aliases."""
    check_size(path, len(text.encode("utf-8")))
    if is_json:
        return _read_json(path, text)
    loader = _loader(path, text)
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
        data = loads(text.encode("utf-8"))
    except InvalidJson as exc:
        problem = Problem(path, exc.line or 1, exc.column or 1, f"malformed JSON: {exc.reason}")
        raise DefinitionError([problem]) from None
    spaced = text.replace("\t", " ")
    try:
        loader = _TreeLoader(spaced)
    except yaml.YAMLError:  # valid JSON that YAML 1.1 cannot read: no positions, still usable
        return Document(path, data)
    try:
        return _with_positions(Document(path, data), loader.get_single_node(), loader, spaced)
    except yaml.YAMLError:
        return Document(path, data)
    finally:
        loader.dispose()


def _loader(path: str, text: str) -> _TreeLoader:
    """A loader on ``text``; DefinitionError at the first character YAML may not hold (a
    control character, say), which the loader checks before reading anything."""
    try:
        return _TreeLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        message = f"malformed YAML: character {exc.character:#06x} is not allowed in YAML"
        raise DefinitionError([Problem(path, line, column, message)]) from None


def _yaml_problem(path: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    context = f" ({exc.context})" if exc.context else ""
    kind = "" if isinstance(exc, _Refused) else "malformed YAML: "
    return Problem(path, line, column, f"{kind}{exc.problem}{context}")


def _with_positions(
    document: Document, node: yaml.Node | None, loader: yaml.SafeLoader, text: str
) -> Document:
    if node is None:
        return document
    problems: list[Problem] = []
    _index(node, (), document, loader, text, problems)
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
) -> int:
    """Record where every value and key starts and the last line of every value's text;
    report duplicate keys. Returns the last line of ``node``. (Without aliases each node has
    one path, so this visits the file once.)

    A block collection ends with its last item: its own end mark lies past the comments and
    blank lines that follow it, which belong to no value. A scalar or flow collection ends at
    its end mark, less the line breaks and indentation a block scalar's mark runs over.
    """
    document.values[where] = (node.start_mark.line + 1, node.start_mark.column + 1)
    last = 0
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            last = max(last, _index(item, (*where, index), document, loader, text, problems))
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
            last = max(last, _index(value_node, (*where, key), document, loader, text, problems))
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
