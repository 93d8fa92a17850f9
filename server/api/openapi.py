"""The OpenAPI 3.1 description of the HTTP API, built from the code that serves it.

The control plane's routes come from :data:`server.remote.routes.ROUTES` and their arguments,
results and errors from the ``ExecutionControl`` contract's own type hints, the same hints
:mod:`server.remote.wire` decodes requests with; so a new call or field appears here without a
line written by hand. The rest of the API (events, pods, platform endpoints) is described once
below, next to the names of its handlers.

The document is committed as ``schemas/openapi.json`` (next to the other formats, so the editor
extension and other clients can read it without a server) and served from there at
``GET /api/v1/openapi.json``; a test fails when the file and :func:`build_document` drift.
Regenerate it with::

    python -m canopy.server.api.openapi > schemas/openapi.json
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import json
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from enum import Enum
from importlib import resources
from typing import Any, Final

from aiohttp import web

from canopy import schemas
from canopy.bridge import TOPICS

from ..pods.protocol import CONNECT_PATH, POD_HEADER
from ..remote import wire
from ..remote.routes import ROUTES, Route
from ..runtime.control import ExecutionControl
from ..runtime.engine import Notification
from ..trees import FORMATS
from ..trees import NAME as TREE_NAME
from .events import MAX_EVENTS_PER_CALL
from .metrics import METRICS_PATH
from .middleware import OPENAPI_PATH
from .params import DEFAULT_LIMIT, MAX_LIMIT
from .problems import ERROR_STATUS, PROBLEM_CONTENT_TYPE, PROBLEM_TYPES

__all__ = ["DOCUMENT_FILE", "REGENERATE", "build_document", "serve_openapi"]

DOCUMENT_FILE: Final = "openapi.json"
"""The committed document, in the ``schemas`` package."""
REGENERATE: Final = "python -m canopy.server.api.openapi > schemas/openapi.json"
API_VERSION: Final = "1.0.0"
"""The version of the ``/api/v1`` surface (not of the package, so a release that changes no
route leaves the document as it is)."""
JSON: Final = "application/json"
SCHEMA_REF: Final = "#/components/schemas/"
RESPONSE_REF: Final = "#/components/responses/"

_STATUS_TEXT: Final = {
    400: ("BadRequest", "The request is malformed: a bad parameter, argument or body."),
    401: ("Unauthorized", "No valid bearer token (missing, unknown or revoked)."),
    403: ("Forbidden", "The token may not do this (another tenant, a reserved event type)."),
    404: ("NotFound", "Nothing there (for control calls: no such execution of yours)."),
    409: ("Conflict", "The request does not fit the current state (e.g. stepping while running)."),
    413: ("TooLarge", "The body (or the number of events) is over the server's limit."),
    422: ("Unprocessable", "Well-formed but invalid: a bad event, tree, expression or picture."),
    429: (
        "TooManyRequests",
        "Over this token's rate limit, or over the user's allowed debug sessions. Retry after"
        " the number of seconds in Retry-After.",
    ),
    502: ("BadGateway", "The debug pod failed in a way the contract does not name."),
    503: ("Unavailable", "The event log or the debug pod is unavailable; retry after Retry-After."),
}
"""Every problem status the API answers, as a reusable response."""
_RETRY_AFTER: Final = frozenset({429, 503})
CONTROL_ERRORS: Final = (400, 401, 404, 409, 422, 429, 502, 503)
"""What a control call may answer besides its result: see ``server.api.problems.ERROR_STATUS``
(any contract error may come from any call, since the pod decides)."""


# -- JSON Schemas from type hints ----------------------------------------------------------


class _Components:
    """Component schemas collected while describing types, one per dataclass and enum."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}
        self._owners: dict[str, type] = {}

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": SCHEMA_REF + name}

    def add(self, name: str, schema: dict[str, Any], owner: type | None = None) -> dict[str, Any]:
        """Register ``schema`` under ``name`` (once); a second type by the same name is a bug
        to fix here, not a silent overwrite."""
        known = self._owners.get(name)
        if owner is not None and known is not None and known is not owner:
            raise ValueError(f"two types named {name}: {known} and {owner}")
        if owner is not None:
            self._owners[name] = owner
        self.schemas.setdefault(name, schema)
        return self.ref(name)

    def of(self, annotation: Any) -> dict[str, Any]:
        """The JSON Schema of values of ``annotation`` in their wire form
        (:func:`server.remote.wire.encode`)."""
        if annotation is Any:
            return {}
        if annotation is None or annotation is type(None):
            return {"type": "null"}
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            return _union([self.of(option) for option in typing.get_args(annotation)])
        if origin is not None:
            return self._generic(origin, typing.get_args(annotation))
        if isinstance(annotation, type):
            if issubclass(annotation, Enum):
                return self._enum(annotation)
            if dataclasses.is_dataclass(annotation):
                return self._dataclass(annotation)
            if annotation in _PRIMITIVE_TYPES:
                return {"type": _PRIMITIVE_TYPES[annotation]}
            if issubclass(annotation, Mapping):
                return {"type": "object"}
        raise TypeError(f"no JSON Schema for {annotation!r}: teach server.api.openapi about it")

    def _generic(self, origin: Any, args: tuple[Any, ...]) -> dict[str, Any]:
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.of(args[0])}
            items = [self.of(arg) for arg in args]
            return {
                "type": "array",
                "prefixItems": items,
                "minItems": len(items),
                "maxItems": len(items),
            }
        if isinstance(origin, type) and issubclass(origin, Mapping):
            value = self.of(args[1]) if args else {}
            if not value:  # any value
                return {"type": "object"}
            return {"type": "object", "additionalProperties": value}
        if isinstance(origin, type) and issubclass(origin, Sequence | list):
            return {"type": "array", "items": self.of(args[0])} if args else {"type": "array"}
        raise TypeError(f"no JSON Schema for {origin!r}{list(args)}")

    def _enum(self, cls: type[Enum]) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "enum": [member.value for member in cls]}
        if not all(isinstance(member.value, str) for member in cls):
            schema.pop("type")
        return self.add(cls.__name__, _described(schema, cls), cls)

    def _dataclass(self, cls: type) -> dict[str, Any]:
        name = cls.__name__
        if name in self.schemas:
            return self.add(name, self.schemas[name], cls)
        self.schemas[name] = {}  # a placeholder, so that a recursive type refers to itself
        hints = _hints(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in dataclasses.fields(cls):
            schema = dict(self.of(hints[field.name]))
            default = _field_default(field)
            if default is _NO_DEFAULT:
                required.append(field.name)
            else:
                schema["default"] = default
            properties[field.name] = schema
        schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        self.schemas[name] = _described(schema, cls)
        self._owners[name] = cls
        return self.ref(name)


_PRIMITIVE_TYPES: Final[dict[type, str]] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
}
_NO_DEFAULT: Final = object()


