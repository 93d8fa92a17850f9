"""The client side of the event log: how a process that is not the server (the CLI, the DAP and
LSP layers, pod workers) appends, reads and follows events over the server's HTTP and WebSocket
API, and how it finds the server in the first place.

It speaks only the wire format (``schemas/new-event.schema.json``, ``schemas/event.schema.json``
and RFC 9457 problem documents), so it never imports the server. Server-side refusals become
:class:`ServerError`, network failures :class:`ServerUnreachable`, each carrying a message
that can be shown to a user as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Final, NamedTuple, Self

import aiohttp
from yarl import URL

from .errors import BridgeError
from .events import NewEvent, RecordedEvent

__all__ = [
    "CA_FILE_VARIABLE",
    "DISCOVERY_FILE",
    "CanopyClient",
    "CanopyClientError",
    "Discovery",
    "Endpoint",
    "ReadResult",
    "RemoteSubscription",
    "ServerError",
    "ServerUnreachable",
    "UntrustedServer",
    "client_ssl",
    "connection_failure",
    "discover",
    "read_discovery",
]

log = logging.getLogger(__name__)

DISCOVERY_FILE: Final = "server.json"
_WS_POLICY_VIOLATION: Final = 1008
_MIN_BACKOFF: Final = 0.1


class CanopyClientError(BridgeError):
    """Base of what the client raises: its message is meant for the user as it stands."""


class ServerError(CanopyClientError):
    """The server refused a request with an RFC 9457 problem document.

    ``field`` and ``index`` point at the offending event field for 422 answers.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        type: str = "about:blank",
        field: str | None = None,
        index: int | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.field = field
        self.index = index
        where = f"event[{index}]" if index is not None else ""
        if field:
            where = f"{where}.{field}" if where else field
        text = f"{status} {title}"
        if detail:
            text += f": {where + ': ' if where else ''}{detail}"
        super().__init__(text)

    def details(self) -> dict[str, Any]:
        """The refusal as the far server worded it (kept apart from the members of a problem
        document that carries this error on)."""
        problem = {"status": self.status, "title": self.title, "detail": self.detail}
        return {"problem": {**problem, "type": self.type, "field": self.field, "index": self.index}}

    @classmethod
    def rebuild(cls, message: str, details: Mapping[str, Any]) -> ServerError:
        problem = details["problem"]
        return cls.from_problem(int(problem["status"]), problem)

    @classmethod
    def from_problem(cls, status: int, problem: Mapping[str, Any]) -> ServerError:
        """Build from a decoded problem document (missing members get neutral values)."""
        index = problem.get("index")
        return cls(
            int(problem.get("status", status)),
            str(problem.get("title", "")),
            str(problem.get("detail", "")),
            type=str(problem.get("type", "about:blank")),
            field=problem.get("field") if isinstance(problem.get("field"), str) else None,
            index=index if isinstance(index, int) else None,
        )


class ServerUnreachable(CanopyClientError):
    """No server answered at the URL (or none could be found): nothing was sent or received."""


class UntrustedServer(ServerUnreachable):
    """The server's TLS certificate is not one this client trusts (or names another host),
    or the CA file meant to trust it cannot be used."""


# -- TLS ------------------------------------------------------------------------------------

CA_FILE_VARIABLE: Final = "CANOPY_CA_FILE"


