"""Sentry's SDK reporting to a running server: the real ``sentry-sdk`` in a real process, over
a real socket; and every way a report can be refused, with the server serving on."""

from __future__ import annotations

import dataclasses
import gzip
import json
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canopy.server.api.keys import EVIDENCE
from canopy.server.config import Settings
from canopy.server.incidents.sentry import MAX_RAW_BYTES, SentryKey
from canopy.server.incidents.signature import signature_of

from ..conftest import Running, bearer, serving
from .conftest import line_of, run_app

APP = Path(__file__).with_name("sentry_app.py")
KEY = "5f0e1d2c3b4a"
ENVELOPE_TYPE = {"Content-Type": "application/x-sentry-envelope"}


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[Running]:
    keyed = dataclasses.replace(
        settings,
        sentry_keys=(SentryKey(KEY, "acme", "shop"), SentryKey("b1b2b3", "globex", "billing")),
        max_request_bytes=256 * 1024,
    )
    async with serving(keyed) as server:
        yield server


def dsn(running: Running, key: str = KEY) -> str:
    host = running.url.removeprefix("http://")
    return f"http://{key}@{host}/42"


async def report(running: Running, order: int) -> str:
    """Run the service once: it reports its bug through the SDK and prints the event id."""
    return (await run_app(APP, dsn(running), str(order))).strip()


async def test_a_report_from_the_sdk_is_kept_with_its_frames_and_signature(
    running: Running,
) -> None:
    event_id = await report(running, 7)
    [stored] = await running.app[EVIDENCE].reports("acme")
    kept = stored.evidence
    assert (kept.event_id, kept.service, kept.tenant_id) == (event_id, "shop", "acme")
    assert (kept.release, kept.environment, kept.level) == ("shop@1.4.2", "staging", "error")
    assert kept.exception_type == "KeyError"
    assert kept.message.startswith("'order 7 not found at 0x")
    assert [(f.function, f.module, f.in_app) for f in kept.frames] == [
        ("main", "__main__", True),
        ("checkout", "__main__", True),
        ("lookup", "__main__", True),
    ]
    raising = '        raise KeyError(f"order {order} not found at 0x{id(orders):x}")'
    last = kept.frames[-1]
    assert (last.file, last.line, last.context_line) == (
        "sentry_app.py",
        line_of(APP, raising),
        raising,
    )
    assert kept.signature == signature_of("KeyError", kept.frames, "")
    assert json.loads(kept.raw)["event_id"] == event_id
    assert kept.raw_size == len(kept.raw) < MAX_RAW_BYTES


async def test_two_occurrences_of_one_bug_have_one_signature(
    running: Running, http: aiohttp.ClientSession
) -> None:
    await report(running, 7)
    await report(running, 4242)
    first, second = await running.app[EVIDENCE].reports("acme")
    assert first.evidence.message != second.evidence.message
    assert first.evidence.signature == second.evidence.signature
    token = await running.issue("ann", "acme")
    async with http.get(
        f"{running.url}/api/v1/evidence/signatures", headers=bearer(token)
    ) as response:
        assert response.status == 200
        body = await response.json()
    [signature] = body["signatures"]
    assert (signature["count"], signature["release"]) == (2, "shop@1.4.2")
    assert [f["count"] for f in body["frequency"]] == [2]
    assert [(r["errors"], r["total"]) for r in body["error_rate"]] == [(2, 2)]
    async with http.get(
        f"{running.url}/api/v1/evidence",
        params={"signature": signature["signature"], "limit": "1"},
        headers=bearer(token),
    ) as response:
        page = await response.json()
    assert [item["event_id"] for item in page["evidence"]] == [first.evidence.event_id]
    assert page["next_after"] == first.id
    assert page["evidence"][0]["frames"][-1]["function"] == "lookup"


def envelope(event: dict[str, Any], *, header: dict[str, Any] | None = None) -> bytes:
    payload = json.dumps(event).encode()
    return b"\n".join(
        [
            json.dumps(header or {"event_id": event.get("event_id")}).encode(),
            json.dumps({"type": "event", "length": len(payload)}).encode(),
            payload,
        ]
    )


def event(number: int = 1, **fields: Any) -> dict[str, Any]:
    frame = {"filename": "app.py", "function": "go", "module": "app", "lineno": 3, "in_app": True}
    return {
        "event_id": f"{number:032x}",
        "exception": {
            "values": [{"type": "ValueError", "value": "bad", "stacktrace": {"frames": [frame]}}]
        },
        **fields,
    }


