"""Property tests of the events API against a real server on each store: whatever the body or
the query, the answer is never a 5xx; a refused append writes nothing (the head stays where
it was); and an accepted event reads back exactly as it was sent (integers, floats, unicode,
nesting), never altered.

One server serves all the examples of a test, so it must also survive every earlier input.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_from_bytes

import aiohttp
from hypothesis import event as label
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from ..jsonvalues import deep, json_text, same, texts, values
from .conftest import Running, bearer

PROBLEM = "application/problem+json"
QUIET = 1.0
"""Seconds to wait for a subscription's first frame: a refusal comes at once."""
ENVELOPE = ("tenant_id", "topic", "stream", "type", "payload", "producer", "time")


def change(new: Any) -> dict[str, Any]:
    """A valid event whose payload holds ``new`` as it is (BlackboardChanged takes any value)."""
    return {
        "topic": "debugging.execution",
        "stream": "execution/fuzz",
        "type": "BlackboardChanged",
        "payload": {"execution_id": "fuzz", "tick": 1, "key": "k", "new": new},
        "producer": {"name": "tests", "version": "1"},
    }


@st.composite
def hostile_event(draw: st.DrawFn) -> Any:
    """A valid event carrying any value, or one with a member replaced, dropped or added, or
    something that is no event at all."""
    event = change(draw(values(surrogates=False) | values() | deep()))
    how = draw(st.sampled_from(["as is", "as is", "replace", "drop", "add", "not an event"]))
    if how == "replace":
        event[draw(st.sampled_from(ENVELOPE))] = draw(values(max_leaves=5))
    elif how == "drop":
        del event[draw(st.sampled_from(ENVELOPE[1:-1]))]
    elif how == "add":
        event[draw(texts)] = draw(values(max_leaves=5))
    elif how == "not an event":
        return draw(values(max_leaves=5))
    return event


bodies = (
    st.lists(hostile_event(), min_size=1, max_size=3).map(lambda events: {"events": events})
    | values().map(lambda value: {"events": value})
    | values()
)


async def head(http: aiohttp.ClientSession, server: Running) -> int:
    async with http.get(f"{server.url}/healthz") as response:
        return int((await response.json())["head"])


async def read_back(
    http: aiohttp.ClientSession, server: Running, token: str, offset: int
) -> dict[str, Any]:
    url = f"{server.url}/api/v1/events?after={offset - 1}&limit=1"
    async with http.get(url, headers=bearer(token)) as response:
        assert response.status == 200
        return (await response.json(loads=json.loads))["events"][0]


async def post(http: aiohttp.ClientSession, url: str, token: str, data: bytes) -> tuple[int, Any]:
    headers = {**bearer(token), "Content-Type": "application/json"}
    async with http.post(url, data=data, headers=headers) as response:
        if response.status >= 400:
            assert response.content_type == PROBLEM
        return response.status, await response.json(content_type=None, loads=json.loads)


@settings(max_examples=120)
@given(body=bodies | st.binary(max_size=200))
async def test_an_append_is_stored_exactly_or_refused_whole(
    server: Running, http: aiohttp.ClientSession, body: Any
) -> None:
    data = body if isinstance(body, bytes) else json_text(body)
    before = await head(http, server)
    status, answer = await post(http, f"{server.url}/api/v1/events", server.local_token, data)
    assert status < 500, answer
    label(f"status {status}")
    if status != 201:
        assert status in (400, 403, 409, 413, 422), answer
        assert await head(http, server) == before, "a refused append wrote something"
        return
    sent = json.loads(data)["events"]
    for event, offset in zip(sent, answer["offsets"], strict=True):
        stored = await read_back(http, server, server.local_token, offset)
        assert same(event["payload"], stored["payload"]), (event["payload"], stored["payload"])
        assert (stored["stream"], stored["type"]) == (event["stream"], event["type"])


def encoded(text: str) -> str:
    """``text`` percent-encoded as UTF-8 (lone surrogates as their would-be bytes)."""
    return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")


NAMES = st.sampled_from(["after", "limit", "topic", "stream", "type", "node", "status"])
RAW = st.binary(max_size=30).map(lambda raw: quote_from_bytes(raw, safe=""))
"""Any bytes, percent-encoded: invalid UTF-8 included."""
NUMBERS = st.integers().map(str) | st.sampled_from(["9" * 400, "-1", "1e3", "١٢", " 1", "+1"])
# At most 5 pairs of at most 400 characters: longer request lines are refused by aiohttp's
# HTTP parser (a plain-text 400) before the application sees them.
queries = st.lists(st.tuples(NAMES | RAW, RAW | (NUMBERS | texts).map(encoded)), max_size=5).map(
    lambda pairs: "&".join(f"{name}={value}" for name, value in pairs)
)


@settings(max_examples=80)
@given(query=queries)
async def test_any_read_query_is_answered_or_refused(
    server: Running, http: aiohttp.ClientSession, query: str
) -> None:
    url = URL(f"{server.url}/api/v1/events?{query}", encoded=True)
    async with http.get(url, headers=bearer(server.local_token)) as response:
        assert response.status in (200, 400), await response.text()
        if response.status == 400:
            problem = await response.json(content_type=PROBLEM)
            assert problem["detail"], problem


@settings(max_examples=20)
@given(query=queries)
async def test_any_subscription_query_streams_or_is_refused(
    server: Running, http: aiohttp.ClientSession, query: str
) -> None:
    """A refused query gets an error frame and a 1008 close at once; an accepted one streams
    (a filter nothing matches stays silent until something does: that is not a failure)."""
    url = URL(f"{server.url}/api/v1/events/subscribe?{query}", encoded=True)
    async with http.ws_connect(url, headers=bearer(server.local_token)) as ws:
        try:
            message = await ws.receive(timeout=QUIET)
        except TimeoutError:
            return
        frame = json.loads(message.data)
        if frame["kind"] == "error":
            assert frame["status"] == 400, frame
            await ws.receive(timeout=QUIET)
            assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        else:
            assert frame["kind"] == "events", frame
