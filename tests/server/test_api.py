"""The HTTP API on a real port, against each store: statuses, problem documents and tenant
isolation as a client sees them on the wire."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest

from canopy.bridge import open_store
from canopy.server.config import Settings

from .conftest import Running, bearer, big_change, serving, tick
from .runtime.helpers import ALIAS_BOMB

PROBLEM = "application/problem+json"


async def post_events(
    http: aiohttp.ClientSession, server: Running, token: str, events: list[Any]
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        f"{server.url}/api/v1/events", json={"events": events}, headers=bearer(token)
    ) as response:
        return response.status, await response.json(content_type=None)


async def get_events(
    http: aiohttp.ClientSession, server: Running, token: str, query: str = ""
) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{server.url}/api/v1/events?{query}", headers=bearer(token)) as response:
        return response.status, await response.json(content_type=None)


async def test_health_reports_the_head(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "head": await server.store.last_offset()}


async def test_append_then_read_round_trip(server: Running, http: aiohttp.ClientSession) -> None:
    token = await server.issue("alice", "acme")
    status, body = await post_events(http, server, token, [tick("e1", 1), tick("e1", 2)])
    assert status == 201
    first, second = body["offsets"]
    assert second == first + 1
    status, page = await get_events(http, server, token, "after=0")
    assert status == 200
    assert [e["offset"] for e in page["events"]] == [first - 1, first, second]  # + TokenIssued
    assert page["next_after"] == second
    assert page["head"] == second
    ticks = [e for e in page["events"] if e["type"] == "TickStarted"]
    assert [(e["tenant_id"], e["stream_version"], e["payload"]["tick"]) for e in ticks] == [
        ("acme", 1, 1),
        ("acme", 2, 2),
    ]


async def test_read_filters_and_pages(server: Running, http: aiohttp.ClientSession) -> None:
    token = await server.issue("alice", "acme")
    events = [tick("e1", 1), tick("e2", 1), tick("e1", 2), tick("e2", 2)]
    status, body = await post_events(http, server, token, events)
    assert status == 201
    query = "stream=execution/e1&stream=execution/e2&type=TickStarted&limit=3"
    status, page = await get_events(http, server, token, query)
    assert [e["offset"] for e in page["events"]] == body["offsets"][:3]
    status, rest = await get_events(http, server, token, f"{query}&after={page['next_after']}")
    assert [e["offset"] for e in rest["events"]] == body["offsets"][3:]
    status, only_e2 = await get_events(http, server, token, "stream=execution/e2")
    assert [e["payload"]["tick"] for e in only_e2["events"]] == [1, 2]


async def test_a_page_stops_at_about_8_mib(server: Running) -> None:
    async with server.client(server.local_token) as client:
        written: list[int] = []
        for first in range(0, 45, 15):  # 45 events of 200 kB, 3 MB per request
            written += await client.append([big_change(n) for n in range(first, first + 15)])
        page = await client.read(streams=["execution/big"], limit=100)
        rest = await client.read(streams=["execution/big"], limit=100, after=page.next_after)
    assert 0 < len(page.events) < len(written)
    assert page.next_after == page.events[-1].offset
    assert [e.offset for e in page.events + rest.events] == written


async def test_an_invalid_event_is_refused_with_its_field_and_index(
    server: Running, http: aiohttp.ClientSession
) -> None:
    token = await server.issue("alice", "acme")
    head = await server.store.last_offset()
    bad = tick("e1", 2, payload={"execution_id": "e1", "tick": "two"})
    async with http.post(
        f"{server.url}/api/v1/events", json={"events": [tick(), bad]}, headers=bearer(token)
    ) as response:
        assert response.status == 422
        assert response.content_type == PROBLEM
        problem = await response.json(content_type=None)
    assert problem["type"].endswith("/invalid-event")
    assert (problem["status"], problem["index"], problem["field"]) == (422, 1, "payload.tick")
    assert problem["detail"]
    assert await server.store.last_offset() == head


async def test_a_malformed_envelope_is_refused_before_the_store(
    server: Running, http: aiohttp.ClientSession
) -> None:
    head = await server.store.last_offset()
    status, problem = await post_events(http, server, server.local_token, [tick(), "not an event"])
    assert (status, problem["index"]) == (422, 1)
    # A leap second matches the schema's date-time pattern but is no Python datetime.
    leap_second = tick(time="2024-12-31T23:59:60Z")
    status, problem = await post_events(http, server, server.local_token, [tick(), leap_second])
    assert (status, problem["index"], problem["field"]) == (422, 1, "time")
    assert await server.store.last_offset() == head


async def test_a_stream_that_moved_is_a_conflict(
    server: Running, http: aiohttp.ClientSession
) -> None:
    status, problem = await post_events(
        http, server, server.local_token, [tick("e9", 1, expected_version=3)]
    )
    assert status == 409
    assert (problem["stream"], problem["expected_version"], problem["actual_version"]) == (
        "execution/e9",
        3,
        0,
    )


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer nope", "Basic YTpi"])
async def test_without_a_valid_token_nothing_is_revealed(
    server: Running, http: aiohttp.ClientSession, authorization: str | None
) -> None:
    status, body = await post_events(http, server, server.local_token, [tick()])
    assert status == 201
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in [("GET", "/api/v1/events"), ("POST", "/api/v1/events")]:
        async with http.request(
            method, f"{server.url}{path}", headers=headers, json={"events": [tick()]}
        ) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            problem = await response.json(content_type=None)
        assert set(problem) == {"type", "title", "status", "detail"}
        assert "e1" not in json.dumps(problem)
    assert await server.store.last_offset() == body["offsets"][0]


async def test_a_token_that_is_not_utf8_is_unauthorized_not_a_failure(server: Running) -> None:
    """A header's bytes are the client's: a bearer token that is no UTF-8 is a wrong token."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /api/v1/events HTTP/1.1\r\nHost: canopy\r\n"
        b"Authorization: Bearer \xff\xfe\xed\r\nConnection: close\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"401"
    assert b'error="invalid_token"' in rest
    assert b"Content-Type: application/problem+json" in rest


