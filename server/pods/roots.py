"""The workspace roots: the folders a pod's programs may come from.

A launch names its ``program`` by path (a tree file, ``file.py:function``) or by module
(``package.module:function``, imported from the launch's folder and the pod's import path). The
server refuses, before the pod is asked, a program whose file (links followed) or folder lies
outside every root or inside the server's own files, so a client learns at once why (403
``OutsideWorkspace``) and no loader ever opens, and quotes in an error, a file the user may not
see. The pod's sandbox (:mod:`server.pods.sandbox`) is what enforces the same line against the
user's own code; this check is the clear refusal in front of it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..remote.wire import OutsideWorkspace
from ..runtime.definition.load import TREE_FILE_SUFFIXES
from ..runtime.definition.python_trees import FACTORY_REFERENCE

__all__ = ["WorkspaceRoots"]


@dataclass(frozen=True, slots=True)
class WorkspaceRoots:
    """``roots`` a program may lie in, less ``hidden`` (the server's data); real paths."""

    roots: Sequence[Path]
    hidden: Sequence[Path] = ()

    def check_launch(self, program: str, base_dir: str) -> None:
        """Refuse a launch whose program file, or whose folder for a module factory, is not
        in the workspace. Other forms (``tree:`` uploads, malformed names) read no file."""
        base = Path(base_dir)
        path = _file_of(program)
        if path is not None:
            self._check(base / path, f"program {program!r}")
        elif FACTORY_REFERENCE.match(program):
            self._check(base, f"the folder {base_dir!r} that {program!r} is imported from")

    def check_reload(self, program: str) -> None:
        """Refuse a reload onto a file outside the workspace. The pod resolves a relative
        program from the execution's folder, checked at launch: such a program may not climb
        out of it with ``..``."""
        path = _file_of(program)
        if path is None:
            return
        if path.is_absolute():
            self._check(path, f"program {program!r}")
        elif ".." in path.parts:
            raise OutsideWorkspace(f"program {program!r} may not leave the launch's folder (..)")

    def _check(self, path: Path, what: str) -> None:
        real = Path(os.path.realpath(path))
        if any(real.is_relative_to(hidden) for hidden in self.hidden):
            raise OutsideWorkspace(f"{what} is in the server's own files")
        if not any(real.is_relative_to(root) for root in self.roots):
            roots = ", ".join(str(root) for root in self.roots)
            raise OutsideWorkspace(f"{what} is outside the workspace roots ({roots})")


def _file_of(program: str) -> Path | None:
    """The file a program names: a tree file, or the module file of ``file.py:function``."""
    if Path(program).suffix.lower() in TREE_FILE_SUFFIXES:
        return Path(program)
    match = FACTORY_REFERENCE.match(program)
    if match and match["module"].endswith(".py"):
        return Path(match["module"])
    return None
