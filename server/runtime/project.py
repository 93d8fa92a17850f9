"""Project settings the runtime reads from the workspace's ``canopy.toml``.

Groot2 draws custom nodes as XML tags (``<BatteryCheck/>``); the project says which Python class
each tag is, once, in a ``[nodes]`` table. A BehaviorTree.CPP v4 file has no place for the
blackboard's initial values either (C++ code sets them), so the project gives them per tree
file, by its path from the folder of ``canopy.toml``::

    [nodes]
    BatteryCheck = "robot.behaviours:BatteryCheck"

    [trees."patrol/patrol.xml".blackboard]
    battery = 45

Any tree file may have such a table; its values override the file's own ``blackboard:`` (YAML,
JSON), and a launch's ``blackboard`` overrides both.

What a workflow's model calls cost comes from list prices by default; a deployment with prices
of its own (or a model the defaults lack) says so per model, in US dollars per million tokens::

    [prices."claude-sonnet-4-5"]
    input = 3.0
    output = 15.0
"""

from __future__ import annotations

import datetime
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canopy.bridge import InvalidArgument

from ..config import read_toml
from ..llm.costs import CostTable
from .definition import DefinitionError, Problem

__all__ = ["PROJECT_FILE", "Project", "find_project_file", "read_project"]

PROJECT_FILE = "canopy.toml"
TREE_SETTINGS = frozenset({"blackboard"})


@dataclass(frozen=True, slots=True)
class Project:
    """What the project file governing a tree says about trees (nothing without one)."""

    path: Path | None = None
    nodes: Mapping[str, str] = field(default_factory=dict)
    """Groot2 tag -> ``package.module:Class``."""
    blackboards: Mapping[Path, Mapping[str, Any]] = field(default_factory=dict)
    """Resolved tree file -> its initial blackboard values."""
    costs: CostTable = field(default_factory=CostTable)
    """The prices of model calls: the defaults, with the project's ``[prices]`` on top."""

    def blackboard(self, tree: Path) -> dict[str, Any]:
        """The initial blackboard values the project gives ``tree`` (none if it names none)."""
        return dict(self.blackboards.get(tree.resolve(), {}))


def find_project_file(start: Path) -> Path | None:
    """The nearest ``canopy.toml`` in ``start`` (a file's folder) or above it."""
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        found = candidate / PROJECT_FILE
        if found.is_file():
            return found
    return None


def read_project(start: Path) -> Project:
    """The settings of the project file governing ``start``, checked; ``DefinitionError``
    naming the file, the line and the setting when one is wrong."""
    path = find_project_file(start)
    if path is None:
        return Project()
    try:
        document = read_toml(path)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError([Problem(str(path), 1, 1, f"cannot read it: {exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError([Problem(str(path), 1, 1, f"malformed TOML: {exc}")]) from exc
    checker = _Checker(path, text)
    project = Project(
        path,
        checker.nodes(document.get("nodes", {})),
        checker.trees(document.get("trees", {})),
        checker.prices(document.get("prices", {})),
    )
    if checker.problems:
        raise DefinitionError(checker.problems)
    return project


class _Checker:
    """Checks the tables of one project file, collecting every problem at once."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.problems: list[Problem] = []

    def nodes(self, nodes: Any) -> dict[str, str]:
        if isinstance(nodes, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in nodes.items()
        ):
            return nodes
        self._problem("[nodes]", '[nodes] maps tag names to "package.module:Class" strings')
        return {}

    def trees(self, trees: Any) -> dict[Path, dict[str, Any]]:
        if not isinstance(trees, dict):
            self._problem("trees", '[trees] holds a table per tree file: [trees."path/tree.xml"]')
            return {}
        found: dict[Path, dict[str, Any]] = {}
        for name, settings in trees.items():
            where = f"[trees.{_quoted(name)}]"
            tree = (self.path.parent / name).resolve()
            if not isinstance(settings, dict):
                self._problem(name, f"{where} must be a table, not {_kind(settings)}")
                continue
            if not tree.is_file():
                self._problem(name, f"{where}: no tree file {tree}")
            for unknown in sorted(set(settings) - TREE_SETTINGS):
                known = ", ".join(sorted(TREE_SETTINGS))
                self._problem(name, f"{where}: unknown setting {unknown!r} (known: {known})")
            values = settings.get("blackboard", {})
            if not isinstance(values, dict):
                self._problem(name, f"{where} blackboard must be a table, not {_kind(values)}")
                continue
            for key, value in values.items():
                if not key.strip("/"):
                    self._problem(name, f"[trees.{_quoted(name)}.blackboard]: an empty key")
                    continue
                self._value(key, f"[trees.{_quoted(name)}.blackboard] {key}", value)
            found[tree] = values
        return found

    def prices(self, prices: Any) -> CostTable:
        if not isinstance(prices, dict):
            self._problem("prices", '[prices] holds a table per model: [prices."model"]')
            return CostTable()
        try:
            return CostTable.with_overrides(prices)
        except InvalidArgument as exc:
            self._problem("prices", f"[prices]: {exc}")
            return CostTable()

    def _value(self, near: str, where: str, value: Any) -> None:
        """TOML's dates and times have no JSON form: the log could not record them."""
        if isinstance(value, datetime.date | datetime.time):
            self._problem(
                near,
                f"{where}: a TOML {_kind(value)} is not a blackboard value; write it as a string",
            )
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._value(near, f"{where}[{index}]", item)
        elif isinstance(value, dict):
            for key, item in value.items():
                self._value(near, f"{where}.{key}", item)

    def _problem(self, near: str, message: str) -> None:
        """A problem at the first line that mentions ``near`` (else line 1)."""
        line = next((n for n, text in enumerate(self.lines, 1) if near in text), 1)
        self.problems.append(Problem(str(self.path), line, 1, message))


def _quoted(name: str) -> str:
    return f'"{name}"'


def _kind(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return "date-time"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )
