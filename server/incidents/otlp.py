"""OTLP/HTTP logs read into evidence: an ``ExportLogsServiceRequest`` in protobuf or JSON.

The messages are OpenTelemetry's generated ones (``opentelemetry-proto``), so the protobuf
encoding is theirs; the JSON encoding is protobuf's JSON mapping with OTLP's two departures:
trace and span ids are hexadecimal rather than base64, and unknown fields are ignored. A
resource's ``service.name``, ``service.version`` and ``deployment.environment.name`` (or the
older ``deployment.environment``) name the service, release and environment of its records.
A record whose ``exception.*`` attributes are not strings, or whose time is out of range, is
refused alone; the request's other records are kept, and the answer's ``partial_success``
counts the refused ones and says why.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as OtlpRecord

from canopy.bridge.errors import InvalidJson
from canopy.bridge.events import datetime_from_us
from canopy.bridge.jsondata import loads

from .evidence import Evidence, InvalidEvidence
from .logs import LogRecord, evidence_of_record, level_of_severity

__all__ = [
    "LOGS_PATH",
    "OTLP_JSON",
    "OTLP_PROTOBUF",
    "LogsExport",
    "decode_logs",
    "encode_response",
    "encode_status",
    "read_logs",
]

LOGS_PATH: Final = "/v1/logs"
"""OTLP/HTTP's logs endpoint, where OpenTelemetry's exporters post by default."""
OTLP_PROTOBUF: Final = "application/x-protobuf"
OTLP_JSON: Final = "application/json"

UNKNOWN_SERVICE: Final = "unknown_service"
"""The service of a resource without ``service.name``, as OpenTelemetry's SDKs name it."""
MAX_REASONS: Final = 10
"""Refusals spelled out in ``partial_success.error_message``; the count holds them all."""
_EXCEPTION_KEYS: Final = ("exception.type", "exception.message", "exception.stacktrace")


def _items(container: object, name: str) -> list[Any]:
    """``container[name]`` when both are what OTLP/JSON has there (left to protobuf's
    mapping to refuse otherwise)."""
    value = container.get(name) if isinstance(container, dict) else None
    return value if isinstance(value, list) else []


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP/JSON writes ``traceId`` and ``spanId`` in hex; protobuf's mapping reads base64."""
    for resource in _items(document, "resourceLogs"):
        for scope in _items(resource, "scopeLogs"):
            for record in _items(scope, "logRecords"):
                if not isinstance(record, dict):
                    continue
                for name in ("traceId", "spanId"):
                    value = record.get(name)
                    if isinstance(value, str) and value:
                        try:
                            record[name] = base64.b64encode(bytes.fromhex(value)).decode()
                        except ValueError:
                            raise InvalidEvidence(f"{name} {value!r} is not hexadecimal") from None


def decode_logs(body: bytes, *, json: bool) -> ExportLogsServiceRequest:
    """The export request ``body`` encodes (OTLP/JSON when ``json``, else protobuf)."""
    request = ExportLogsServiceRequest()
    if not json:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise InvalidEvidence(
                f"the body is not a protobuf ExportLogsServiceRequest: {exc}"
            ) from None
        return request
    try:
        document = loads(body)
    except InvalidJson as exc:
        raise InvalidEvidence(f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidEvidence(
            f"the body must be an ExportLogsServiceRequest object, not {type(document).__name__}"
        )
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise InvalidEvidence(f"the body is not an ExportLogsServiceRequest: {exc}") from None
    return request


def _text(value: AnyValue) -> str:
    """A value as text: strings as they are, anything else in its OTLP/JSON form."""
    if value.WhichOneof("value") == "string_value":
        return value.string_value
    if value.WhichOneof("value") is None:
        return ""
    return orjson.dumps(json_format.MessageToDict(value)).decode()


def _attributes(items: Iterable[KeyValue]) -> dict[str, AnyValue]:
    return {item.key: item.value for item in items}


def _resource_text(attributes: dict[str, AnyValue], *names: str) -> str:
    return next((_text(attributes[name]) for name in names if name in attributes), "")


@dataclass(slots=True)
class LogsExport:
    """What an export request gave: the evidence in it, how many records were skipped (not
    errors) and the refused ones, each with where it is and why."""

    evidence: list[Evidence] = field(default_factory=list)
    skipped: int = 0
    refused: list[str] = field(default_factory=list)


def _record(record: OtlpRecord, resource: dict[str, AnyValue], received: datetime) -> LogRecord:
    attributes = _attributes(record.attributes)
    exception = {}
    for key in _EXCEPTION_KEYS:
        value = attributes.get(key)
        if value is not None and value.WhichOneof("value") not in (None, "string_value"):
            raise InvalidEvidence(f"attribute {key} must be a string")
        exception[key] = value.string_value if value is not None else ""
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    try:
        moment = datetime_from_us(nanos // 1000) if nanos else received
    except OverflowError:
        raise InvalidEvidence(f"timeUnixNano {nanos} is out of range") from None
    return LogRecord(
        service=_resource_text(resource, "service.name") or UNKNOWN_SERVICE,
        environment=_resource_text(
            resource, "deployment.environment.name", "deployment.environment"
        ),
        release=_resource_text(resource, "service.version"),
        time=moment,
        level=level_of_severity(record.severity_number, record.severity_text),
        message=_text(record.body),
        exception_type=exception["exception.type"],
        exception_message=exception["exception.message"],
        stacktrace=exception["exception.stacktrace"],
        raw=orjson.dumps(json_format.MessageToDict(record)),
    )


def read_logs(request: ExportLogsServiceRequest, tenant_id: str, received: datetime) -> LogsExport:
    """The evidence of every record of ``request``, for ``tenant_id``; records without a
    time are taken as ``received``."""
    export = LogsExport()
    for r, resource_logs in enumerate(request.resource_logs):
        resource = _attributes(resource_logs.resource.attributes)
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for n, record in enumerate(scope_logs.log_records):
                where = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{n}]"
                try:
                    found = evidence_of_record(tenant_id, _record(record, resource, received))
                except InvalidEvidence as exc:
                    export.refused.append(f"{where}: {exc}")
                    continue
                if found is None:
                    export.skipped += 1
                else:
                    export.evidence.append(found)
    return export


def encode_response(export: LogsExport, *, json: bool) -> bytes:
    """The ``ExportLogsServiceResponse`` for ``export``: ``partial_success`` only when some
    records were refused, as OTLP asks."""
    response = ExportLogsServiceResponse()
    if export.refused:
        response.partial_success.rejected_log_records = len(export.refused)
        reasons = export.refused[:MAX_REASONS]
        more = len(export.refused) - len(reasons)
        response.partial_success.error_message = "; ".join(reasons) + (
            f"; and {more} more" if more else ""
        )
    if json:
        return orjson.dumps(json_format.MessageToDict(response))
    return response.SerializeToString()


def encode_status(message: str, *, json: bool) -> bytes:
    """A refusal as OTLP/HTTP sends it: a ``google.rpc.Status`` whose ``message`` says why
    (OTLP leaves its ``code`` unused over HTTP: the HTTP status is the code)."""
    status = Status(message=message)
    if json:
        return orjson.dumps(json_format.MessageToDict(status))
    body: bytes = status.SerializeToString()
    return body
