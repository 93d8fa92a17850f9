"""Trees made by Python factories: ``path/to/file.py:function`` or ``package.module:function``,
a function that returns a py_trees root behaviour.

The definition is derived by walking the tree the factory returns: each node's kind is its
class's import path and its source location is the class definition (where a Python user puts a
breakpoint). Users cannot add ids to such a tree, so a repeated sibling name gets a
deterministic ``#2``, ``#3`` suffix instead of being an error. Building calls the factory again
for a fresh tree and checks that it has the same shape as the one loaded.
"""

from __future__ import annotations

import inspect
import os
import re
import sysconfig
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from py_trees.behaviour import Behaviour

from ..user_faults import RUNTIME_CONTROL_FLOW
from .class_kinds import class_location, class_path, import_module
from .ids import child_id, unique_id
from .kinds import ResolutionError
from .model import NodeSpec, SourceLocation, TreeDefinition
from .problems import DefinitionError, Problem

FACTORY_REFERENCE = re.compile(r"^(?P<module>.+):(?P<function>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")
"""``module.path:function`` or ``path/to/file.py:function``."""

_LIBRARY_DIRS = tuple(
    sorted(
        {os.path.abspath(sysconfig.get_paths()[key]) for key in ("stdlib", "purelib", "platlib")}
    )
)


@dataclass(frozen=True)
class Factory:
    """A resolved factory function and where it is defined."""

    reference: str
    """As given, with a file path made absolute (so a rebuild finds it from anywhere)."""
    function: Callable[[], Any]
    source: SourceLocation


def is_factory_reference(reference: str) -> bool:
    """Whether ``reference`` has the ``module:function`` or ``file.py:function`` form."""
    return FACTORY_REFERENCE.match(reference) is not None


def load_python_tree(reference: str, base_dir: Path) -> TreeDefinition:
    """The definition of the tree the factory returns (the factory is called once)."""
    factory = resolve_factory(reference, base_dir)
    root, _ = describe(call_factory(factory), factory)
    return TreeDefinition(
        name=factory.reference.rpartition(":")[2],
        root=root,
        blackboard={},
        path=factory.source.path,
        format="python",
        factory=factory.reference,
    )


def resolve_factory(reference: str, base_dir: Path) -> Factory:
    """The factory function a reference names; DefinitionError says why it cannot be found."""
    match = FACTORY_REFERENCE.match(reference)
    if match is None:
        raise _error(reference, f"'{reference}' is not a factory reference 'module:function'")
    module_name, folder, normalized = _module_of(match["module"], base_dir)
    where = folder / f"{module_name}.py" if match["module"].endswith(".py") else None
    shown = str(where) if where else reference
    try:
        module = import_module(module_name, folder)
    except ResolutionError as exc:
        raise _error(shown, str(exc)) from None
    function: Any = module
    for part in match["function"].split("."):
        function = getattr(function, part, None)
    shown = getattr(module, "__file__", None) or shown
    if function is None or not callable(function):
        raise _error(shown, f"module '{module_name}' has no function '{match['function']}'")
    return Factory(
        f"{normalized}:{match['function']}", function, _function_location(function, shown)
    )


def _module_of(written: str, base_dir: Path) -> tuple[str, Path, str]:
    """(module name, folder to import it from, normalised reference) for a file or module."""
    if not written.endswith(".py"):
        return written, base_dir, written
    path = Path(os.path.abspath(base_dir / written))
    if not path.is_file():
        raise _error(str(path), "factory file not found")
    if not path.stem.isidentifier():
        raise _error(
            str(path), f"'{path.name}' cannot be imported: its name is not a Python identifier"
        )
    return path.stem, path.parent, str(path)


def call_factory(factory: Factory) -> Behaviour:
    """A fresh tree from the factory; what it raises or a non-Behaviour result is a problem."""
    try:
        root = factory.function()
    except RUNTIME_CONTROL_FLOW:
        raise
    except BaseException as exc:  # a sys.exit() in the factory too: see user_faults
        where = _raise_site(exc) or factory.source
        message = f"factory '{factory.reference}' raised {type(exc).__name__}: {exc}"
        raise DefinitionError([Problem.at(where, message)]) from None
    if not isinstance(root, Behaviour):
        message = (
            f"factory '{factory.reference}' returned {type(root).__name__}, "
            "not a py_trees Behaviour"
        )
        raise DefinitionError([Problem.at(factory.source, message)])
    return root


def describe(root: Behaviour, factory: Factory) -> tuple[NodeSpec, list[tuple[str, Behaviour]]]:
    """The root's definition and its (stable id, behaviour) pairs in pre-order."""
    pairs: list[tuple[str, Behaviour]] = []
    taken: set[str] = set()

    def visit(behaviour: Behaviour, parent_id: str | None) -> NodeSpec:
        node_id = unique_id(child_id(parent_id, behaviour.name), taken)
        pairs.append((node_id, behaviour))
        children = tuple(visit(child, node_id) for child in behaviour.children)
        cls = type(behaviour)
        return NodeSpec(node_id, behaviour.name, class_path(cls), {}, children, class_location(cls))

    spec = visit(root, None)
    _check_no_shared_behaviours(pairs, factory)
    return spec, pairs


def _check_no_shared_behaviours(pairs: list[tuple[str, Behaviour]], factory: Factory) -> None:
    seen: dict[int, str] = {}
    for node_id, behaviour in pairs:
        if id(behaviour) in seen:
            message = (
                f"the same behaviour object is in the tree twice ('{seen[id(behaviour)]}' and "
                f"'{node_id}'); create one instance per place"
            )
            raise DefinitionError([Problem.at(factory.source, message)])
        seen[id(behaviour)] = node_id


def _function_location(function: Callable[..., Any], fallback: str) -> SourceLocation:
    code = getattr(inspect.unwrap(function), "__code__", None)
    if code is None:
        return SourceLocation(os.path.abspath(fallback), 1, 1)
    return SourceLocation(os.path.abspath(code.co_filename), code.co_firstlineno, 1)


def _raise_site(exc: BaseException) -> SourceLocation | None:
    """The innermost frame of the traceback in the user's own code (not the standard library,
    installed packages or this module): where to look first."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if os.path.abspath(frame.filename) != os.path.abspath(__file__)
        and not os.path.abspath(frame.filename).startswith(_LIBRARY_DIRS)
    ]
    if not frames:
        return None
    last = frames[-1]
    return SourceLocation(os.path.abspath(last.filename), last.lineno or 1, (last.colno or 0) + 1)


def _error(path: str, message: str) -> DefinitionError:
    return DefinitionError([Problem(path, 1, 1, message)])
