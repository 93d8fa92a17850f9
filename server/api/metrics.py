"""``GET /metrics``: Prometheus text exposition of what one server is doing.

Each app has its own :class:`~prometheus_client.CollectorRegistry` (never the process-global
one), so several servers in one process (the tests start many) never mix or collide. Counters
and histograms are fed by :func:`metrics_middleware`; gauges of current state (pods, live
executions, the store's writer queue) are read from the app when scraped, so they cannot drift
from the truth and cost nothing between scrapes.

Hooks are kept outside the code they observe: appended events are counted from the request a
successful append answered, and pod events and pod start times through the pod manager's
observer lists (:func:`observe_pods`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Final

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from canopy.bridge import NewEvent

from ..pods.manager import Pod, PodManager
from .keys import PODS, STORE

__all__ = ["METRICS", "METRICS_PATH", "Metrics", "add_metrics", "metrics_middleware"]

METRICS_PATH: Final = "/metrics"
EVENTS_PATH: Final = "/api/v1/events"
NOTIFICATIONS_PATH: Final = "/api/v1/notifications"
SUBSCRIBE_PATH: Final = "/api/v1/events/subscribe"
UNMATCHED: Final = "unmatched"
"""The route label of requests no route matched: the raw path would let any client create
label values (and series) without bound."""
POD_START_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


class Metrics:
    """The app's registry and the instruments its middleware feeds."""

    def __init__(self, app: web.Application) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.events_appended = Counter(
            "canopy_events_appended",
            "Events appended to the log through this server, by topic and source (api, pod).",
            ["topic", "source"],
            registry=registry,
        )
        self.pod_events = Counter(
            "canopy_pod_events_ingested",
            "Events shipped by debug pod workers and written to the log.",
            registry=registry,
        )
        self.requests = Counter(
            "canopy_http_requests",
            "HTTP requests answered, by method, route template and final status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "canopy_http_request_duration_seconds",
            "Time to answer an HTTP request (WebSockets excluded: their time is their lifetime).",
            ["method", "route"],
            registry=registry,
        )
        self.pod_startup = Histogram(
            "canopy_pod_startup_seconds",
            "From a debug pod's request to its ready link (the PodReady fact's startup_ms).",
            buckets=POD_START_BUCKETS,
            registry=registry,
        )
        self.notification_subscribers = Gauge(
            "canopy_notification_subscribers",
            "Open notification WebSockets (clients attached to executions).",
            registry=registry,
        )
        self.event_subscribers = Gauge(
            "canopy_event_subscribers",
            "Open event-log subscription WebSockets.",
            registry=registry,
        )
        registry.register(_StateCollector(app))

    def ingested(self, events: Sequence[NewEvent]) -> None:
        """Count a batch a pod's link wrote to the log."""
        self.pod_events.inc(len(events))
        self._count_topics((str(event.topic) for event in events), "pod")

    def appended(self, body: bytes) -> None:
        """Count the events of an append the API accepted, from its request body (already read
        and checked by the handler, so this only re-parses it)."""
        try:
            items = orjson.loads(body or b"{}").get("events", [])
        except (orjson.JSONDecodeError, AttributeError):
            return
        self._count_topics((str(item.get("topic", "")) for item in items), "api")

    def _count_topics(self, topics: Iterator[str], source: str) -> None:
        counts: dict[str, int] = {}
        for topic in topics:
            counts[topic] = counts.get(topic, 0) + 1
        for topic, count in counts.items():
            self.events_appended.labels(topic, source).inc(count)

    def exposition(self) -> bytes:
        """The text format a Prometheus server scrapes."""
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges read at scrape time from the app itself: pods by state, live executions, and
    the store's writer queue when the store exposes one."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def describe(self) -> list[Metric]:
        return []  # collect() reads the app, which may not be started when registering

    def collect(self) -> Iterator[Metric]:
        manager = self._app.get(PODS)
        pods: list[Pod] = manager.pods() if manager is not None else []
        by_state = GaugeMetricFamily(
            "canopy_pods", "Debug pods this server runs, by state.", labels=["state"]
        )
        states: dict[str, int] = dict.fromkeys(("starting", "ready", "reconnecting"), 0)
        for pod in pods:
            states[pod.state] = states.get(pod.state, 0) + 1
        for state, count in sorted(states.items()):
            by_state.add_metric([state], count)
        yield by_state
        yield GaugeMetricFamily(
            "canopy_live_executions",
            "Executions not yet ended, across every pod.",
            value=sum(len(pod.live) for pod in pods),
        )
        queued = getattr(self._app.get(STORE), "queued_appends", None)
        if isinstance(queued, int):
            yield GaugeMetricFamily(
                "canopy_store_queued_appends",
                "Append calls waiting for the event log's writer (back-pressure when high).",
                value=queued,
            )


METRICS: Final = web.AppKey("metrics", Metrics)


def add_metrics(app: web.Application) -> None:
    """Give ``app`` its registry and the ``GET /metrics`` route (unauthenticated, like
    ``/healthz``: it reveals counts, never tenants, users or ids)."""
    app[METRICS] = Metrics(app)
    app.router.add_get(METRICS_PATH, scrape)


async def scrape(request: web.Request) -> web.Response:
    """``GET /metrics``: every metric of this server in the Prometheus text format."""
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request by its route template. Sits outside the problem
    middleware, so it sees the statuses clients see."""
    metrics = request.app[METRICS]
    route = _route_of(request)
    started = time.perf_counter()
    status = "error"
    try:
        with _observing(metrics, route):
            response = await handler(request)
        status = str(response.status)
        if route == EVENTS_PATH and response.status == 201:
            metrics.appended(await request.read())  # the handler's bytes, cached by aiohttp
        if not isinstance(response, web.WebSocketResponse):
            metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)
        return response
    except web.HTTPException as exc:
        status = str(exc.status)
        raise
    except asyncio.CancelledError:
        status = "cancelled"  # the client went away before the answer
        raise
    finally:
        metrics.requests.labels(request.method, route, status).inc()


@contextlib.contextmanager
def _observing(metrics: Metrics, route: str) -> Iterator[None]:
    """What a long-lived request feeds while it runs: a subscriber gauge."""
    if route in (NOTIFICATIONS_PATH, SUBSCRIBE_PATH):
        gauge = (
            metrics.notification_subscribers
            if route == NOTIFICATIONS_PATH
            else metrics.event_subscribers
        )
        with gauge.track_inprogress():
            yield
    else:
        yield


def observe_pods(metrics: Metrics, manager: PodManager) -> None:
    """Count what the pods' links ingest and time each new pod's start."""
    manager.on_ingested.append(metrics.ingested)
    manager.on_ready.append(metrics.pod_startup.observe)
