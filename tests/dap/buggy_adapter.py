"""``canopy dap`` with a bug planted in one handler: ``threads`` reads an argument nobody
sent, the kind of ``KeyError`` that must surface as a bug, not as the client's bad input."""

from __future__ import annotations

from typing import Any

from canopy.dap.session import DebugSession
from canopy.server.cli import main


async def _threads_with_a_bug(self: DebugSession, args: dict[str, Any]) -> dict[str, Any]:
    return {"threads": [], "filter": args["threadFilter"]}


if __name__ == "__main__":
    DebugSession.on_threads = _threads_with_a_bug  # type: ignore[method-assign]
    main()
