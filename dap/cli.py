"""``canopy dap``: the debug adapter, over stdio or TCP.

With nothing configured it embeds the runtime: trees run inside the adapter's process and are
recorded in the workspace's event log (``.canopy/events.db``, or ``CANOPY_DATABASE_URL``), so it
works with nothing else running.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path

import click

from bridge import BridgeError, database_url, open_store
from server.logs import configure_logging
from server.runtime.inprocess import InProcessControl

from .transport import serve_stdio, serve_tcp

__all__ = ["command"]

LOCAL_TENANT = "local"


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
    help="Where the embedded event log lives (unless CANOPY_DATABASE_URL is set).",
)
@click.option(
    "--log-level", default="WARNING", show_default=True, help="Log level (logs go to stderr)."
)
def command(port: int | None, host: str, data_dir: Path, log_level: str) -> None:
    """Debug Adapter Protocol server for behavior trees (debug type "canopy").

    Without --port it speaks DAP on stdin/stdout, as VS Code's DebugAdapterExecutable expects;
    with --port it accepts any number of sessions over TCP and prints the port it listens on.
    """
    configure_logging(log_level.upper())
    try:
        asyncio.run(_main(port, host, data_dir))
    except KeyboardInterrupt:
        pass
    except BridgeError as error:
        raise click.ClickException(str(error)) from None


async def _main(port: int | None, host: str, data_dir: Path) -> None:
    async with open_store(database_url(data_dir)) as store:
        # Everything imported so far lives as long as the process: keep it out of the
        # collector's full passes, which otherwise pause a request for tens of milliseconds.
        gc.freeze()
        control = InProcessControl(store, tenant_id=LOCAL_TENANT)
        try:
            if port is None:
                await serve_stdio(control)
            else:
                await _serve_tcp(control, host, port)
        finally:
            await control.close()


async def _serve_tcp(control: InProcessControl, host: str, port: int) -> None:
    server = await serve_tcp(control, host, port)
    bound = server.sockets[0].getsockname()[1]
    print(f"canopy dap listening on {host}:{bound}", file=sys.stderr, flush=True)
    print(bound, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    logging.getLogger(__name__).info("debug adapter stopped")
