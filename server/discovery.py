"""Writing the discovery file ``.canopy/server.json`` (its reader lives in
:mod:`bridge.client`, next to the clients that use it).

It holds a bearer token, so it is created with mode 0600 from the start, and replaced
atomically so a client never reads half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from canopy.bridge.client import DISCOVERY_FILE, Discovery, read_discovery

__all__ = ["remove_discovery", "write_discovery"]


def write_discovery(data_dir: Path, discovery: Discovery) -> Path:
    """Create or replace the discovery file in ``data_dir``, readable by the owner only;
    return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DISCOVERY_FILE
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(discovery.to_json(), file, indent=2)
        file.write("\n")
    os.replace(temporary, path)
    return path


def remove_discovery(data_dir: Path, pid: int) -> None:
    """Remove the discovery file if it still advertises the server ``pid`` (another server
    may have taken the data directory over since)."""
    current = read_discovery(data_dir)
    if current is not None and current.pid == pid:
        (data_dir / DISCOVERY_FILE).unlink(missing_ok=True)
