"""YAML and JSON tree files (the format ``schemas/tree.schema.json`` describes).

A file has a ``root`` node and optional ``name`` and ``blackboard`` (initial values). A node of
``type: Subtree`` includes another tree file: the included root takes the Subtree's place (and
its ``name``/``id`` when the Subtree gives them), and the included blackboard values are merged
under the including file's own, which win. Every file is read and schema-checked once per load,
and every problem of every file is collected before giving up.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

from .class_kinds import short_name
from .documents import DataPath, Document, read_document
from .ids import child_id
from .model import NodeSpec, TreeDefinition, TreeFormat
from .problems import DefinitionError, Problem
from .resolve import finalize
from .tree_schema import schema_problems

FORMATS: dict[str, TreeFormat] = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
"""Tree file suffixes this module reads, and the format each one is."""

DUPLICATE_FIX = "add a distinct `id` to one of them"
CHECKED_DOCUMENTS = 16
"""Files whose checked document a process keeps, by path and text: launching the same tree
again (a re-run, a fork) reads the file but parses and schema-checks it only once."""


def load_file_tree(path: Path, text: str | None = None) -> TreeDefinition:
    """The checked definition in the YAML/JSON file ``path`` (read from ``text`` when given)
    and the files it includes."""
    top = os.path.abspath(path)
    reader = _Reader({} if text is None else {top: text})
    blackboard: dict[str, Any] = {}
    root = reader.tree(top, (), None, {}, blackboard)
    document = reader.document(top)
    if root is None or document is None or reader.problems:
        raise DefinitionError(reader.problems)
    return finalize(
        name=document.data.get("name") or Path(top).stem,
        root=root,
        blackboard=blackboard,
        path=top,
        format=FORMATS[Path(top).suffix.lower()],
        duplicate_fix=DUPLICATE_FIX,
    )


class _Reader:
    """Reads the files of one load: each once, problems of all of them collected."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.problems: list[Problem] = []
        self._documents: dict[str, Document | None] = {}
        self._texts = texts  # files whose text is given rather than read from the disk

    def document(self, path: str) -> Document | None:
        """The schema-valid document in ``path``, or None (its problems recorded)."""
        if path not in self._documents:
            self._documents[path] = self._read(path)
        return self._documents[path]

    def _read(self, path: str) -> Document | None:
        try:
            checked = _checked(path, self._texts[path] if path in self._texts else _text(path))
        except DefinitionError as exc:
            self.problems.extend(exc.problems)
            return None
        if isinstance(checked, tuple):
            self.problems.extend(checked)
            return None
        # The data becomes the tree's params and initial blackboard, which a run may change.
        return dataclasses.replace(checked, data=copy.deepcopy(checked.data))

    def tree(
        self,
        path: str,
        chain: tuple[str, ...],
        parent_id: str | None,
        overrides: dict[str, str],
        blackboard: dict[str, Any],
    ) -> NodeSpec | None:
        """The root of the file ``path`` under ``parent_id``; merges its blackboard into
        ``blackboard`` after the values of the files it includes."""
        document = self.document(path)
        if document is None:
            return None
        root = self.node(document, ("root",), parent_id, (*chain, path), blackboard, overrides)
        blackboard.update(document.data.get("blackboard", {}))
        return root

    def node(
        self,
        document: Document,
        where: DataPath,
        parent_id: str | None,
        chain: tuple[str, ...],
        blackboard: dict[str, Any],
        overrides: dict[str, str],
    ) -> NodeSpec | None:
        """The node at ``where`` in ``document`` (``overrides``: a Subtree's name and id)."""
        data = _value(document.data, where)
        if data["type"] == "Subtree":
            return self.subtree(document, where, data, parent_id, chain, blackboard)
        name = overrides.get("name") or data.get("name") or short_name(data["type"])
        node_id = overrides.get("id") or data.get("id") or child_id(parent_id, name)
        found = [
            self.node(document, child_where, node_id, chain, blackboard, {})
            for child_where in _child_paths(where, data)
        ]
        return NodeSpec(
            id=node_id,
            name=name,
            kind=data["type"],
            params=dict(data.get("params", {})),
            children=tuple(child for child in found if child is not None),
            source=document.block(where),
        )

    def subtree(
        self,
        document: Document,
        where: DataPath,
        data: dict[str, Any],
        parent_id: str | None,
        chain: tuple[str, ...],
        blackboard: dict[str, Any],
    ) -> NodeSpec | None:
        """The included file's root, in this Subtree node's place."""
        target = os.path.abspath(os.path.join(os.path.dirname(document.path), data["file"]))
        error = _include_error(data["file"], target, chain)
        if error:
            self.problems.append(Problem.at(document.location(where), error))
            return None
        overrides: dict[str, str] = {key: data[key] for key in ("name", "id") if key in data}
        return self.tree(target, chain, parent_id, overrides, blackboard)


@functools.lru_cache(maxsize=CHECKED_DOCUMENTS)
def _checked(path: str, text: str) -> Document | tuple[Problem, ...]:
    """The document ``text`` holds, or its schema problems; DefinitionError when it cannot
    be read as a document at all."""
    document = read_document(path, text, is_json=path.lower().endswith(".json"))
    return tuple(schema_problems(document)) or document


def _child_paths(where: DataPath, data: dict[str, Any]) -> list[DataPath]:
    paths: list[DataPath] = [(*where, "children", i) for i in range(len(data.get("children", [])))]
    return [*paths, (*where, "child")] if "child" in data else paths


def _value(data: Any, where: DataPath) -> Any:
    for step in where:
        data = data[step]
    return data


def _include_error(written: str, target: str, chain: tuple[str, ...]) -> str | None:
    """Why the Subtree file ``written`` (resolved to ``target``) cannot be included, or None."""
    if Path(target).suffix.lower() not in FORMATS:
        return f"subtree file must be .yaml, .yml or .json: {written}"
    if not os.path.isfile(target):
        return f"subtree file not found: {written} (looked for {target})"
    real = [os.path.realpath(path) for path in chain]
    if os.path.realpath(target) in real:
        start = real.index(os.path.realpath(target))
        base = os.path.dirname(chain[0])
        shown = [os.path.relpath(path, base) for path in (*chain[start:], target)]
        return f"include cycle: {' -> '.join(shown)}"
    return None


def _text(path: str) -> str:
    """The file's text; unreadable or non-UTF-8 files are problems, not tracebacks."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DefinitionError(
            [Problem(path, 1, 1, f"cannot read the file: {exc.strerror}")]
        ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        problem = Problem(path, line, column, "the file is not UTF-8 text")
        raise DefinitionError([problem]) from None