def client_ssl(
    url: str | URL, ca_file: str | Path | None = None, *, ca_pem: str | None = None
) -> ssl.SSLContext | bool:
    """What to verify an ``https``/``wss`` server with: the system's CAs (and, as OpenSSL
    reads them, ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), plus the certificates in ``ca_file``
    and in the PEM text ``ca_pem`` when given. ``True`` (nothing to verify) for a plain
    ``http`` URL. The context is made for the client, not taken from aiohttp's, which read
    the environment when it was imported.

    Either may hold a private CA or the server's own (self-signed or not) certificate:
    partial chains are accepted, so trusting the certificate itself is enough."""
    if URL(str(url)).scheme not in {"https", "wss"}:
        return True
    context = ssl.create_default_context()
    try:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        if ca_pem:
            context.load_verify_locations(cadata=ca_pem)
    except ssl.SSLError:  # an OSError too: first
        where = f"CA file {ca_file}" if ca_file else "the certificate to trust"
        raise UntrustedServer(f"{where}: no PEM certificate in it") from None
    except OSError as exc:
        raise UntrustedServer(f"CA file {ca_file}: cannot read it: {exc.strerror or exc}") from None
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def connection_failure(url: str, exc: aiohttp.ClientError | TimeoutError) -> ServerUnreachable:
    """The user's words for a failure to talk to the server at ``url``: an untrusted
    certificate and a TLS/plain-HTTP mix-up are told apart from an absent server."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return UntrustedServer(
            f"the Canopy server at {url} presented a certificate this client does not trust"
            f" ({getattr(exc.certificate_error, 'verify_message', None) or exc.certificate_error}):"
            " give its CA or its certificate with --ca-file or"
            f" {CA_FILE_VARIABLE}"
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return UntrustedServer(f"no TLS conversation with the Canopy server at {url}: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ServerUnreachable(f"no Canopy server at {url}: start one with `canopy serve`")
    hint = ""
    if isinstance(exc, aiohttp.ServerDisconnectedError) and URL(url).scheme == "http":
        hint = " (if it serves TLS, use an https:// URL)"
    return ServerUnreachable(f"lost the connection to the Canopy server at {url}: {exc!r}{hint}")


# -- finding the server ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discovery:
    """The content of ``.canopy/server.json``, written by ``canopy serve`` while it runs."""

    url: str
    token: str
    pid: int
    version: str
    ca_file: str | None = None
    """What a client trusts the server's TLS certificate with (the certificate itself)."""

    def to_json(self) -> dict[str, Any]:
        """The file's JSON form."""
        found = {"url": self.url, "token": self.token, "pid": self.pid, "version": self.version}
        return found if self.ca_file is None else {**found, "ca_file": self.ca_file}

    @classmethod
    def from_json(cls, data: object) -> Discovery | None:
        """Parse the file's JSON form; None when it is not what a server writes."""
        if not isinstance(data, dict):
            return None
        url, token, pid, version = (data.get(k) for k in ("url", "token", "pid", "version"))
        if not (isinstance(url, str) and isinstance(token, str) and isinstance(version, str)):
            return None
        if not isinstance(pid, int) or isinstance(pid, bool):
            return None
        ca_file = data.get("ca_file")
        return cls(url, token, pid, version, ca_file if isinstance(ca_file, str) else None)


