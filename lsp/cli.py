"""``canopy lsp``: the language server for tree files, over stdio or TCP."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading

import click
from pygls.io_ import run_async

from canopy.server.logs import configure_logging

from .server import TreeServer, build_server

__all__ = ["command"]

log = logging.getLogger(__name__)


@click.command("lsp")
@click.option("--port", type=int, help="Serve one client over TCP on this port (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface for --port.")
@click.option(
    "--log-level", default="WARNING", show_default=True, help="Log level (logs go to stderr)."
)
def command(port: int | None, host: str, log_level: str) -> None:
    """Language Server Protocol server for tree files (YAML, JSON and Groot2 XML).

    It checks each open tree file as `canopy dap` would load it and publishes every problem
    at its line and column, outlines the tree's nodes, goes from a node to its behaviour's
    Python class, and completes node types. Checking a tree imports its behaviour modules,
    as a launch does, in a checking process of the server's own: one that hangs past the
    deadline (checkTimeout) or ends that process is reported on the tree's first line.

    Without --port it speaks LSP on stdin/stdout, as editors start language servers; with
    --port it waits for one client over TCP, prints the port it listens on, and exits when
    that client does. Settings come from the client's initializationOptions: validateOn
    ("change" or "save"), workspaceClasses (true/false), maxPythonFiles (a count),
    checkTimeout (seconds, default 10); a wrong one is reported and replaced by its default.
    """
    configure_logging(log_level.upper())
    server = build_server()
    try:
        if port is None:
            server.start_io()
        else:
            asyncio.run(_serve_tcp(server, host, port))
    except KeyboardInterrupt:
        pass
    finally:
        server.checker.kill()  # a client that left without `shutdown` leaves none behind
        server.reader.shutdown(wait=False, cancel_futures=True)


async def _serve_tcp(server: TreeServer, host: str, port: int) -> None:
    """Serve the first client to connect until it leaves; refuse any other meanwhile."""
    done = asyncio.Event()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if done.is_set() or server.protocol.writer is not None:
            writer.close()
            return
        server.protocol.set_writer(writer)
        try:
            await run_async(
                stop_event=threading.Event(),
                reader=reader,
                protocol=server.protocol,
                logger=log,
                error_handler=server.report_server_error,
            )
        finally:
            done.set()

    listening = await asyncio.start_server(session, host, port)
    bound = listening.sockets[0].getsockname()[1]
    print(f"canopy lsp listening on {host}:{bound}", file=sys.stderr, flush=True)
    print(bound, flush=True)
    async with listening:
        await done.wait()
