"""RFC 9457 problem documents, and the one place where errors become HTTP answers.

Handlers raise :class:`Problem` for what they refuse themselves and let every
:class:`~bridge.errors.CanopyError` propagate; :func:`problem_middleware` translates both.
:data:`ERROR_STATUS` is the one table from an error's code to its HTTP status (an error not in
it takes its nearest base's), and the problem document names the code in its ``error`` member
so a client rebuilds the very error. Anything else is a bug: a bare 500 whose traceback goes to
the server log, never to the client.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from canopy.bridge import CanopyError

from ..incidents.otlp import LOGS_PATH, OTLP_JSON, OTLP_PROTOBUF, encode_status

__all__ = [
    "ERROR_STATUS",
    "PROBLEM_CONTENT_TYPE",
    "Problem",
    "problem_middleware",
    "problem_of",
    "status_of",
]

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
PROBLEM_TYPES: Final = "https://canopy.dev/problems/"
_KEPT_HEADERS: Final = frozenset({hdrs.ALLOW, hdrs.WWW_AUTHENTICATE, hdrs.RETRY_AFTER})
_RETRY_AFTER: Final = frozenset({429, 503})
_CORE_MEMBERS: Final = frozenset({"type", "title", "status", "detail", "error"})

ERROR_STATUS: Final[Mapping[str, int]] = {
    "CanopyError": 500,
    "InvalidArgument": 400,
    "InvalidJson": 400,
    # the event log
    "BridgeError": 500,
    "InvalidEvent": 422,
    "ConcurrencyConflict": 409,
    "IdempotencyConflict": 409,
    "SequenceGap": 409,
    "InvalidFilter": 400,
    "StoreUnavailable": 503,
    "StoreClosed": 503,
    "ConfigurationError": 500,
    "ProjectionFailed": 500,
    # a Canopy server seen as a client of another
    "CanopyClientError": 502,
    "ServerError": 502,
    "ServerUnreachable": 502,
    "UntrustedServer": 502,
    "PodMismatch": 409,
    # the control contract
    "ControlError": 409,
    "UnknownExecution": 404,
    "InvalidRequest": 409,
    "DefinitionError": 422,
    "ResolutionError": 422,
    "ExpressionError": 422,
    "PictureError": 422,
    "PythonDebugError": 409,
    "HistoryError": 404,
    "SubscriberOverflow": 409,
    "UnknownTree": 404,
    # workflow agents and their models
    "AgentConfigError": 400,
    "AgentFailure": 422,
    "TemplateError": 422,
    "ModelError": 502,
    "FixtureError": 422,
    "MissingFixture": 422,
    # debug pods
    "TooManySessions": 429,
    "OutsideWorkspace": 403,
    "PodError": 503,
    "SandboxError": 503,
    "PodUnavailable": 503,
    "PodTimeout": 504,
    "RemoteFailure": 502,
    "LinkBroken": 502,
    # evidence
    "InvalidEvidence": 400,
    # the language server
    "CheckFailed": 502,
}
"""The HTTP status of each error code, the one table of it. A server-side 500 never shows its
message (the log has it, with the traceback)."""


class Problem(Exception):
    """A refusal with everything a client needs to act on it.

    ``kind`` names the problem type (``https://canopy.dev/problems/<kind>``); ``members``
    are extension members such as ``field`` and ``index``.
    """

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **members: Any,
    ) -> None:
        self.status = status
        self.type = PROBLEM_TYPES + kind
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.headers = dict(headers or {})
        self.members = {k: v for k, v in members.items() if v is not None and v != ""}
        super().__init__(f"{status} {self.title}: {detail}")

    def to_json(self) -> dict[str, Any]:
        """The problem document."""
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.members,
        }

    def response(self) -> web.Response:
        """The HTTP answer carrying this problem."""
        return web.Response(
            status=self.status,
            text=json.dumps(self.to_json()),
            content_type=PROBLEM_CONTENT_TYPE,
            headers=self.headers,
        )


def status_of(error: CanopyError) -> int:
    """The status of an error's code, or of its nearest base's that has one."""
    for kind in type(error).__mro__:
        status = ERROR_STATUS.get(kind.__dict__.get("code", ""))
        if status is not None:
            return status
    return 500


def _kebab(code: str) -> str:
    """``UnknownExecution`` -> ``unknown-execution`` (the problem type's last segment)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", code).lower()


def problem_of(error: CanopyError) -> Problem:
    """The HTTP meaning of any Canopy error: its status by code, the code in ``error`` and
    what rebuilds the error as extension members."""
    status = status_of(error)
    if status == 500:
        log.error("request failed: %s", error, exc_info=error)
        return Problem(500, "internal-error", "the server failed; its log has the details")
    members = {k: v for k, v in error.details().items() if k not in _CORE_MEMBERS}
    headers: dict[str, str] | None = {hdrs.RETRY_AFTER: "1"} if status in _RETRY_AFTER else None
    return Problem(
        status, _kebab(error.code), str(error), headers=headers, error=error.code, **members
    )


def _problem_of_http(request: web.Request, exc: web.HTTPException) -> Problem:
    """aiohttp's own refusals (no route, wrong method, body too large) as problems."""
    headers = {str(k): v for k, v in exc.headers.items() if k in _KEPT_HEADERS}
    if exc.status == 404:
        return Problem(404, "not-found", f"nothing at {request.path}", headers=headers)
    if exc.status == 405:
        detail = f"{request.method} is not allowed on {request.path}"
        return Problem(405, "method-not-allowed", detail, headers=headers)
    if exc.status == 413:
        return Problem(413, "too-large", exc.text or exc.reason, headers=headers)
    return Problem(exc.status, "http-error", exc.reason, headers=headers)


def _answer(request: web.Request, problem: Problem) -> web.Response:
    """The problem as the request's protocol tells failures: OTLP's clients read a
    ``google.rpc.Status`` in the encoding they sent (JSON unless protobuf), everyone else a
    problem document."""
    if request.path != LOGS_PATH:
        return problem.response()
    kind = OTLP_PROTOBUF if request.content_type == OTLP_PROTOBUF else OTLP_JSON
    return web.Response(
        status=problem.status,
        body=encode_status(problem.detail, json=kind == OTLP_JSON),
        content_type=kind,
        headers=problem.headers,
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure with a problem document (OTLP's: a status), translating each
    error kind once."""
    try:
        return await handler(request)
    except Problem as problem:
        return _answer(request, problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _answer(request, _problem_of_http(request, exc))
    except CanopyError as error:
        return _answer(request, problem_of(error))
    except Exception:
        log.exception("request failed: %s %s", request.method, request.path)
        failed = Problem(500, "internal-error", "the server failed; its log has the details")
        return _answer(request, failed)
