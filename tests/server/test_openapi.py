"""The OpenAPI document: committed, current, complete, served without a token, and true to
what a real server answers (real pod worker processes included)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from canopy.bridge import EventStore
from canopy.server.api.openapi import REGENERATE, build_document
from canopy.server.app import create_app
from canopy.server.config import Settings

from .conftest import Running, bearer, serving
from .pods.remote import pod_server

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"
DOCUMENT_URI = "urn:canopy:openapi"
PATROL = "tests.server.runtime.factories:patrol"
VERBS = frozenset({"get", "put", "post", "delete", "patch"})


def committed() -> dict[str, Any]:
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (verb.upper(), path)
        for path, item in document["paths"].items()
        for verb in item
        if verb in VERBS
    }


def validator(document: dict[str, Any], *pointer: str) -> Draft202012Validator:
    """A validator for the schema at ``pointer`` inside ``document``, whose ``#/components``
    references resolve against the document itself."""
    escaped = "/".join(part.replace("~", "~0").replace("/", "~1") for part in pointer)
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, Resource(contents=document, specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"{DOCUMENT_URI}#/{escaped}"}, registry=registry)


def response_schema(
    document: dict[str, Any], verb: str, path: str, status: str
) -> Draft202012Validator:
    """The schema of one documented answer (a problem for the shared error responses)."""
    response = document["paths"][path][verb.lower()]["responses"][status]
    if "$ref" in response:
        shared = ("components", "responses", response["$ref"].rsplit("/", 1)[1])
        return validator(document, *shared, "content", "application/problem+json", "schema")
    own = ("paths", path, verb.lower(), "responses", status)
    return validator(document, *own, "content", "application/json", "schema")


def test_the_committed_document_is_current() -> None:
    assert committed() == build_document(), (
        f"schemas/openapi.json is out of date with the code; regenerate it: {REGENERATE}"
    )


def test_every_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    app = create_app(Settings(port=0, data_dir=tmp_path / ".canopy"))
    registered = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None  # HEAD comes with every GET
    }
    documented = operations(committed())
    assert registered - documented == set(), "routes missing from the document"
    assert documented - registered == set(), "documented routes the server does not have"


def test_every_schema_is_valid_json_schema() -> None:
    document = committed()
    assert document["openapi"].startswith("3.1")
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, item in document["paths"].items():
        for verb, operation in item.items():
            assert operation["responses"], f"{verb} {path} documents no response"
            for parameter in operation.get("parameters", []):
                Draft202012Validator.check_schema(parameter["schema"])


def test_problem_responses_and_security_are_declared() -> None:
    document = committed()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    public = {
        path
        for path, item in document["paths"].items()
        if any(operation.get("security") == [] for operation in item.values())
    }
    assert public == {"/healthz", "/metrics", "/api/v1/openapi.json"}
    launch = document["paths"]["/api/v1/executions"]["post"]["responses"]
    assert {"400", "401", "404", "409", "413", "422", "429", "503"} <= set(launch)
    limited = document["components"]["responses"]["TooManyRequests"]
    assert "Retry-After" in limited["headers"]
    assert "application/problem+json" in limited["content"]


async def test_the_document_is_served_without_a_token(
    settings: Settings, http: aiohttp.ClientSession
) -> None:
    async with serving(settings) as running:
        async with http.get(f"{running.url}/api/v1/openapi.json") as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            assert await response.json() == committed()
        async with http.get(f"{running.url}/api/v1/events") as response:
            assert response.status == 401  # the rest of /api/ still needs one


@pytest.fixture
async def running(store: EventStore, tmp_path: Path) -> AsyncIterator[Running]:
    async with pod_server(store, tmp_path / ".canopy") as server:
        yield server


async def test_answers_match_the_document(running: Running, http: aiohttp.ClientSession) -> None:
    document = committed()
    token = await running.issue("ann", "acme")
    api = f"{running.url}/api/v1"

    async def call(verb: str, path: str, status: int, **options: Any) -> Any:
        url = api + path.removeprefix("/api/v1").format(execution_id=execution_id)
        async with http.request(verb, url, headers=bearer(token), **options) as response:
            body = await response.json(content_type=None)
            assert response.status == status, body
        schema = response_schema(document, verb, path, str(status))
        errors = [error.message for error in schema.iter_errors(body)]
        assert errors == [], f"{verb} {path}: {errors}"
        return body

    execution_id = ""
    info = await call("POST", "/api/v1/executions", 200, json={"spec": {"program": PATROL}})
    execution_id = info["id"]
    execution = "/api/v1/executions/{execution_id}"
    await call("POST", execution + "/tick", 200, json={"count": 2})
    await call("POST", execution + "/settle", 200)
    await call("GET", execution + "/view", 200)
    await call("GET", execution + "/statistics", 200)
    await call("GET", execution + "/history/state", 200, params={"tick": 1})
    await call("GET", execution + "/picture", 200, params={"format": "json"})
    await call("GET", "/api/v1/executions", 200)
    await call("GET", "/api/v1/pods/me", 200)
    await call("POST", execution + "/tick", 400, json={"count": "two"})
    await call("DELETE", execution, 200)
    execution_id = "nobody"
    await call("GET", execution, 404)
