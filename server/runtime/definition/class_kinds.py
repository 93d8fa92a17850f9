"""Users' own behaviour classes, named by import path (``package.module:Class``).

Users keep behaviours next to their trees, so a module is imported with the tree file's folder
at the front of ``sys.path`` (for the duration of the import only). Params are checked against
the constructor's signature before anything is constructed, so a typo in a tree file is
reported as "unknown parameter `treshold`" at the node's line rather than as a TypeError.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import re
import sys
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from py_trees import composites, decorators
from py_trees.behaviour import Behaviour

from ..user_faults import RUNTIME_CONTROL_FLOW
from .kinds import ResolutionError, Role, did_you_mean
from .model import NodeSpec, SourceLocation

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
IMPORT_PATH = re.compile(rf"^(?P<module>{_DOTTED}):(?P<attribute>{_DOTTED})$")
"""``package.module:Class`` (the attribute may be dotted, for a nested class)."""

_SET_BY_NODE = {"name": "the node's `name`", "child": "its `child`", "children": "its `children`"}


def is_import_path(text: str) -> bool:
    """Whether ``text`` has the ``package.module:Attribute`` form."""
    return IMPORT_PATH.match(text) is not None


def short_name(kind: str) -> str:
    """The default node name for a kind: ``Sequence`` -> ``Sequence``,
    ``robot.behaviours:BatteryCheck`` -> ``BatteryCheck``."""
    return kind.rpartition(":")[2].rpartition(".")[2] or kind


@contextmanager
def on_sys_path(folder: Path | None) -> Iterator[None]:
    """Put ``folder`` first on ``sys.path`` for the duration of the block.

    Not thread-safe (``sys.path`` is process state): load trees from one thread at a time.
    """
    entry = str(folder) if folder is not None else None
    if entry is None or entry in sys.path:
        yield
        return
    sys.path.insert(0, entry)
    importlib.invalidate_caches()  # a module written after the last import must be found
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


def import_module(name: str, folder: Path | None) -> ModuleType:
    """Import module ``name``, looking first in ``folder``; ResolutionError says what failed."""
    with on_sys_path(folder):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                where = f"{folder} or on sys.path" if folder else "on sys.path"
                raise ResolutionError(f"module '{name}' not found in {where}") from None
            raise ResolutionError(f"importing module '{name}' failed: {exc}") from None
        except RUNTIME_CONTROL_FLOW:
            raise
        except BaseException as exc:  # a module that exits as it is imported: see user_faults
            raise ResolutionError(
                f"importing module '{name}' failed: {type(exc).__name__}: {exc}"
            ) from None
    _check_not_shadowed(name, folder)
    return module


def _check_not_shadowed(name: str, folder: Path | None) -> None:
    """A module imported earlier from elsewhere hides the tree folder's module of the same name;
    say so instead of silently using the wrong classes."""
    if folder is None:
        return
    top = name.partition(".")[0]
    local = next(
        (c for c in (folder / f"{top}.py", folder / top / "__init__.py") if c.is_file()), None
    )
    loaded = getattr(sys.modules.get(top), "__file__", None)
    if local is not None and loaded and not os.path.samefile(local, loaded):
        raise ResolutionError(
            f"module '{top}' was already imported from {loaded}, so {local} is not used; "
            "rename one of them"
        )


def import_object(reference: str, folder: Path | None) -> object:
    """The object a ``package.module:attribute`` reference names."""
    match = IMPORT_PATH.match(reference)
    if match is None:
        raise ResolutionError(f"'{reference}' is not an import path 'package.module:Name'")
    module = import_module(match["module"], folder)
    found: object = module
    for part in match["attribute"].split("."):
        if not hasattr(found, part):
            raise ResolutionError(_missing_attribute(match["module"], part, found))
        found = getattr(found, part)
    return found


def _missing_attribute(module: str, part: str, owner: object) -> str:
    names = [n for n in dir(owner) if not n.startswith("_")]
    return f"module '{module}' has no attribute '{part}'{did_you_mean(part, names)}"


def resolve_class(reference: str, folder: Path | None) -> type[Behaviour]:
    """The py_trees Behaviour subclass a reference names."""
    found = import_object(reference, folder)
    if not (isinstance(found, type) and issubclass(found, Behaviour)):
        what = f"class {found.__name__}" if isinstance(found, type) else type(found).__name__
        raise ResolutionError(
            f"'{reference}' is a {what}, not a subclass of py_trees.behaviour.Behaviour"
        )
    return found


def class_path(cls: type) -> str:
    """The import path of a class: ``package.module:Class``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def class_location(cls: type) -> SourceLocation:
    """Where a class is defined. Classes made at run time (py_trees makes ``Success``,
    ``Failure``... from functions) fall back to their ``update``/``__init__`` function, then to
    their module's first line.

    Remembered per class object: ``inspect`` parses the whole module to find a class, and a
    tree uses the same few classes for many nodes. A re-imported module (hot reload) brings new
    class objects, so an edited file is read again.
    """
    known = _LOCATIONS.get(cls)
    if known is None:
        known = _LOCATIONS[cls] = _locate(cls)
    return known


