"""Rate limits per token on a real server: a burst past the limit is refused with 429 and
Retry-After, other tokens and the public endpoints are unaffected; the bucket table stays
bounded; and the limits come from the settings like every other one."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from canopy.server.api.limits import RateLimiter
from canopy.server.config import Settings, SettingsError, load_settings

from .conftest import bearer, serving

PROBLEM = "application/problem+json"


async def status_of(http: aiohttp.ClientSession, url: str, token: str | None = None) -> int:
    async with http.get(url, headers=bearer(token) if token else {}) as response:
        return response.status


async def test_a_burst_past_the_limit_gets_429_and_other_tokens_do_not(
    settings: Settings, http: aiohttp.ClientSession
) -> None:
    # A refill of one request per 100 s: nothing trickles back in while the test runs.
    tiny = Settings(
        port=0,
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        rate_limit_per_second=0.01,
        rate_limit_burst=3,
    )
    async with serving(tiny) as running:
        greedy = await running.issue("greedy", "acme")
        patient = await running.issue("patient", "acme")
        me = f"{running.url}/api/v1/pods/me"
        assert [await status_of(http, me, greedy) for _ in range(3)] == [404, 404, 404]
        async with http.get(me, headers=bearer(greedy)) as response:
            assert response.status == 429
            assert response.content_type == PROBLEM
            retry_after = int(response.headers["Retry-After"])
            assert 1 <= retry_after <= 100
            problem = await response.json(content_type=PROBLEM)
        assert problem["type"].endswith("/rate-limited")
        assert problem["status"] == 429
        # Another token has its own bucket; the public endpoints are not limited.
        assert [await status_of(http, me, patient) for _ in range(3)] == [404, 404, 404]
        assert await status_of(http, f"{running.url}/healthz", greedy) == 200
        assert await status_of(http, f"{running.url}/api/v1/openapi.json", greedy) == 200
        assert await status_of(http, f"{running.url}/metrics") == 200
        # A bad token is refused as such, not counted against anyone.
        assert await status_of(http, me, "not-a-token") == 401


def test_buckets_refill_at_the_rate_up_to_the_burst() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 4, clock=lambda: now[0])
    assert [limiter.take("t") for _ in range(4)] == [0, 0, 0, 0]
    assert limiter.take("t") == pytest.approx(0.5)  # one request comes back every 0.5 s
    now[0] = 0.5
    assert limiter.take("t") == 0
    now[0] = 100.0  # a long pause refills to the burst, not beyond
    assert [limiter.take("t") for _ in range(4)] == [0, 0, 0, 0]
    assert limiter.take("t") > 0


def test_the_bucket_table_stays_bounded() -> None:
    limiter = RateLimiter(1.0, 1, max_buckets=100)
    for number in range(10_000):
        limiter.take(f"token-{number}")
    assert len(limiter) == 100
    assert limiter.take("token-9999") > 0  # recent tokens keep their (empty) bucket
    assert limiter.take("token-0") == 0  # forgotten ones start again full


def test_limits_are_settings(tmp_path: Path) -> None:
    defaults = load_settings(environ={}, cwd=tmp_path)
    assert (defaults.rate_limit_per_second, defaults.rate_limit_burst) == (200.0, 400)
    environ = {"CANOPY_RATE_LIMIT": "2.5", "CANOPY_RATE_LIMIT_BURST": "10"}
    configured = load_settings(environ=environ, cwd=tmp_path)
    assert (configured.rate_limit_per_second, configured.rate_limit_burst) == (2.5, 10)
    with pytest.raises(SettingsError, match=r"rate_limit_per_second.*CANOPY_RATE_LIMIT"):
        load_settings(environ={"CANOPY_RATE_LIMIT": "0"}, cwd=tmp_path)
    with pytest.raises(SettingsError, match=r"rate_limit_burst.*CANOPY_RATE_LIMIT_BURST"):
        load_settings(environ={"CANOPY_RATE_LIMIT_BURST": "-1"}, cwd=tmp_path)
