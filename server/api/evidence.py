"""Evidence over HTTP: Sentry's ingestion routes, and reading what is kept.

``POST /api/<project>/envelope/`` and the legacy ``POST /api/<project>/store/`` take what
Sentry's SDKs send, for the tenant and service of the DSN key (checked by the auth middleware
before the body is read). Bodies are bounded like every other (``max_request_bytes``, after
aiohttp undid a gzip or deflate ``Content-Encoding``), and answered as Sentry answers:
``{"id": event_id}``; refusals are problem documents, whose ``detail`` is where Sentry's
clients look. The project id of the DSN is not checked: the key alone says where reports go.

``POST /v1/logs`` is OTLP/HTTP's logs endpoint, where an OpenTelemetry SDK or collector
exports to (``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=<server>/v1/logs``). It takes a Canopy bearer
token like every ``/api/`` route, sent with ``OTEL_EXPORTER_OTLP_HEADERS``; the token's tenant
owns the records and the resource's ``service.name`` names their service. A token rather than
a key per service as Sentry's routes take: OTLP carries the service in every request, and one
collector exports for many services, so all a request has to prove is whose they are.
Its refusals are OTLP's: a ``google.rpc.Status`` in the request's encoding (see
:func:`.problems.problem_middleware`).

``POST /api/v1/evidence/lines`` takes NDJSON log lines (see :mod:`..incidents.lines`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from aiohttp import web
from multidict import MultiMapping

from canopy.bridge.jsondata import INT_MAX

from ..incidents import Scope
from ..incidents.lines import read_lines
from ..incidents.otlp import OTLP_JSON, OTLP_PROTOBUF, decode_logs, encode_response, read_logs
from ..incidents.sentry import EnvelopeEvent, evidence_of, parse_envelope, parse_event
from .keys import EVIDENCE, PRINCIPAL, SENTRY_SOURCE
from .params import bad_parameter, integer_parameter, single_parameter
from .problems import Problem

__all__ = [
    "ingest_lines",
    "otlp_logs",
    "read_evidence",
    "read_signatures",
    "sentry_envelope",
    "sentry_store",
]

DEFAULT_BUCKET_SECONDS: Final = 3600
MAX_BUCKET_SECONDS: Final = 30 * 86_400
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
MAX_LINE_ERRORS: Final = 100
"""Refused lines listed in a lines answer; ``refused`` counts them all."""
NDJSON_TYPES: Final = frozenset({"application/x-ndjson", "application/jsonl", "text/plain"})


async def _keep(
    request: web.Request, items: list[EnvelopeEvent], envelope_id: object = None
) -> web.Response:
    received = datetime.now(UTC)
    key = request[SENTRY_SOURCE]
    found = [evidence_of(item, key, received=received, envelope_id=envelope_id) for item in items]
    if found:
        await request.app[EVIDENCE].record(found)
    event_id = found[0].event_id if found else envelope_id
    return web.json_response({"id": event_id if isinstance(event_id, str) else None})


async def sentry_envelope(request: web.Request) -> web.Response:
    """``POST /api/{project}/envelope/``: keep the envelope's events; skip its other items."""
    header, items = parse_envelope(await request.read())
    return await _keep(request, items, header.get("event_id"))


async def sentry_store(request: web.Request) -> web.Response:
    """``POST /api/{project}/store/``: keep one event (the SDKs' format before envelopes)."""
    return await _keep(request, [parse_event(await request.read())])


async def otlp_logs(request: web.Request) -> web.Response:
    """``POST /v1/logs``: keep the error records of an OTLP export; answer with an
    ``ExportLogsServiceResponse`` in the request's encoding."""
    kind = request.content_type
    if kind not in (OTLP_PROTOBUF, OTLP_JSON):
        raise Problem(
            415,
            "unsupported-media-type",
            f"Content-Type {kind!r} is not OTLP: send {OTLP_PROTOBUF} or {OTLP_JSON}",
        )
    export = decode_logs(await request.read(), json=kind == OTLP_JSON)
    found = read_logs(export, request[PRINCIPAL].tenant_id, datetime.now(UTC))
    if found.evidence:
        await request.app[EVIDENCE].record(found.evidence)
    return web.Response(body=encode_response(found, json=kind == OTLP_JSON), content_type=kind)


