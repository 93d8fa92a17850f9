"""Whether this process exports traces, and where: OpenTelemetry's own environment variables.

Tracing is off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
names a collector: then spans go there over OTLP/HTTP (protobuf) in batches, from a bounded
queue (the SDK's ``OTEL_BSP_*`` settings) that drops spans rather than block the server when
the collector is slow. Off, nothing is installed and every span is the API's no-op one, so code
that opens spans costs next to nothing where nobody collects them.

The variables are OpenTelemetry's, read by the SDK itself (headers, timeout, certificate,
batch sizes); Canopy only names the service when ``OTEL_SERVICE_NAME`` does not, and refuses a
protocol it does not speak instead of sending protobuf to a gRPC port.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from opentelemetry import trace
from yarl import URL

from ..config import SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

__all__ = [
    "ENDPOINT_VARIABLES",
    "POD_SERVICE",
    "SERVER_SERVICE",
    "start_tracing",
    "stop_tracing",
    "tracing_enabled",
]

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""Either turns tracing on; the first is the full URL of the traces path, the second a base
URL the exporter appends ``/v1/traces`` to."""
PROTOCOL_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
SPOKEN_PROTOCOL: Final = "http/protobuf"
SERVER_SERVICE: Final = "canopy-server"
POD_SERVICE: Final = "canopy-pod"

_installed: TracerProvider | None = None


def start_tracing(default_service: str) -> TracerProvider | None:
    """Install the process's tracer provider when the environment names a collector; None (and
    nothing installed) when it does not, or when ``OTEL_SDK_DISABLED`` is true.
    ``default_service`` is ``service.name`` unless ``OTEL_SERVICE_NAME`` or
    ``OTEL_RESOURCE_ATTRIBUTES`` give one. SettingsError names a protocol other than
    http/protobuf. Call once per process, before the spans it should see."""
    global _installed
    if _installed is not None:
        return _installed
    environ = os.environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    endpoint = next((environ[name] for name in ENDPOINT_VARIABLES if environ.get(name)), None)
    if endpoint is None:
        return None
    _check_protocol(environ)
    # The SDK and the exporter (protobuf, requests) load only when there is somewhere to
    # export to: a process that does not trace does not pay for their import either.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=_resource(default_service))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _installed = provider
    shown = str(URL(endpoint).with_user(None))  # never a password in the log
    log.info("tracing on", extra={"fields": {"endpoint": shown, "protocol": SPOKEN_PROTOCOL}})
    return provider


def tracing_enabled() -> bool:
    """Whether :func:`start_tracing` installed a provider in this process."""
    return _installed is not None


def stop_tracing() -> None:
    """Export what is queued and shut the provider down (waiting at most the exporter's
    timeout for a slow collector); nothing when tracing is off. Spans opened afterwards are
    dropped."""
    global _installed
    if _installed is None:
        return
    provider, _installed = _installed, None
    provider.shutdown()


def _check_protocol(environ: Mapping[str, str]) -> None:
    """Refuse the protocol that applies to traces (the traces-specific variable first, as
    OpenTelemetry orders them) when it is not the one spoken."""
    name = next((name for name in PROTOCOL_VARIABLES if environ.get(name, "").strip()), None)
    protocol = environ[name].strip() if name is not None else SPOKEN_PROTOCOL
    if protocol != SPOKEN_PROTOCOL:
        raise SettingsError(
            f"{name}={protocol!r}: Canopy exports traces over {SPOKEN_PROTOCOL} only"
            " (point the endpoint at the collector's OTLP/HTTP port, usually 4318)"
        )


def _resource(default_service: str) -> Resource:
    """The SDK's resource from the environment, with ``default_service`` as its name unless
    the environment names the service."""
    from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource

    detected = OTELResourceDetector().detect()
    named = SERVICE_NAME in detected.attributes
    return Resource.create({} if named else {SERVICE_NAME: default_service})
