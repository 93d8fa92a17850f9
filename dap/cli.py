"""``canopy dap``: the debug adapter, over stdio or TCP.

With nothing configured it embeds the runtime: trees run inside the adapter's process and are
recorded in the workspace's event log (``.canopy/events.db``, or ``CANOPY_DATABASE_URL``), so it
works with nothing else running. A launch with ``pod: local`` or ``kubernetes`` (and an attach
to an execution this process does not run) goes to a Canopy server instead: the one ``--url`` /
``--token``, ``CANOPY_URL`` / ``CANOPY_TOKEN`` or ``<data-dir>/server.json`` names, or else one
the adapter starts itself and stops when it exits.

Embedded trees share the adapter's process (and, over TCP, every session's): an exception from
the user's code, ``SystemExit`` included, fails its execution only, but ``os._exit()`` ends the
adapter. ``pod: local`` runs the tree in a pod worker process instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from canopy.bridge import BridgeError
from canopy.server.logs import configure_logging

from .controls import AdapterControls
from .transport import serve_stdio, serve_tcp

__all__ = ["command"]

log = logging.getLogger(__name__)


@click.command("dap")
@click.option(
    "--port", type=int, help="Serve DAP over TCP on this port (0: any free port) instead of stdio."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface for --port.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".canopy"),
    show_default=True,
    help="Where the embedded event log lives (unless CANOPY_DATABASE_URL is set), and where"
    " server.json is looked for (and a started server keeps its data).",
)
@click.option("--url", help="Canopy server for debug pods (default: CANOPY_URL, else server.json).")
@click.option("--token", help="Access token for --url (default: CANOPY_TOKEN, else server.json).")
@click.option(
    "--ca-file",
    help="PEM CA or certificate that an https server's certificate is checked with, besides"
    " the system's (default: CANOPY_CA_FILE, else the one server.json names).",
)
@click.option(
    "--log-level", default="WARNING", show_default=True, help="Log level (logs go to stderr)."
)
def command(
    port: int | None,
    host: str,
    data_dir: Path,
    url: str | None,
    token: str | None,
    ca_file: str | None,
    log_level: str,
) -> None:
    """Debug Adapter Protocol server for behavior trees (debug type "canopy").

    Without --port it speaks DAP on stdin/stdout, as VS Code's DebugAdapterExecutable expects;
    with --port it accepts any number of sessions over TCP and prints the port it listens on.
    Launches with pod: local or kubernetes run in the user's debug pod through a Canopy server
    (--url, CANOPY_URL, or server.json in --data-dir); with none running, the adapter starts
    one and stops it when it exits. Embedded trees run inside this process, shared by all
    its TCP sessions: use pod: local to isolate code that may end its process (os._exit).
    """
    configure_logging(log_level.upper())
    try:
        asyncio.run(_main(port, host, data_dir, url, token, ca_file))
    except KeyboardInterrupt:
        pass
    except BridgeError as error:
        raise click.ClickException(str(error)) from None


async def _main(
    port: int | None,
    host: str,
    data_dir: Path,
    url: str | None,
    token: str | None,
    ca_file: str | None,
) -> None:
    # Everything imported so far lives as long as the process: keep it out of the collector's
    # full passes, which otherwise pause a request for tens of milliseconds.
    gc.freeze()
    controls = AdapterControls(data_dir, url=url, token=token, ca_file=ca_file)
    try:
        if port is None:
            await _until_stopped(serve_stdio(controls))
        else:
            await _serve_tcp(controls, host, port)
    finally:
        # Ends embedded executions and stops a server this adapter started: a SIGTERM from
        # the editor must not leave a `canopy serve` (and its pods) running behind it.
        await controls.close()


async def _until_stopped(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it ends or SIGINT/SIGTERM arrives (then cancel it, so the session
    and the adapter clean up as on a normal end)."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _serve_tcp(controls: AdapterControls, host: str, port: int) -> None:
    server = await serve_tcp(controls, host, port)
    bound = server.sockets[0].getsockname()[1]
    print(f"canopy dap listening on {host}:{bound}", file=sys.stderr, flush=True)
    print(bound, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    log.info("debug adapter stopped")
