"""``/api/v1/events``: append, read and subscribe, always as the caller's tenant.

Answers are bounded in size whatever the log holds: a read stops adding events once its body
reaches :data:`MAX_READ_BYTES` (``next_after`` then points at the last event sent), and a
subscription sends each page in frames of about :data:`MAX_FRAME_BYTES`, awaiting every send
before pulling the next page, so a slow client only slows its own subscription.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import orjson
from aiohttp import WSCloseCode, web

from canopy.bridge import CanopyError, InvalidEvent, NewEvent, RecordedEvent, Subscription
from canopy.bridge.validation import EventValidator

from ..audit import AUDIT_EVENT_TYPE
from ..auth import TOKEN_EVENT_TYPES, Principal
from .keys import PRINCIPAL, SOCKETS, STORE
from .params import EventQuery, json_body
from .problems import Problem, problem_of

__all__ = ["MAX_EVENTS_PER_CALL", "append_events", "read_events", "subscribe_events"]

log = logging.getLogger(__name__)

MAX_EVENTS_PER_CALL: Final = 10_000
MAX_READ_BYTES: Final = 8 * 1024 * 1024
MAX_FRAME_BYTES: Final = 1024 * 1024
HEARTBEAT_SECONDS: Final = 30.0
_MAX_CLIENT_MESSAGE: Final = 64 * 1024


# -- appending ------------------------------------------------------------------------------


def _event_items(body: Mapping[str, Any]) -> list[Any]:
    """The ``events`` array of an append body, within the per-call limit."""
    if extra := sorted(set(body) - {"events"}):
        raise Problem(400, "invalid-request", f"unknown member {extra[0]!r}", field=extra[0])
    items = body.get("events")
    if not isinstance(items, list):
        raise Problem(400, "invalid-request", "'events' must be an array", field="events")
    if len(items) > MAX_EVENTS_PER_CALL:
        raise Problem(
            413,
            "too-many-events",
            f"{len(items)} events in one call; the limit is {MAX_EVENTS_PER_CALL}",
            field="events",
        )
    return items


def _claim(item: Any, index: int, principal: Principal) -> Any:
    """Put the event in the caller's tenant, refusing what the caller may not write. Items
    that are not objects are left for schema validation to describe."""
    if not isinstance(item, Mapping):
        return item
    tenant = item.get("tenant_id", principal.tenant_id)
    if tenant != principal.tenant_id:
        raise Problem(
            403,
            "forbidden",
            f"the token is for tenant {principal.tenant_id!r}, not {tenant!r}",
            field="tenant_id",
            index=index,
        )
    kind = item.get("type")
    if isinstance(kind, str) and kind in TOKEN_EVENT_TYPES:  # else schema validation says why
        raise Problem(
            403,
            "forbidden",
            "tokens are issued by `canopy tokens issue` on the server's host, not through the API",
            field="type",
            index=index,
        )
    if item.get("type") == AUDIT_EVENT_TYPE:
        raise Problem(
            403,
            "forbidden",
            "audit events are recorded by the server as actions happen, not through the API",
            field="type",
            index=index,
        )
    return {**item, "tenant_id": tenant}


def _parse(validator: EventValidator, items: Sequence[Any]) -> list[NewEvent]:
    """Wire-form events as typed values; payloads are checked by the store on append."""
    events = []
    for index, item in enumerate(items):
        try:
            events.extend(validator.parse([item]))
        except InvalidEvent as exc:
            raise InvalidEvent(exc.message, field=exc.field, index=index) from None
        except ValueError as exc:
            # A time that matches the schema's pattern but is no real date (month 13, ...).
            raise InvalidEvent(f"is not a date-time: {exc}", field="time", index=index) from None
    return events


async def append_events(request: web.Request) -> web.Response:
    """``POST /api/v1/events``: append atomically, answer 201 with the offsets in order."""
    principal = request[PRINCIPAL]
    store = request.app[STORE]
    items = _event_items(await json_body(request, '{"events": [...]}'))
    claimed = [_claim(item, index, principal) for index, item in enumerate(items)]
    offsets = await store.append(_parse(store.validator, claimed))
    return web.json_response({"offsets": offsets}, status=201)


# -- reading --------------------------------------------------------------------------------


def _chunks(events: Sequence[RecordedEvent], budget: int) -> Iterator[list[tuple[int, str]]]:
    """Encoded events (with their offsets) in runs of about ``budget`` bytes; a single
    larger event still gets a run of its own."""
    chunk: list[tuple[int, str]] = []
    size = 0
    for event in events:
        # orjson: a tenth of the stdlib's cost, and the same values (the log holds no NaN and
        # no integer past 64 bits); its UTF-8 length is what the frame costs.
        data = orjson.dumps(event.to_json())
        if chunk and size + len(data) > budget:
            yield chunk
            chunk, size = [], 0
        chunk.append((event.offset, data.decode()))
        size += len(data)
    if chunk:
        yield chunk


def _joined(chunk: list[tuple[int, str]]) -> str:
    return "[" + ",".join(text for _, text in chunk) + "]"


async def read_events(request: web.Request) -> web.Response:
    """``GET /api/v1/events``: one page of the caller's events after ``after``."""
    query = EventQuery.parse(request.query, with_limit=True)
    store = request.app[STORE]
    page = await store.read(
        query.event_filter(request[PRINCIPAL].tenant_id), after=query.after, limit=query.limit
    )
    head = await store.last_offset()
    chunk = next(_chunks(page.events, MAX_READ_BYTES), [])
    next_after = page.scanned_to if len(chunk) == len(page.events) else chunk[-1][0]
    text = f'{{"events":{_joined(chunk)},"next_after":{next_after},"head":{head}}}'
    return web.Response(text=text, content_type="application/json")


