"""The ``canopy`` command: run the server, and read or write its event log from a shell.

Commands that talk to a server find it like every other Canopy process does (``--url`` /
``--token``, else ``CANOPY_URL`` / ``CANOPY_TOKEN``, else ``.canopy/server.json``) and turn
every failure into one readable line and exit code 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from yarl import URL

from canopy import schemas
from canopy.bridge import BridgeError, CanopyError, RecordedEvent, open_store
from canopy.bridge.client import (
    DISCOVERY_FILE,
    CanopyClient,
    CanopyClientError,
    Discovery,
    ServerError,
)

from . import __version__
from .api.keys import LOCAL_TOKEN
from .app import create_app, stop_pods
from .auth import issue_token
from .config import LOG_LEVELS, POD_SANDBOXES, Settings, SettingsError, load_settings
from .connections import GuardedRunner, listen, make_runner
from .discovery import remove_discovery, write_discovery
from .logs import configure_logging
from .pods.sandbox import SandboxError
from .telemetry import SERVER_SERVICE, instrument_http_server, start_tracing, stop_tracing
from .tls import server_context

__all__ = ["main"]

T = TypeVar("T")
PRODUCER: Final = {"name": "canopy-cli", "version": __version__}
CHUNK_EVENTS: Final = 1000
CHUNK_BYTES: Final = 1024 * 1024
PAYLOAD_PREVIEW: Final = 200


def _settings(options: dict[str, Any]) -> Settings:
    try:
        return load_settings(options)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _run(work: Coroutine[Any, Any, T]) -> T | None:
    """Run ``work`` with the failures a user can act on turned into one line and exit 1;
    Ctrl-C ends quietly (None)."""
    try:
        return asyncio.run(work)
    except KeyboardInterrupt:
        return None
    except CanopyError as exc:
        raise click.ClickException(str(exc)) from None
    except BrokenPipeError:
        # The reader of our output left (e.g. `| head`): stop without a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="canopy")
def main() -> None:
    """Canopy: debug behavior trees and LLM agent workflows from your editor, on one shared
    event log."""


# -- canopy serve ---------------------------------------------------------------------------


@main.command()
@click.option("--host", help="Interface to listen on (default 127.0.0.1; CANOPY_HOST).")
@click.option("--port", type=int, help="TCP port (default 8470; 0 picks a free one; CANOPY_PORT).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the SQLite log and server.json (default .canopy; CANOPY_DATA_DIR).",
)
@click.option(
    "--database-url",
    help="sqlite:///path or postgresql://... (default: SQLite in the data folder; "
    "CANOPY_DATABASE_URL).",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Server log level (default INFO; CANOPY_LOG_LEVEL). Logs go to stderr.",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM certificate (chain) to serve HTTPS and WSS with; needs --tls-key (CANOPY_TLS_CERT).",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM private key of --tls-cert, unencrypted (CANOPY_TLS_KEY).",
)
@click.option(
    "--pod-sandbox",
    type=click.Choice(POD_SANDBOXES, case_sensitive=False),
    help="Fence local pods with Linux Landlock: auto (when the kernel can, default), landlock "
    "(required: refuse to start without it) or none (CANOPY_POD_SANDBOX).",
)
def serve(**options: Any) -> None:
    """Run the Canopy server until Ctrl-C or SIGTERM.

    Prints the URL and an access token, and writes both to <data-dir>/server.json (mode 0600)
    so that other Canopy processes find the server; the file is removed on shutdown. With
    --tls-cert and --tls-key it serves HTTPS and WSS only, and server.json also names the
    certificate, which local clients then trust.
    Settings come from these options, then CANOPY_* variables, then canopy.toml [server].
    Sentry SDKs report errors to /api/<project>/envelope/ with a DSN key of canopy.toml
    [[evidence.sentry]] (key, tenant, service); OpenTelemetry SDKs and collectors export
    logs to /v1/logs (OTLP/HTTP) with a token; `canopy evidence ingest` sends NDJSON log
    lines. [evidence] retention_days prunes the evidence.
    """
    settings = _settings(options)
    try:
        tls = server_context(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.log_level)
    _start_tracing()
    try:
        asyncio.run(_serve(settings, tls, Console(soft_wrap=True, highlight=False)))
    except BridgeError as exc:
        raise click.ClickException(f"cannot open the event log: {exc}") from None
    except SandboxError as exc:
        raise click.ClickException(f"cannot start local pods: {exc}") from None
    finally:
        stop_tracing()  # the last requests' spans leave before the process does


def _start_tracing() -> None:
    """Trace the server's requests when OTEL_EXPORTER_OTLP_ENDPOINT names a collector."""
    try:
        start_tracing(SERVER_SERVICE)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    instrument_http_server()


