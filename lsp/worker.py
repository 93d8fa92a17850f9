"""The checking process: ``python -m canopy.lsp.worker``, started and owned by ``canopy lsp``.

Loading a tree imports the user's behaviour modules, and an import runs any code: it may wait
forever, call ``os._exit``, or leave a ``robot.py`` in ``sys.modules`` that hides another
folder's. So the language server never imports them itself: it asks this process, over the
frames of :mod:`.wire` on its stdin and stdout, and replaces it when it hangs, dies or holds
modules that changed on the disk. Nothing here knows LSP; it answers with the runtime's
problems and positions, and ends when its stdin does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

from canopy.bridge import CanopyError
from canopy.server.runtime.definition import DefinitionError, TreeDefinition

from . import trees, wire

__all__ = ["main"]


class Worker:
    """What the process keeps between requests: the last tree that loaded (the next request
    is most often a go-to-definition in it), and the modules it found already imported."""

    def __init__(self) -> None:
        self.own_modules = frozenset(sys.modules)
        self.loaded: tuple[str, str, TreeDefinition] | None = None

    def answer(self, request: wire.Request) -> wire.Reply:
        if isinstance(request, wire.Check):
            analysis = self.analyse(request.path, request.text)
            return wire.Checked(list(analysis.problems), self.user_modules())
        try:
            definition = self.definition(request.path, request.text)
            return wire.Located(trees.kind_definition(definition, Path(request.path), request.line))
        except CanopyError as error:
            return wire.Failed(error.code, str(error), error.details())

    def analyse(self, path: str, text: str) -> trees.Analysis:
        analysis = trees.analyse(Path(path), text)
        if analysis.definition is not None:
            self.loaded = (path, text, analysis.definition)
        return analysis

    def definition(self, path: str, text: str) -> TreeDefinition:
        """The tree ``path`` holding ``text``, loaded again unless it is the last one loaded."""
        if self.loaded is not None and self.loaded[:2] == (path, text):
            return self.loaded[2]
        analysis = self.analyse(path, text)
        if analysis.definition is None:
            raise DefinitionError(analysis.problems)
        return analysis.definition

    def user_modules(self) -> dict[str, int]:
        """The file of each module imported by the checks, and when it was written."""
        found: dict[str, int] = {}
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if name in self.own_modules or not isinstance(path, str):
                continue
            try:
                found[path] = os.stat(path).st_mtime_ns
            except OSError:
                continue  # written from nowhere (a zip, a generated module): nothing to watch
        return found


def main() -> None:
    """Answer requests until stdin ends. The frames get their own descriptors: a behaviour
    module that prints or reads as it is imported uses stderr and an empty stdin, never the
    frames."""
    requests: BinaryIO = os.fdopen(os.dup(0), "rb")
    replies: BinaryIO = os.fdopen(os.dup(1), "wb")
    empty = os.open(os.devnull, os.O_RDONLY)
    os.dup2(empty, 0)
    os.close(empty)
    os.dup2(2, 1)
    worker = Worker()
    wire.write_frame(replies, wire.Ready())
    while (body := wire.read_frame(requests)) is not None:
        wire.write_frame(replies, worker.answer(wire.decode_request(body)))


if __name__ == "__main__":
    main()