async def test_tenants_never_see_each_other(server: Running, http: aiohttp.ClientSession) -> None:
    alice = await server.issue("alice", "acme")
    bob = await server.issue("bob", "globex")
    await post_events(http, server, alice, [tick("secret")])
    await post_events(http, server, bob, [tick("public")])
    for token, tenant, execution in [(alice, "acme", "secret"), (bob, "globex", "public")]:
        status, page = await get_events(http, server, token, "type=TickStarted")
        assert status == 200
        assert [(e["tenant_id"], e["payload"]["execution_id"]) for e in page["events"]] == [
            (tenant, execution)
        ]


async def test_writing_into_another_tenant_is_forbidden(
    server: Running, http: aiohttp.ClientSession
) -> None:
    alice = await server.issue("alice", "acme")
    head = await server.store.last_offset()
    status, problem = await post_events(
        http, server, alice, [tick(tenant_id="acme"), tick(tenant_id="globex")]
    )
    assert (status, problem["index"], problem["field"]) == (403, 1, "tenant_id")
    assert await server.store.last_offset() == head


async def test_clients_cannot_mint_tokens(server: Running, http: aiohttp.ClientSession) -> None:
    minted = {
        "topic": "debugging.internal",
        "stream": "token/mine",
        "type": "TokenIssued",
        "payload": {"token_id": "mine", "token_sha256": "0" * 64, "user_id": "mallory"},
        "producer": {"name": "mallory", "version": "1"},
    }
    head = await server.store.last_offset()
    status, problem = await post_events(http, server, server.local_token, [minted])
    assert (status, problem["field"]) == (403, "type")
    assert await server.store.last_offset() == head


async def test_an_oversized_body_is_refused(server: Running, http: aiohttp.ClientSession) -> None:
    filler = "x" * (4 * 1024 * 1024)
    async with http.post(
        f"{server.url}/api/v1/events",
        data=json.dumps({"events": [tick(payload={"execution_id": filler, "tick": 1})]}),
        headers=bearer(server.local_token),
    ) as response:
        assert response.status == 413
        assert (await response.json(content_type=None))["type"].endswith("/too-large")


async def test_too_many_events_in_one_call_are_refused(
    server: Running, http: aiohttp.ClientSession
) -> None:
    head = await server.store.last_offset()
    status, problem = await post_events(http, server, server.local_token, [tick()] * 10_001)
    assert status == 413
    assert "10000" in problem["detail"]
    assert await server.store.last_offset() == head


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b'{"events": NaN}', b'{"events": {}}', b'{"event": []}']
)
async def test_malformed_bodies_are_bad_requests(
    server: Running, http: aiohttp.ClientSession, body: bytes
) -> None:
    async with http.post(
        f"{server.url}/api/v1/events", data=body, headers=bearer(server.local_token)
    ) as response:
        assert response.status == 400
        assert response.content_type == PROBLEM
        assert (await response.json(content_type=None))["detail"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=-1", "after"),
        ("after=x", "after"),
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("after=1&after=2", "after"),
        ("topic=debugging.nowhere", "topic"),
        ("stream=", "stream"),
        ("tenant_id=globex", "tenant_id"),
        ("after=9223372036854775808", "after"),
        ("after=" + "9" * 5000, "after"),
        ("limit=99999999999999999999", "limit"),
        ("after=%EF%BC%91", "after"),
    ],
)
async def test_bad_query_parameters_are_bad_requests(
    server: Running, http: aiohttp.ClientSession, query: str, field: str
) -> None:
    status, problem = await get_events(http, server, server.local_token, query)
    assert (status, problem["field"]) == (400, field)