async def _serve(settings: Settings, tls: ssl.SSLContext | None, console: Console) -> None:
    """Start, advertise, wait for a stop signal, then shut down in reverse order. The signal
    handlers are in place from the start, so a signal during startup still ends cleanly."""
    with _stop_signals() as stop:
        app = create_app(settings)
        runner = make_runner(app, settings)
        await runner.setup()
        try:
            url = await _listen(runner, settings, tls)
            ca_file = str(settings.tls_cert) if settings.tls_cert is not None else None
            discovery = Discovery(url, app[LOCAL_TOKEN], os.getpid(), __version__, ca_file)
            _advertise(settings, discovery)
            try:
                _announce(console, settings, discovery)
                await stop.wait()
                console.print("Stopping.")
                await stop_pods(app)
            finally:
                remove_discovery(settings.data_dir, discovery.pid)
        finally:
            await runner.cleanup()


@contextmanager
def _stop_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        yield stop
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


def _advertise(settings: Settings, discovery: Discovery) -> None:
    try:
        write_discovery(settings.data_dir, discovery)
    except OSError as exc:
        raise click.ClickException(f"cannot write the discovery file: {exc}") from None


async def _listen(runner: GuardedRunner, settings: Settings, tls: ssl.SSLContext | None) -> str:
    """Open the listening socket; the URL to advertise."""
    try:
        return await listen(runner, settings.host, settings.port, tls)
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        raise click.ClickException(f"cannot listen on {where}: {exc.strerror or exc}") from None


def _announce(console: Console, settings: Settings, discovery: Discovery) -> None:
    database = URL(settings.database_url)
    if database.password:
        database = database.with_password("***")
    console.print(f"[bold]Canopy {__version__}[/] serving on [bold]{escape(discovery.url)}[/]")
    console.print(f"  event log: {escape(str(database))}")
    console.print(f"  token:     {escape(discovery.token)}")
    console.print(f"  discovery: {escape(str(settings.data_dir / DISCOVERY_FILE))}")
    if discovery.ca_file is not None:
        console.print(f"  clients trust: {escape(discovery.ca_file)} (CANOPY_CA_FILE)")
    console.print("Press Ctrl-C to stop.")


# -- canopy events --------------------------------------------------------------------------


def _client_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--url, --token, --ca-file and --data-dir: how to reach the server, for every client
    command."""
    for option in (
        click.option("--url", help="Server URL (default: CANOPY_URL, else server.json)."),
        click.option("--token", help="Access token (default: CANOPY_TOKEN, else server.json)."),
        click.option(
            "--ca-file",
            help="PEM CA or certificate to trust an https server with, besides the system's"
            " (default: CANOPY_CA_FILE, else the one server.json names).",
        ),
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Folder holding server.json (default .canopy; CANOPY_DATA_DIR).",
        ),
    ):
        command = option(command)
    return command


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--topic/--stream/--type (each repeatable) and --json."""
    for option in (
        click.option("--topic", "topics", multiple=True, help="Only this topic (repeatable)."),
        click.option("--stream", "streams", multiple=True, help="Only this stream (repeatable)."),
        click.option("--type", "types", multiple=True, help="Only this event type (repeatable)."),
        click.option("--json", "as_json", is_flag=True, help="Print NDJSON, one event a line."),
    ):
        command = option(command)
    return command


def _client(
    url: str | None, token: str | None, ca_file: str | None, data_dir: Path | None
) -> CanopyClient:
    settings = _settings({"data_dir": data_dir})
    try:
        return CanopyClient.discover(settings.data_dir, url=url, token=token, ca_file=ca_file)
    except CanopyClientError as exc:
        raise click.ClickException(str(exc)) from None


def _render(event: RecordedEvent, as_json: bool) -> str:
    """One line per event: NDJSON, or offset, time, stream, type and a payload preview."""
    if as_json:
        return json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":"))
    payload = json.dumps(event.payload, ensure_ascii=False, separators=(",", ":"))
    if len(payload) > PAYLOAD_PREVIEW:
        payload = payload[: PAYLOAD_PREVIEW - 1] + "…"
    moment = event.time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{event.offset:>8}  {moment}  {event.stream}  {event.type}  {payload}"


