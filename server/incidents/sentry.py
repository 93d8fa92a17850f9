"""Sentry's wire formats, read into evidence: envelopes, and events as the SDKs send them.

An envelope is a JSON header line, then items, each a JSON header line and a payload of the
header's ``length`` bytes (or up to the next newline without one). Only ``event`` items are
evidence; sessions, transactions, attachments and client reports are skipped, as a server that
does not want them should. What is malformed is refused with where it is: the item, the byte
offset, the field path. Every JSON text is decoded within the bounds of
:func:`canopy.bridge.jsondata.loads`.
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from canopy.bridge.errors import InvalidJson
from canopy.bridge.jsondata import loads

from .evidence import MAX_FRAMES, MAX_RAW_BYTES, MAX_TEXT, Evidence, Frame, InvalidEvidence
from .signature import signature_of

__all__ = [
    "MAX_FRAMES",
    "MAX_RAW_BYTES",
    "EnvelopeEvent",
    "SentryKey",
    "evidence_of",
    "find_key",
    "parse_envelope",
    "parse_event",
    "sentry_key",
]

_EVENT_ID: Final = re.compile(r"[0-9a-f]{32}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SentryKey:
    """A DSN public key and the Canopy tenant and service its reports belong to."""

    key: str
    tenant: str
    service: str


@dataclass(frozen=True, slots=True)
class EnvelopeEvent:
    """An event item of an envelope: its decoded payload and its bytes."""

    event: dict[str, Any]
    raw: bytes


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = loads(data)
    except InvalidJson as exc:
        raise InvalidEvidence(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidEvidence(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def parse_event(body: bytes) -> EnvelopeEvent:
    """The event of a legacy ``store`` request (the body is the event)."""
    return EnvelopeEvent(_json_object(body, "the event"), body)


def _line(body: bytes, start: int) -> tuple[bytes, int]:
    """The line from ``start`` and where the next begins."""
    end = body.find(b"\n", start)
    return (body[start:], len(body)) if end < 0 else (body[start:end], end + 1)


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[EnvelopeEvent]]:
    """The envelope's header and its event items, in order."""
    first, at = _line(body, 0)
    header = _json_object(first, "the envelope header (line 1)")
    events = []
    number = 0
    while at < len(body):
        if body[at:] == b"\n":
            break
        number += 1
        where = f"item {number} (at byte {at})"
        line, at = _line(body, at)
        item = _json_object(line, f"the header of {where}")
        kind, length = item.get("type"), item.get("length")
        if not isinstance(kind, str) or not kind:
            raise InvalidEvidence(f"the header of {where} has no 'type' string")
        if length is None:
            payload, at = _line(body, at)
        elif type(length) is not int or length < 0:
            raise InvalidEvidence(f"the header of {where}: 'length' must be a whole number")
        elif at + length > len(body):
            raise InvalidEvidence(
                f"{where}: its header says {length} bytes but {len(body) - at} follow"
            )
        else:
            payload, at = body[at : at + length], at + length
            if at < len(body):
                if body[at : at + 1] != b"\n":
                    raise InvalidEvidence(f"{where}: no newline after its {length} bytes")
                at += 1
        if kind == "event":
            events.append(EnvelopeEvent(_json_object(payload, f"the event of {where}"), payload))
    return header, events


# -- fields ---------------------------------------------------------------------------------


def _field(
    container: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: str
) -> Any:
    """``container[name]`` when present and not null; a precise refusal when of another kind."""
    value = container.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        expected = (
            kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        )
        raise InvalidEvidence(f"{path}{name} must be {expected}, not {type(value).__name__}")
    return value


def _text(container: Mapping[str, Any], name: str, path: str, default: str = "") -> str:
    value: str | None = _field(container, name, str, path)
    return default if value is None else value[:MAX_TEXT]


def _time(event: Mapping[str, Any], received: datetime) -> datetime:
    value = _field(event, "timestamp", (str, int, float), "event.")
    if isinstance(value, bool):
        raise InvalidEvidence("event.timestamp must be a time, not bool")
    if value is None:
        return received
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        else:
            moment = datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidEvidence(f"event.timestamp {value!r} is not a time") from None
    if moment < _EPOCH:
        # Time buckets are counted from 1970 on; nothing running today reports from before.
        raise InvalidEvidence(f"event.timestamp {value!r} is before 1970")
    return moment


