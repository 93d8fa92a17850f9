"""Checking a DAP request's arguments before they are used.

Every check raises :class:`~bridge.errors.InvalidArgument` naming the argument, so that bad
input is refused on purpose and a ``KeyError`` or ``TypeError`` in a handler stays what it is:
a bug, answered as an internal error and logged with its traceback.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

import jsonschema

from canopy import schemas
from canopy.bridge import InvalidArgument

__all__ = ["arg", "function_breakpoint", "item", "source_breakpoint", "validate"]

_REQUIRED: Final = object()
_TYPE_NAMES: Final = {
    bool: "a boolean",
    int: "an integer",
    str: "a string",
    dict: "an object",
    list: "an array",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _is(value: Any, kind: type) -> bool:
    """JSON's view of a type: a boolean is no integer."""
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


T = TypeVar("T")


def item(value: Any, name: str, kind: type[T]) -> T:
    """One item of an array argument, checked like an argument."""
    if isinstance(value, kind) and _is(value, kind):
        return value
    raise InvalidArgument(f"each of {name!r} must be {_TYPE_NAMES[kind]}, not {_json_type(value)}")


def arg(args: dict[str, Any], name: str, kind: type, default: Any = _REQUIRED) -> Any:
    """The argument ``name`` checked against ``kind``; ``default`` when absent (or null), and a
    message naming the argument when it is required and missing, or of the wrong type."""
    value = args.get(name)
    if value is None:
        if default is _REQUIRED:
            raise InvalidArgument(f"missing argument {name!r}")
        return default
    if not _is(value, kind):
        raise InvalidArgument(
            f"argument {name!r} must be {_TYPE_NAMES[kind]}, not {_json_type(value)}"
        )
    return value


def source_breakpoint(bp: Any) -> dict[str, Any]:
    """A DAP ``SourceBreakpoint``, checked before it is kept (a bad one must not stay behind
    and break every later breakpoint request)."""
    checked = item(bp, "breakpoints", dict)
    arg(checked, "line", int)
    for name in ("condition", "hitCondition", "logMessage"):
        arg(checked, name, str, None)
    return checked


def function_breakpoint(bp: Any) -> dict[str, Any]:
    """A DAP ``FunctionBreakpoint`` (a node name or id), checked before it is kept."""
    checked = item(bp, "breakpoints", dict)
    if not arg(checked, "name", str).strip():
        raise InvalidArgument("a function breakpoint needs a node name or id")
    for name in ("condition", "hitCondition"):
        arg(checked, name, str, None)
    return checked


def validate(kind: str, args: dict[str, Any]) -> None:
    """Check launch/attach arguments against ``schemas/launch.schema.json``."""
    schema = schemas.load("launch.schema.json")
    validator = jsonschema.Draft202012Validator(
        {"$defs": schema["$defs"], "$ref": f"#/$defs/{kind}"}
    )
    error = jsonschema.exceptions.best_match(validator.iter_errors(args))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        raise InvalidArgument(f"{where + ': ' if where else ''}{error.message}")