# -- subscribing ----------------------------------------------------------------------------


def _error_frame(problem: Problem) -> str:
    return json.dumps({"kind": "error", **problem.to_json()})


async def _send_page(ws: web.WebSocketResponse, events: list[RecordedEvent], position: int) -> None:
    """Send one page as frames, encoding each just before it is needed (so at most two are
    held); a frame's position is where a reconnect resumes, the page's for its last one. A
    page the payload filters emptied is an empty frame: the client's position moves on."""
    pending: list[tuple[int, str]] | None = None
    for chunk in _chunks(events, MAX_FRAME_BYTES):
        if pending is not None:
            await ws.send_str(_events_frame(pending, pending[-1][0]))
        pending = chunk
    await ws.send_str(_events_frame(pending or [], position))


def _events_frame(chunk: list[tuple[int, str]], position: int) -> str:
    return f'{{"kind":"events","events":{_joined(chunk)},"position":{position}}}'


async def _fail(ws: web.WebSocketResponse, problem: Problem) -> None:
    """Tell the client why its subscription ends, then close: 1008 for a refusal, 1011 for
    a server-side failure (the client may then resume from its position)."""
    code = WSCloseCode.POLICY_VIOLATION if problem.status < 500 else WSCloseCode.INTERNAL_ERROR
    try:
        await ws.send_str(_error_frame(problem))
        await ws.close(code=code, message=problem.title.encode())
    except ConnectionResetError:
        log.debug("subscriber left before its error frame was sent")


async def _pump(
    ws: web.WebSocketResponse, subscription: Subscription, keeps: Callable[[RecordedEvent], bool]
) -> None:
    """Move pages from the subscription to the socket until either side ends; a page the
    payload filters empty still moves the client's position on."""
    try:
        while True:
            events = [event for event in await subscription.next_page() if keeps(event)]
            await _send_page(ws, events, subscription.position)
    except ConnectionResetError:
        log.debug("subscriber left")
    except CanopyError as error:
        await _fail(ws, problem_of(error))
    except Exception:
        log.exception("subscription failed")
        await _fail(ws, Problem(500, "internal-error", "the subscription failed on the server"))


async def subscribe_events(request: web.Request) -> web.WebSocketResponse:
    """``GET /api/v1/events/subscribe`` (WebSocket): catch-up then live events, as frames
    ``{"kind": "events", "events": [...], "position": n}``. Messages from the client are
    ignored; closing the socket ends the subscription."""
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=_MAX_CLIENT_MESSAGE)
    if not ws.can_prepare(request).ok:
        raise Problem(400, "invalid-request", "this endpoint speaks WebSocket only")
    try:
        query = EventQuery.parse(request.query, with_limit=False)
    except Problem as problem:
        await ws.prepare(request)
        await _fail(ws, problem)
        return ws
    await ws.prepare(request)
    subscription = request.app[STORE].subscribe(
        query.event_filter(request[PRINCIPAL].tenant_id), after=query.after
    )
    await _serve(request.app[SOCKETS], ws, subscription, query.keeps)
    return ws


async def _serve(
    sockets: set[web.WebSocketResponse],
    ws: web.WebSocketResponse,
    subscription: Subscription,
    keeps: Callable[[RecordedEvent], bool],
) -> None:
    """Pump the subscription into the socket while reading from it, until either ends; the
    socket is registered meanwhile so that a shutdown can close it."""
    sockets.add(ws)
    pump = asyncio.create_task(_pump(ws, subscription, keeps), name="canopy-subscription")
    try:
        async for _message in ws:  # reading is what notices a close (and answers pings)
            pass
    finally:
        sockets.discard(ws)
        pump.cancel()
        await asyncio.wait([pump])
