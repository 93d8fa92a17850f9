"""The writer's lookups go through indexes: a table scan there makes every append slower the
longer the log grows (SQLite ignores the index for a multi-pair row-value IN)."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event

from canopy.bridge import open_store

from .helpers import tick


async def test_appends_look_up_keys_and_streams_by_index(sqlite_url: str) -> None:
    statements: list[tuple[str, Any]] = []
    async with open_store(sqlite_url) as store:
        await store.append([tick(f"warm{i}", 1, key=f"w{i}") for i in range(50)])

        @event.listens_for(store._write_engine, "before_cursor_execute")
        def remember(conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
            if sql.lstrip().upper().startswith("SELECT"):
                statements.append((sql, params))

        store._stream_versions.clear()  # as after another process wrote: versions are looked up
        await store.append([tick(f"s{i}", 1, key=f"k{i}") for i in range(3)])
    lookups = [(sql, params) for sql, params in statements if "canopy_head" not in sql]
    assert len(lookups) >= 2
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        for sql, params in lookups:
            plan = " ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
            assert "SCAN canopy" not in plan, plan
