"""A service that logs a bug through the real OpenTelemetry SDK: ``python otlp_app.py ENDPOINT
TOKEN ORDER`` looks up an order that does not exist, logs the KeyError with the standard
library's ``logger.exception`` (OpenTelemetry's ``LoggingHandler`` turns it into a log record)
and exports it over OTLP/HTTP, gzipped; it prints the export's result."""

from __future__ import annotations

import logging
import sys
import warnings

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource


class Exporter(OTLPLogExporter):
    """The OTLP exporter, printing the result of each export."""

    def export(self, batch):  # type: ignore[no-untyped-def]
        result = super().export(batch)
        print(result.name, flush=True)
        return result


def lookup(orders: dict[int, str], order: int) -> str:
    if order not in orders:
        raise KeyError(f"order {order} not found at 0x{id(orders):x}")
    return orders[order]


def checkout(order: int) -> str:
    return lookup({1: "book"}, order)


def main() -> None:
    endpoint, token, order = sys.argv[1], sys.argv[2], int(sys.argv[3])
    resource = Resource.create(
        {"service.name": "shop", "service.version": "1.4.2", "deployment.environment": "staging"}
    )
    provider = LoggerProvider(resource=resource)
    exporter = Exporter(
        endpoint=endpoint,
        headers={"Authorization": f"Bearer {token}"},
        compression=Compression.Gzip,
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    log = logging.getLogger("shop")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.info("checking out order %d", order)  # not an error: skipped
    try:
        checkout(order)
    except KeyError:
        log.exception("checkout of order %d failed", order)
    provider.shutdown()


if __name__ == "__main__":
    main()
