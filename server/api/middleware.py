"""Request middlewares besides problem translation: bearer authentication for ``/api/`` and
the one-line-per-request access log."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from ..auth import Principal, lookup_token
from ..incidents.otlp import LOGS_PATH
from ..incidents.sentry import SentryKey, find_key, sentry_key
from .keys import PRINCIPAL, SENTRY_SOURCE, SETTINGS, TOKENS
from .problems import Problem

__all__ = ["access_log_middleware", "auth_middleware"]

access_log = logging.getLogger("canopy.access")

API_PREFIX: Final = "/api/"
POD_LINK: Final = "/api/v1/pods/connect"
"""Pod workers authenticate with their own pod token, checked by the link itself."""
OPENAPI_PATH: Final = "/api/v1/openapi.json"
PUBLIC_PATHS: Final = frozenset({POD_LINK, OPENAPI_PATH})
"""Paths under ``/api/`` that take no user token: the pod link (see above) and the API's own
description, which clients and tools fetch before they have a token."""
SENTRY_PATHS: Final = re.compile(r"/api/[^/]+/(?:envelope|store)/")
"""Sentry's ingestion routes, which take a DSN key instead (checked by their handlers)."""
_CHALLENGE: Final = 'Bearer realm="canopy"'


def _authenticate(request: web.Request) -> Principal:
    """The caller behind the request's bearer token, or a 401 that reveals nothing else."""
    scheme, _, secret = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Problem(
            401,
            "unauthorized",
            "send `Authorization: Bearer <token>`; `canopy serve` prints a token and writes it"
            " to .canopy/server.json",
            headers={hdrs.WWW_AUTHENTICATE: _CHALLENGE},
        )
    principal = lookup_token(request.app[TOKENS].documents, secret.strip())
    if principal is None:
        raise Problem(
            401,
            "unauthorized",
            "the token is not valid (unknown or revoked)",
            headers={hdrs.WWW_AUTHENTICATE: f'{_CHALLENGE}, error="invalid_token"'},
        )
    return principal


def _sentry_source(request: web.Request) -> SentryKey:
    """The tenant and service of the DSN key the request carries, or a 401 that names no
    configured key."""
    presented = sentry_key(request.headers.get("X-Sentry-Auth"), request.query.get("sentry_key"))
    found = find_key(request.app[SETTINGS].sentry_keys, presented)
    if found is None:
        detail = (
            "unknown Sentry key: the DSN's key is not in canopy.toml [[evidence.sentry]]"
            if presented
            else "send the DSN's key: X-Sentry-Auth: Sentry sentry_key=<key>, or ?sentry_key="
        )
        raise Problem(401, "unauthorized", detail)
    return found


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request under ``/api/`` (and to OTLP's ``/v1/logs``, outside it where
    OpenTelemetry's exporters post) acts for the user and
    tenant of a valid token; the
    handler finds them at ``request[PRINCIPAL]`` (Sentry's routes: for the tenant and service
    of a configured DSN key, at ``request[SENTRY_SOURCE]``). Runs before the body is read, so an
    unauthenticated client cannot make the server read (or buffer) anything."""
    path = request.path
    if SENTRY_PATHS.fullmatch(path):
        request[SENTRY_SOURCE] = _sentry_source(request)
    elif (path.startswith(API_PREFIX) and path not in PUBLIC_PATHS) or path == LOGS_PATH:
        request[PRINCIPAL] = _authenticate(request)
    return await handler(request)


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log one line per request (for a WebSocket: when it closes), with who made it and how
    long it took. Sits outside the problem middleware, so it sees final statuses."""
    started = time.perf_counter()
    status: int | str = "-"
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = "cancelled"  # the client went away before the answer
        raise
    finally:
        principal = request.get(PRINCIPAL)
        fields = {
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "user": principal.user_id if principal else "-",
            "tenant": principal.tenant_id if principal else "-",
        }
        access_log.info("request", extra={"fields": fields})
