"""One entry point for every way of defining a tree: the reference's form decides the loader."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .model import TreeDefinition
from .problems import DefinitionError, Problem
from .python_trees import is_factory_reference, load_python_tree
from .xml_trees import load_xml_tree
from .yaml_trees import FORMATS, load_file_tree

TREE_FILE_SUFFIXES = (*FORMATS, ".xml")


def load_tree(
    reference: str,
    *,
    registry: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    text: str | None = None,
) -> TreeDefinition:
    """The checked definition ``reference`` names.

    ``reference`` is a tree file (``.yaml``, ``.yml``, ``.json``, ``.xml``) or a Python factory
    (``path/to/file.py:function`` or ``package.module:function``), relative to ``base_dir``
    (default: the current directory). ``registry`` maps BehaviorTree.CPP node names to
    ``package.module:Class`` import paths, for XML files. ``text`` is a tree file's content
    when it differs from what the disk holds (an editor's unsaved buffer): the file is read
    from it, and need not exist yet. Raises DefinitionError listing every problem found, each
    with its file, line and column.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    suffix = Path(reference).suffix.lower()
    if suffix in TREE_FILE_SUFFIXES:
        path = Path(os.path.abspath(base / reference))
        if text is None and not path.is_file():
            raise DefinitionError([Problem(str(path), 1, 1, "tree file not found")])
        if suffix == ".xml":
            return load_xml_tree(path, registry or {}, text)
        return load_file_tree(path, text)
    if is_factory_reference(reference):
        return load_python_tree(reference, base)
    message = (
        f"cannot load '{reference}': expected a tree file ({', '.join(TREE_FILE_SUFFIXES)}) "
        "or a Python factory 'module:function' / 'file.py:function'"
    )
    raise DefinitionError([Problem(reference, 1, 1, message)])
