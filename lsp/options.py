"""The language server's settings, as the client gives them in ``initializationOptions``.

Each option is checked on its own: a wrong one is reported to the user and replaced by its
default, and the others still apply, so a typo in an editor's settings never stops the server.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

__all__ = ["Options", "read_options"]


@dataclass(frozen=True)
class Options:
    """Settings of one session; the JSON names are camelCase (``validateOn``)."""

    validate_on: Literal["change", "save"] = "change"
    """When tree files are checked: at every edit, or when opened and saved only (checking
    imports the tree's behaviour modules)."""
    workspace_classes: bool = True
    """Offer the behaviour classes in the Python files beside a tree file as node types."""
    max_python_files: Annotated[int, msgspec.Meta(ge=0)] = 2000
    """At most this many Python files are read per completion, looking for those classes."""
    check_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    """Seconds a check (or a go-to-definition) may take, importing the tree's behaviour
    modules included; past it the checking process is stopped and the check reported."""


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def read_options(raw: Any) -> tuple[Options, list[str]]:
    """The options in ``raw`` (None: all defaults), and a sentence for each one that was
    wrong and took its default instead."""
    if raw is None:
        return Options(), []
    if not isinstance(raw, dict):
        return Options(), [f"initializationOptions must be an object, not {raw!r}; using defaults"]
    hints = typing.get_type_hints(Options, include_extras=True)
    fields = {_json_name(field.name): field for field in dataclasses.fields(Options)}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        field = fields.get(key)
        if field is None:
            problems.append(f"unknown option {key!r} ignored; known options: {', '.join(fields)}")
            continue
        try:
            values[field.name] = msgspec.convert(value, type=hints[field.name])
        except msgspec.ValidationError as error:
            problems.append(
                f"option {key!r}: {error} (got {value!r}); using the default {field.default!r}"
            )
    return Options(**values), problems
