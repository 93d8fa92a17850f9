"""NDJSON log lines read into evidence: one JSON object a line, as structured loggers write.

A line's fields, each optional, with the aliases loggers commonly use (the first present
wins)::

    time               ts, timestamp, @timestamp   RFC 3339 text, or seconds since 1970
                                                   (milliseconds when above 10^11)
    level              severity, levelname         error, fatal, warning, ... (WARN, CRITICAL too)
    service            service.name
    release            version, service.version
    environment        env, deployment.environment
    message            msg
    exception_type     exception.type
    exception_message  exception.message
    stacktrace         exception.stacktrace, traceback

Other fields are kept with the line (in the evidence's ``raw``) and otherwise ignored. A line
without a service takes the request's default; one without either is refused. Which lines are
evidence, and how a retried line is kept once, is :mod:`.logs`'s rule. Each line stands alone:
a refused line is reported with its number and the others are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from canopy.bridge.errors import InvalidJson
from canopy.bridge.jsondata import loads

from .evidence import MAX_TEXT, Evidence, InvalidEvidence
from .logs import LogRecord, evidence_of_record, level_of

__all__ = ["FIELDS", "LineRefusal", "LinesBatch", "read_lines"]

FIELDS: Final = {
    "time": ("time", "ts", "timestamp", "@timestamp"),
    "level": ("level", "severity", "levelname"),
    "service": ("service", "service.name"),
    "release": ("release", "version", "service.version"),
    "environment": ("environment", "env", "deployment.environment"),
    "message": ("message", "msg"),
    "exception_type": ("exception_type", "exception.type"),
    "exception_message": ("exception_message", "exception.message"),
    "stacktrace": ("stacktrace", "exception.stacktrace", "traceback"),
}
"""Each field of a line and the names it may go by, the preferred one first."""
_MILLISECONDS_FROM: Final = 10**11
"""Epoch times above this are in milliseconds (10^11 seconds is in the year 5138)."""


@dataclass(frozen=True, slots=True)
class LineRefusal:
    """A line that was not taken: its number (from the request's first line) and why."""

    line: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "detail": self.detail}


@dataclass(slots=True)
class LinesBatch:
    """What a body of lines gave: the evidence, the count of lines skipped (not errors) and
    the refused lines."""

    evidence: list[Evidence] = field(default_factory=list)
    skipped: int = 0
    refused: list[LineRefusal] = field(default_factory=list)


def _field(line: Mapping[str, Any], name: str) -> tuple[str, Any]:
    """The name ``name`` went by in ``line`` and its value (None when absent or null)."""
    for alias in FIELDS[name]:
        value = line.get(alias)
        if value is not None:
            return alias, value
    return FIELDS[name][0], None


def _text(line: Mapping[str, Any], name: str) -> str:
    alias, value = _field(line, name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidEvidence(f"'{alias}' must be a string, not {type(value).__name__}")
    return value[:MAX_TEXT] if name != "stacktrace" else value


def _time(line: Mapping[str, Any], received: datetime) -> datetime:
    alias, value = _field(line, "time")
    if value is None:
        return received
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > _MILLISECONDS_FROM else value
            return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise InvalidEvidence(f"'{alias}' {value!r} is not a time (RFC 3339, or seconds since 1970)")


def _record(raw: bytes, default_service: str | None, received: datetime) -> LogRecord:
    try:
        line = loads(raw)
    except InvalidJson as exc:
        raise InvalidEvidence(f"not JSON: {exc}") from None
    if not isinstance(line, dict):
        raise InvalidEvidence(f"must be a JSON object, not {type(line).__name__}")
    service = _text(line, "service") or default_service
    if not service:
        raise InvalidEvidence("no 'service': name it in the line, or give the request's service")
    return LogRecord(
        service=service,
        environment=_text(line, "environment"),
        release=_text(line, "release"),
        time=_time(line, received),
        level=level_of(_text(line, "level")) or "info",
        message=_text(line, "message"),
        exception_type=_text(line, "exception_type"),
        exception_message=_text(line, "exception_message"),
        stacktrace=_text(line, "stacktrace"),
        raw=raw,
    )


def read_lines(
    body: bytes,
    tenant_id: str,
    *,
    service: str | None,
    received: datetime,
    first_line: int = 1,
) -> LinesBatch:
    """The evidence of every line of ``body``, numbered from ``first_line``; blank lines
    are passed over. ``service`` is the service of lines that name none."""
    batch = LinesBatch()
    for number, raw in enumerate(body.split(b"\n"), start=first_line):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            found = evidence_of_record(tenant_id, _record(raw, service, received))
        except InvalidEvidence as exc:
            batch.refused.append(LineRefusal(number, str(exc)))
            continue
        if found is None:
            batch.skipped += 1
        else:
            batch.evidence.append(found)
    return batch
