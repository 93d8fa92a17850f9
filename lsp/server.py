"""``canopy lsp``'s handlers: each fetches the document, asks :mod:`.trees`, converts with
:mod:`.convert`.

Checking a tree imports its behaviour modules (``sys.path`` is process state) and may parse a
megabyte of YAML, so it runs in one worker thread, off the event loop: the server keeps
answering while a file is checked, and a result is published only for the document's latest
version.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from canopy.bridge import CanopyError
from canopy.server import __version__
from canopy.server.runtime.code_reload import CodeVersions

from . import convert, trees
from .options import Options, read_options

__all__ = ["TreeServer", "build_server"]

T = TypeVar("T")


class TreeServer(LanguageServer):
    """The language server, with what it keeps per session."""

    def __init__(self) -> None:
        super().__init__("canopy", __version__)
        self.options = Options()
        self.option_problems: list[str] = []
        self.analyses: dict[str, trees.Analysis] = {}
        self.code: CodeVersions = {}
        self.checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="canopy-lsp-check")

    async def off_loop(self, work: partial[T]) -> T:
        """Run ``work`` in the checking thread."""
        return await asyncio.get_running_loop().run_in_executor(self.checker, work)


def build_server() -> TreeServer:
    """A server with every feature of this slice registered."""
    server = TreeServer()
    server.feature(types.INITIALIZE)(initialize)
    server.feature(types.INITIALIZED)(initialized)
    server.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    server.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    server.feature(types.TEXT_DOCUMENT_DID_SAVE)(did_save)
    server.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)
    server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)(document_symbol)
    server.feature(types.TEXT_DOCUMENT_DEFINITION)(definition)
    server.feature(
        types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["<", ":"])
    )(completion)
    return server


def initialize(ls: TreeServer, params: types.InitializeParams) -> None:
    ls.options, ls.option_problems = read_options(params.initialization_options)


def initialized(ls: TreeServer, params: types.InitializedParams) -> None:
    """Say which options were wrong (once the client listens: not during initialize)."""
    for problem in ls.option_problems:
        ls.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=problem)
        )


async def did_open(ls: TreeServer, params: types.DidOpenTextDocumentParams) -> None:
    await check(ls, params.text_document.uri)


async def did_change(ls: TreeServer, params: types.DidChangeTextDocumentParams) -> None:
    if ls.options.validate_on == "change":
        await check(ls, params.text_document.uri)


async def did_save(ls: TreeServer, params: types.DidSaveTextDocumentParams) -> None:
    await check(ls, params.text_document.uri)


def did_close(ls: TreeServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.analyses.pop(params.text_document.uri, None)
    publish(ls, params.text_document.uri, [], None)


async def check(ls: TreeServer, uri: str) -> None:
    """Check the document as it is now and publish its problems, unless it changed meanwhile."""
    document = ls.workspace.get_text_document(uri)
    path = _tree_path(document)
    if path is None:
        return
    version = document.version
    analysis = await ls.off_loop(partial(trees.analyse, path, document.source, dict(ls.code)))
    if ls.workspace.get_text_document(uri).version != version:
        return
    ls.code.update(analysis.code)
    ls.analyses[uri] = analysis
    publish(ls, uri, [convert.diagnostic(p, document) for p in analysis.problems], version)


def publish(ls: TreeServer, uri: str, found: list[types.Diagnostic], version: int | None) -> None:
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=version)
    )


async def document_symbol(
    ls: TreeServer, params: types.DocumentSymbolParams
) -> list[types.DocumentSymbol]:
    document = ls.workspace.get_text_document(params.text_document.uri)
    path = _tree_path(document)
    if path is None:
        return []
    found = await ls.off_loop(partial(trees.outline, path, document.source))
    return [convert.document_symbol(symbol, document) for symbol in found]


async def definition(ls: TreeServer, params: types.DefinitionParams) -> types.Location | None:
    """The class of the node under the cursor, from the document's last clean check."""
    document = ls.workspace.get_text_document(params.text_document.uri)
    analysis = ls.analyses.get(params.text_document.uri)
    path = _tree_path(document)
    if path is None or analysis is None or analysis.definition is None:
        return None
    line = document.position_from_client_units(params.position).line + 1
    try:
        found = await ls.off_loop(partial(trees.kind_definition, analysis.definition, path, line))
    except CanopyError as error:  # the module changed since the check and no longer resolves
        raise JsonRpcInvalidParams(str(error)) from None
    return convert.location(found) if found else None


async def completion(ls: TreeServer, params: types.CompletionParams) -> types.CompletionList:
    """Node types, where the line up to the cursor expects one."""
    document = ls.workspace.get_text_document(params.text_document.uri)
    path = _tree_path(document)
    empty = types.CompletionList(is_incomplete=False, items=[])
    if path is None:
        return empty
    cursor = document.position_from_client_units(params.position)
    line = document.lines[cursor.line] if cursor.line < len(document.lines) else ""
    prefix = trees.kind_prefix(path, line[: cursor.character])
    if prefix is None:
        return empty
    files = ls.options.max_python_files if ls.options.workspace_classes else 0
    found = await ls.off_loop(partial(trees.kinds, path, files))
    start = ServerTextPosition(cursor.line, cursor.character - len(prefix))
    where = document.range_to_client_units(ServerTextRange(start, cursor))
    return types.CompletionList(is_incomplete=False, items=[_item(n, d, where) for n, d in found])


def _item(name: str, detail: str, where: types.Range) -> types.CompletionItem:
    return types.CompletionItem(
        label=name,
        kind=types.CompletionItemKind.Class,
        detail=detail,
        text_edit=types.TextEdit(range=where, new_text=name),
    )


def _tree_path(document: TextDocument) -> Path | None:
    """The tree file a document is, or None (not a file, or not a tree file's suffix)."""
    if document.path is None:
        return None
    path = Path(document.path)
    return path if trees.is_tree_file(path) else None
