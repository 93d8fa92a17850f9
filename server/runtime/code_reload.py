"""Fresh behaviour code on hot reload.

A tree's custom behaviours live in the user's modules, which Python imports once and keeps in
``sys.modules``. A hot reload after editing such a module must run the edited code, so the
runtime remembers when each module the tree uses was last written and re-imports the ones that
changed before it loads the new definition. Library code (py_trees, site-packages) is left alone.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .definition import DefinitionError, Problem, TreeDefinition
from .definition.class_kinds import on_sys_path
from .user_faults import RUNTIME_CONTROL_FLOW

__all__ = ["CodeVersions", "code_versions", "reload_changed"]

CodeVersions = dict[str, int]
"""Module name -> modification time (ns) of its file when the tree was loaded."""

_LIBRARIES = tuple(
    os.path.realpath(p) + os.sep
    for p in {
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
        sysconfig.get_paths()["stdlib"],
    }
)


def code_versions(definition: TreeDefinition) -> CodeVersions:
    """When each of the user's modules behind the tree's node classes, agents' functions and
    tools was last written."""
    versions: CodeVersions = {}
    for node in definition.nodes():
        for reference in (node.kind, *_agent_references(node.params)):
            module_name = reference.partition(":")[0] if ":" in reference else ""
            path = _user_file(module_name)
            if path is not None:
                versions[module_name] = os.stat(path).st_mtime_ns
    return versions


def _agent_references(params: Mapping[str, Any]) -> list[str]:
    """The ``module:function`` texts an agent's params name (its function, its tools')."""
    named = [params.get("function")]
    tools = params.get("tools")
    if isinstance(tools, list):
        named += [tool.get("function") for tool in tools if isinstance(tool, Mapping)]
    return [reference for reference in named if isinstance(reference, str)]


def reload_changed(versions: CodeVersions) -> list[str]:
    """Re-import every module whose file changed since ``versions``; return their names.

    A module that no longer imports (a syntax error) raises DefinitionError with its place, and
    the running tree keeps its current code.
    """
    reloaded = []
    for name, written in versions.items():
        path = _user_file(name)
        if path is None or os.stat(path).st_mtime_ns == written:
            continue
        # Bytecode is trusted by the source's mtime in seconds and its size: an edit saved in
        # the same second, at the same length, would run stale code.
        with contextlib.suppress(OSError):
            os.remove(importlib.util.cache_from_source(path))
        with on_sys_path(_import_root(name, path)):
            try:
                importlib.reload(sys.modules[name])
            except SyntaxError as exc:
                raise DefinitionError(
                    [
                        Problem(
                            exc.filename or path,
                            exc.lineno or 1,
                            exc.offset or 1,
                            f"cannot reload: {exc.msg}",
                        )
                    ]
                ) from exc
            except RUNTIME_CONTROL_FLOW:
                raise
            except BaseException as exc:  # a module that exits as it is imported again
                raise DefinitionError(
                    [
                        Problem(
                            path,
                            1,
                            1,
                            f"reloading module '{name}' failed: {type(exc).__name__}: {exc}",
                        )
                    ]
                ) from exc
        reloaded.append(name)
    return reloaded


def _user_file(module_name: str) -> str | None:
    """The file of an imported module of the user's (not a library's), or None."""
    module = sys.modules.get(module_name) if module_name else None
    path = getattr(module, "__file__", None)
    if not path or not os.path.exists(path):
        return None
    real = os.path.realpath(path)
    return None if real.startswith(_LIBRARIES) else path


def _import_root(name: str, path: str) -> Path:
    """The folder that must be on sys.path for ``name`` to be found again at ``path``."""
    root = Path(path).parent
    depth = name.count(".") + (1 if Path(path).name == "__init__.py" else 0)
    for _ in range(depth):
        root = root.parent
    return root
