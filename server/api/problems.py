"""RFC 9457 problem documents, and the one place where errors become HTTP answers.

Handlers raise :class:`Problem` for what they refuse themselves and let event-log errors
(:mod:`bridge.errors`) propagate; :func:`problem_middleware` translates both, and anything
unexpected becomes a bare 500 whose traceback goes to the server log, never to the client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from canopy.bridge import (
    BridgeError,
    ConcurrencyConflict,
    InvalidEvent,
    InvalidFilter,
    StoreClosed,
    StoreUnavailable,
)

__all__ = ["PROBLEM_CONTENT_TYPE", "Problem", "problem_middleware", "problem_of"]

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
PROBLEM_TYPES: Final = "https://canopy.dev/problems/"
_KEPT_HEADERS: Final = frozenset({hdrs.ALLOW, hdrs.WWW_AUTHENTICATE, hdrs.RETRY_AFTER})


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


def problem_of(exc: BridgeError) -> Problem:
    """The HTTP meaning of an event-log error."""
    if isinstance(exc, InvalidEvent):
        return Problem(
            422,
            "invalid-event",
            exc.message,
            title="Invalid event",
            field=exc.field,
            index=exc.index,
        )
    if isinstance(exc, ConcurrencyConflict):
        return Problem(
            409,
            "concurrency-conflict",
            str(exc),
            title="Stream moved",
            index=exc.index,
            stream=exc.stream,
            expected_version=exc.expected,
            actual_version=exc.actual,
        )
    if isinstance(exc, InvalidFilter):
        return Problem(400, "invalid-request", str(exc))
    if isinstance(exc, StoreUnavailable | StoreClosed):
        return Problem(
            503,
            "unavailable",
            "the event log is unavailable; retry shortly",
            headers={hdrs.RETRY_AFTER: "1"},
        )
    log.error("unexpected event-log error: %s", exc)
    return Problem(500, "internal-error", "the server failed; its log has the details")


def _problem_of_http(request: web.Request, exc: web.HTTPException) -> Problem:
    """aiohttp's own refusals (no route, wrong method, body too large) as problems."""
    headers = {k: v for k, v in exc.headers.items() if k in _KEPT_HEADERS}
    if exc.status == 404:
        return Problem(404, "not-found", f"nothing at {request.path}", headers=headers)
    if exc.status == 405:
        detail = f"{request.method} is not allowed on {request.path}"
        return Problem(405, "method-not-allowed", detail, headers=headers)
    if exc.status == 413:
        return Problem(413, "too-large", exc.text or exc.reason, headers=headers)
    return Problem(exc.status, "http-error", exc.reason, headers=headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure with a problem document, translating each error kind once."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _problem_of_http(request, exc).response()
    except BridgeError as exc:
        return problem_of(exc).response()
    except Exception:
        log.exception("request failed: %s %s", request.method, request.path)
        problem = Problem(500, "internal-error", "the server failed; its log has the details")
        return problem.response()
