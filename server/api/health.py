"""``GET /healthz``: liveness for load balancers and for clients probing a discovered server.
Unauthenticated, and it reveals only the log's head offset."""

from __future__ import annotations

from aiohttp import web

from .keys import STORE

__all__ = ["health"]


async def health(request: web.Request) -> web.Response:
    """``{"status": "ok", "head": <last offset>}``; 503 when the log cannot be read."""
    head = await request.app[STORE].last_offset()
    return web.json_response({"status": "ok", "head": head})