async def test_unknown_routes_and_methods(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/api/v2/nothing", headers=bearer(server.local_token)) as r:
        assert (r.status, r.content_type) == (404, PROBLEM)
    async with http.get(f"{server.url}/api/v2/nothing") as r:
        assert r.status == 401
    async with http.get(f"{server.url}/nothing") as r:
        assert (r.status, r.content_type) == (404, PROBLEM)
    async with http.delete(f"{server.url}/api/v1/events", headers=bearer(server.local_token)) as r:
        assert (r.status, r.content_type) == (405, PROBLEM)
        assert "GET" in r.headers["Allow"]


async def test_an_unavailable_log_answers_503(
    settings: Settings, http: aiohttp.ClientSession
) -> None:
    async with open_store(settings.database_url) as store, serving(settings, store) as server:
        await store.close()
        async with http.get(f"{server.url}/healthz") as response:
            assert response.status == 503
            assert response.headers["Retry-After"]
            problem = await response.json(content_type=None)
    assert (problem["type"], problem["error"]) == (
        "https://canopy.dev/problems/store-closed",
        "StoreClosed",
    )
    assert "Traceback" not in problem["detail"]


async def test_each_request_is_logged_on_one_line(
    server: Running, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="canopy.access")
    await get_events(http, server, server.local_token, "limit=5")
    [record] = [r for r in caplog.records if r.name == "canopy.access"]
    fields = record.fields  # type: ignore[attr-defined]
    assert {k: fields[k] for k in ("method", "path", "status", "tenant")} == {
        "method": "GET",
        "path": "/api/v1/events",
        "status": 200,
        "tenant": "local",
    }
    assert fields["user"] != "-"
    assert fields["duration_ms"] >= 0


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/trees", "/api/v1/executions"])
async def test_a_body_nested_100000_deep_is_a_bad_request_and_the_server_goes_on(
    server: Running, http: aiohttp.ClientSession, path: str
) -> None:
    body = b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    async with http.post(
        f"{server.url}{path}", data=body, headers=bearer(server.local_token)
    ) as response:
        assert response.status == 400
        assert response.content_type == PROBLEM
        detail = (await response.json(content_type=None))["detail"]
    assert detail == (
        "the body is not valid JSON: nested deeper than 128 levels (line 1, column 139)"
    )
    async with http.get(f"{server.url}/healthz") as response:
        assert response.status == 200


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (ALIAS_BOMB, "bomb.yaml:1:4: an anchor (&a) is not allowed in a tree file"),
        (
            "root: " + "[" * 100_000 + "]" * 100_000,
            "bomb.yaml:1:134: nested deeper than 128 levels",
        ),
    ],
)
async def test_a_yaml_bomb_is_refused_and_the_server_answers_meanwhile(
    server: Running, http: aiohttp.ClientSession, content: str, detail: str
) -> None:
    body = {"name": "bomb", "format": "yaml", "content": content}
    head = await server.store.last_offset()

    async def upload() -> tuple[int, str, dict[str, Any]]:
        async with http.post(
            f"{server.url}/api/v1/trees", json=body, headers=bearer(server.local_token)
        ) as response:
            return response.status, response.content_type, await response.json(content_type=None)

    async def health() -> int:
        async with http.get(f"{server.url}/healthz") as response:
            return response.status

    (status, content_type, problem), healthy = await asyncio.gather(upload(), health())
    assert (status, content_type, problem["error"]) == (422, PROBLEM, "DefinitionError")
    assert detail in problem["detail"]
    assert healthy == 200
    assert await server.store.last_offset() == head


async def test_an_integer_beyond_64_bits_is_refused_by_its_path_not_rounded(
    server: Running, http: aiohttp.ClientSession
) -> None:
    head = await server.store.last_offset()
    event = tick(number=18446744073709551616)
    body = json.dumps({"events": [tick(), event]}).encode()
    async with http.post(
        f"{server.url}/api/v1/events", data=body, headers=bearer(server.local_token)
    ) as response:
        problem = await response.json(content_type=None)
    assert (response.status, problem["error"]) == (422, "InvalidEvent"), problem
    assert (problem["index"], problem["field"]) == (1, "payload.tick")
    assert "18446744073709551616" in problem["detail"]
    assert await server.store.last_offset() == head


