"""A local OpenTelemetry collector for tests: an aiohttp server taking OTLP/HTTP exports
(``POST /v1/traces``, ``application/x-protobuf``), decoded with the protocol's own protobuf
classes, and the spans it received, to wait on and inspect."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from .conftest import WAIT

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, its ids in hex and its attributes as Python values."""

    service: str
    scope: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status: str
    status_message: str


class Receiver:
    """What the collector received; :meth:`wait_for` waits on it with a deadline."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.refused: list[str] = []
        self._changed = asyncio.Condition()
        self.url = ""

    async def export(self, request: web.Request) -> web.Response:
        if request.content_type != PROTOBUF:
            self.refused.append(request.content_type)
            raise web.HTTPUnsupportedMediaType(text=f"expected {PROTOBUF}")
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        async with self._changed:
            self.requests += 1
            for resource_spans in export.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            _received(span, str(resource["service.name"]), scope_spans.scope.name)
                        )
            self._changed.notify_all()
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type=PROTOBUF)

    async def wait_for(
        self, condition: Callable[[list[ReceivedSpan]], bool], what: str
    ) -> list[ReceivedSpan]:
        """The spans once ``condition`` holds of them; fails after WAIT seconds."""
        try:
            async with asyncio.timeout(WAIT), self._changed:
                await self._changed.wait_for(lambda: condition(self.spans))
        except TimeoutError:
            names = [span.name for span in self.spans]
            raise AssertionError(f"not within {WAIT} s: {what}; received {names}") from None
        return list(self.spans)

    def named(self, name: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.name == name]


@asynccontextmanager
async def otlp_receiver() -> AsyncIterator[Receiver]:
    """A collector on a free loopback port; its ``url`` is what OTEL_EXPORTER_OTLP_ENDPOINT
    takes (the exporter appends ``/v1/traces``)."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", receiver.export)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def _received(span: Span, service: str, scope: str) -> ReceivedSpan:
    return ReceivedSpan(
        service=service,
        scope=scope,
        name=span.name,
        kind=Span.SpanKind.Name(span.kind),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        attributes=_attributes(span.attributes),
        status=Status.StatusCode.Name(span.status.code),
        status_message=span.status.message,
    )


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind is not None else None
