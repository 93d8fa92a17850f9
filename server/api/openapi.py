"""The OpenAPI 3.1 description of the HTTP API, built from the code that serves it.

The control plane's routes come from :data:`server.remote.routes.ROUTES` and their arguments,
results and errors from the ``ExecutionControl`` contract's own type hints, the same hints
:mod:`server.remote.wire` decodes requests with, converted to JSON Schema by msgspec; so a new
call or field appears here without a line written by hand. The rest of the API (events, pods,
platform endpoints) is described once below, next to the names of its handlers.

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
import operator
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any, Final

import msgspec
from aiohttp import web

from canopy import schemas
from canopy.bridge import TOPICS

from ..incidents.otlp import LOGS_PATH, OTLP_JSON, OTLP_PROTOBUF
from ..pods.protocol import CONNECT_PATH, POD_HEADER
from ..remote import wire
from ..remote.routes import ROUTES, Route
from ..runtime.control import ExecutionControl
from ..runtime.engine import Notification
from ..trees import FORMATS
from ..trees import NAME as TREE_NAME
from .audit import AUDIT_ACTIONS, DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT, MAX_SCANNED
from .events import MAX_EVENTS_PER_CALL
from .evidence import (
    DEFAULT_BUCKET_SECONDS,
    MAX_BUCKET_SECONDS,
    MAX_LINE_ERRORS,
    NDJSON_TYPES,
)
from .evidence import DEFAULT_LIMIT as DEFAULT_EVIDENCE_LIMIT
from .evidence import MAX_LIMIT as MAX_EVIDENCE_LIMIT
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
    403: (
        "Forbidden",
        "The token may not do this (another tenant, a reserved event type, a program outside"
        " the workspace roots).",
    ),
    404: ("NotFound", "Nothing there (for control calls: no such execution of yours)."),
    408: (
        "RequestTimeout",
        "The body did not arrive whole within the server's body_timeout; the connection closes.",
    ),
    409: ("Conflict", "The request does not fit the current state (e.g. stepping while running)."),
    413: ("TooLarge", "The body (or the number of events) is over the server's limit."),
    415: ("UnsupportedMediaType", "The body's Content-Type is not one the route takes."),
    422: ("Unprocessable", "Well-formed but invalid: a bad event, tree, expression or picture."),
    429: (
        "TooManyRequests",
        "Over this token's rate limit or its open requests (WebSockets included), or over the"
        " user's allowed debug sessions. Retry after the number of seconds in Retry-After.",
    ),
    502: ("BadGateway", "The debug pod failed in a way the contract does not name."),
    503: ("Unavailable", "The event log or the debug pod is unavailable; retry after Retry-After."),
    504: (
        "GatewayTimeout",
        "The debug pod did not answer within the server's pod_call_timeout (user code stuck in"
        " a factory or a behaviour); the pod goes on.",
    ),
}
"""Every problem status the API answers, as a reusable response."""
_RETRY_AFTER: Final = frozenset({429, 503})
CONTROL_ERRORS: Final = (400, 401, 403, 404, 409, 422, 429, 502, 503, 504)
"""What a control call may answer besides its result: see ``server.api.problems.ERROR_STATUS``
(any contract error may come from any call, since the pod decides)."""


# -- the control plane ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Call:
    """A control route with the type hints and defaults of its ``ExecutionControl`` method."""

    route: Route
    method: Callable[..., Any]
    arguments: dict[str, Any]
    returns: Any
    defaults: dict[str, Any]

    @classmethod
    def of(cls, route: Route) -> _Call:
        """The call ``route`` serves, read from the contract (never restated here)."""
        method = getattr(ExecutionControl, route.call)
        hints = typing.get_type_hints(method)
        returns = hints.pop("return", Any)
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(method).parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }
        return cls(route, method, hints, returns, defaults)

    def argument_type(self, name: str) -> Any:
        """The type of argument ``name`` as it travels: a query parameter is absent rather
        than null, so ``None`` leaves its type."""
        annotation = self.arguments[name]
        if self.route.in_query and name not in self.route.path_arguments:
            options = typing.get_args(annotation)
            if typing.get_origin(annotation) in (typing.Union, types.UnionType):
                return functools.reduce(operator.or_, [o for o in options if o is not type(None)])
        return annotation

    def types(self) -> list[Any]:
        """Every type whose schema the operation needs."""
        return [*map(self.argument_type, self.arguments), self.returns]


def _control_operation(call: _Call, schema_of: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    """One control call: path arguments in the path, the others in the query (GET, DELETE)
    or as members of a JSON object body; the answer is the JSON form of the result."""
    route, defaults = call.route, call.defaults
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": schema_of[call.arguments[name]]}
        for name in route.path_arguments
    ]
    others = [name for name in call.arguments if name not in route.path_arguments]
    operation: dict[str, Any] = {
        "operationId": route.call,
        "tags": ["executions"],
        "summary": route.summary,
        "description": inspect.cleandoc(call.method.__doc__ or route.summary),
    }
    statuses = list(CONTROL_ERRORS)
    if route.in_query:
        for name in others:
            schema = dict(schema_of[call.argument_type(name)])
            if name in defaults and defaults[name] is not None:
                schema["default"] = wire.encode(defaults[name])
            parameters.append(
                {"name": name, "in": "query", "required": name not in defaults, "schema": schema}
            )
    elif others:
        properties = {}
        for name in others:
            schema = dict(schema_of[call.arguments[name]])
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
        statuses.extend((408, 413))
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = {
        "200": {
            "description": "The JSON form of the call's result.",
            "content": {JSON: {"schema": schema_of[call.returns]}},
        },
        **_problems(statuses),
    }
    return operation


def _control_plane() -> tuple[list[_Call], dict[Any, dict[str, Any]], dict[str, Any]]:
    """The control calls, the schema of every type they use, and the component schemas those
    refer to (one per dataclass and enum of the contract, and the notification frames').

    msgspec converts the type hints: the wire form (:func:`server.remote.wire.encode`) is the
    plain JSON of dataclasses, enums by value, tuples and sequences as arrays, which is the
    form msgspec describes."""
    calls = [_Call.of(route) for route in ROUTES]
    annotations = [annotation for call in calls for annotation in call.types()]
    annotations.append(Notification)
    schemas_, components = msgspec.json.schema_components(
        annotations, ref_template=SCHEMA_REF + "{name}"
    )
    # defaults are left as Python values (a tuple): the JSON round trip gives their JSON form
    schemas_, components = msgspec.json.decode(msgspec.json.encode((schemas_, components)))
    return calls, dict(zip(annotations, schemas_, strict=True)), components


def _problems(statuses: Sequence[int]) -> dict[str, Any]:
    return {
        str(status): {"$ref": RESPONSE_REF + _STATUS_TEXT[status][0]} for status in sorted(statuses)
    }


# -- the rest of the API -------------------------------------------------------------------


def _after_parameter() -> dict[str, Any]:
    return {
        "name": "after",
        "in": "query",
        "description": "Only events after this offset.",
        "schema": {"type": "integer", "minimum": 0, "default": 0},
    }


def _limit_parameter(most: int, default: int) -> dict[str, Any]:
    return {
        "name": "limit",
        "in": "query",
        "description": "At most this many events.",
        "schema": {"type": "integer", "minimum": 1, "maximum": most, "default": default},
    }


def _event_parameters(*, with_limit: bool) -> list[dict[str, Any]]:
    topics = sorted(TOPICS)
    parameters = [_after_parameter()]
    if with_limit:
        parameters.append(_limit_parameter(MAX_LIMIT, DEFAULT_LIMIT))
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


def _audit_parameters() -> list[dict[str, Any]]:
    parameters = [_after_parameter(), _limit_parameter(MAX_AUDIT_LIMIT, DEFAULT_AUDIT_LIMIT)]
    for name, description, schema in (
        ("execution", "Only actions on this execution.", {"type": "string", "minLength": 1}),
        ("user", "Only actions of this user.", {"type": "string", "minLength": 1}),
        ("action", "Only this action.", {"enum": list(AUDIT_ACTIONS)}),
    ):
        parameters.append(
            {"name": name, "in": "query", "description": description, "schema": schema}
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
                    **_problems([400, 401, 403, 408, 409, 413, 422, 429, 503]),
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
        "/api/v1/audit": {
            "get": {
                "operationId": "read_audit",
                "tags": ["audit"],
                "summary": "One page of the audit log of the caller's tenant after an offset",
                "description": "AuditAction events (schemas/events/AuditAction.json), oldest"
                f" first. A page scans at most {MAX_SCANNED} audit events: it may be short,"
                " even empty, before the end; pass `next_after` as `after` until it reaches"
                " `head`.",
                "parameters": _audit_parameters(),
                "responses": {
                    "200": _json({"$ref": SCHEMA_REF + "EventPage"}, "A page of audit events."),
                    **_problems([400, 401, 429, 503]),
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
                    **_problems([400, 401, 408, 409, 413, 422, 429, 503]),
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


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


_SENTRY_BODY: Final = {
    "required": True,
    "description": "As Sentry's SDKs send it; `Content-Encoding: gzip` or `deflate` may"
    " compress it, and the server's max_request_bytes bounds it once inflated.",
}


def _log_paths() -> dict[str, dict[str, Any]]:
    """Evidence from logs: OTLP/HTTP's logs endpoint and NDJSON lines."""
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    statuses = [400, 401, 408, 413, 415, 429, 503]
    refusals = _problems(statuses)
    otlp_refusals = {
        str(status): {
            "description": _STATUS_TEXT[status][1] + " A google.rpc.Status, in the request's"
            " encoding (JSON unless protobuf).",
            "content": {
                OTLP_PROTOBUF: {"schema": binary},
                OTLP_JSON: {"schema": {"$ref": SCHEMA_REF + "OtlpStatus"}},
            },
        }
        for status in statuses
    }
    return {
        LOGS_PATH: {
            "post": {
                "operationId": "otlp_logs",
                "tags": ["evidence"],
                "summary": "OTLP/HTTP logs: keep the error records of an export",
                "description": "An ExportLogsServiceRequest (opentelemetry-proto), protobuf or"
                " OTLP/JSON, gzip allowed. Records at severity ERROR or above, or with"
                " exception.* attributes, are kept for the token's tenant, named by their"
                " resource's service.name, service.version and deployment.environment; others"
                " are skipped. Refused records are counted in partial_success.",
                "requestBody": {
                    "required": True,
                    "content": {
                        OTLP_PROTOBUF: {"schema": binary},
                        OTLP_JSON: {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "An ExportLogsServiceResponse, encoded as the request.",
                        "content": {
                            OTLP_PROTOBUF: {"schema": binary},
                            OTLP_JSON: {"schema": {"$ref": SCHEMA_REF + "OtlpLogsAnswer"}},
                        },
                    },
                    **otlp_refusals,
                },
            }
        },
        "/api/v1/evidence/lines": {
            "post": {
                "operationId": "ingest_lines",
                "tags": ["evidence"],
                "summary": "NDJSON log lines: keep the error lines",
                "description": "One JSON object a line (see the README for its fields). Lines"
                " at an error level or with an exception are kept, others skipped; a refused"
                " line is listed by number and the others are kept.",
                "parameters": [
                    _query(
                        "service",
                        "Service of the lines that name none.",
                        {"type": "string", "minLength": 1},
                    ),
                    _query(
                        "first_line",
                        "Number of the body's first line, for the numbers of refused lines.",
                        {"type": "integer", "minimum": 1, "default": 1},
                    ),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        kind: {"schema": {"type": "string"}} for kind in sorted(NDJSON_TYPES)
                    },
                },
                "responses": {
                    "200": _json({"$ref": SCHEMA_REF + "LinesAnswer"}, "What became of the lines."),
                    **refusals,
                },
            }
        },
    }


def _evidence_paths() -> dict[str, dict[str, Any]]:
    """Sentry's ingestion routes and the evidence reads."""
    sentry_security: list[dict[str, list[str]]] = [{"sentryAuth": []}, {"sentryKey": []}]
    project = {
        "name": "project",
        "in": "path",
        "required": True,
        "description": "The DSN's project id (not checked: the key decides).",
        "schema": {"type": "string"},
    }
    ingest = {
        "200": _json({"$ref": SCHEMA_REF + "SentryAnswer"}, "Kept (a retried event once)."),
        **_problems([400, 401, 408, 413, 503]),
    }
    service = _query("service", "Only this service.", {"type": "string", "minLength": 1})
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_EVIDENCE_LIMIT}
    moment = {"type": "string", "format": "date-time"}
    return {
        "/api/{project}/envelope/": {
            "post": {
                "operationId": "sentry_envelope",
                "tags": ["evidence"],
                "summary": "Sentry's envelope endpoint: keep the event items of an envelope",
                "description": "Items other than events (sessions, transactions, attachments,"
                " client reports) are skipped. A malformed envelope is refused saying which item"
                " and byte offset.",
                "security": sentry_security,
                "parameters": [project],
                "requestBody": {
                    **_SENTRY_BODY,
                    "content": {"application/x-sentry-envelope": {"schema": {"type": "string"}}},
                },
                "responses": ingest,
            }
        },
        "/api/{project}/store/": {
            "post": {
                "operationId": "sentry_store",
                "tags": ["evidence"],
                "summary": "Sentry's legacy store endpoint: keep one event",
                "security": sentry_security,
                "parameters": [project],
                "requestBody": {**_SENTRY_BODY, "content": {JSON: {"schema": {"type": "object"}}}},
                "responses": ingest,
            }
        },
        "/api/v1/evidence": {
            "get": {
                "operationId": "read_evidence",
                "tags": ["evidence"],
                "summary": "The tenant's error reports, oldest first",
                "parameters": [
                    service,
                    _query("signature", "Only this signature.", {"type": "string", "minLength": 1}),
                    _query(
                        "after", "Only reports after this id.", {"type": "integer", "minimum": 0}
                    ),
                    _query(
                        "limit", "At most this many.", {**limit, "default": DEFAULT_EVIDENCE_LIMIT}
                    ),
                ],
                "responses": {
                    "200": _json({"$ref": SCHEMA_REF + "EvidencePage"}, "One page of reports."),
                    **_problems([400, 401, 429, 503]),
                },
            }
        },
        "/api/v1/evidence/signatures": {
            "get": {
                "operationId": "read_signatures",
                "tags": ["evidence"],
                "summary": "Aggregates: first sighting per release, frequency and error rate",
                "parameters": [
                    service,
                    _query(
                        "bucket",
                        "Width of a time bucket in seconds (buckets start on the Unix epoch).",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_BUCKET_SECONDS,
                            "default": DEFAULT_BUCKET_SECONDS,
                        },
                    ),
                    _query("since", "Only reports at or after this time.", moment),
                    _query("until", "Only reports before this time.", moment),
                    _query("limit", "At most this many rows of each aggregate.", limit),
                ],
                "responses": {
                    "200": _json({"$ref": SCHEMA_REF + "EvidenceAggregates"}, "The aggregates."),
                    **_problems([400, 401, 429, 503]),
                },
            }
        },
    }