async def ingest_lines(request: web.Request) -> web.Response:
    """``POST /api/v1/evidence/lines``: keep the error lines of an NDJSON body. Refused
    lines are listed by number (the first :data:`MAX_LINE_ERRORS`) and the others kept."""
    kind = request.content_type
    if kind not in NDJSON_TYPES:
        raise Problem(
            415,
            "unsupported-media-type",
            f"Content-Type {kind!r} is not NDJSON: send application/x-ndjson",
        )
    query = request.query
    _check(query, {"service", "first_line"})
    batch = read_lines(
        await request.read(),
        request[PRINCIPAL].tenant_id,
        service=_text(query, "service"),
        received=datetime.now(UTC),
        first_line=integer_parameter(query, "first_line", 1, 1, INT_MAX),
    )
    new = await request.app[EVIDENCE].record(batch.evidence) if batch.evidence else []
    body = {
        "evidence": len(new),
        "new": sum(new),
        "skipped": batch.skipped,
        "refused": len(batch.refused),
        "errors": [item.to_json() for item in batch.refused[:MAX_LINE_ERRORS]],
    }
    return web.json_response(body)


# -- reading --------------------------------------------------------------------------------


def _check(query: MultiMapping[str], allowed: set[str]) -> None:
    if unknown := sorted(set(query) - allowed):
        raise bad_parameter(
            unknown[0],
            f"unknown query parameter {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
        )


def _text(query: MultiMapping[str], name: str) -> str | None:
    value = single_parameter(query, name)
    if value == "":
        raise bad_parameter(name, f"'{name}' cannot be empty")
    return value


def _moment(query: MultiMapping[str], name: str) -> datetime | None:
    raw = _text(query, name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise bad_parameter(
            name, f"'{name}' must be a date-time with its offset, e.g. 2026-01-31T12:00:00Z"
        )
    return moment


async def read_evidence(request: web.Request) -> web.Response:
    """``GET /api/v1/evidence``: the tenant's reports after ``after``, oldest first."""
    query = request.query
    _check(query, {"service", "signature", "after", "limit"})
    after = integer_parameter(query, "after", 0, 0, INT_MAX)
    found = await request.app[EVIDENCE].reports(
        request[PRINCIPAL].tenant_id,
        service=_text(query, "service"),
        signature=_text(query, "signature"),
        after=after,
        limit=integer_parameter(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
    )
    body = {
        "evidence": [item.to_json() for item in found],
        "next_after": found[-1].id if found else after,
    }
    return web.json_response(body)


async def read_signatures(request: web.Request) -> web.Response:
    """``GET /api/v1/evidence/signatures``: first sightings per (service, signature,
    release), reports per signature and time bucket, error rate per service and bucket."""
    query = request.query
    _check(query, {"service", "bucket", "since", "until", "limit"})
    store, tenant = request.app[EVIDENCE], request[PRINCIPAL].tenant_id
    seconds = integer_parameter(query, "bucket", DEFAULT_BUCKET_SECONDS, 1, MAX_BUCKET_SECONDS)
    bucket = timedelta(seconds=seconds)
    scope = Scope(
        service=_text(query, "service"),
        since=_moment(query, "since"),
        until=_moment(query, "until"),
        limit=integer_parameter(query, "limit", MAX_LIMIT, 1, MAX_LIMIT),
    )
    body = {
        "bucket_seconds": seconds,
        "signatures": [item.to_json() for item in await store.first_seen(tenant, scope)],
        "frequency": [item.to_json() for item in await store.frequency(tenant, bucket, scope)],
        "error_rate": [item.to_json() for item in await store.error_rate(tenant, bucket, scope)],
    }
    return web.json_response(body)
