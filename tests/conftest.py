"""Fixtures shared by every suite: real SQLite files and real PostgreSQL schemas; and the
``needs_dot`` marker of tests that need Graphviz.

PostgreSQL is the server on this machine (``CANOPY_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``); each test gets a fresh schema, dropped after.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from canopy.bridge import open_store
from canopy.bridge.sql import SqlEventStore

# Property tests and the OpenAPI fuzzer: the same inputs on every run by default ("ci"), so a
# failure in CI fails again on any machine; HYPOTHESIS_PROFILE=explore draws fresh inputs each
# run (and remembers failing ones in .hypothesis/) to look for new failures. No deadline: a
# loaded machine makes any per-example time meaningless. Each property test runs its examples
# against one real server or adapter, on purpose, so function-scoped fixtures are shared.
_PROFILE = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "print_blob": True,
}
settings.register_profile("ci", derandomize=True, database=None, **_PROFILE)
settings.register_profile("explore", **_PROFILE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

POSTGRES_URL = os.environ.get(
    "CANOPY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
STORES = ["sqlite", "postgres"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test marked ``needs_dot`` when Graphviz is missing, saying so: Graphviz is an
    optional system package, so a fresh machine still runs the suite green, while CI installs
    it and runs these tests too."""
    if item.get_closest_marker("needs_dot") is not None and shutil.which("dot") is None:
        pytest.skip("needs Graphviz: 'dot' is not on PATH")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL URL, after checking that the server answers (a clear failure if not)."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}", pytrace=False)
    return POSTGRES_URL


@contextmanager
def postgres_schema(server: str) -> Iterator[str]:
    """A URL whose search_path is a schema created for the block alone (uniquely named, so
    parallel test workers never meet), dropped after."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in server else "?"
    try:
        yield f"{server}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose search_path is a schema created for this test alone."""
    with postgres_schema(postgres_server) as url:
        yield url


@pytest.fixture(scope="module", params=STORES)
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh log per store kind shared by the tests of a module, for modules whose tests
    share a costly server on it (they keep apart by execution, user or stream)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('log') / 'events.db'}"
        return
    with postgres_schema(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL for a fresh SQLite file in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty log, once per store implementation."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(fixture)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlEventStore]:
    """A started store on a fresh log, closed after the test."""
    async with open_store(store_url) as started:
        yield started
