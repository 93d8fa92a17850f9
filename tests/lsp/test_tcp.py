"""``canopy lsp --port 0`` serves one client over TCP: it prints the port it bound on stdout,
answers that client as over stdio, and exits when the client does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pytest_lsp import make_test_lsp_client

from .conftest import ENVIRONMENT, SERVER, diagnostics_of, start


async def test_a_client_over_tcp(workspace: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *SERVER, "--port", "0", env=ENVIRONMENT, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        port = int(await process.stdout.readline())
        client = make_test_lsp_client()
        await client.start_tcp("127.0.0.1", port)
        await start(client)
        tree = workspace / "patrol.yaml"
        text = tree.read_text().replace("robot:Scan", "robot:Scna")
        (found,) = await diagnostics_of(client, tree, text)
        assert found.range.start.line == 28
        assert "did you mean `Scan`?" in found.message
        await client.shutdown_session()
        await client.stop()
        assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
