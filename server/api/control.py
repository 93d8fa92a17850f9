"""The control plane: executions in the caller's debug pod, driven over HTTP, and their
notifications over a WebSocket.

Each route of :data:`server.remote.routes.ROUTES` gets one handler that decodes the arguments
by the contract's own annotations, runs the call on the caller's :class:`PodControl` and
answers the JSON form of the result. Users reach only their own pod, so another user's
execution id is simply unknown (404), never a hint that it exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import WSCloseCode, web

from ..audit import AuditedControl
from ..pods.control import PodControl
from ..remote import wire
from ..remote.routes import ROUTES, Route
from ..runtime.control import InvalidRequest
from ..runtime.inprocess import SubscriberOverflow
from .audit import trail_of
from .keys import PODS, PRINCIPAL, ROOTS, SOCKETS, WORKSPACE
from .params import json_body
from .problems import Problem, problem_of

__all__ = ["add_control_routes"]

log = logging.getLogger(__name__)


def control_of(request: web.Request) -> PodControl:
    """The caller's control: their pod, their executions."""
    manager = request.app[PODS]
    manager.advertise(str(request.url.origin()))
    return PodControl(manager, request[PRINCIPAL], request.app[WORKSPACE], request.app[ROOTS])


async def _arguments(request: web.Request, route: Route) -> dict[str, Any]:
    """The call's arguments from the path, the query or the body; 400 for any that does not
    fit the contract, naming it."""
    arguments: dict[str, Any] = {}
    try:
        if route.in_query:
            for name, raw in request.query.items():
                arguments[name] = wire.decode_text_argument(route.call, name, raw)
        else:
            arguments.update(await json_body(request, f"with the arguments of {route.call}"))
        arguments.update(request.match_info)
        return wire.decode_arguments(route.call, arguments)
    except InvalidRequest as error:
        raise Problem(400, "invalid-request", str(error)) from None


def _handler(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        control = AuditedControl(control_of(request), trail_of(request))
        arguments = await _arguments(request, route)
        value = await getattr(control, route.call)(**arguments)
        return web.Response(body=orjson.dumps(wire.encode(value)), content_type="application/json")

    handle.__name__ = route.call
    handle.__doc__ = route.summary
    return handle


async def notifications(request: web.Request) -> web.WebSocketResponse:
    """``GET /api/v1/notifications[?execution_id=…]`` (WebSocket): stops, continues, output
    and ends of the caller's executions, as ``{"kind": "notification", "notification": …}``
    frames. A client listening to an execution is attached to it: an execution stopped with
    nobody attached is resumed or stopped by the pod's orphan policy. A client that falls
    more than 1024 notifications behind gets an error frame and the socket closes. Opening
    and closing the socket are the ``attach`` and ``detach`` actions of the audit log."""
    execution_id = request.query.get("execution_id") or None
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=4096)
    if not ws.can_prepare(request).ok:
        raise Problem(400, "invalid-request", "this endpoint speaks WebSocket only")
    await ws.prepare(request)
    manager = request.app[PODS]
    trail = trail_of(request)
    attached = False
    request.app[SOCKETS].add(ws)
    try:
        async with manager.subscribe(request[PRINCIPAL], execution_id) as queue:
            await trail.record("attach", execution_id)
            attached = True
            pump = asyncio.create_task(_pump(ws, queue), name="canopy-notifications")
            try:
                async for _message in ws:  # reading notices the close and answers pings
                    pass
            finally:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
    finally:
        request.app[SOCKETS].discard(ws)
        if attached:
            # A client that leaves may cancel this handler: the detach is written anyway.
            await asyncio.shield(trail.record_quietly("detach", execution_id))
    return ws


async def _pump(ws: web.WebSocketResponse, queue: Any) -> None:
    try:
        async for notification in queue:
            frame = {"kind": "notification", "notification": wire.encode(notification)}
            await ws.send_bytes(orjson.dumps(frame))
    except SubscriberOverflow as error:
        problem = problem_of(error)
        await ws.send_bytes(orjson.dumps({"kind": "error", **problem.to_json()}))
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"fell behind")
    except ConnectionResetError:
        log.debug("notification listener left")
    else:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def add_control_routes(app: web.Application) -> None:
    """Register the control plane's routes on ``app``."""
    for route in ROUTES:
        app.router.add_route(route.verb, route.path, _handler(route))
    app.router.add_get("/api/v1/notifications", notifications)
