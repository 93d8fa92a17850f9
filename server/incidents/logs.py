"""Log records read into evidence: what OTLP log records and NDJSON log lines have in common.

A record is evidence when it is at an error level (``error`` or ``fatal``) or carries an
exception (a type, a message or a stack trace, as OpenTelemetry's ``exception.*`` attributes
do); other records are skipped, not refused: a log stream holds far more than errors. A Python
traceback in the stack trace becomes frames (see :mod:`.stacktrace`), so logged exceptions get
the signatures Sentry's reports get. A record has no id of its own: its event id is a hash of
its service and its bytes, so a client that sends a batch again has it kept once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from .evidence import ERROR_LEVELS, MAX_RAW_BYTES, MAX_TEXT, Evidence, InvalidEvidence
from .signature import signature_of
from .stacktrace import parse_traceback

__all__ = ["LogRecord", "evidence_of_record", "level_of", "level_of_severity"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ALIASES: Final = {
    "warn": "warning",
    "err": "error",
    "critical": "fatal",
    "crit": "fatal",
    "alert": "fatal",
    "emerg": "fatal",
    "emergency": "fatal",
    "panic": "fatal",
}
_SEVERITIES: Final = ((21, "fatal"), (17, "error"), (13, "warning"), (9, "info"), (5, "debug"))
"""OpenTelemetry's severity number ranges (FATAL is 21-24, ERROR 17-20, ...), highest first."""


def level_of(text: str) -> str:
    """A level name as the store keeps it: lower case, with common spellings made one
    (``WARN`` is ``warning``, ``CRITICAL`` is ``fatal``)."""
    name = text.strip().lower()
    return _ALIASES.get(name, name)


def level_of_severity(number: int, text: str) -> str:
    """The level of an OpenTelemetry severity: by number when it has one (1-24), else by
    its text; ``info`` when it has neither."""
    if number > 0:
        return next((name for floor, name in _SEVERITIES if number >= floor), "trace")
    return level_of(text) or "info"


@dataclass(frozen=True, slots=True)
class LogRecord:
    """The fields of a log record that evidence is made of. ``raw`` is the record as
    received (a JSON text); ``message`` is the record's own message (its body)."""

    service: str
    environment: str
    release: str
    time: datetime
    level: str
    message: str
    exception_type: str
    exception_message: str
    stacktrace: str
    raw: bytes


def _checked_time(moment: datetime) -> datetime:
    if moment < _EPOCH:
        # Time buckets are counted from 1970 on; nothing running today reports from before.
        raise InvalidEvidence(f"time {moment.isoformat()} is before 1970")
    return moment


def evidence_of_record(tenant_id: str, record: LogRecord) -> Evidence | None:
    """The evidence ``record`` is, or None when it is neither an error nor an exception."""
    has_exception = bool(record.exception_type or record.exception_message or record.stacktrace)
    if record.level not in ERROR_LEVELS and not has_exception:
        return None
    parsed = parse_traceback(record.stacktrace) if record.stacktrace else None
    exception_type = record.exception_type or (parsed.exception_type if parsed else "")
    if has_exception and not exception_type:
        exception_type = "Error"
    # The exception's own message when there is one; else what was logged with it.
    message = (record.exception_message or (parsed.message if parsed else "") or record.message)[
        :MAX_TEXT
    ]
    frames = parsed.frames if parsed else ()
    digest = hashlib.sha256(record.service.encode("utf-8", "surrogatepass") + b"\n" + record.raw)
    return Evidence(
        tenant_id=tenant_id,
        service=record.service,
        environment=record.environment,
        release=record.release,
        time=_checked_time(record.time),
        level=record.level,
        exception_type=exception_type,
        message=message,
        frames=frames,
        signature=signature_of(exception_type, frames, message),
        event_id=digest.hexdigest()[:32],
        raw=record.raw[:MAX_RAW_BYTES],
        raw_size=len(record.raw),
    )
