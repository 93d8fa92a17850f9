"""Versioned schema migrations (Alembic), run by every store when it starts.

Each release adds revisions under ``migrations/versions``; an older database is upgraded in
place, inside a lock so that several processes starting together migrate once.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

__all__ = ["VERSION_TABLE", "current_revision", "head_revision", "known_revisions", "upgrade"]

VERSION_TABLE = "canopy_schema_version"
_SCRIPTS = Path(__file__).with_name("migrations")
# Alembic keeps the running migration's context in module-level state: two stores of one
# process migrating at once, each on its own writer thread, would overwrite each other's.
_ALEMBIC = threading.Lock()


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` on an open (synchronous) connection."""
    with _ALEMBIC:
        command.upgrade(_config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, None for an empty database."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


@cache
def head_revision() -> str:
    """The newest revision this release knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


@cache
def known_revisions() -> frozenset[str]:
    """Every revision this release can upgrade from (a database at any other one was written
    by a newer release, whose tables this one must not touch)."""
    scripts = ScriptDirectory.from_config(_config())
    return frozenset(script.revision for script in scripts.walk_revisions())
