"""``GET /metrics`` on a real server with real pod workers: the names a dashboard relies on,
counters that move with the traffic, gauges that follow the pods, and one registry per app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from canopy.bridge import EventStore
from canopy.server.config import Settings
from canopy.server.runtime.control import LaunchSpec

from .conftest import Running, bearer, eventually, serving, tick
from .pods.remote import pod_server, remote_control

PATROL = "tests.server.runtime.factories:patrol"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: aiohttp.ClientSession, running: Running) -> Samples:
    """Every sample of the server's exposition, by name and labels (no token needed)."""
    async with http.get(f"{running.url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def running(store: EventStore, tmp_path: Path) -> AsyncIterator[Running]:
    async with pod_server(store, tmp_path / ".canopy") as server:
        yield server


async def test_metrics_follow_requests_pods_and_executions(
    running: Running, http: aiohttp.ClientSession
) -> None:
    token = await running.issue("bob", "acme")
    async with http.get(f"{running.url}/healthz") as response:
        assert response.status == 200
    async with http.get(f"{running.url}/api/v1/events") as response:
        assert response.status == 401
    async with http.get(f"{running.url}/no/such/place/42") as response:
        assert response.status == 404
    events = [tick("m1", 1), tick("m1", 2)]
    async with http.post(
        f"{running.url}/api/v1/events", json={"events": events}, headers=bearer(token)
    ) as response:
        assert response.status == 201

    async with remote_control(running) as control:
        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        await control.tick(info.id, 3)
        await control.settle(info.id)
        live = await scrape(http, running)
        assert value(live, "canopy_live_executions") == 1
        assert value(live, "canopy_pods", state="ready") == 1
        assert value(live, "canopy_notification_subscribers") == 1  # the control's socket
        await control.terminate(info.id)
        await control.wait_for_end(info.id)

    async def detached() -> bool:  # the socket's handler ends once its detach is recorded
        return value(await scrape(http, running), "canopy_notification_subscribers") == 0

    await eventually(detached, "the notification socket's handler has ended")
    samples = await scrape(http, running)

    requests = "canopy_http_requests_total"
    assert value(samples, requests, method="GET", route="/healthz", status="200") == 1
    assert value(samples, requests, method="GET", route="/api/v1/events", status="401") == 1
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
    assert value(samples, requests, method="POST", route="/api/v1/events", status="201") == 1
    launches = value(samples, requests, method="POST", route="/api/v1/executions", status="200")
    assert launches == 1
    duration = "canopy_http_request_duration_seconds_count"
    assert value(samples, duration, method="POST", route="/api/v1/executions") == 1

    appended = "canopy_events_appended_total"
    assert value(samples, appended, topic="debugging.execution", source="api") == 2
    from_pod = value(samples, appended, topic="debugging.execution", source="pod")
    assert from_pod > 3  # started, three ticks of node changes, ended
    assert value(samples, "canopy_pod_events_ingested_total") == from_pod
    assert value(samples, "canopy_pod_startup_seconds_count") == 1
    assert value(samples, "canopy_pod_startup_seconds_sum") > 0

    assert value(samples, "canopy_live_executions") == 0
    assert value(samples, "canopy_notification_subscribers") == 0
    assert ("canopy_store_queued_appends", frozenset()) in samples
    assert value(samples, "canopy_event_subscribers") == 0


async def test_each_server_counts_only_its_own_traffic(
    settings: Settings, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    other = Settings(port=0, data_dir=tmp_path / "other", database_url=settings.database_url)
    async with serving(settings) as first, serving(other) as second:
        for _ in range(3):
            async with http.get(f"{first.url}/healthz") as response:
                assert response.status == 200
        healthz = {"method": "GET", "route": "/healthz", "status": "200"}
        assert value(await scrape(http, first), "canopy_http_requests_total", **healthz) == 3
        assert value(await scrape(http, second), "canopy_http_requests_total", **healthz) == 0