@main.group()
def events() -> None:
    """Append to, replay and follow the event log of a running server (as your tenant)."""


@events.command("append")
@click.option("--type", "event_type", help="Event type, e.g. TickStarted (one-event form).")
@click.option("--stream", help="Stream, e.g. execution/e1 (one-event form).")
@click.option("--topic", help="Topic (default: the one the type's schema declares).")
@click.option("--payload", help="Payload as a JSON object (default {}).")
@click.option("--idempotency-key", help="Appending the same key again writes nothing.")
@_client_options
def append_command(
    event_type: str | None,
    stream: str | None,
    topic: str | None,
    payload: str | None,
    idempotency_key: str | None,
    url: str | None,
    token: str | None,
    ca_file: str | None,
    data_dir: Path | None,
) -> None:
    """Append one event (--type, --stream, --payload) or NDJSON events read from stdin, and
    print the offset of each.

    NDJSON lines are wire-form events (schemas/new-event.schema.json) whose tenant_id and
    producer may be left out. They are sent in batches of up to 1000; each batch is atomic,
    and a refused line stops the command after the batches before it were written.
    """
    batches: Iterable[list[tuple[int, dict[str, Any]]]]
    if event_type is not None:
        batches = [[(0, _one_event(event_type, stream, topic, payload, idempotency_key))]]
    elif stream or topic or payload or idempotency_key:
        raise click.UsageError("--stream, --topic, --payload and --idempotency-key need --type")
    elif sys.stdin.isatty():
        raise click.UsageError("give --type and --stream, or pipe NDJSON events into stdin")
    else:
        batches = _batches(_stdin_events(sys.stdin))
    client = _client(url, token, ca_file, data_dir)
    _run(_append(client, batches, from_stdin=event_type is None))


def _one_event(
    event_type: str, stream: str | None, topic: str | None, payload: str | None, key: str | None
) -> dict[str, Any]:
    if not stream:
        raise click.UsageError("--type needs --stream")
    topic = topic or schemas.event_type_schemas().get(event_type, {}).get("x-topic")
    if topic is None:
        raise click.UsageError(f"unknown event type {event_type!r}; give --topic to send it anyway")
    try:
        body = json.loads(payload or "{}")
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    event = {
        "topic": topic,
        "stream": stream,
        "type": event_type,
        "payload": body,
        "producer": PRODUCER,
    }
    if key:
        event["idempotency_key"] = key
    return event


def _stdin_events(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, event) for each non-blank line, with the CLI as default producer."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise click.ClickException(f"stdin line {number}: not JSON: {exc}") from None
        if not isinstance(event, dict):
            raise click.ClickException(f"stdin line {number}: not a JSON object")
        event.setdefault("producer", PRODUCER)
        yield number, event


