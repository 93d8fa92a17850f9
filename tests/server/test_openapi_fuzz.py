"""Schemathesis drives every operation of ``schemas/openapi.json`` against a real ``canopy
serve`` process with a valid bearer token: schema-valid and schema-violating requests alike
must never get a 5xx, and every answer must match the status codes, content types and
response schemas the document promises.

The server is a separate process (one per test worker) because Schemathesis sends its
requests synchronously, which would block an in-process server's event loop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from canopy.bridge.client import read_discovery

ROOT = Path(__file__).resolve().parents[2]
CANOPY = Path(sys.executable).with_name("canopy")
STARTUP = 60.0
"""Seconds a loaded machine may take to start the server."""
EXAMPLES = 25
"""Requests per operation (positive and negative together): about 1,000 in all, a minute of
one core."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(ROOT / "schemas" / "openapi.json")
schema.config.generation.update(max_examples=EXAMPLES)


@dataclass(frozen=True)
class Served:
    url: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``canopy serve`` on a free port with a SQLite log, and its local user's token."""
    data = tmp_path_factory.mktemp("fuzz") / ".canopy"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_")}
    log = data.parent / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [str(CANOPY), "serve", "--port", "0", "--data-dir", str(data)],
            cwd=ROOT,
            env=env | {"CANOPY_POD_SPARE_WORKER": "0"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + STARTUP
        while (found := read_discovery(data)) is None:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no server within {STARTUP} s"
            time.sleep(0.05)
        yield Served(found.url, {"Authorization": f"Bearer {found.token}"})
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Case, served: Served) -> None:
    case.call_and_validate(base_url=served.url, headers=served.headers, checks=CHECKS, timeout=30)
