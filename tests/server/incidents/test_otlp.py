"""OpenTelemetry's SDK exporting logs to a running server: the real ``opentelemetry-sdk``
and OTLP/HTTP exporter in a real process, over a real socket; the JSON encoding posted raw;
and every way an export can be refused, with the server serving on."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import aiohttp
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from canopy.server.api.keys import EVIDENCE
from canopy.server.incidents.signature import signature_of

from ..conftest import Running, bearer
from .conftest import line_of, run_app

APP = Path(__file__).with_name("otlp_app.py")
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


async def export(server: Running, token: str, order: int) -> list[str]:
    """Run the service once; the results of its exports."""
    printed = await run_app(APP, f"{server.url}/v1/logs", token, str(order))
    return printed.split()


async def test_an_exception_logged_through_the_sdk_is_kept_with_frames_and_signature(
    server: Running,
) -> None:
    token = await server.issue("ann", "acme")
    assert await export(server, token, 7) == ["SUCCESS", "SUCCESS"]
    [stored] = await server.app[EVIDENCE].reports("acme")
    kept = stored.evidence
    assert (kept.service, kept.release, kept.environment) == ("shop", "1.4.2", "staging")
    assert (kept.level, kept.exception_type) == ("error", "KeyError")
    assert kept.message.startswith("order 7 not found at 0x")
    assert [(f.function, f.in_app) for f in kept.frames] == [
        ("main", True),
        ("checkout", True),
        ("lookup", True),
    ]
    raising = '        raise KeyError(f"order {order} not found at 0x{id(orders):x}")'
    last = kept.frames[-1]
    assert (Path(last.file).name, last.line, last.context_line) == (
        "otlp_app.py",
        line_of(APP, raising),
        raising.strip(),
    )
    assert kept.signature == signature_of("KeyError", kept.frames, "")
    assert json.loads(kept.raw)["body"]["stringValue"] == "checkout of order 7 failed"
    # The same bug again, with another message, has the same signature; no other tenant sees it.
    await export(server, token, 4242)
    first, second = await server.app[EVIDENCE].reports("acme")
    assert first.evidence.signature == second.evidence.signature
    assert first.evidence.message != second.evidence.message
    assert await server.app[EVIDENCE].reports("globex") == []


def otlp_json(*records: dict[str, Any], service: str | None = "billing") -> dict[str, Any]:
    attributes = [{"key": "service.version", "value": {"stringValue": "2.0"}}]
    if service is not None:
        attributes.append({"key": "service.name", "value": {"stringValue": service}})
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": attributes},
                "scopeLogs": [{"scope": {"name": "app"}, "logRecords": list(records)}],
            }
        ]
    }


TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/pay.py", line 3, in charge\n'
    "    1 / 0\n"
    "ZeroDivisionError: division by zero\n"
)


def record(**fields: Any) -> dict[str, Any]:
    return {
        "timeUnixNano": "1772366400000000000",
        "severityNumber": 17,
        "severityText": "ERROR",
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "body": {"stringValue": "payment failed"},
        "unknownField": True,
        **fields,
    }


async def post(
    http: aiohttp.ClientSession, server: Running, token: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    async with http.post(
        f"{server.url}/v1/logs", data=body, headers={**bearer(token), **headers}
    ) as response:
        return response.status, response.content_type, await response.read()


async def test_json_exports_are_taken_and_refused_records_counted(
    server: Running, http: aiohttp.ClientSession
) -> None:
    token = await server.issue("bob", "globex")
    bad_type = {"key": "exception.type", "value": {"intValue": "3"}}
    body = otlp_json(
        record(),
        record(severityNumber=9, severityText="INFO", body={"stringValue": "fine"}),
        record(severityNumber=0, severityText="", attributes=[bad_type]),
        record(
            severityNumber=13,
            attributes=[{"key": "exception.stacktrace", "value": {"stringValue": TRACE}}],
        ),
    )
    status, kind, answer = await post(http, server, token, json.dumps(body).encode(), JSON)
    assert (status, kind) == (200, "application/json")
    assert json.loads(answer) == {
        "partialSuccess": {
            "rejectedLogRecords": "1",
            "errorMessage": "resourceLogs[0].scopeLogs[0].logRecords[2]:"
            " attribute exception.type must be a string",
        }
    }
    logged, raised = [s.evidence for s in await server.app[EVIDENCE].reports("globex")]
    assert (logged.service, logged.release, logged.exception_type) == ("billing", "2.0", "")
    assert (logged.message, logged.time.year) == ("payment failed", 2026)
    assert (raised.level, raised.exception_type, raised.message) == (
        "warning",
        "ZeroDivisionError",
        "division by zero",
    )
    assert [(f.file, f.function, f.line, f.context_line) for f in raised.frames] == [
        ("/srv/app/pay.py", "charge", 3, "1 / 0")
    ]
    # Gzipped, and again: a retried export is kept once; a resource without a name is
    # OpenTelemetry's unknown_service.
    again = gzip.compress(json.dumps(otlp_json(record(), service=None)).encode())
    for _ in range(2):
        status, _, answer = await post(
            http, server, token, again, {**JSON, "Content-Encoding": "gzip"}
        )
        assert (status, json.loads(answer)) == (200, {})
    services = [s.evidence.service for s in await server.app[EVIDENCE].reports("globex")]
    assert services == ["billing", "billing", "unknown_service"]


async def test_a_protobuf_export_is_answered_in_protobuf(
    server: Running, http: aiohttp.ClientSession
) -> None:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    token = await server.issue("bob", "globex")
    message = json_format.ParseDict(
        otlp_json(record(traceId="", spanId="")),
        ExportLogsServiceRequest(),
        ignore_unknown_fields=True,
    )
    status, kind, answer = await post(http, server, token, message.SerializeToString(), PROTOBUF)
    assert (status, kind) == (200, "application/x-protobuf")
    response = ExportLogsServiceResponse()
    response.ParseFromString(answer)
    assert not response.HasField("partial_success")
    assert len(await server.app[EVIDENCE].reports("globex")) == 1


def refusal(kind: str, body: bytes) -> str:
    """The message of an OTLP refusal: a google.rpc.Status in protobuf or JSON."""
    if kind == "application/json":
        message: str = json.loads(body)["message"]
        return message
    status = Status()
    status.ParseFromString(body)
    return status.message


async def test_bad_exports_are_refused_precisely(
    server: Running, http: aiohttp.ClientSession
) -> None:
    token = await server.issue("bob", "globex")
    cases = [
        (b"\xff\xff\xff", PROTOBUF, "not a protobuf ExportLogsServiceRequest"),
        (b'{"resourceLogs": [', JSON, "not valid JSON"),
        (b"[]", JSON, "must be an ExportLogsServiceRequest object, not list"),
        (b'{"resourceLogs": 3}', JSON, "resourceLogs"),
        (
            json.dumps(otlp_json(record(traceId="zz"))).encode(),
            JSON,
            "traceId 'zz' is not hexadecimal",
        ),
    ]
    for body, headers, detail in cases:
        status, kind, answer = await post(http, server, token, body, headers)
        assert (status, kind) == (400, headers["Content-Type"]), answer
        assert detail in refusal(kind, answer)
    # Other refusals speak OTLP too: JSON unless the request was protobuf.
    status, kind, answer = await post(http, server, token, b"x", {"Content-Type": "text/plain"})
    assert (status, kind) == (415, "application/json")
    assert "application/x-protobuf" in refusal(kind, answer)
    async with http.post(f"{server.url}/v1/logs", data=b"", headers=PROTOBUF) as response:
        assert (response.status, response.content_type) == (401, "application/x-protobuf")
        assert "Authorization: Bearer" in refusal(response.content_type, await response.read())
    status, kind, answer = await post(http, server, token, b"x" * (5 * 1024 * 1024), PROTOBUF)
    assert (status, kind) == (413, "application/x-protobuf")
    assert refusal(kind, answer)
    # Bounded once inflated: a small gzip of a large body is refused alike.
    bomb = gzip.compress(b"\0" * (5 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    status, kind, _ = await post(
        http, server, token, bomb, {**PROTOBUF, "Content-Encoding": "gzip"}
    )
    assert (status, kind) == (413, "application/x-protobuf")
    assert await server.app[EVIDENCE].reports("globex") == []