def _batches(
    numbered: Iterable[tuple[int, dict[str, Any]]],
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Group events so each request stays far below the server's size and count limits."""
    batch: list[tuple[int, dict[str, Any]]] = []
    size = 0
    for number, event in numbered:
        length = len(json.dumps(event))
        if batch and (len(batch) >= CHUNK_EVENTS or size + length > CHUNK_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((number, event))
        size += length
    if batch:
        yield batch


async def _append(
    client: CanopyClient,
    batches: Iterable[list[tuple[int, dict[str, Any]]]],
    *,
    from_stdin: bool,
) -> None:
    async with client:
        for batch in batches:
            try:
                offsets = await client.append([event for _, event in batch])
            except ServerError as exc:
                if not from_stdin or exc.index is None or not 0 <= exc.index < len(batch):
                    raise
                where = f"stdin line {batch[exc.index][0]}"
                raise click.ClickException(
                    f"{where}: {exc.field or 'event'}: {exc.detail}"
                ) from None
            for offset in offsets:
                click.echo(offset)


@events.command("replay")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Start after this offset.")
@_filter_options
@_client_options
def replay_command(
    after: int,
    topics: tuple[str, ...],
    streams: tuple[str, ...],
    types: tuple[str, ...],
    as_json: bool,
    url: str | None,
    token: str | None,
    ca_file: str | None,
    data_dir: Path | None,
) -> None:
    """Print your events from --after up to the current end of the log, then exit."""
    client = _client(url, token, ca_file, data_dir)
    found = client.replay(after=after, **_filters(topics, streams, types))
    _run(_print_events(client, found, as_json))


@events.command("tail")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    help="Start after this offset (default: the current end, i.e. only new events).",
)
@_filter_options
@_client_options
def tail_command(
    after: int | None,
    topics: tuple[str, ...],
    streams: tuple[str, ...],
    types: tuple[str, ...],
    as_json: bool,
    url: str | None,
    token: str | None,
    ca_file: str | None,
    data_dir: Path | None,
) -> None:
    """Follow your events live until Ctrl-C or SIGTERM, reconnecting if the connection drops."""
    client = _client(url, token, ca_file, data_dir)
    found = _follow(client, after, _filters(topics, streams, types))
    _run(_until_stopped(_print_events(client, found, as_json)))


def _filters(
    topics: tuple[str, ...], streams: tuple[str, ...], types: tuple[str, ...]
) -> dict[str, Any]:
    return {"topics": topics, "streams": streams, "types": types}


async def _follow(
    client: CanopyClient, after: int | None, filters: dict[str, Any]
) -> AsyncIterator[RecordedEvent]:
    """Live events after ``after``, or after the log's current end."""
    if after is None:
        after = int((await client.health())["head"])
    async with client.subscribe(after=after, **filters) as subscription:
        async for event in subscription:
            yield event


async def _until_stopped(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it ends, or until SIGINT or SIGTERM (then cancel it and return).

    The handlers are our own, not Python's default Ctrl-C handling: a process started with
    SIGINT ignored (a background job of a script or a CI runner; children inherit that)
    never raises KeyboardInterrupt, so without them a SIGINT would not stop it at all.
    """
    with _stop_signals() as stop:
        working = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait((working, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        working.cancel()
        try:
            await working  # its error, if it ended by one
        except asyncio.CancelledError:
            if not stop.is_set():
                raise


async def _print_events(
    client: CanopyClient, found: AsyncIterator[RecordedEvent], as_json: bool
) -> None:
    """Print events as they come; ``found`` only talks to the server once iterated, inside
    the client's session."""
    async with client:
        async for event in found:
            click.echo(_render(event, as_json))


# -- canopy evidence ------------------------------------------------------------------------


@main.group()
def evidence() -> None:
    """Send error evidence from logs to a running server (as your tenant)."""


@evidence.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--service", help="Service of the lines that name none (their 'service' field).")
@_client_options
def ingest_command(
    file: Path,
    service: str | None,
    url: str | None,
    token: str | None,
    ca_file: str | None,
    data_dir: Path | None,
) -> None:
    """Send the NDJSON log lines of FILE as evidence, in chunks of up to 1 MiB, with a
    progress bar on stderr (a line longer than 1 MiB is refused without being sent).

    One JSON object a line: time (or ts), level (or severity), service, release,
    environment, message (or msg), exception_type, exception_message, stacktrace (see the
    README for every alias). Lines at an error level or with an exception are kept; others
    are skipped. A refused line is reported with its number and the others are still sent;
    the command then exits 1.
    """
    client = _client(url, token, ca_file, data_dir)
    refused = _run(_ingest(client, file.name, file.stat().st_size, _chunks(file), service))
    if refused:
        raise click.ClickException(f"{refused} line(s) refused (listed above)")


def _chunks(file: Path) -> Iterator[tuple[int, bytes]]:
    """(number of the first line, whole lines) of ``file``, each chunk up to
    :data:`CHUNK_BYTES` (a longer line makes a chunk of its own, and is not sent)."""
    with file.open("rb") as lines:
        chunk: list[bytes] = []
        size, first = 0, 1
        for number, line in enumerate(lines, start=1):
            if chunk and size + len(line) > CHUNK_BYTES:
                yield first, b"".join(chunk)
                chunk, size, first = [], 0, number
            chunk.append(line)
            size += len(line)
        if chunk:
            yield first, b"".join(chunk)


async def _ingest(
    client: CanopyClient,
    name: str,
    size: int,
    chunks: Iterable[tuple[int, bytes]],
    service: str | None,
) -> int:
    """Send the ``chunks`` of a file (``size`` bytes in all, read between requests: a
    command has nothing else to do meanwhile); print what was kept, and each refused line on
    stderr. How many were refused."""
    errors = Console(stderr=True)
    totals = {"evidence": 0, "new": 0, "skipped": 0, "refused": 0}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    async with client:
        with Progress(*columns, console=errors, transient=True) as progress:
            task = progress.add_task(escape(name), total=size)
            for first, chunk in chunks:
                if len(chunk) > CHUNK_BYTES:  # one line, far above what a report keeps
                    progress.console.print(f"line {first}: longer than 1 MiB; not sent")
                    totals["refused"] += 1
                    progress.advance(task, len(chunk))
                    continue
                answer = await client.ingest_lines(chunk, service=service, first_line=first)
                for name in totals:
                    totals[name] += answer[name]
                for item in answer["errors"]:
                    progress.console.print(f"line {item['line']}: {escape(item['detail'])}")
                if answer["refused"] > len(answer["errors"]):
                    more = answer["refused"] - len(answer["errors"])
                    progress.console.print(f"… and {more} more refused line(s) from line {first}")
                progress.advance(task, len(chunk))
    click.echo(
        f"{totals['evidence']} evidence ({totals['new']} new), {totals['skipped']} line(s)"
        f" skipped, {totals['refused']} refused"
    )
    return totals["refused"]


# -- canopy audit ---------------------------------------------------------------------------

AUDIT_PAGE: Final = 1000


@main.command("audit")
@click.option("--execution", help="Only actions on this execution id.")
@click.option("--user", help="Only actions of this user.")
@click.option("--action", help="Only this action, e.g. set_blackboard or reload.")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Start after this offset.")
@click.option("--limit", type=click.IntRange(min=1), help="Print at most this many (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print NDJSON, one event a line.")
@_client_options
def audit_command(
    execution: str | None,
    user: str | None,
    action: str | None,
    after: int,
    limit: int | None,
    as_json: bool,
    url: str | None,
    token: str | None,
    ca_file: str | None,
    data_dir: Path | None,
) -> None:
    """Print the audit log of debug sessions in your tenant, oldest first: who attached,
    launched, stepped, set breakpoints, edited the blackboard, hot reloaded... and whether
    it succeeded. One line an action: offset, time, user, action, outcome, execution and
    details; --json prints the events themselves."""
    client = _client(url, token, ca_file, data_dir)
    filters = {"execution": execution, "user": user, "action": action}
    _run(_print_audit(client, after, limit, filters, as_json))


async def _print_audit(
    client: CanopyClient,
    after: int,
    limit: int | None,
    filters: dict[str, str | None],
    as_json: bool,
) -> None:
    """Page through the audit log up to its end as it was at the first page, or until
    ``limit`` events were printed."""
    left = limit if limit is not None else -1  # -1: no limit
    async with client:
        page = await client.read_audit(after=after, limit=AUDIT_PAGE, **filters)
        end = page.head
        while True:
            for event in page.events:
                if event.offset > end:
                    return
                click.echo(_render(event, True) if as_json else _audit_line(event))
                left -= 1
                if left == 0:
                    return
            if page.next_after >= end:
                return
            page = await client.read_audit(after=page.next_after, limit=AUDIT_PAGE, **filters)


def _audit_line(event: RecordedEvent) -> str:
    payload = event.payload
    moment = event.time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    outcome = payload["outcome"]
    if "error" in payload:
        outcome += f" ({payload['error']['code']})"
    details = json.dumps(payload.get("details", {}), ensure_ascii=False, separators=(",", ":"))
    if len(details) > PAYLOAD_PREVIEW:
        details = details[: PAYLOAD_PREVIEW - 1] + "…"
    return (
        f"{event.offset:>8}  {moment}  {payload['user_id']}  {payload['action']}  {outcome}  "
        f"{payload.get('execution_id', '-')}  {details}"
    )


# -- canopy tokens --------------------------------------------------------------------------


@main.group()
def tokens() -> None:
    """Manage access tokens (admin actions on the event log itself; no server needed)."""


@tokens.command("issue")
@click.option("--user", required=True, help="User the token acts for.")
@click.option("--tenant", required=True, help="Tenant whose events the token may read and write.")
@click.option("--label", default="", help="Free text to recognise the token later.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the SQLite log (default .canopy; CANOPY_DATA_DIR).",
)
@click.option(
    "--database-url", help="The log's database (default: CANOPY_DATABASE_URL, else SQLite)."
)
def issue_command(
    user: str, tenant: str, label: str, data_dir: Path | None, database_url: str | None
) -> None:
    """Record a new token for USER in TENANT in the log and print it (only its SHA-256 is
    stored). Running servers sharing the log accept it within moments."""
    settings = _settings({"data_dir": data_dir, "database_url": database_url})
    secret = _run(_issue(settings, user, tenant, label))
    if secret is not None:
        click.echo(secret)


async def _issue(settings: Settings, user: str, tenant: str, label: str) -> str:
    async with open_store(settings.database_url) as store:
        return await issue_token(store, user, tenant, label)


# -- canopy demo --------------------------------------------------------------------------------

EXAMPLES: Final = Path(__file__).resolve().parents[1] / "examples"


@main.command("demo")
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=EXAMPLES,
    show_default="the examples/ folder of this checkout",
    help="The demo workspace (it holds patrol/patrol.yaml and its behaviours).",
)
def demo(workspace: Path) -> None:
    """Run the demo end to end with nothing configured: start a server, switch debug mode on
    (a local debug pod), debug the patrol tree with a breakpoint and a data breakpoint, step
    over and back, run on to its deliberate bug and summarise it; then debug the triage
    workflow (offline models), edit a model's answer, fork the run and compare. Events are
    kept in <workspace>/.canopy, with the tree as SVG when Graphviz is installed."""
    from .demo import DEMO_PROGRAM, WORKFLOW_PROGRAM, DemoReport, run_demo

    for program in (DEMO_PROGRAM, WORKFLOW_PROGRAM):
        if not (workspace / program).is_file():
            raise click.ClickException(f"{workspace} has no {program}: pass --workspace")
    console = Console(soft_wrap=True, highlight=False)
    console.print(f"[bold]Canopy {__version__} demo[/] in {escape(str(workspace))}")

    def tree_done(report: DemoReport) -> None:
        failure = report.failure or {}
        console.print()
        console.print(
            f"[bold red]{escape(str(failure.get('exception', '?')))}[/]: "
            f"{escape(str(failure.get('message', '')))}"
        )
        console.print(escape(report.told.rstrip("\n")))
        console.print(f"the execution ended [bold]{escape(report.ended)}[/]")
        visits = ", ".join(
            f"{node.rsplit('/', 1)[-1]} {n}" for node, n in report.statistics.items()
        )
        console.print(f"visits: {visits}")
        if report.picture is not None:
            console.print(f"the tree at the failure: {escape(str(report.picture))}")
        console.print()
        console.print("[bold]A workflow of agents[/]")

    try:
        report = _run(
            run_demo(workspace.resolve(), lambda line: console.print(escape(line)), tree_done)
        )
    except CanopyError as error:
        raise click.ClickException(f"the demo failed: {error}") from None
    if report is None:
        return
    ids = [report.execution_id]
    if report.workflow is not None:
        ids += [report.workflow.run.execution_id, report.workflow.fork.execution_id]
    streams = ", ".join(f"execution/{execution_id}" for execution_id in ids)
    console.print()
    console.print(f"their events: {streams} in {escape(str(workspace / '.canopy' / 'events.db'))}")


# -- canopy pod-worker ------------------------------------------------------------------------


@main.command("pod-worker")
def pod_worker() -> None:
    """Run a debug pod's worker (what a pod's process runs; started by the server).

    It reads CANOPY_POD_ID, CANOPY_POD_TOKEN, CANOPY_POD_TENANT, CANOPY_POD_USER and
    CANOPY_SERVER_URL, plus the optional CANOPY_POD_ORPHAN_POLICY (stop|resume),
    CANOPY_POD_ORPHAN_TIMEOUT and CANOPY_POD_SERVER_GRACE (seconds); it records events into
    ./pod-events.db and ships them to the server, which it reaches over one WebSocket and
    reconnects to when the link drops. It exits when the server stays out of reach for
    CANOPY_POD_SERVER_GRACE seconds (60 by default).
    """
    from .pods.worker import main as run_worker

    run_worker()


def _add_protocol_commands(group: click.Group) -> None:
    """``canopy dap`` and ``canopy lsp`` come from the protocol layers, which this package
    must not import: they register under the ``canopy.commands`` entry-point group."""
    for entry in entry_points(group="canopy.commands"):
        group.add_command(entry.load(), entry.name)


_add_protocol_commands(main)