async def test_an_idempotency_key_reused_with_other_content_is_a_conflict(
    server: Running, http: aiohttp.ClientSession
) -> None:
    token = server.local_token
    status, first = await post_events(http, server, token, [tick(idempotency_key="k")])
    assert status == 201
    status, again = await post_events(http, server, token, [tick(idempotency_key="k")])
    assert (status, again["offsets"]) == (201, first["offsets"])
    head = await server.store.last_offset()
    other = tick(number=2, idempotency_key="k")
    status, problem = await post_events(http, server, token, [tick("e2"), other])
    assert (status, problem["error"]) == (409, "IdempotencyConflict"), problem
    assert (problem["index"], problem["offset"], problem["differs"]) == (
        1,
        first["offsets"][0],
        ["payload"],
    )
    assert await server.store.last_offset() == head


async def test_a_lone_surrogate_in_a_payload_is_refused_and_writes_nothing(
    server: Running, http: aiohttp.ClientSession
) -> None:
    """No UTF-8 text holds U+D800, so the log could not store it exactly: refused whole."""
    before = await server.store.last_offset()
    body = json.dumps({"events": [{**tick(), "payload": {"execution_id": "\ud800", "tick": 1}}]})
    assert '"\\ud800"' in body
    async with http.post(
        f"{server.url}/api/v1/events", data=body, headers=bearer(server.local_token)
    ) as response:
        assert response.status == 400
        problem = await response.json(content_type=PROBLEM)
    assert "surrogate" in problem["detail"]
    assert await server.store.last_offset() == before


@pytest.mark.parametrize(
    ("method", "path", "body", "detail"),
    [
        ("POST", "executions", {}, "launch needs argument 'spec'"),
        ("PUT", "executions/e1/blackboard", {"key": "k"}, "set_blackboard needs argument 'value'"),
        (
            "POST",
            "executions",
            {"spec": {"program": None}},
            "bad argument 'spec' for launch: program: null is not of type str",
        ),
        (
            "POST",
            "executions",
            {"spec": {"program": "t.yaml", "registry": [None]}},
            "bad argument 'spec' for launch: registry: [None] is not an object",
        ),
        (
            "PUT",
            "executions/e1/watches",
            {"specs": "battery"},
            "bad argument 'specs' for set_watches: 'battery' is not an array",
        ),
        (
            "POST",
            "executions",
            {"spec": {"program": "t.yaml", "max_ticks": -(2**63) - 1}},
            "launch: argument 'spec.max_ticks': integer -9223372036854775809 is outside the"
            " signed 64-bit range",
        ),
    ],
)
async def test_control_calls_missing_or_mistyped_arguments_are_bad_requests(
    server: Running, http: aiohttp.ClientSession, method: str, path: str, body: Any, detail: str
) -> None:
    """Refused with the argument named before any pod is asked (none is started)."""
    url = f"{server.url}/api/v1/{path}"
    async with http.request(method, url, json=body, headers=bearer(server.local_token)) as answer:
        assert answer.status == 400
        assert (await answer.json(content_type=PROBLEM))["detail"] == detail


@pytest.mark.parametrize("kind", [["TokenIssued"], {"TokenIssued": 1}, 7])
async def test_an_event_type_that_is_no_string_is_an_invalid_event(
    server: Running, http: aiohttp.ClientSession, kind: Any
) -> None:
    """Checked against the reserved token types without hashing it (a list cannot be)."""
    status, problem = await post_events(http, server, server.local_token, [tick(type=kind)])
    assert (status, problem["error"], problem["field"], problem["index"]) == (
        422,
        "InvalidEvent",
        "type",
        0,
    )
    assert problem["reason"] == f"{kind!r} is not of type 'string'"


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        (
            "trees/patrol?version=" + "9" * 5000,
            "'version' must be a whole number from 1 to 9223372036854775807, not '"
            + "9" * 40
            + "...'",
        ),
        (
            "trees/patrol?version=%C2%B2",
            "'version' must be a whole number from 1 to 9223372036854775807, not '\u00b2'",
        ),
        (
            "trees/patrol?version=0",
            "'version' must be a whole number from 1 to 9223372036854775807, not '0'",
        ),
        (
            "executions/e1/history/state?tick=9223372036854775808",
            "tick must be a whole number within the signed 64-bit range, not '9223372036854775808'",
        ),
        (
            "executions/e1/history/state?tick=1_0",
            "tick must be a whole number within the signed 64-bit range, not '1_0'",
        ),
        (
            "executions/e1/picture?tick=%D9%A1",
            "tick must be a whole number within the signed 64-bit range, not '\u0661'",
        ),
    ],
)
async def test_integer_query_parameters_are_ascii_digits_within_range(
    server: Running, http: aiohttp.ClientSession, path: str, detail: str
) -> None:
    """``int()`` would take other scripts' digits and '_', and fail past 4300 digits."""
    url = f"{server.url}/api/v1/{path}"
    async with http.get(url, headers=bearer(server.local_token)) as answer:
        assert answer.status == 400
        assert (await answer.json(content_type=PROBLEM))["detail"] == detail
