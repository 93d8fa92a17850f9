"""Validation of appended events against the packaged JSON Schemas.

Every append is validated, so this sits on the hot path: compiled validators (fastjsonschema,
~3 µs an event) decide; only when an event fails is ``jsonschema`` asked to word the most
relevant error with its exact location.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import fastjsonschema
import jsonschema
import orjson
from jsonschema.exceptions import best_match

from canopy import schemas

from .errors import InvalidEvent
from .events import NewEvent
from .jsondata import wide_integer

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "EventValidator"]

DEFAULT_MAX_PAYLOAD_BYTES: Final = 256 * 1024
_MEMO_LIMIT: Final = 16_384
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """The same test as the one that later reads the value (jsonschema's own date-time check
    needs an optional package)."""
    if isinstance(value, str):
        if "T" not in value.upper():
            raise ValueError("a date-time needs a date, 'T' and a time")
        datetime.fromisoformat(value)
    return True


class _TypeRule:
    """A compiled payload validator and the topic its type belongs to."""

    __slots__ = ("check", "max_bytes", "schema", "topic")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.topic: str = schema["x-topic"]
        # Events that carry a whole tree grow with it; their schema allows more.
        self.max_bytes: int = schema.get("x-max-payload-bytes", 0)
        self.check = fastjsonschema.compile(schema)


class EventValidator:
    """Checks events against the envelope schema and their type's payload schema, and encodes
    their payloads once for storage."""

    def __init__(self, *, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
        self.max_payload_bytes = max_payload_bytes
        self._envelope_schema = schemas.load("new-event.schema.json")
        self._envelope = fastjsonschema.compile(self._envelope_schema)
        key = self._envelope_schema["properties"]["idempotency_key"]
        self._key_lengths = (key["minLength"], key["maxLength"])
        self._types = {name: _TypeRule(s) for name, s in schemas.event_type_schemas().items()}
        # Envelopes already found valid, by (tenant, topic, stream, type, producer): a running
        # execution sends thousands of events that differ only in payload (and in their
        # idempotency key, checked on its own).
        self._valid_envelopes: dict[tuple[object, ...], _TypeRule] = {}

    @property
    def known_types(self) -> frozenset[str]:
        """Names of the event types the log accepts."""
        return frozenset(self._types)

    def topic_of(self, event_type: str) -> str | None:
        """The topic events of ``event_type`` belong to, or None for an unknown type."""
        rule = self._types.get(event_type)
        return rule.topic if rule else None

    def parse(self, items: Sequence[Any]) -> list[NewEvent]:
        """Turn wire-form events (already JSON-decoded) into :class:`NewEvent` values,
        refusing the first invalid one with its index and field."""
        events = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise InvalidEvent("must be a JSON object", index=index)
            self._check_envelope(item, index)
            try:
                events.append(NewEvent.from_json(item))
            except ValueError as exc:  # a time the pattern allows but the calendar does not
                raise InvalidEvent(
                    f"is not a valid RFC 3339 date-time: {exc}", field="time", index=index
                ) from exc
        return events

    def encode(self, events: Sequence[NewEvent]) -> list[str]:
        """Validate ``events`` and return their payloads encoded as compact JSON.

        Raises :class:`InvalidEvent` for the first event that is wrong; nothing is written then.
        """
        encoded = []
        for index, event in enumerate(events):
            rule = self._rule_for(event, index)
            try:
                rule.check(event.payload)
            except fastjsonschema.JsonSchemaException:
                raise self._precise(rule.schema, event.payload, "payload", index) from None
            limit = max(self.max_payload_bytes, rule.max_bytes)
            encoded.append(self._encode_payload(event.payload, index, limit))
        return encoded

    def _rule_for(self, event: NewEvent, index: int) -> _TypeRule:
        """Check everything but the payload; return the rule for the payload."""
        moment = event.time
        if isinstance(moment, datetime) and moment.tzinfo is None:
            raise InvalidEvent("must carry a timezone", field="time", index=index)
        if moment is not None and (
            isinstance(moment, bool) or not isinstance(moment, datetime | int)
        ):
            raise InvalidEvent(
                "must be a datetime or microseconds since the epoch", field="time", index=index
            )
        plain = self._fits_envelope(event.idempotency_key, event.expected_version)
        signature = (event.tenant_id, event.topic, event.stream, event.type, event.producer)
        if plain and (known := self._valid_envelopes.get(signature)) is not None:
            return known
        self._check_envelope(event.to_json(), index)
        rule = self._types.get(event.type)
        if rule is None:
            raise InvalidEvent(
                f"unknown event type {event.type!r} (no schemas/events/{event.type}.json)",
                field="type",
                index=index,
            )
        if rule.topic != event.topic:
            raise InvalidEvent(
                f"events of type {event.type} belong to topic {rule.topic!r}, not {event.topic!r}",
                field="topic",
                index=index,
            )
        if plain:
            if len(self._valid_envelopes) >= _MEMO_LIMIT:
                self._valid_envelopes.clear()
            self._valid_envelopes[signature] = rule
        return rule

    def _fits_envelope(self, key: object, expected_version: object) -> bool:
        """Whether an event's own key and expected version are valid as the envelope schema
        says (checked here, so that they do not keep its envelope out of the memo)."""
        key_ok = key is None or (
            isinstance(key, str) and self._key_lengths[0] <= len(key) <= self._key_lengths[1]
        )
        version_ok = expected_version is None or (
            type(expected_version) is int and expected_version >= 0
        )
        return key_ok and version_ok

    def _check_envelope(self, data: Mapping[str, Any], index: int) -> None:
        try:
            self._envelope(data)
        except fastjsonschema.JsonSchemaException:
            raise self._precise(self._envelope_schema, data, "", index) from None

    def payload_limit(self, event_type: str) -> int:
        """The largest payload, in encoded bytes, accepted for events of ``event_type``."""
        rule = self._types.get(event_type)
        return max(self.max_payload_bytes, rule.max_bytes if rule else 0)

    def _encode_payload(self, payload: Mapping[str, Any], index: int, limit: int) -> str:
        """The payload's JSON text, or a refusal: never a value the log would read back
        changed. orjson encodes (a fifth of the stdlib's cost on the ingest path) and itself
        refuses lone surrogates, keys that are not strings and integers past 64 bits; it writes
        NaN and infinities as ``null``, so only a text holding a ``null`` is checked again by
        the strict stdlib encoder, which refuses them."""
        try:
            data = orjson.dumps(payload)
            if b"null" in data:
                _encode(payload)
        except (TypeError, ValueError) as exc:
            self._refuse_wide(payload, None, index)
            raise InvalidEvent(
                f"is not JSON-serialisable: {exc}", field="payload", index=index
            ) from exc
        self._refuse_wide(payload, data, index)
        if len(data) > limit:
            raise InvalidEvent(
                f"is {len(data)} bytes encoded, over the limit of {limit}",
                field="payload",
                index=index,
            )
        return data.decode()

    @staticmethod
    def _refuse_wide(payload: Mapping[str, Any], encoded: bytes | None, index: int) -> None:
        """Refuse an integer the log cannot keep exactly, naming where it is."""
        if (wide := wide_integer(payload, encoded)) is not None:
            path, number = wide
            raise InvalidEvent(
                f"integer {number} is outside the signed 64-bit range the log keeps exactly",
                field=f"payload.{path}",
                index=index,
            )

    @staticmethod
    def _precise(schema: dict[str, Any], data: Any, prefix: str, index: int) -> InvalidEvent:
        validator = jsonschema.Draft202012Validator(schema, format_checker=_FORMATS)
        error = best_match(validator.iter_errors(data))
        if error is None:  # the two validators disagree: report the schema, not a guess
            return InvalidEvent("does not match its schema", field=prefix, index=index)
        parts = [str(p) for p in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, Mapping):
            missing = next((r for r in error.validator_value if r not in error.instance), None)
            if missing is not None:
                parts.append(str(missing))
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            allowed = set(error.schema.get("properties", {}))
            extra = sorted(k for k in error.instance if k not in allowed)
            if extra:
                parts.append(str(extra[0]))
        field = ".".join(p for p in [prefix, *parts] if p)
        return InvalidEvent(error.message, field=field, index=index)
