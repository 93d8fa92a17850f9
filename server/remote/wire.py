"""The JSON form of ``ExecutionControl`` calls, results and errors.

The contract's own type hints are the schema: a call's arguments are encoded from its values
and decoded on the far side by the parameter annotations of the same method, and its result by
the return annotation. So the in-process and the remote implementations cannot drift apart: a
new method or field travels without a line written here.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Final

from canopy.bridge import CanopyError, error_class
from canopy.bridge.jsondata import INT_MAX, INT_MIN, refuse_wide_integers

from ..runtime.control import ControlError, ExecutionControl, InvalidRequest
from ..runtime.values import jsonable

__all__ = [
    "CALLS",
    "OutsideWorkspace",
    "PodTimeout",
    "PodUnavailable",
    "RemoteFailure",
    "TooManySessions",
    "decode",
    "decode_arguments",
    "decode_error",
    "decode_result",
    "decode_text_argument",
    "encode",
    "encode_arguments",
    "encode_error",
]

STREAMS: Final = frozenset({"events", "notifications"})
"""Methods that return a stream rather than a value; they travel as subscriptions."""

CALLS: Final = frozenset(
    name
    for name, member in inspect.getmembers(ExecutionControl, inspect.isfunction)
    if getattr(member, "__isabstractmethod__", False) and name not in STREAMS | {"close"}
)
"""Every request/response call of the contract, by method name."""


class RemoteFailure(ControlError):
    """The far side failed in a way the contract does not name (a bug, or a dead pod)."""


class PodUnavailable(RemoteFailure):
    """The user's debug pod could not be started, or died; the message says why."""


class PodTimeout(PodUnavailable):
    """The user's debug pod did not answer a call within its deadline (user code stuck in a
    factory or a behaviour, say); the pod itself goes on."""


class TooManySessions(ControlError):
    """The user already has as many concurrent debug sessions as allowed."""


class OutsideWorkspace(ControlError):
    """A program (or the folder it is found from) lies outside the server's workspace roots,
    or in the server's own files: a pod runs only what the workspace holds."""


def encode(value: Any) -> Any:
    """A JSON-ready form of a contract value: dataclasses as objects, enums as their values,
    tuples as arrays; anything else that is not JSON is shown as the runtime shows values."""
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, bool | int | str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    return jsonable(value)


def decode(annotation: Any, data: Any) -> Any:
    """Rebuild a value of type ``annotation`` from its JSON form (the inverse of
    :func:`encode` for every type the contract uses)."""
    if annotation in (Any, object, type(None)):
        return data
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in typing.get_args(annotation):
            return None
        return _decode_union(typing.get_args(annotation), data)
    if data is None:
        raise TypeError(f"null is not of type {getattr(annotation, '__name__', annotation)}")
    if origin is not None:
        return _decode_generic(origin, typing.get_args(annotation), data)
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return annotation(data)
        if dataclasses.is_dataclass(annotation):
            return _decode_dataclass(annotation, data)
        if annotation in _PRIMITIVES:
            return _primitive(annotation, data)
    return data


_PRIMITIVES: Final = (bool, int, float, str)


def _primitive(annotation: type, data: Any) -> Any:
    """A JSON scalar of the annotated type (an int is a float too; a bool is no number)."""
    if annotation is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if isinstance(data, annotation) and not (annotation is int and isinstance(data, bool)):
        return data
    raise TypeError(f"{data!r} is not of type {annotation.__name__}")


def _decode_union(options: tuple[Any, ...], data: Any) -> Any:
    """The first option the JSON value can be: ``str | dict`` picks by the value's own type."""
    candidates = [option for option in options if option is not type(None)]
    for option in candidates:
        plain = typing.get_origin(option) or option
        if isinstance(plain, type) and isinstance(data, plain):
            return decode(option, data)
    return decode(candidates[0], data)


def _decode_generic(origin: Any, args: tuple[Any, ...], data: Any) -> Any:
    """A sequence from a JSON array, a mapping from a JSON object; TypeError for any other
    value (a client's body may hold anything where the contract wants a container)."""
    mapping = origin in (dict, Mapping, typing.get_origin(Mapping[str, int]))
    sequence = origin in (tuple, list, Sequence, typing.get_origin(Sequence[int]))
    if mapping and not isinstance(data, Mapping):
        raise TypeError(f"{data!r} is not an object")
    if sequence and not isinstance(data, list | tuple):
        raise TypeError(f"{data!r} is not an array")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], item) for item in data)
        return tuple(decode(arg, item) for arg, item in zip(args, data, strict=True))
    if sequence:
        return [decode(args[0], item) for item in data] if args else list(data)
    if mapping:
        value_type = args[1] if args else Any
        return {key: decode(value_type, item) for key, item in data.items()}
    return data


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode_dataclass(cls: type, data: Mapping[str, Any]) -> Any:
    hints = _field_types(cls)
    if not isinstance(data, Mapping):
        raise TypeError(f"{data!r} is not an object")
    values = {}
    for f in dataclasses.fields(cls):
        if f.init and f.name in data:
            try:
                values[f.name] = decode(hints[f.name], data[f.name])
            except (TypeError, ValueError) as error:
                raise TypeError(f"{f.name}: {error}") from error
    return cls(**values)


