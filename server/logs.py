"""Log lines as ``key=value`` pairs, one event per line, so that ``grep``, ``awk`` and log
shippers can read the server's output without a parser for prose.

Code logs a short message and passes structured data as ``extra={"fields": {...}}``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["KeyValueFormatter", "configure_logging"]


def _quote(value: Any) -> str:
    """A value that needs no quoting as it is, otherwise a double-quoted string."""
    text = str(value)
    if text and not any(c.isspace() or c in '"=\\' for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class KeyValueFormatter(logging.Formatter):
    """``time=... level=INFO logger=canopy.access msg=request method=GET status=200 ...``;
    a traceback, if any, follows on the next lines (server side only, never to a client)."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        pairs: dict[str, Any] = {
            "time": moment,
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            pairs.update(fields)
        line = " ".join(f"{key}={_quote(value)}" for key, value in pairs.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str) -> None:
    """Send every log record at ``level`` or above to stderr as key=value lines (stdout is
    left to what a command prints for its user)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
