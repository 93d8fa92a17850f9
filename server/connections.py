"""What one TCP connection may cost the server: the runner and listening socket of
``canopy serve`` (and of the tests, which run the very same code).

aiohttp bounds the size of a request head (``max_line_size``, ``max_field_size``) and closes an
idle keep-alive connection (``keepalive_timeout``), but it has no deadline for the head itself:
its keep-alive timer is armed when a connection opens and after each response, and a client
that sends a few bytes of a head every second keeps it waiting until that much longer timer
fires, one socket per client. Nor does it cap the number of open connections: ``backlog``
only bounds connections not yet accepted. :class:`GuardedRequestHandler` adds both at the
protocol level, the only place that sees a head before it is complete: a timer armed when a
connection opens and at the first byte of each later head, disarmed when the head is parsed;
and a count of open connections checked as each one is accepted.

The body deadline and the per-token cap need the request (its token, its route), so they are
middlewares (:mod:`server.api.limits`).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web

from .api.problems import PROBLEM_CONTENT_TYPE, Problem
from .config import Settings

__all__ = ["SHUTDOWN_TIMEOUT", "GuardedRequestHandler", "GuardedRunner", "listen", "make_runner"]

SHUTDOWN_TIMEOUT: Final = 10.0
"""Seconds open requests get to finish when the server stops."""
LINGERING_TIME: Final = 10.0
"""aiohttp's default: how long the rest of a refused request's body is read (and dropped) so
that the client, still sending, receives the refusal instead of a reset connection."""


def _raw_problem(problem: Problem, *headers: str) -> bytes:
    """A whole HTTP/1.1 answer carrying ``problem`` that closes the connection, for the
    protocol level where no request (and so no :class:`web.Response`) exists."""
    body = json.dumps(problem.to_json()).encode()
    head = [
        f"HTTP/1.1 {problem.status} {HTTPStatus(problem.status).phrase}",
        f"Content-Type: {PROBLEM_CONTENT_TYPE}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's HTTP protocol with a deadline on each request head and a cap on the open
    connections of its server (see the module's docstring).

    "Waiting for a head" is aiohttp's own idle state: its request loop awaits the next parsed
    message (``_waiter``); while a request is handled, and after a WebSocket upgrade, bytes
    belong to a body or to frames, and the head deadline does not apply.
    """

    def __init__(
        self, manager: web.Server, *, header_timeout: float, max_connections: int, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._max_connections = max_connections
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_started = False
        """Whether bytes of the awaited head arrived (then a 408 can be said)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if len(self._server_connections()) > self._max_connections:
            refusal = Problem(
                503,
                "too-many-connections",
                f"the server holds its maximum of {self._max_connections} connections"
                " (max_connections); retry later",
            )
            self._refuse(_raw_problem(refusal, "Retry-After: 1"))
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if data and self._awaiting_head():
            self._head_started = True
            if self._head_deadline is None:
                self._arm()
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a whole head (or a malformed one) was parsed
            self._disarm()
            self._head_started = False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _server_connections(self) -> list[web.RequestHandler]:
        manager = self._manager
        return manager.connections if manager is not None else []

    def _awaiting_head(self) -> bool:
        waiter = self._waiter
        return not self._upgraded and waiter is not None and not waiter.done()

    def _arm(self) -> None:
        self._head_deadline = self._loop.call_later(self._header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _expire(self) -> None:
        """Close a connection still waiting for a head: with a 408 when part of one came (a
        client that sent nothing is simply closed, as an idle one would be)."""
        self._head_deadline = None
        if self.transport is None or not self._awaiting_head():
            return
        answer = b""
        if self._head_started:
            late = Problem(
                408,
                "request-timeout",
                f"the request line and headers did not arrive within {self._header_timeout:g} s"
                " (header_timeout)",
            )
            answer = _raw_problem(late)
        self._refuse(answer)

    def _refuse(self, answer: bytes) -> None:
        if self.transport is not None and answer:
            self.transport.write(answer)
        self.force_close()


class _GuardedServer(web.Server):
    """aiohttp's low-level server, making :class:`GuardedRequestHandler` protocols."""

    def __init__(self, *args: Any, guards: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guards = guards

    def __call__(self) -> web.RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._guards, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose connections are :class:`GuardedRequestHandler`
    protocols. ``_make_server`` is the runner's hook for the server it runs; the app's
    start-up still happens in aiohttp's own, and only the protocol factory differs."""

    def __init__(
        self, app: web.Application, *, header_timeout: float, max_connections: int, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout = header_timeout
        self._guards = {"header_timeout": header_timeout, "max_connections": max_connections}

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _GuardedServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            guards=self._guards,
            **self._kwargs,
        )


def make_runner(app: web.Application, settings: Settings) -> GuardedRunner:
    """The runner of ``app`` with the connection limits of ``settings``."""
    return GuardedRunner(
        app,
        header_timeout=settings.header_timeout,
        max_connections=settings.max_connections,
        keepalive_timeout=settings.keepalive_timeout,
        # A body that could not arrive within body_timeout gets no longer after a refusal.
        lingering_time=min(LINGERING_TIME, settings.body_timeout),
        access_log=None,  # the access-log middleware writes one line per request
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )


class _GuardedSite(web.BaseSite):
    """aiohttp's TCP site, with a deadline on TLS handshakes: a handshake happens before any
    protocol sees a byte, so the head deadline cannot cover it, and asyncio's default of 60 s
    would let a client that never completes one hold a socket that long. The handshake gets
    the head deadline instead."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        handshake_timeout: float,
    ) -> None:
        super().__init__(runner, ssl_context=tls)
        self._host = host
        self._port = port
        self._handshake_timeout = handshake_timeout if tls is not None else None

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None  # the runner is set up
        self._server = await asyncio.get_running_loop().create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=self._handshake_timeout,
        )


async def listen(
    runner: GuardedRunner, host: str, port: int, tls: ssl.SSLContext | None = None
) -> str:
    """Open the listening socket of ``runner`` (set up) on ``host``:``port``, over TLS with
    ``tls``; the URL clients should use, with the real port if 0 was asked. ``OSError``
    when the address cannot be had."""
    site = _GuardedSite(runner, host, port, tls=tls, handshake_timeout=runner.header_timeout)
    await site.start()
    bound = runner.addresses[-1][1]
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"  # a wildcard bind is reached through loopback
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls is not None else 'http'}://{host}:{bound}"