@functools.cache
def _signature(method: str) -> tuple[dict[str, Any], Any]:
    """Parameter and return annotations of a contract method."""
    function = getattr(ExecutionControl, method)
    hints = typing.get_type_hints(function)
    returns = hints.pop("return", Any)
    return hints, returns


@functools.cache
def _required(method: str) -> tuple[str, ...]:
    """Parameters of a contract method that have no default, in order."""
    parameters = inspect.signature(getattr(ExecutionControl, method)).parameters.values()
    return tuple(
        p.name for p in parameters if p.name != "self" and p.default is inspect.Parameter.empty
    )


def _check_call(method: str) -> None:
    if method not in CALLS:
        raise InvalidRequest(f"unknown control call {method!r}")


def encode_arguments(method: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of a call's arguments. An integer outside the signed 64-bit range (a
    blackboard value, say) is refused by name: neither the link nor the log could keep it."""
    _check_call(method)
    encoded = {name: encode(value) for name, value in arguments.items()}
    refuse_wide_integers(encoded, method)
    return encoded


def decode_arguments(method: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A call's arguments as the method takes them; an unknown or missing argument is refused
    by name."""
    _check_call(method)
    hints, _ = _signature(method)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise InvalidRequest(f"{method} takes no argument {unknown[0]!r}")
    if missing := [name for name in _required(method) if name not in data]:
        raise InvalidRequest(f"{method} needs argument {missing[0]!r}")
    decoded = {}
    for name, value in data.items():
        try:
            decoded[name] = decode(hints[name], value)
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidRequest(f"bad argument {name!r} for {method}: {error}") from error
    return decoded


def decode_text_argument(method: str, name: str, raw: str) -> Any:
    """A query-string argument: numbers by the parameter's annotation, the rest as text."""
    _check_call(method)
    hints, _ = _signature(method)
    if name not in hints:
        raise InvalidRequest(f"{method} takes no argument {name!r}")
    options = typing.get_args(hints[name]) or (hints[name],)
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    if int in options:
        if not _INTEGER.fullmatch(raw) or not INT_MIN <= int(raw) <= INT_MAX:
            raise InvalidRequest(
                f"{name} must be a whole number within the signed 64-bit range, not {shown!r}"
            )
        return int(raw)
    if float in options:
        if not _NUMBER.fullmatch(raw) or not math.isfinite(float(raw)):
            raise InvalidRequest(f"{name} must be a finite number, not {shown!r}")
        return float(raw)
    return raw


_INTEGER: Final = re.compile(r"-?[0-9]{1,19}")
_NUMBER: Final = re.compile(r"-?[0-9]{1,300}(\.[0-9]{1,300})?([eE][-+]?[0-9]{1,3})?")
"""Numbers as JSON writes them (no ``nan``, ``inf``, ``_`` or digits of other scripts, all of
which ``int()`` and ``float()`` would take)."""


def decode_result(method: str, data: Any) -> Any:
    """A call's result as the method returns it."""
    _, returns = _signature(method)
    return decode(returns, data)


def encode_error(error: BaseException) -> dict[str, Any]:
    """An error's JSON form: its code, its readable message and what rebuilds it (the unknown
    id, the definition's problems...). Anything that is not a :class:`CanopyError` is a bug of
    the far side, and travels as a :class:`RemoteFailure` naming it."""
    if not isinstance(error, CanopyError):
        error = RemoteFailure(f"{type(error).__name__}: {error}")
    return {**error.details(), "error": error.code, "message": str(error)}


def decode_error(data: Mapping[str, Any]) -> CanopyError:
    """The exception an error's JSON form stands for, found by its code among every
    :class:`CanopyError` (a form that names none is a :class:`RemoteFailure`)."""
    message = str(data.get("message", "the remote side failed"))
    kind = error_class(str(data.get("error")))
    if kind is None:
        return RemoteFailure(message)
    try:
        return kind.rebuild(message, data)
    except (KeyError, TypeError, ValueError):
        return RemoteFailure(message)