def _union(options: list[dict[str, Any]]) -> dict[str, Any]:
    """``X | None`` of a plain type as ``{"type": [x, "null"]}``; anything else as ``anyOf``."""
    plain = [o for o in options if set(o) == {"type"} and isinstance(o["type"], str)]
    if len(plain) == len(options):
        return {"type": [o["type"] for o in options]}
    return {"anyOf": options}


@functools.cache
def _hints(owner: Any) -> dict[str, Any]:
    return typing.get_type_hints(owner)


def _field_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return wire.encode(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return wire.encode(field.default_factory())
    return _NO_DEFAULT


def _described(schema: dict[str, Any], cls: type) -> dict[str, Any]:
    """Add the class's own docstring (not the one dataclasses or enums make up)."""
    doc = cls.__dict__.get("__doc__")
    if doc and not doc.startswith(f"{cls.__name__}(") and doc != "An enumeration.":
        return {"description": inspect.cleandoc(doc), **schema}
    return schema


# -- the control plane ---------------------------------------------------------------------


def _control_operation(route: Route, components: _Components) -> dict[str, Any]:
    """One control call: path arguments in the path, the others in the query (GET, DELETE)
    or as members of a JSON object body; the answer is the JSON form of the result."""
    method = getattr(ExecutionControl, route.call)
    hints = dict(_hints(method))
    returns = hints.pop("return", Any)
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(method).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": components.of(hints[name])}
        for name in route.path_arguments
    ]
    others = [name for name in hints if name not in route.path_arguments]
    operation: dict[str, Any] = {
        "operationId": route.call,
        "tags": ["executions"],
        "summary": route.summary,
        "description": inspect.cleandoc(method.__doc__ or route.summary),
    }
    statuses = list(CONTROL_ERRORS)
    if route.in_query:
        for name in others:
            schema = _without_null(components.of(hints[name]))
            if name in defaults and defaults[name] is not None:
                schema["default"] = wire.encode(defaults[name])
            parameters.append(
                {"name": name, "in": "query", "required": name not in defaults, "schema": schema}
            )
    elif others:
        properties = {}
        for name in others:
            schema = dict(components.of(hints[name]))
            if name in defaults:
                schema["default"] = wire.encode(defaults[name])
            properties[name] = schema
        body: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        required = [name for name in others if name not in defaults]
        if required:
            body["required"] = required
        operation["requestBody"] = {
            "required": bool(required),
            "description": f"The arguments of `{route.call}` by name.",
            "content": {JSON: {"schema": body}},
        }
        statuses.append(413)
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = {
        "200": {
            "description": "The JSON form of the call's result.",
            "content": {JSON: {"schema": components.of(returns)}},
        },
        **_problems(statuses),
    }
    return operation


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null."""
    kinds = schema.get("type")
    if isinstance(kinds, list):
        rest = [kind for kind in kinds if kind != "null"]
        return {**schema, "type": rest[0] if len(rest) == 1 else rest}
    return dict(schema)


def _problems(statuses: Sequence[int]) -> dict[str, Any]:
    return {
        str(status): {"$ref": RESPONSE_REF + _STATUS_TEXT[status][0]} for status in sorted(statuses)
    }


# -- the rest of the API -------------------------------------------------------------------


def _event_parameters(*, with_limit: bool) -> list[dict[str, Any]]:
    topics = sorted(TOPICS)
    parameters: list[dict[str, Any]] = [
        {
            "name": "after",
            "in": "query",
            "description": "Only events after this offset.",
            "schema": {"type": "integer", "minimum": 0, "default": 0},
        }
    ]
    if with_limit:
        parameters.append(
            {
                "name": "limit",
                "in": "query",
                "description": "At most this many events.",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                },
            }
        )
    for name, description, items in (
        ("topic", "Only these topics (repeatable).", {"enum": topics}),
        ("stream", "Only these streams (repeatable).", {"type": "string", "minLength": 1}),
        ("type", "Only these event types (repeatable).", {"type": "string", "minLength": 1}),
    ):
        parameters.append(
            {
                "name": name,
                "in": "query",
                "description": description,
                "style": "form",
                "explode": True,
                "schema": {"type": "array", "items": items},
            }
        )
    return parameters


def _websocket(description: str, frames: str) -> dict[str, Any]:
    return {
        "description": f"Switching Protocols: a WebSocket. {description}",
        "x-websocket-messages": {"$ref": SCHEMA_REF + frames},
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


_TREE_NAME: Final = {"type": "string", "pattern": TREE_NAME.pattern}


def _fixed_paths() -> dict[str, dict[str, Any]]:
    """Everything outside the control plane, by path and method."""
    public: list[dict[str, list[str]]] = []
    return {
        "/healthz": {
            "get": {
                "operationId": "health",
                "tags": ["platform"],
                "summary": "Liveness, with the log's head offset",
                "security": public,
                "responses": {
                    "200": _json({"$ref": SCHEMA_REF + "Health"}, "The server and its log work."),
                    **_problems([503]),
                },
            }
        },
        METRICS_PATH: {
            "get": {
                "operationId": "metrics",
                "tags": ["platform"],
                "summary": "Prometheus metrics of this server",
                "security": public,
                "responses": {
                    "200": {
                        "description": "The Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "tags": ["platform"],
                "summary": "This document",
                "security": public,
                "responses": {
                    "200": _json({"type": "object"}, "The OpenAPI 3.1 description of the API.")
                },
            }
        },
        "/api/v1/events": {
            "post": {
                "operationId": "append_events",
                "tags": ["events"],
                "summary": "Append events atomically, as the caller's tenant",
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {"$ref": SCHEMA_REF + "AppendRequest"}}},
                },
                "responses": {
                    "201": _json(
                        {"$ref": SCHEMA_REF + "AppendResponse"},
                        "Appended; the offsets of the events, in order.",
                    ),
                    **_problems([400, 401, 403, 409, 413, 422, 429, 503]),
                },
            },
            "get": {
                "operationId": "read_events",
                "tags": ["events"],
                "summary": "One page of the caller's events after an offset",
                "parameters": _event_parameters(with_limit=True),
                "responses": {
                    "200": _json({"$ref": SCHEMA_REF + "EventPage"}, "A page of events."),
                    **_problems([400, 401, 429, 503]),
                },
            },
        },
        "/api/v1/events/subscribe": {
            "get": {
                "operationId": "subscribe_events",
                "tags": ["events"],
                "summary": "Catch-up then live events (WebSocket)",
                "description": "Frames carry pages of events and the position to resume from;"
                " a refused query is answered by an error frame and close code 1008.",
                "parameters": _event_parameters(with_limit=False),
                "responses": {
                    "101": _websocket("Server frames: EventsFrame or ErrorFrame.", "EventFrames"),
                    **_problems([400, 401, 429]),
                },
            }
        },
        "/api/v1/notifications": {
            "get": {
                "operationId": "notifications",
                "tags": ["executions"],
                "summary": "Stops, continues, output and ends of the caller's executions",
                "description": "A client listening to an execution is attached to it (see the"
                " pod's orphan policy). A client more than 1024 notifications behind gets an"
                " error frame and the socket closes.",
                "parameters": [
                    {
                        "name": "execution_id",
                        "in": "query",
                        "required": False,
                        "description": "Only this execution's notifications.",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "101": _websocket(
                        "Server frames: NotificationFrame or ErrorFrame.", "NotificationFrames"
                    ),
                    **_problems([400, 401, 429]),
                },
            }
        },
        "/api/v1/pods/me": {
            "get": {
                "operationId": "get_my_pod",
                "tags": ["pods"],
                "summary": "The caller's debug pod",
                "responses": {
                    "200": _json({"$ref": SCHEMA_REF + "Pod"}, "The pod."),
                    **_problems([401, 404, 429]),
                },
            },
            "put": {
                "operationId": "ensure_my_pod",
                "tags": ["pods"],
                "summary": "Start the caller's debug pod if needed; wait until it is ready",
                "responses": {
                    "200": _json(
                        {"$ref": SCHEMA_REF + "ReadyPod"}, "The ready pod, and how long it took."
                    ),
                    **_problems([401, 429, 502, 503]),
                },
            },
            "delete": {
                "operationId": "delete_my_pod",
                "tags": ["pods"],
                "summary": "Stop the caller's debug pod (its executions end and flush first)",
                "responses": {
                    "204": {"description": "No pod runs for the caller now."},
                    **_problems([401, 429]),
                },
            },
        },
        "/api/v1/trees": {
            "post": {
                "operationId": "upload_tree",
                "tags": ["trees"],
                "summary": "Upload a version of a tree definition",
                "description": "Launch it with the program `tree:<name>` (the latest version) or"
                " `tree:<name>@<version>`. Uploading the latest content again is no new version.",
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {"$ref": SCHEMA_REF + "TreeUpload"}}},
                },
                "responses": {
                    "200": _json(
                        {"$ref": SCHEMA_REF + "TreeSummary"}, "Unchanged: the latest version."
                    ),
                    "201": _json({"$ref": SCHEMA_REF + "TreeSummary"}, "The new version."),
                    **_problems([400, 401, 409, 413, 422, 429, 503]),
                },
            },
            "get": {
                "operationId": "list_trees",
                "tags": ["trees"],
                "summary": "The latest version of each of the tenant's trees",
                "responses": {
                    "200": _json({"$ref": SCHEMA_REF + "TreeList"}, "The trees."),
                    **_problems([401, 429, 503]),
                },
            },
        },
        "/api/v1/trees/{name}": {
            "get": {
                "operationId": "get_tree",
                "tags": ["trees"],
                "summary": "One version of a tree (default the latest), with its content",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": _TREE_NAME},
                    {
                        "name": "version",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                ],
                "responses": {
                    "200": _json({"$ref": SCHEMA_REF + "Tree"}, "The version and its content."),
                    **_problems([400, 401, 404, 429, 503]),
                },
            }
        },
        CONNECT_PATH: {
            "get": {
                "operationId": "connect_pod",
                "tags": ["pods"],
                "summary": "A pod worker's link (WebSocket; see server.pods.protocol)",
                "description": "Only pod workers connect here, with their own pod token, never"
                " a user's.",
                "security": [{"podToken": []}],
                "parameters": [
                    {
                        "name": POD_HEADER,
                        "in": "header",
                        "required": True,
                        "description": "The id of the connecting pod.",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "101": {"description": "Switching Protocols: the pod link."},
                    **_problems([401, 409]),
                },
            },
        },
    }


def _event_schema(name: str, *, tenant_optional: bool = False) -> dict[str, Any]:
    """An event schema from ``schemas/``, as a component (its own ``$schema`` and ``$id``
    removed: the document's dialect and place apply)."""
    schema = {k: v for k, v in copy.deepcopy(schemas.load(name)).items() if k[0] != "$"}
    if tenant_optional:
        schema["required"] = [r for r in schema["required"] if r != "tenant_id"]
        schema["properties"]["tenant_id"]["description"] += (
            " Optional through the API: it defaults to the token's tenant, and any other is"
            " refused (403)."
        )
    return schema


def _fixed_schemas() -> dict[str, dict[str, Any]]:
    """Component schemas of the non-control endpoints and of problem documents."""
    problem_frame = {
        "allOf": [
            {"$ref": SCHEMA_REF + "Problem"},
            {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"const": "error"}},
            },
        ]
    }
    pod = {
        "type": "object",
        "required": ["pod_id", "state", "provider", "executions", "idle_seconds"],
        "properties": {
            "pod_id": {"type": "string"},
            "state": {"enum": ["starting", "ready", "reconnecting", "stopped"]},
            "provider": {"type": "string", "examples": ["local", "kubernetes"]},
            "executions": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Ids of the executions not yet ended.",
            },
            "idle_seconds": {"type": "number"},
        },
    }
    tree = {
        "type": "object",
        "required": ["name", "version", "format", "sha256", "uploaded_at"],
        "properties": {
            "name": _TREE_NAME,
            "version": {"type": "integer", "minimum": 1},
            "format": {"enum": list(FORMATS)},
            "sha256": {"type": "string"},
            "uploaded_at": {"type": "string", "format": "date-time"},
        },
    }
    return {
        "Problem": {
            "description": "An RFC 9457 problem document (application/problem+json).",
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "format": "uri", "examples": [PROBLEM_TYPES + "x"]},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "field": {"type": "string", "description": "The member or parameter at fault."},
                "index": {"type": "integer", "description": "The event at fault, by position."},
                "error": {
                    "description": "The code of the error the call raised (see the error"
                    " table); the members below rebuild it.",
                    "enum": sorted(ERROR_STATUS),
                },
                "execution_id": {"type": "string", "description": "UnknownExecution"},
                "arguments": {
                    "type": "array",
                    "description": "The error's own arguments, e.g. an ExpressionError's"
                    " message, source, column and end column.",
                },
                "problems": {
                    "type": "array",
                    "description": "DefinitionError: every problem found, in file order.",
                    "items": {
                        "type": "object",
                        "required": ["path", "line", "column", "message"],
                        "properties": {
                            "path": {"type": "string"},
                            "line": {"type": ["integer", "null"]},
                            "column": {"type": ["integer", "null"]},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
            "additionalProperties": True,
        },
        "Health": {
            "type": "object",
            "required": ["status", "head"],
            "properties": {"status": {"const": "ok"}, "head": {"type": "integer", "minimum": 0}},
        },
        "NewEvent": _event_schema("new-event.schema.json", tenant_optional=True),
        "RecordedEvent": _event_schema("event.schema.json"),
        "AppendRequest": {
            "type": "object",
            "required": ["events"],
            "additionalProperties": False,
            "properties": {
                "events": {
                    "type": "array",
                    "maxItems": MAX_EVENTS_PER_CALL,
                    "items": {"$ref": SCHEMA_REF + "NewEvent"},
                }
            },
        },
        "AppendResponse": {
            "type": "object",
            "required": ["offsets"],
            "properties": {"offsets": {"type": "array", "items": {"type": "integer"}}},
        },
        "EventPage": {
            "type": "object",
            "required": ["events", "next_after", "head"],
            "properties": {
                "events": {"type": "array", "items": {"$ref": SCHEMA_REF + "RecordedEvent"}},
                "next_after": {
                    "type": "integer",
                    "description": "Pass as `after` to read the next page.",
                },
                "head": {"type": "integer", "description": "The log's last offset."},
            },
        },
        "EventFrames": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["kind", "events", "position"],
                    "properties": {
                        "kind": {"const": "events"},
                        "events": {
                            "type": "array",
                            "items": {"$ref": SCHEMA_REF + "RecordedEvent"},
                        },
                        "position": {
                            "type": "integer",
                            "description": "Resume from here (as `after`) after a reconnect.",
                        },
                    },
                },
                problem_frame,
            ]
        },
        "NotificationFrames": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["kind", "notification"],
                    "properties": {
                        "kind": {"const": "notification"},
                        "notification": {"$ref": SCHEMA_REF + "Notification"},
                    },
                },
                problem_frame,
            ]
        },
        "Pod": pod,
        "TreeUpload": {
            "type": "object",
            "required": ["name", "format", "content"],
            "additionalProperties": False,
            "properties": {
                "name": _TREE_NAME,
                "format": {"enum": list(FORMATS)},
                "content": {"type": "string", "description": "The definition file's text."},
            },
        },
        "TreeSummary": tree,
        "TreeList": {
            "type": "object",
            "required": ["trees"],
            "properties": {
                "trees": {"type": "array", "items": {"$ref": SCHEMA_REF + "TreeSummary"}}
            },
        },
        "Tree": {
            "allOf": [
                {"$ref": SCHEMA_REF + "TreeSummary"},
                {
                    "type": "object",
                    "required": ["content"],
                    "properties": {"content": {"type": "string"}},
                },
            ]
        },
        "ReadyPod": {
            "allOf": [
                {"$ref": SCHEMA_REF + "Pod"},
                {
                    "type": "object",
                    "required": ["ready_ms"],
                    "properties": {
                        "ready_ms": {
                            "type": "number",
                            "description": "How long this call waited for the pod.",
                        }
                    },
                },
            ]
        },
    }


