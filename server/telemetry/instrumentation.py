"""The server's own work in the same traces: its HTTP requests and the event log's SQL.

Both come from OpenTelemetry's maintained instrumentations. A request's span is the outermost
middleware's, so it covers authentication, limits and problem documents too; the event log's
read engine is instrumented once it exists, and its queries run in the request's context (an
async engine carries it into its greenlets), so a trace goes from the request down to each
statement it ran. The writer thread's engine is left alone: it commits batches gathered from
many requests at once, whose statements belong to no single trace.

The instrumentations are imported only when tracing is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .provider import tracing_enabled

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["instrument_event_log", "instrument_http_server"]


def instrument_http_server() -> None:
    """Give every aiohttp application created from now on a server span per request (the
    instrumentation puts its middleware first); nothing when tracing is off."""
    if tracing_enabled():
        from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor

        AioHttpServerInstrumentor().instrument()


def instrument_event_log(engine: AsyncEngine) -> None:
    """A client span per SQL statement of the event log's read ``engine``; nothing when
    tracing is off. Once per process: the instrumentation keeps one set of listeners.

    The instrumentation declares SQLAlchemy below 2.1, the newest it was released against,
    and refuses a newer one unless told; it only listens to engine events that 2.1 keeps, and
    the server's tests check its spans on the version installed, so the check is skipped."""
    if tracing_enabled():
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().instrument(engines=[engine.sync_engine], skip_dep_check=True)