async def post(
    http: aiohttp.ClientSession, url: str, body: bytes, **options: Any
) -> tuple[int, Any]:
    headers = {**ENVELOPE_TYPE, "X-Sentry-Auth": f"Sentry sentry_key={KEY}, sentry_version=7"}
    headers.update(options.pop("headers", {}))
    async with http.post(url, data=body, headers=headers, **options) as response:
        return response.status, await response.json(content_type=None)


async def test_a_wrong_or_missing_key_is_refused(
    running: Running, http: aiohttp.ClientSession
) -> None:
    url = f"{running.url}/api/42/envelope/"
    status, body = await post(
        http,
        url,
        envelope(event()),
        headers={"X-Sentry-Auth": ("Sentry sentry_key=nope, sentry_version=7")},
    )
    assert status == 401
    assert "unknown Sentry key" in body["detail"]
    async with http.post(url, data=envelope(event())) as response:
        assert response.status == 401
        assert "sentry_key" in (await response.json(content_type=None))["detail"]
    assert await running.app[EVIDENCE].reports("acme") == []
    # The key may also come in the query, and decides the tenant and service.
    async with http.post(url, data=envelope(event(2)), params={"sentry_key": "b1b2b3"}) as response:
        assert (response.status, await response.json()) == (200, {"id": f"{2:032x}"})
    [kept] = await running.app[EVIDENCE].reports("globex")
    assert kept.evidence.service == "billing"


async def test_compressed_bodies_and_the_legacy_store_route_are_taken(
    running: Running, http: aiohttp.ClientSession
) -> None:
    url = f"{running.url}/api/42"
    gzipped = gzip.compress(envelope(event(1)))
    status, body = await post(
        http, f"{url}/envelope/", gzipped, headers={"Content-Encoding": "gzip"}
    )
    assert (status, body) == (200, {"id": f"{1:032x}"})
    deflated = zlib.compress(envelope(event(2)))
    status, _ = await post(
        http, f"{url}/envelope/", deflated, headers={"Content-Encoding": "deflate"}
    )
    assert status == 200
    status, body = await post(http, f"{url}/store/", json.dumps(event(3)).encode())
    assert (status, body) == (200, {"id": f"{3:032x}"})
    # A retry of a kept event is answered alike and kept once.
    status, _ = await post(http, f"{url}/store/", json.dumps(event(3)).encode())
    assert status == 200
    kept = await running.app[EVIDENCE].reports("acme")
    assert [s.evidence.event_id for s in kept] == [f"{n:032x}" for n in (1, 2, 3)]


async def test_items_other_than_events_are_skipped(
    running: Running, http: aiohttp.ClientSession
) -> None:
    session = b'{"sid": "x", "status": "ok"}'
    body = b"\n".join(
        [
            b'{"event_id": "' + b"a" * 32 + b'"}',
            b'{"type": "session", "length": ' + str(len(session)).encode() + b"}",
            session,
            b'{"type": "client_report"}',
            b'{"discarded_events": []}',
            b"",
        ]
    )
    status, answer = await post(http, f"{running.url}/api/42/envelope/", body)
    assert (status, answer) == (200, {"id": "a" * 32})
    assert await running.app[EVIDENCE].reports("acme") == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json\n{}", "the envelope header (line 1) is not valid JSON"),
        (b"[1]\n", "the envelope header (line 1) must be a JSON object, not list"),
        (b'{}\n{"length": 2}\n{}', "the header of item 1 (at byte 3) has no 'type' string"),
        (
            b'{}\n{"type": "event", "length": 500}\n{}',
            "item 1 (at byte 3): its header says 500 bytes but 2 follow",
        ),
        (
            b'{}\n{"type": "event", "length": 2}\n{}x',
            "item 1 (at byte 3): no newline after its 2 bytes",
        ),
        (b'{}\n{"type": "event"}\n{"a": ', "the event of item 1 (at byte 3) is not valid JSON"),
        (
            b'{}\n{"type": "event"}\n' + b"[" * 200 + b"]" * 200,
            "nested deeper than 128 levels",
        ),
        (
            envelope(event(timestamp="yesterday")),
            "event.timestamp 'yesterday' is not a time",
        ),
        (envelope(event(timestamp=-5.0)), "event.timestamp -5.0 is before 1970"),
        (
            envelope(
                {
                    "exception": {
                        "values": [
                            {
                                "type": "E",
                                "stacktrace": {"frames": [{"function": "f", "lineno": "twelve"}]},
                            }
                        ]
                    }
                }
            ),
            "event.exception.values.0.stacktrace.frames.0.lineno must be int, not str",
        ),
    ],
)
async def test_a_malformed_envelope_is_refused_precisely(
    running: Running, http: aiohttp.ClientSession, body: bytes, detail: str
) -> None:
    status, answer = await post(http, f"{running.url}/api/42/envelope/", body)
    assert status == 400, answer
    assert detail in answer["detail"]
    status, _ = await post(http, f"{running.url}/api/42/envelope/", envelope(event(9)))
    assert status == 200  # and the server serves on
    assert len(await running.app[EVIDENCE].reports("acme")) == 1


