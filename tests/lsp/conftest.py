"""Every test talks to a real ``canopy lsp`` process over its stdin/stdout (the TCP test over
a socket), through pytest-lsp's client, on real tree files: the examples, or copies of them
in a temporary folder (with ``robot.py`` beside them, so their classes resolve)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import (
    ClientServerConfig,
    LanguageClient,
    client_capabilities,
    make_test_lsp_client,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PATROL = EXAMPLES / "patrol"
SERVER = [sys.executable, "-c", "from canopy.server.cli import main; main()", "lsp"]
ENVIRONMENT = {**os.environ, "PYTHONPATH": str(ROOT)}


def uri(path: Path) -> str:
    return from_fs_path(str(path)) or str(path)


async def start(client: LanguageClient, options: Any = None) -> None:
    """Initialize a session as VS Code would, with these initializationOptions."""
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=uri(EXAMPLES),
            initialization_options=options,
        )
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=ENVIRONMENT))
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    """A ``canopy lsp`` process with a session initialized with no options."""
    await start(lsp_client)
    yield
    await lsp_client.shutdown_session()


@asynccontextmanager
async def session(options: Any) -> AsyncIterator[tuple[LanguageClient, list[str]]]:
    """A ``canopy lsp`` process initialized with ``options``, and the warnings it showed."""
    client = make_test_lsp_client()
    await client.start_io(*SERVER, env=ENVIRONMENT)
    try:
        await start(client, options)
        # The warnings follow `initialized`; a request answered later proves they were sent.
        await client.text_document_document_symbol_async(
            types.DocumentSymbolParams(
                text_document=types.TextDocumentIdentifier(uri=uri(PATROL / "patrol.yaml"))
            )
        )
        warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
        yield client, warnings
    finally:
        if not client.stopped:  # (a test may have shut it down itself)
            await client.shutdown_session()  # (else stop() waits for a server that goes on)
        await client.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder with the patrol example's files, to edit."""
    for name in ("patrol.yaml", "patrol.xml", "robot.py"):
        shutil.copy(PATROL / name, tmp_path / name)
    return tmp_path


def open_document(client: LanguageClient, path: Path, text: str | None = None) -> str:
    """Open ``path`` in the server (with ``text``, else what the file holds); its uri."""
    suffix = path.suffix.lstrip(".")
    language = {"yml": "yaml", "xml": "xml", "json": "json"}.get(suffix, suffix)
    content = path.read_text(encoding="utf-8") if text is None else text
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri(path), language_id=language, version=1, text=content
            )
        )
    )
    return uri(path)


async def diagnostics_of(
    client: LanguageClient, path: Path, text: str | None = None
) -> list[types.Diagnostic]:
    """Open ``path`` and wait for the diagnostics published for it."""
    address = open_document(client, path, text)
    while True:
        await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        if address in client.diagnostics:
            return list(client.diagnostics.pop(address))


def line_of(path: Path, text: str) -> int:
    """The 0-based line of ``path`` that holds ``text`` first."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines) if text in line)