def read_discovery(data_dir: str | Path) -> Discovery | None:
    """The discovery file in ``data_dir``, or None when there is none or it is unreadable
    (a half-written or foreign file must not stop a client from trying other sources)."""
    try:
        text = (Path(data_dir) / DISCOVERY_FILE).read_text(encoding="utf-8")
        return Discovery.from_json(json.loads(text))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a server is, the token to present to it and what trusts its TLS certificate."""

    url: str
    token: str
    ca_file: str | None = None


def discover(
    data_dir: str | Path = ".canopy",
    *,
    url: str | None = None,
    token: str | None = None,
    ca_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    """Resolve the server to talk to: explicit ``url``/``token``/``ca_file`` first, then
    ``CANOPY_URL`` / ``CANOPY_TOKEN`` / ``CANOPY_CA_FILE``, then the discovery file in
    ``data_dir`` (whose CA file only goes with its own URL)."""
    environ = os.environ if environ is None else environ
    found = read_discovery(data_dir)
    url = url or environ.get("CANOPY_URL") or (found.url if found else None)
    token = token or environ.get("CANOPY_TOKEN") or (found.token if found else None)
    ca_file = ca_file or environ.get(CA_FILE_VARIABLE)
    if not ca_file and found is not None and found.url == url:
        ca_file = found.ca_file
    if not url:
        raise ServerUnreachable(
            f"no Canopy server found: no usable {Path(data_dir) / DISCOVERY_FILE};"
            " start one with `canopy serve` (or give a URL and token)"
        )
    if not token:
        raise ServerUnreachable(f"no token for the Canopy server at {url}: set CANOPY_TOKEN")
    return Endpoint(url, token, ca_file or None)


# -- the client -----------------------------------------------------------------------------


class ReadResult(NamedTuple):
    """One page of ``GET /api/v1/events``: ``next_after`` is where the next page starts,
    ``head`` the last offset in the whole log when the page was read."""

    events: list[RecordedEvent]
    next_after: int
    head: int


EventInput = NewEvent | Mapping[str, Any]
"""An event to append: a :class:`NewEvent`, or its wire form (``tenant_id`` may be omitted)."""


def _filter_params(
    topics: Iterable[str], streams: Iterable[str], types: Iterable[str]
) -> list[tuple[str, str]]:
    return (
        [("topic", t) for t in topics]
        + [("stream", s) for s in streams]
        + [("type", t) for t in types]
    )


class CanopyClient:
    """An authenticated connection to one Canopy server. Use as ``async with``: the underlying
    HTTP session (and its connection pool) lives as long as the block."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        ca_file: str | None = None,
        timeout: float = 30.0,
        heartbeat: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._base = URL(self.url + "/")
        self._token = token
        self.ca_file = ca_file
        self._timeout = timeout
        self.heartbeat = heartbeat
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def of(cls, endpoint: Endpoint) -> CanopyClient:
        """A client for ``endpoint``."""
        return cls(endpoint.url, endpoint.token, ca_file=endpoint.ca_file)

    @classmethod
    def discover(
        cls,
        data_dir: str | Path = ".canopy",
        *,
        url: str | None = None,
        token: str | None = None,
        ca_file: str | None = None,
    ) -> CanopyClient:
        """A client for the server :func:`discover` finds."""
        return cls.of(discover(data_dir, url=url, token=token, ca_file=ca_file))

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self._timeout),
            connector=aiohttp.TCPConnector(ssl=client_ssl(self.url, self.ca_file)),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session (only inside ``async with``)."""
        if self._session is None:
            raise RuntimeError("use the client inside `async with CanopyClient(...)`")
        return self._session

    def url_for(self, path: str) -> URL:
        """Absolute URL of an API path (kept relative so a path prefix in the URL survives)."""
        return self._base.join(URL(path))

    async def health(self) -> dict[str, Any]:
        """``GET /healthz``: ``{"status": "ok", "head": <last offset>}``."""
        health: dict[str, Any] = await self._request("GET", "healthz")
        return health

    async def append(self, events: Sequence[EventInput]) -> list[int]:
        """Append ``events`` atomically; their offsets, in order."""
        wire = [e.to_json() if isinstance(e, NewEvent) else dict(e) for e in events]
        answer = await self._request("POST", "api/v1/events", body={"events": wire})
        return list(answer["offsets"])

    async def read(
        self,
        *,
        after: int = 0,
        limit: int = 1000,
        topics: Iterable[str] = (),
        streams: Iterable[str] = (),
        types: Iterable[str] = (),
    ) -> ReadResult:
        """One page of the caller's events after ``after``, ascending."""
        params = [("after", str(after)), ("limit", str(limit))]
        answer = await self._request(
            "GET", "api/v1/events", params=params + _filter_params(topics, streams, types)
        )
        events = [RecordedEvent.from_json(e) for e in answer["events"]]
        return ReadResult(events, answer["next_after"], answer["head"])

    async def replay(
        self,
        *,
        after: int = 0,
        topics: Iterable[str] = (),
        streams: Iterable[str] = (),
        types: Iterable[str] = (),
        page_size: int = 1000,
    ) -> AsyncIterator[RecordedEvent]:
        """Every matching event from ``after`` up to the end of the log as it was when the
        replay began; events appended meanwhile are left for a subscription."""
        filters = {"topics": tuple(topics), "streams": tuple(streams), "types": tuple(types)}
        page = await self.read(after=after, limit=page_size, **filters)
        end = page.head
        while True:
            for event in page.events:
                if event.offset > end:
                    return
                yield event
            if page.next_after >= end:
                return
            page = await self.read(after=page.next_after, limit=page_size, **filters)

    async def read_audit(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        execution: str | None = None,
        user: str | None = None,
        action: str | None = None,
    ) -> ReadResult:
        """One page of the audit log of the caller's tenant after ``after`` (``AuditAction``
        events), of one execution, user or action when given."""
        params = [("after", str(after)), ("limit", str(limit))]
        for name, value in (("execution", execution), ("user", user), ("action", action)):
            if value is not None:
                params.append((name, value))
        answer = await self._request("GET", "api/v1/audit", params=params)
        events = [RecordedEvent.from_json(e) for e in answer["events"]]
        return ReadResult(events, answer["next_after"], answer["head"])

    async def ingest_lines(
        self, lines: bytes, *, service: str | None = None, first_line: int = 1
    ) -> dict[str, Any]:
        """Send NDJSON log lines as evidence (``POST /api/v1/evidence/lines``), the first
        numbered ``first_line``; the server's count of kept, skipped and refused lines."""
        params = [("first_line", str(first_line))]
        if service is not None:
            params.append(("service", service))
        answer: dict[str, Any] = await self._request(
            "POST",
            "api/v1/evidence/lines",
            params=params,
            data=lines,
            content_type="application/x-ndjson",
        )
        return answer

    def subscribe(
        self,
        *,
        after: int = 0,
        topics: Iterable[str] = (),
        streams: Iterable[str] = (),
        types: Iterable[str] = (),
        nodes: Iterable[str] = (),
        statuses: Iterable[str] = (),
    ) -> RemoteSubscription:
        """Follow matching events after ``after`` (catch-up, then live) over a WebSocket;
        ``nodes`` and ``statuses`` keep only events about those node ids / with those
        statuses (events without a node or a status pass)."""
        params = _filter_params(topics, streams, types)
        params += [("node", n) for n in nodes] + [("status", s) for s in statuses]
        return RemoteSubscription(self, after, params)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: Any = None,
        data: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """``body`` is sent as JSON; ``data``, as it is, of ``content_type``."""
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode()
        headers = {"Content-Type": content_type} if data is not None else None
        try:
            async with self.session.request(
                method, self.url_for(path), params=params, data=data, headers=headers
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise _error_of(response.status, response.reason or "", raw)
                return json.loads(raw)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise connection_failure(self.url, exc) from exc


def _phrase(status: int) -> str:
    """The standard reason phrase of an HTTP status (empty for unknown ones)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _error_of(status: int, reason: str, raw: bytes) -> ServerError:
    """Turn an error answer into a ServerError, problem document or not (e.g. a proxy's page)."""
    try:
        problem = json.loads(raw)
    except ValueError:
        problem = None
    if isinstance(problem, dict):
        return ServerError.from_problem(status, problem)
    return ServerError(status, reason, raw[:200].decode("utf-8", "replace").strip())


class RemoteSubscription:
    """An async iterator of :class:`RecordedEvent` from ``GET /api/v1/events/subscribe``.

    ``position`` is the resume offset: every matching event up to it has been handed out. When
    an established connection drops, the subscription reconnects (backing off up to
    ``max_backoff`` seconds) and resumes from ``position``, so the consumer sees each event
    once and in order. A first connection that fails, and any refusal by the server, raise.
    """

    def __init__(
        self,
        client: CanopyClient,
        after: int,
        filter_params: list[tuple[str, str]],
        *,
        max_backoff: float = 5.0,
    ) -> None:
        self._client = client
        self._filter_params = filter_params
        self.position = after
        self.max_backoff = max_backoff
        self.connections = 0
        self._backoff = _MIN_BACKOFF
        self._buffer: deque[RecordedEvent] = deque()
        self._frame_position = after
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> RecordedEvent:
        while not self._buffer:
            await self._receive()
        event = self._buffer.popleft()
        # The frame's position may lie past its last event (the server scanned further).
        self.position = event.offset if self._buffer else max(event.offset, self._frame_position)
        return event

    async def close(self) -> None:
        """Close the WebSocket; the subscription cannot be iterated afterwards."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _receive(self) -> None:
        """Wait for the next frame; after a dropped connection, pause before reconnecting."""
        if self._ws is None:
            self._ws = await self._connect()
        message = await self._ws.receive()
        if message.type is aiohttp.WSMsgType.TEXT:
            self._take(json.loads(message.data))
            self._backoff = _MIN_BACKOFF
            return
        ws, self._ws = self._ws, None
        await ws.close()
        if ws.close_code == _WS_POLICY_VIOLATION:
            raise ServerError(400, "Bad Request", "the server refused the subscription")
        log.info("subscription to %s dropped (%s)", self._client.url, message.type.name)
        await self._pause()

    def _take(self, frame: Mapping[str, Any]) -> None:
        """Handle one server frame: events, or a problem for this subscription. Server-side
        trouble (5xx) is waited out; a refusal (4xx) is the caller's to handle."""
        kind = frame.get("kind")
        if kind == "error":
            status = int(frame.get("status", 500))
            if status < 500:
                raise ServerError.from_problem(status, frame)
            log.warning("subscription interrupted by the server: %s", frame.get("detail"))
        elif kind == "events":
            self._buffer.extend(RecordedEvent.from_json(e) for e in frame["events"])
            self._frame_position = int(frame["position"])
            if not self._buffer:
                self.position = max(self.position, self._frame_position)

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        """Open the WebSocket from ``position``; keep trying only once a connection worked."""
        while True:
            try:
                ws = await self._open()
            except ServerUnreachable:
                if not self.connections:
                    raise
                await self._pause()
                continue
            self.connections += 1
            return ws

    async def _pause(self) -> None:
        log.info("reconnecting to %s in %.1f s", self._client.url, self._backoff)
        await asyncio.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, self.max_backoff)

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        url = self._client.url_for("api/v1/events/subscribe")
        params = [("after", str(self.position)), *self._filter_params]
        try:
            return await self._client.session.ws_connect(
                url, params=params, heartbeat=self._client.heartbeat
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status >= 500:
                message = f"the Canopy server at {self._client.url} answered {exc.status}"
                raise ServerUnreachable(message) from exc
            raise ServerError(exc.status, _phrase(exc.status)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise connection_failure(self._client.url, exc) from exc
