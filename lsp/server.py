"""``canopy lsp``'s handlers: each fetches the document, asks :mod:`.trees` (or the checking
process, through :mod:`.checker`), converts with :mod:`.convert`.

Checking a tree and going to a node's class import the user's behaviour modules, so they run in
the checking process, one at a time, each within the ``checkTimeout`` deadline; a check that
waits its turn while its document is edited again is dropped, and a result is published only
for the document's latest version. The outline and completion only read files (a megabyte of
YAML, a folder of Python files): they run in a thread of this process, off the event loop.
The server keeps answering meanwhile.
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
from canopy.server.runtime.definition import Problem

from . import convert, trees
from .checker import Checker, CheckFailed
from .options import Options, read_options

__all__ = ["TreeServer", "build_server"]

T = TypeVar("T")


class TreeServer(LanguageServer):
    """The language server, with what it keeps per session."""

    def __init__(self) -> None:
        super().__init__("canopy", __version__)
        self.options = Options()
        self.option_problems: list[str] = []
        self.loaded: dict[str, str] = {}
        """The text of each document whose last check found no problem."""
        self.checker = Checker(self.checking_process_started)
        self.checking = asyncio.Lock()
        self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="canopy-lsp-read")

    async def off_loop(self, work: partial[T]) -> T:
        """Run ``work`` (which reads files, never imports them) in the reading thread."""
        return await asyncio.get_running_loop().run_in_executor(self.reader, work)

    def checking_process_started(self, pid: int, folder: Path) -> None:
        """Tell the client's log (its output panel), where a process id is worth finding."""
        self.window_log_message(
            types.LogMessageParams(
                type=types.MessageType.Log,
                message=f"checking process {pid} started for the trees in {folder}",
            )
        )


def build_server() -> TreeServer:
    """A server with every feature of this slice registered."""
    server = TreeServer()
    server.feature(types.INITIALIZE)(initialize)
    server.feature(types.INITIALIZED)(initialized)
    server.feature(types.SHUTDOWN)(shutdown)
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


async def shutdown(ls: TreeServer, params: None) -> None:
    """Stop the checking process before answering, so the client sees none left."""
    await ls.checker.stop()


async def did_open(ls: TreeServer, params: types.DidOpenTextDocumentParams) -> None:
    await check(ls, params.text_document.uri)


async def did_change(ls: TreeServer, params: types.DidChangeTextDocumentParams) -> None:
    if ls.options.validate_on == "change":
        await check(ls, params.text_document.uri)


async def did_save(ls: TreeServer, params: types.DidSaveTextDocumentParams) -> None:
    await check(ls, params.text_document.uri)


def did_close(ls: TreeServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.loaded.pop(params.text_document.uri, None)
    publish(ls, params.text_document.uri, [], None)


async def check(ls: TreeServer, uri: str) -> None:
    """Check the document as it is now and publish its problems, unless it changed meanwhile;
    a check its process could not finish is one problem at the first line, saying why."""
    document = ls.workspace.get_text_document(uri)
    path = _tree_path(document)
    if path is None:
        return
    version = document.version
    text = document.source
    async with ls.checking:
        if ls.workspace.get_text_document(uri).version != version:
            return  # edited while waiting its turn: the check of the edit follows
        try:
            problems = await ls.checker.check(path, text, ls.options.check_timeout)
        except CheckFailed as error:
            problems = [Problem(str(path), 1, 1, str(error))]
    if ls.workspace.get_text_document(uri).version != version:
        return
    if problems:
        ls.loaded.pop(uri, None)
    else:
        ls.loaded[uri] = text
    publish(ls, uri, [convert.diagnostic(p, document) for p in problems], version)


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
    """The class of the node under the cursor, in the text of the document's last clean check
    (resolved in the checking process, which imports the class's module)."""
    document = ls.workspace.get_text_document(params.text_document.uri)
    text = ls.loaded.get(params.text_document.uri)
    path = _tree_path(document)
    if path is None or text is None:
        return None
    line = document.position_from_client_units(params.position).line + 1
    try:
        found = await ls.checker.locate(path, text, line, ls.options.check_timeout)
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