def _evidence_schemas() -> dict[str, dict[str, Any]]:
    text, count, moment = (
        {"type": "string"},
        {"type": "integer", "minimum": 0},
        {
            "type": "string",
            "format": "date-time",
        },
    )

    def shape(**properties: Any) -> dict[str, Any]:
        return {"type": "object", "required": list(properties), "properties": properties}

    frame = shape(
        file=text,
        function=text,
        line={"type": ["integer", "null"]},
        in_app={"type": "boolean"},
        module=text,
        context_line=text,
    )
    report = shape(
        id={"type": "integer", "minimum": 1},
        event_id=text,
        service=text,
        environment=text,
        release=text,
        time=moment,
        level=text,
        exception_type=text,
        message=text,
        signature=text,
        frames={"type": "array", "items": {"$ref": SCHEMA_REF + "Frame"}},
        raw={"type": "string", "description": "The report as received, cut at 64 KiB."},
        raw_size={**count, "description": "The whole report's size in bytes."},
    )
    return {
        "SentryAnswer": shape(id={"type": ["string", "null"]}),
        "OtlpLogsAnswer": {
            "type": "object",
            "properties": {
                "partialSuccess": {
                    "type": "object",
                    "properties": {
                        "rejectedLogRecords": {"type": "string", "pattern": "^[0-9]+$"},
                        "errorMessage": text,
                    },
                }
            },
        },
        "OtlpStatus": {
            "type": "object",
            "description": "google.rpc.Status in OTLP/JSON: `message` says why.",
            "properties": {"code": {"type": "integer"}, "message": text},
        },
        "LinesAnswer": shape(
            evidence={**count, "description": "Lines kept as evidence (retried ones too)."},
            new={**count, "description": "Of those, the ones not kept before."},
            skipped={**count, "description": "Lines neither at an error level nor exceptions."},
            refused=count,
            errors={
                "type": "array",
                "maxItems": MAX_LINE_ERRORS,
                "description": "The first refused lines: number and why.",
                "items": shape(line={"type": "integer", "minimum": 1}, detail=text),
            },
        ),
        "Frame": frame,
        "Evidence": report,
        "EvidencePage": shape(
            evidence={"type": "array", "items": {"$ref": SCHEMA_REF + "Evidence"}},
            next_after={**count, "description": "Pass as `after` for the next page."},
        ),
        "EvidenceAggregates": shape(
            bucket_seconds={"type": "integer", "minimum": 1},
            signatures={
                "type": "array",
                "items": shape(
                    service=text,
                    signature=text,
                    release=text,
                    exception_type=text,
                    first_seen=moment,
                    last_seen=moment,
                    count=count,
                ),
            },
            frequency={
                "type": "array",
                "items": shape(service=text, signature=text, bucket=moment, count=count),
            },
            error_rate={
                "type": "array",
                "items": shape(service=text, bucket=moment, errors=count, total=count),
            },
        ),
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
    calls, schema_of, components = _control_plane()
    paths = {**_fixed_paths(), **_evidence_paths(), **_log_paths()}
    for call in calls:
        operation = _control_operation(call, schema_of)
        paths.setdefault(call.route.path, {})[call.route.verb.lower()] = operation
    schemas_ = {**_fixed_schemas(), **_evidence_schemas(), **components}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Canopy API",
            "version": API_VERSION,
            "description": "Debug behaviour trees and LLM workflows in debug pods, over one"
            " shared event log. Errors are RFC 9457 problem documents. Every `/api/` route"
            " (and OTLP's `/v1/logs`) takes a bearer token (`canopy serve` prints one and"
            " writes it to .canopy/server.json) and is limited per token in rate and in open"
            " requests.",
        },
        "tags": [
            {"name": "events", "description": "The shared event log, as the caller's tenant."},
            {"name": "audit", "description": "Who did what to which debug session."},
            {"name": "executions", "description": "Executions in the caller's debug pod."},
            {"name": "pods", "description": "The caller's debug pod, and the workers' link."},
            {"name": "trees", "description": "Versions of tree definitions, kept in the log."},
            {
                "name": "evidence",
                "description": "Error reports from running services (Sentry's SDKs,"
                " OpenTelemetry logs, NDJSON log lines), and their aggregates.",
            },
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
                "sentryAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Sentry-Auth",
                    "description": "`Sentry sentry_key=<key>, sentry_version=7, ...`: a DSN key"
                    " of canopy.toml [[evidence.sentry]].",
                },
                "sentryKey": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "sentry_key",
                    "description": "The same DSN key, in the query.",
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