def _frames(stacktrace: Mapping[str, Any], path: str) -> tuple[Frame, ...]:
    items: list[Any] = _field(stacktrace, "frames", list, path) or []
    frames = []
    first = max(0, len(items) - MAX_FRAMES)
    for index, item in enumerate(items[first:], first):
        where = f"{path}frames.{index}."
        if not isinstance(item, dict):
            raise InvalidEvidence(f"{where[:-1]} must be an object")
        frames.append(
            Frame(
                file=_text(item, "filename", where) or _text(item, "abs_path", where),
                function=_text(item, "function", where, "?"),
                line=_field(item, "lineno", int, where),
                in_app=bool(_field(item, "in_app", bool, where)),
                module=_text(item, "module", where),
                context_line=_text(item, "context_line", where),
            )
        )
    return tuple(frames)


def _exception(event: Mapping[str, Any]) -> tuple[str, str, tuple[Frame, ...]] | None:
    """Type, message and frames of the exception the event reports: the last of a chain,
    the one that was raised last."""
    found = event.get("exception")
    values = found.get("values") if isinstance(found, dict) else found
    if values is None:
        return None
    if not isinstance(values, list):
        raise InvalidEvidence("event.exception must be an object with 'values', or an array")
    if not values:
        return None
    last = values[-1]
    path = f"event.exception.values.{len(values) - 1}."
    if not isinstance(last, dict):
        raise InvalidEvidence(f"{path[:-1]} must be an object")
    stacktrace = _field(last, "stacktrace", dict, path) or {}
    return (
        _text(last, "type", path, "Error"),
        _text(last, "value", path),
        _frames(stacktrace, f"{path}stacktrace."),
    )


def _message(event: Mapping[str, Any]) -> str:
    entry = _field(event, "logentry", dict, "event.") or {}
    message = _field(event, "message", (str, dict), "event.")
    if isinstance(message, dict):
        entry = entry or message
        message = None
    formatted = _text(entry, "formatted", "event.logentry.") or _text(
        entry, "message", "event.logentry."
    )
    return formatted or (message or "")[:MAX_TEXT]


def _event_id(event: Mapping[str, Any], fallback: object) -> str:
    for candidate in (event.get("event_id"), fallback):
        if isinstance(candidate, str) and _EVENT_ID.fullmatch(candidate.replace("-", "").lower()):
            return candidate.replace("-", "").lower()
    return uuid.uuid4().hex


def evidence_of(
    item: EnvelopeEvent,
    key: SentryKey,
    *,
    received: datetime,
    envelope_id: object = None,
) -> Evidence:
    """The evidence a Sentry event is, for the tenant and service of ``key``."""
    event = item.event
    exception = _exception(event)
    exception_type, message, frames = exception or ("", _message(event), ())
    return Evidence(
        tenant_id=key.tenant,
        service=key.service,
        environment=_text(event, "environment", "event.", "production"),
        release=_text(event, "release", "event."),
        time=_time(event, received),
        level=_text(event, "level", "event.", "error").lower(),
        exception_type=exception_type,
        message=message,
        frames=frames,
        signature=signature_of(exception_type, frames, message),
        event_id=_event_id(event, envelope_id),
        raw=item.raw[:MAX_RAW_BYTES],
        raw_size=len(item.raw),
    )


def sentry_key(auth_header: str | None, query_key: str | None) -> str | None:
    """The DSN public key a request carries: ``sentry_key`` in the ``X-Sentry-Auth`` header
    (``Sentry sentry_version=7, sentry_key=..., ...``) or in the query."""
    if auth_header:
        fields = auth_header.strip()
        if fields[:7].lower() == "sentry ":
            fields = fields[7:]
        for part in fields.split(","):
            name, _, value = part.strip().partition("=")
            if name == "sentry_key" and value.strip():
                return value.strip()
    return query_key or None


def find_key(keys: Sequence[SentryKey], presented: str | None) -> SentryKey | None:
    """The configured key ``presented`` is, compared in constant time."""
    if presented is None:
        return None
    encoded = presented.encode("utf-8", "surrogatepass")
    found = None
    for key in keys:
        if hmac.compare_digest(key.key.encode(), encoded):
            found = key
    return found
