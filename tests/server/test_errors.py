"""One error hierarchy: every error a client may see is a ``CanopyError`` with a stable code,
the wire rebuilds each one by its code, and the HTTP table gives each code its status."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from canopy.bridge import (
    CanopyError,
    ConcurrencyConflict,
    IdempotencyConflict,
    InvalidEvent,
    SequenceGap,
    error_codes,
)
from canopy.bridge.client import ServerError
from canopy.bridge.projection import ProjectionFailed
from canopy.server.api.problems import ERROR_STATUS, problem_of, status_of
from canopy.server.llm import ModelError
from canopy.server.llm.offline import FixtureError, MissingFixture
from canopy.server.remote import wire
from canopy.server.remote.client import _error_of
from canopy.server.runtime.agent_calls import AgentFailure
from canopy.server.runtime.control import InvalidRequest, UnknownExecution
from canopy.server.runtime.definition import DefinitionError
from canopy.server.runtime.definition.problems import Problem
from canopy.server.runtime.expressions import ExpressionError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bridge", "server", "dap", "lsp")


def _import_everything() -> None:
    """Every module of the installed packages (read from the source tree, as the editable
    install's finder cannot be walked), so that every error class is registered. The
    migration scripts run Alembic on import and define no errors."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" not in parts:
                importlib.import_module(".".join(("canopy", *parts)).removesuffix(".__init__"))


_import_everything()

SAMPLES: dict[str, CanopyError] = {
    "UnknownExecution": UnknownExecution("e-42"),
    "DefinitionError": DefinitionError(
        [Problem("trees/a.yaml", 3, 5, "unknown behaviour"), Problem("trees/a.yaml", 9, 1, "x")]
    ),
    "ExpressionError": ExpressionError("unknown name 'batery'", "batery < 5", 1, 7),
    "InvalidEvent": InvalidEvent("not a status", field="payload.status", index=3),
    "ConcurrencyConflict": ConcurrencyConflict(
        tenant_id="t", stream="execution/e1", expected=4, actual=7, index=0
    ),
    "IdempotencyConflict": IdempotencyConflict(
        tenant_id="t", key="k", offset=9, differs=["type", "payload"], index=2
    ),
    "SequenceGap": SequenceGap(tenant_id="t", producer_id="pod:p1", expected=4, got=9),
    "ProjectionFailed": ProjectionFailed("stats", 12, ValueError("boom")),
    "ServerError": ServerError(422, "Unprocessable", "bad", type="x", field="f", index=1),
    "ModelError": ModelError(reason="timed out", retryable=True),
    "FixtureError": FixtureError(reason="fixtures.yaml: expected a mapping `responses`"),
    "MissingFixture": MissingFixture(
        fixtures="triage.fixtures.yaml", fingerprint="sha256:" + "0" * 64, prompt="Classify"
    ),
    "AgentFailure": AgentFailure("SchemaViolation", "'category' is required", status=None),
}


def sample(kind: type[CanopyError]) -> CanopyError:
    return SAMPLES.get(kind.code) or kind(f"something about {kind.code}")


def canopy_codes() -> dict[str, type[CanopyError]]:
    """The codes Canopy itself defines (a test may define errors of its own)."""
    return {
        code: kind for code, kind in error_codes().items() if kind.__module__.startswith("canopy.")
    }


def same(first: CanopyError, second: CanopyError) -> None:
    assert type(second) is type(first)
    assert str(second) == str(first)
    assert second.details() == first.details()


@pytest.mark.parametrize("code", sorted(canopy_codes()))
def test_the_wire_rebuilds_every_error_by_its_code(code: str) -> None:
    error = sample(canopy_codes()[code])
    encoded = orjson.loads(orjson.dumps(wire.encode_error(error)))
    assert encoded["error"] == code
    same(error, wire.decode_error(encoded))


@pytest.mark.parametrize("code", sorted(canopy_codes()))
def test_a_problem_document_rebuilds_every_error(code: str) -> None:
    """The HTTP client rebuilds what the server's problem document names."""
    error = sample(canopy_codes()[code])
    problem = problem_of(error)
    document = problem.to_json()
    if problem.status == 500:  # a server-side failure never shows its message
        assert "error" not in document
        return
    assert (document["error"], document["status"]) == (code, ERROR_STATUS[code])
    assert document["type"].startswith("https://canopy.dev/problems/")
    same(error, _error_of(problem.status, "", orjson.dumps(document)))


def test_the_status_table_names_every_code_and_nothing_else() -> None:
    assert set(ERROR_STATUS) == set(canopy_codes())


def test_a_new_error_travels_and_answers_without_edits() -> None:
    class SensorOffline(InvalidRequest):
        """Defined here only: neither the wire nor the HTTP table knows it by name."""

    error = SensorOffline("the lidar is offline")
    same(error, wire.decode_error(wire.encode_error(error)))
    assert status_of(error) == ERROR_STATUS["InvalidRequest"]


def test_anything_else_is_a_remote_failure_naming_it() -> None:
    encoded = wire.encode_error(KeyError("node"))
    decoded = wire.decode_error(encoded)
    assert (type(decoded), str(decoded)) == (wire.RemoteFailure, "KeyError: 'node'")
    unknown: dict[str, Any] = {"error": "NoSuchCode", "message": "from a newer pod"}
    assert isinstance(wire.decode_error(unknown), wire.RemoteFailure)


def test_codes_are_unique() -> None:
    with pytest.raises(TypeError, match="two errors share the code 'UnknownExecution'"):
        type("UnknownExecution", (CanopyError,), {"__qualname__": "Elsewhere.UnknownExecution"})