async def test_oversized_bodies_are_refused_and_the_server_serves_on(
    running: Running, http: aiohttp.ClientSession
) -> None:
    url = f"{running.url}/api/42/envelope/"
    big = envelope(event(1, extra={"blob": "x" * 300_000}))
    status, answer = await post(http, url, big)
    assert status == 413, answer
    assert "262144" in answer["detail"], answer
    # A small body that inflates past the limit is refused alike.
    bomb = gzip.compress(envelope(event(2, extra={"blob": "0" * 2_000_000})))
    assert len(bomb) < 64 * 1024
    status, answer = await post(http, url, bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413, answer
    assert "262144" in answer["detail"], answer
    status, _ = await post(http, url, envelope(event(3)))
    assert status == 200
    assert [s.evidence.event_id for s in await running.app[EVIDENCE].reports("acme")] == [
        f"{3:032x}"
    ]


async def test_a_large_report_keeps_its_fields_and_a_bounded_raw_copy(
    running: Running, http: aiohttp.ClientSession
) -> None:
    status, _ = await post(
        http, f"{running.url}/api/42/envelope/", envelope(event(1, extra={"blob": "y" * 100_000}))
    )
    assert status == 200
    [stored] = await running.app[EVIDENCE].reports("acme")
    assert len(stored.evidence.raw) == MAX_RAW_BYTES < stored.evidence.raw_size
    assert stored.evidence.exception_type == "ValueError"


async def test_reads_are_the_tokens_tenant_and_check_their_parameters(
    running: Running, http: aiohttp.ClientSession
) -> None:
    await post(http, f"{running.url}/api/42/envelope/", envelope(event(1)))
    acme, globex = await running.issue("ann", "acme"), await running.issue("bob", "globex")
    evidence = f"{running.url}/api/v1/evidence"
    async with http.get(evidence, headers=bearer(acme)) as response:
        assert [e["service"] for e in (await response.json())["evidence"]] == ["shop"]
    async with http.get(evidence, headers=bearer(globex)) as response:
        assert (await response.json())["evidence"] == []
    async with http.get(f"{evidence}/signatures", headers=bearer(globex)) as response:
        assert (await response.json())["signatures"] == []
    async with http.get(evidence) as response:
        assert response.status == 401
    for url, params, field in [
        (evidence, {"servce": "shop"}, "servce"),
        (evidence, {"limit": "0"}, "limit"),
        (f"{evidence}/signatures", {"since": "yesterday"}, "since"),
        (f"{evidence}/signatures", {"bucket": "0"}, "bucket"),
    ]:
        async with http.get(url, params=params, headers=bearer(acme)) as response:
            assert response.status == 400
            assert (await response.json(content_type=None))["field"] == field


async def test_ingestion_is_rate_limited_per_key(
    settings: Settings, http: aiohttp.ClientSession
) -> None:
    limited = dataclasses.replace(
        settings,
        sentry_keys=(SentryKey(KEY, "acme", "shop"), SentryKey("b1b2b3", "globex", "billing")),
        rate_limit_per_second=0.001,
        rate_limit_burst=2,
    )
    async with serving(limited) as running:
        url = f"{running.url}/api/42/envelope/"
        statuses = [(await post(http, url, envelope(event(n))))[0] for n in range(3)]
        assert statuses == [200, 200, 429]
        async with http.post(url, data=envelope(event(3)), params={"sentry_key": "b1b2b3"}) as r:
            assert r.status == 200  # another key has its own bucket
        status, answer = await post(http, url, envelope(event(4)))
        assert status == 429
        assert "too many requests for this Sentry key" in answer["detail"]
