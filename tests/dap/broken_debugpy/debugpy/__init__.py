"""A debugpy that cannot start: what a process whose debug port is refused looks like."""

from __future__ import annotations

from typing import Any


def listen(address: Any) -> Any:
    raise RuntimeError("can't listen for client connections: [Errno 98] Address in use")


def is_client_connected() -> bool:
    return False
