"""Project settings the runtime reads from the workspace's ``canopy.toml``.

Groot2 draws custom nodes as XML tags (``<BatteryCheck/>``); the project says which Python class
each tag is, once, in a ``[nodes]`` table::

    [nodes]
    BatteryCheck = "robot.behaviours:BatteryCheck"
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..config import read_toml
from .definition import DefinitionError, Problem

__all__ = ["PROJECT_FILE", "find_project_file", "node_registry"]

PROJECT_FILE = "canopy.toml"


def find_project_file(start: Path) -> Path | None:
    """The nearest ``canopy.toml`` in ``start`` (a file's folder) or above it."""
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        found = candidate / PROJECT_FILE
        if found.is_file():
            return found
    return None


def node_registry(start: Path) -> dict[str, str]:
    """The ``[nodes]`` table of the project file governing ``start`` (empty without one)."""
    path = find_project_file(start)
    if path is None:
        return {}
    try:
        document = read_toml(path)
    except OSError as exc:
        raise DefinitionError([Problem(str(path), 1, 1, f"cannot read it: {exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError([Problem(str(path), 1, 1, f"malformed TOML: {exc}")]) from exc
    nodes = document.get("nodes", {})
    if not isinstance(nodes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in nodes.items()
    ):
        raise DefinitionError(
            [Problem(str(path), 1, 1, '[nodes] maps tag names to "package.module:Class" strings')]
        )
    return nodes
