"""Validation of YAML/JSON tree files against ``schemas/tree.schema.json``, worded for people.

jsonschema's own messages are written for schema authors ("Additional properties are not
allowed"); each error is reworded here and placed on the offending key or value of the file.
Messages the schema itself carries in ``errorMessage`` (which VS Code shows too) are used as
they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from canopy import schemas

from .agent_kinds import AGENT_KINDS, agent_params
from .builtin_kinds import BUILTINS, FILE_BUILTINS, REQUIRED
from .documents import Document
from .kinds import did_you_mean
from .model import SourceLocation
from .problems import Problem

SCHEMA_FILE = "tree.schema.json"

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


@cache
def tree_validator() -> jsonschema.Draft202012Validator:
    """The validator for tree files (the schema is read once per process)."""
    schema = schemas.load(SCHEMA_FILE)
    return jsonschema.Draft202012Validator(schema)


def schema_problems(document: Document) -> list[Problem]:
    """Every way ``document`` breaks the tree schema, placed where the fix goes."""
    if document.data is None:
        message = "the tree file is empty; it needs at least a `root` node"
        return [Problem(document.path, 1, 1, message)]
    if _foreign(document.data):
        message = "not a tree file: it has none of the fields `name`, `blackboard`, `root`"
        return [Problem(document.path, 1, 1, message)]
    problems: list[Problem] = []
    for error in tree_validator().iter_errors(document.data):
        problems.extend(_explain(error, document))
    return problems


def _foreign(data: Any) -> bool:
    """Whether ``data`` is a mapping with none of a tree file's fields: some other document
    (a configuration file, a list of secrets). Its problems are not worded key by key, which
    would quote the file back, line by line, to whoever pointed a launch at it."""
    schema = tree_validator().schema
    fields = schema.get("properties", {}) if isinstance(schema, dict) else {}
    return isinstance(data, dict) and bool(data) and not any(key in fields for key in data)


def _explain(error: ValidationError, document: Document) -> Iterator[Problem]:
    where = tuple(error.absolute_path)
    if error.validator in ("anyOf", "oneOf") and where[-1:] == ("type",):
        yield Problem.at(document.location(where), _unknown_type(error.instance))
    elif error.validator in ("anyOf", "oneOf") and error.context:
        yield from _explain(best_match(error.context), document)
    elif error.validator == "additionalProperties":
        yield from _unexpected_fields(error, document, where)
    elif error.validator == "required":
        yield _missing(error, document, where)
    else:
        yield Problem.at(_place(error, document, where), _message(error, where))


def _place(error: ValidationError, document: Document, where: tuple[Any, ...]) -> SourceLocation:
    """A forbidden field is reported at its key, anything else (a node too) at its value."""
    forbidden = error.validator == "not" or error.schema is False
    if forbidden and not _node_type(error.instance):
        return document.key_location(where)
    return document.location(where)


def _missing(error: ValidationError, document: Document, where: tuple[Any, ...]) -> Problem:
    """A missing field of a node, or a missing parameter (reported at the ``params`` key)."""
    instance, required = error.instance, error.validator_value
    # What ``required`` checks: a list of names, of an object.
    assert isinstance(instance, dict)
    assert isinstance(required, list)
    key = next(key for key in required if key not in instance)
    if where[-1:] == ("params",):
        owner = _node_type(_value_at(document.data, where[:-1]))
        return Problem.at(document.key_location(where), f"{owner}missing parameter `{key}`")
    owner = _node_type(instance)
    if key == "params" and isinstance(kind := instance.get("type"), str):
        builtin = BUILTINS.get(kind)
        table = builtin.params if builtin else agent_params(kind) if kind in AGENT_KINDS else ()
        needed = [p.name for p in table if p.default is REQUIRED]
        message = f"{owner}missing `params` (it needs: {', '.join(needed)})"
        return Problem.at(document.location(where), message)
    return Problem.at(document.location(where), f"{owner}missing required field `{key}`")


def _value_at(data: Any, where: tuple[Any, ...]) -> Any:
    for step in where:
        data = data[step]
    return data


def _message(error: ValidationError, where: tuple[Any, ...]) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "errorMessage" in schema:
        return str(schema["errorMessage"])
    field = _field(where)
    if error.validator == "type":
        expected = error.validator_value
        names = expected if isinstance(expected, list) else [str(expected)]
        words = " or ".join(_TYPE_WORDS.get(name, name) for name in names)
        return f"{field} must be {words}, got {_describe(error.instance)}"
    if error.validator == "enum" and isinstance(error.validator_value, list):
        choices = ", ".join(str(choice) for choice in error.validator_value)
        return f"{field} must be one of {choices}; got {error.instance!r}"
    if error.validator == "not" or error.schema is False:
        return f"{field} is not allowed here"
    return f"{field}: {error.message}"


def _unexpected_fields(
    error: ValidationError, document: Document, where: tuple[Any, ...]
) -> Iterator[Problem]:
    allowed = list(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
    instance = error.instance if isinstance(error.instance, dict) else {}
    extras = [key for key in instance if key not in allowed]
    in_params = where[-1:] == ("params",)
    for key in extras:
        hint = did_you_mean(str(key), allowed)
        if in_params and not allowed:
            message = f"this node type takes no parameters, got `{key}`"
        elif in_params:
            message = f"unknown parameter `{key}`{hint}; accepted: {', '.join(allowed)}"
        else:
            message = f"unexpected field `{key}`{hint}; expected one of: {', '.join(allowed)}"
        yield Problem.at(document.key_location((*where, key)), message)


def _unknown_type(value: Any) -> str:
    choices = [*FILE_BUILTINS, *AGENT_KINDS, "Subtree"]
    hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
    return (
        f"unknown node type {value!r}{hint}: use a built-in ({', '.join(choices)}) "
        "or a custom class 'package.module:Class'"
    )


def _field(where: tuple[Any, ...]) -> str:
    """``params.policy`` for the last named step of a data path (``children[2]`` for items)."""
    if not where:
        return "the tree file"
    last = where[-1]
    if isinstance(last, int):
        parent = where[-2] if len(where) > 1 else "item"
        return f"`{parent}[{last}]`"
    return f"`{last}`"


def _node_type(instance: Any) -> str:
    if isinstance(instance, dict) and isinstance(instance.get("type"), str):
        return f"{instance['type']}: "
    return ""


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
