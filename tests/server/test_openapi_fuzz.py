"""Schemathesis drives every operation of ``schemas/openapi.json`` against a real ``canopy
serve`` process with a valid bearer token: schema-valid and schema-violating requests alike
must never get a 5xx, and every answer must match the status codes, content types and
response schemas the document promises.

The server is a separate process (one per test worker) because Schemathesis sends its
requests synchronously, which would block an in-process server's event loop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from jsonschema import Draft202012Validator
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
"""Requests per operation at most (valid and invalid together): about 1,550 over both tests
below, most of the fuzzer's minute or so of CPU."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

DOCUMENT = ROOT / "schemas" / "openapi.json"
# Sentry's envelopes are text (a JSON line per header and payload), sent as they are.
schemathesis.serializer.alias("application/x-sentry-envelope", "text/plain")
# NDJSON lines are text too; OTLP's protobuf is bytes.
schemathesis.serializer.alias(["application/x-ndjson", "application/jsonl"], "text/plain")
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")
schema = schemathesis.openapi.from_path(DOCUMENT)
schema.config.generation.update(max_examples=EXAMPLES)
# The calls on one execution, again on a live one (the test above mostly meets unknown ids).
# Waiting for an end or a stop is excluded here: on a manual-mode execution nothing comes,
# so the request would only run into the client's timeout (it is fuzzed above, unknown id).
on_live_execution = schema.include(path_regex=r"\{execution_id\}").exclude(
    operation_id=["wait_for_end", "wait_for_stop"]
)
PATROL = {"program": "tests.server.runtime.factories:patrol", "blackboard": {"battery": 100}}


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
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert process.stdout is not None
        # The banner's last line comes once the server listens and server.json is written;
        # the stream ends instead if it cannot start (the suite's timeout bounds the wait).
        for line in process.stdout:
            if "Press Ctrl-C" in line:
                break
        found = read_discovery(data)
        assert found is not None, log.read_text()
        yield Served(found.url, {"Authorization": f"Bearer {found.token}"})
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Schemathesis 4 turns `prefixItems` (a tuple, valid in OpenAPI 3.1) into an array `items`
# before validating a response, then cannot build a draft 2020-12 validator from it; the one
# schema holding tuples (StateDiff) is checked with jsonschema instead.
_STATE_DIFF = json.loads(DOCUMENT.read_text())["components"]["schemas"]["StateDiff"]
_DIFFS = ("/executions/{execution_id}/history/diff", "/executions/{first_id}/diff/{second_id}")


def state_diff_as_documented(ctx: object, response: schemathesis.Response, case: Case) -> None:
    if response.status_code == 200:
        Draft202012Validator(_STATE_DIFF).validate(response.json())


def call_and_validate(case: Case, served: Served) -> None:
    checks = CHECKS
    if case.operation.path.endswith(_DIFFS):
        checks = [*CHECKS[:-1], state_diff_as_documented]
    case.call_and_validate(base_url=served.url, headers=served.headers, checks=checks, timeout=30)


@pytest.fixture(scope="module")
def live_execution(served: Served) -> Callable[[], str]:
    """The id of a patrol execution in manual mode in the user's debug pod, launched again
    whenever the fuzzer has ended the last one."""
    current: list[str] = []

    def execution_id() -> str:
        if current:
            url = f"{served.url}/api/v1/executions/{current[0]}"
            answer = requests.get(url, headers=served.headers, timeout=60)
            if answer.status_code == 200 and answer.json()["state"] != "ended":
                return current[0]
        answer = requests.post(
            f"{served.url}/api/v1/executions",
            json={"spec": PATROL},
            headers=served.headers,
            timeout=STARTUP,
        )
        assert answer.status_code == 200, answer.text
        current[:] = [answer.json()["id"]]
        return current[0]

    return execution_id


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Case, served: Served) -> None:
    call_and_validate(case, served)


@on_live_execution.parametrize()
def test_every_call_on_a_live_execution_answers_as_documented(
    case: Case, served: Served, live_execution: Callable[[], str]
) -> None:
    case.path_parameters = {**(case.path_parameters or {}), "execution_id": live_execution()}
    call_and_validate(case, served)