def _responses() -> dict[str, Any]:
    """One reusable response per problem status."""
    responses = {}
    for status, (name, description) in sorted(_STATUS_TEXT.items()):
        response: dict[str, Any] = {
            "description": description,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": SCHEMA_REF + "Problem"}}},
        }
        if status in _RETRY_AFTER:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        if status == 401:
            response["headers"] = {
                "WWW-Authenticate": {
                    "description": 'The challenge: `Bearer realm="canopy"`.',
                    "schema": {"type": "string"},
                }
            }
        responses[name] = response
    return responses


def build_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route :func:`server.app.create_app` registers."""
    components = _Components()
    paths = _fixed_paths()
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.verb.lower()] = _control_operation(route, components)
    components.of(Notification)  # for the notification frames
    schemas_ = {**_fixed_schemas(), **components.schemas}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Canopy API",
            "version": API_VERSION,
            "description": "Debug behaviour trees and LLM workflows in debug pods, over one"
            " shared event log. Errors are RFC 9457 problem documents. Every `/api/` route"
            " takes a bearer token (`canopy serve` prints one and writes it to"
            " .canopy/server.json) and is rate limited per token.",
        },
        "tags": [
            {"name": "events", "description": "The shared event log, as the caller's tenant."},
            {"name": "executions", "description": "Executions in the caller's debug pod."},
            {"name": "pods", "description": "The caller's debug pod, and the workers' link."},
            {"name": "trees", "description": "Versions of tree definitions, kept in the log."},
            {"name": "platform", "description": "Health, metrics and this document."},
        ],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `canopy serve` or `canopy tokens issue`.",
                },
                "podToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A debug pod's own token, given to its worker at start.",
                },
            },
            "responses": _responses(),
            "schemas": dict(sorted(schemas_.items())),
        },
    }


def render() -> str:
    """The committed file's text: stable key order, two-space indent, final newline."""
    return json.dumps(build_document(), indent=2, ensure_ascii=False) + "\n"


@functools.cache
def _committed() -> bytes:
    return resources.files(schemas).joinpath(DOCUMENT_FILE).read_bytes()


async def serve_openapi(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: the committed document (no token needed)."""
    return web.Response(body=_committed(), content_type=JSON)


if __name__ == "__main__":
    sys.stdout.write(render())