_LOCATIONS: weakref.WeakKeyDictionary[type, SourceLocation] = weakref.WeakKeyDictionary()


def _locate(cls: type) -> SourceLocation:
    try:
        lines, line = inspect.getsourcelines(cls)
        path = inspect.getsourcefile(cls) or inspect.getfile(cls)
    except (OSError, TypeError):
        return _fallback_location(cls)
    first = lines[0] if lines else ""
    return SourceLocation(os.path.abspath(path), line, len(first) - len(first.lstrip()) + 1)


def _fallback_location(cls: type) -> SourceLocation:
    for attribute in ("update", "__init__"):
        code = getattr(vars(cls).get(attribute), "__code__", None)
        if code is not None:
            return SourceLocation(os.path.abspath(code.co_filename), code.co_firstlineno, 1)
    module_file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return SourceLocation(os.path.abspath(module_file or f"<{cls.__module__}>"), 1, 1)


def role_of(cls: type[Behaviour]) -> Role:
    """What py_trees base class a behaviour class extends decides its children."""
    if issubclass(cls, composites.Composite):
        return Role.COMPOSITE
    if issubclass(cls, decorators.Decorator):
        return Role.DECORATOR
    return Role.BEHAVIOUR


@dataclass(frozen=True)
class ClassKind:
    """A user's behaviour class; params become constructor keyword arguments."""

    name: str
    cls: type[Behaviour]

    @property
    def role(self) -> Role:
        return role_of(self.cls)

    def normalize(
        self, params: Mapping[str, Any], children: Sequence[NodeSpec]
    ) -> tuple[dict[str, Any], list[str]]:
        """Params as given (defaults stay the constructor's), and every mismatch with its
        signature: unknown, missing or reserved parameters."""
        signature = self._signature()
        if signature is None:
            return dict(params), []
        errors = [self._param_error(key, signature) for key in params]
        errors += self._missing(params, signature)
        return dict(params), [error for error in errors if error]

    def construct(
        self, name: str, params: Mapping[str, Any], children: Sequence[Behaviour]
    ) -> Behaviour:
        """Call the class with the params; a class without a ``name`` parameter is named after
        construction, so the node keeps its name in every view."""
        kwargs = copy.deepcopy(dict(params))
        if self.role is Role.DECORATOR:
            kwargs["child"] = children[0]
        elif self.role is Role.COMPOSITE:
            kwargs["children"] = list(children)
        if self._accepts("name"):
            return self.cls(name=name, **kwargs)
        behaviour = self.cls(**kwargs)
        behaviour.name = name
        return behaviour

    def _signature(self) -> inspect.Signature | None:
        try:
            return inspect.signature(self.cls)
        except (TypeError, ValueError):  # no introspectable signature: let the call decide
            return None

    def _accepts(self, name: str) -> bool:
        signature = self._signature()
        if signature is None:
            return True
        parameter = signature.parameters.get(name)
        keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return (parameter is not None and parameter.kind in keyword) or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
        )

    def _param_error(self, key: str, signature: inspect.Signature) -> str | None:
        if key in _SET_BY_NODE:
            return f"`{key}` cannot be a parameter: it is set from {_SET_BY_NODE[key]}"
        if self._accepts(key):
            return None
        accepted = [n for n in signature.parameters if n not in _SET_BY_NODE and self._accepts(n)]
        listed = ", ".join(accepted) if accepted else "no parameters"
        hint = did_you_mean(key, accepted)
        return f"{self.name}: unknown parameter `{key}`{hint}; the constructor accepts: {listed}"

    def _missing(self, params: Mapping[str, Any], signature: inspect.Signature) -> list[str]:
        given = {*params, "name", "child", "children"}
        errors = []
        for parameter in signature.parameters.values():
            if parameter.default is not inspect.Parameter.empty or parameter.name in given:
                continue
            if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
                errors.append(
                    f"{self.name}: required parameter `{parameter.name}` is positional-only"
                )
            elif parameter.kind not in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                errors.append(f"{self.name}: missing parameter `{parameter.name}`")
        role_needs = {Role.DECORATOR: "child", Role.COMPOSITE: "children"}.get(self.role)
        if role_needs and not self._accepts(role_needs):
            errors.append(f"{self.name}: its constructor has no `{role_needs}` parameter")
        return errors
