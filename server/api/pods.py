"""The caller's debug pod (the editor's "debug mode" toggle) and the workers' link.

``PUT /api/v1/pods/me`` makes sure the caller's pod is ready and says how long that took;
``GET`` reports it, ``DELETE`` stops it. ``GET /api/v1/pods/connect`` is where pod workers
connect, authenticated by their own pod token rather than a user's.
"""

from __future__ import annotations

import time

from aiohttp import web

from ..pods.control import PodControl
from .control import control_of
from .keys import PODS, PRINCIPAL
from .problems import Problem

__all__ = ["connect_pod", "delete_my_pod", "ensure_my_pod", "get_my_pod"]


async def ensure_my_pod(request: web.Request) -> web.Response:
    """Start the caller's pod if needed and wait until it is ready (debug mode on)."""
    control: PodControl = control_of(request)
    started = time.monotonic()
    pod = await control.manager.ensure(control.principal)
    body = pod.describe(control.manager.provider.name)
    body["ready_ms"] = round((time.monotonic() - started) * 1000, 1)
    return web.json_response(body)


async def get_my_pod(request: web.Request) -> web.Response:
    """The caller's pod, or 404 when debug mode is off."""
    manager = request.app[PODS]
    pod = manager.current(request[PRINCIPAL])
    if pod is None:
        raise Problem(404, "no-pod", "you have no debug pod; PUT /api/v1/pods/me starts one")
    return web.json_response(pod.describe(manager.provider.name))


async def delete_my_pod(request: web.Request) -> web.Response:
    """Stop the caller's pod (debug mode off); its executions end and flush first."""
    manager = request.app[PODS]
    pod = manager.current(request[PRINCIPAL])
    if pod is not None:
        await manager.stop(pod, reason="stopped by its user")
    return web.Response(status=204)


async def connect_pod(request: web.Request) -> web.WebSocketResponse:
    """A pod worker's link (see :mod:`server.pods.protocol`)."""
    return await request.app[PODS].serve_link(request)
