"""Tracing as an operator sees it: real processes exporting over OTLP/HTTP to a local collector
that decodes what it receives with the protocol's own protobuf classes."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web, web_app
from opentelemetry import trace

from canopy.bridge import open_store
from canopy.bridge.client import Discovery, read_discovery
from canopy.server.pods.local import pod_environment
from canopy.server.runtime.control import LaunchSpec
from canopy.server.telemetry import (
    SERVER_SERVICE,
    instrument_http_server,
    start_tracing,
    tracing_enabled,
    workflow_span,
)

from .conftest import WAIT, bearer
from .otlp import ReceivedSpan, Receiver, otlp_receiver
from .pods.remote import pod_server, remote_control
from .test_cli import CANOPY, canopy, environment, read_line, stop
from .traced_calls import ANSWERED, FOLLOW_UP, SLOW

REPOSITORY = Path(__file__).resolve().parents[2]
CALLER_TRACE, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
CALLER = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
"""The W3C ``traceparent`` of a client that traces too."""
SCHEDULE_NEVER = "3600000"
"""OTEL_BSP_SCHEDULE_DELAY (ms) long enough that spans leave only when the provider shuts
down: what the collector receives was flushed on the way out."""


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with otlp_receiver() as started:
        yield started


def traced(receiver: Receiver, **extra: str) -> dict[str, str]:
    """An environment exporting to ``receiver``, with no OTEL_* setting of the developer's."""
    env = {k: v for k, v in environment().items() if not k.startswith("OTEL_")}
    return env | {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url} | extra


# -- the server's own spans -----------------------------------------------------------------


@asynccontextmanager
async def serving(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[Discovery]:
    """``canopy serve`` with ``env``, up and advertised; stopped by SIGTERM after the block,
    which it must survive with exit code 0."""
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(CANOPY),
            *("serve", "--port", "0", "--data-dir", str(tmp_path / ".canopy")),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        while "Press Ctrl-C" not in await read_line(process):
            pass
        discovery = read_discovery(tmp_path / ".canopy")
        assert discovery is not None, log.read_text()
        yield discovery
    finally:
        assert await stop(process) == 0, log.read_text()


async def read_events(discovery: Discovery, headers: dict[str, str] | None = None) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{discovery.url}/api/v1/events",
            params={"topic": "debugging.execution"},
            headers=bearer(discovery.token) | (headers or {}),
        ) as response,
    ):
        assert response.status == 200, await response.text()


async def test_a_request_is_one_trace_from_the_http_span_down_to_its_sql(
    tmp_path: Path, receiver: Receiver, store_url: str
) -> None:
    env = traced(receiver, OTEL_BSP_SCHEDULE_DELAY=SCHEDULE_NEVER, CANOPY_DATABASE_URL=store_url)
    async with serving(tmp_path, env) as discovery:
        await read_events(discovery, {"traceparent": CALLER})
        assert receiver.spans == []  # nothing leaves before shutdown

    def request_and_queries(spans: list[ReceivedSpan]) -> bool:
        return any(_is_read(span) for span in spans)

    spans = await receiver.wait_for(request_and_queries, "the read's server span")
    [request] = [span for span in spans if _is_read(span)]
    assert request.service == SERVER_SERVICE
    assert (request.trace_id, request.parent_id) == (CALLER_TRACE, CALLER_SPAN)  # continued
    assert (request.name, request.attributes["http.status_code"]) == ("GET /api/v1/events", 200)
    queries = [
        span
        for span in spans
        if span.trace_id == request.trace_id and span.parent_id == request.span_id
    ]
    statements = [span.attributes.get("db.statement", "") for span in queries]
    assert all(span.kind == "SPAN_KIND_CLIENT" for span in queries), queries
    assert any("FROM canopy_runs" in statement for statement in statements), statements
    database = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    assert all(span.attributes["db.system"] == database for span in queries)


def _is_read(span: ReceivedSpan) -> bool:
    return span.kind == "SPAN_KIND_SERVER" and span.attributes.get("http.route") == (
        "/api/v1/events"
    )


async def test_a_collector_that_is_down_costs_the_server_no_request_nor_its_shutdown(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nobody listens there once the probe is closed
    env = traced(Receiver(), OTEL_EXPORTER_OTLP_TIMEOUT="1", OTEL_BSP_SCHEDULE_DELAY="10")
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{closed}"
    async with serving(tmp_path, env) as discovery:
        for _ in range(3):
            await read_events(discovery)


async def test_serve_refuses_an_otlp_protocol_it_does_not_speak(
    tmp_path: Path, receiver: Receiver
) -> None:
    done = await canopy(
        "serve",
        "--port",
        "0",
        cwd=tmp_path,
        env=traced(receiver, OTEL_EXPORTER_OTLP_PROTOCOL="grpc"),
    )
    assert done.returncode == 1
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='grpc': Canopy exports traces over http/protobuf" in (
        done.stderr
    )
    assert not (tmp_path / ".canopy" / "server.json").exists()


# -- model calls ----------------------------------------------------------------------------


def fixtures(tmp_path: Path) -> Path:
    """Offline answers: for ANSWERED, for FOLLOW_UP, and one that takes an hour for SLOW."""
    path = tmp_path / "fixtures.yaml"
    responses = {
        ANSWERED.fingerprint(): {
            "text": "billing",
            "usage": {"input_tokens": 42, "output_tokens": 3},
            "model": "claude-sonnet-4-5-20250929",
        },
        FOLLOW_UP.fingerprint(): {"text": "Refunded already."},
        SLOW.fingerprint(): {"text": "eventually", "latency_ms": 3_600_000},
    }
    path.write_text(yaml.safe_dump({"responses": responses}), encoding="utf-8")
    return path


async def run_scenario(
    scenario: str, tmp_path: Path, receiver: Receiver, **extra: str
) -> list[ReceivedSpan]:
    """Run ``traced_calls SCENARIO`` to its end; the spans it exported."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.server.traced_calls",
        scenario,
        str(fixtures(tmp_path)),
        cwd=REPOSITORY,
        env=traced(receiver, OTEL_BSP_SCHEDULE_DELAY=SCHEDULE_NEVER, **extra),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 2 * WAIT)
    assert process.returncode == 0, (out + err).decode()
    return list(receiver.spans)  # the provider's shutdown exported them before it exited


async def test_a_model_call_is_a_chat_span_with_the_genai_attributes(
    tmp_path: Path, receiver: Receiver
) -> None:
    spans = await run_scenario(
        "calls",
        tmp_path,
        receiver,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",  # for other signals: the traces' own one applies
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",
    )
    answered, missing = [span for span in spans if span.name == "chat claude-sonnet-4-5"]
    assert (answered.kind, answered.status, answered.service) == (
        "SPAN_KIND_CLIENT",
        "STATUS_CODE_UNSET",
        "canopy-pod",
    )
    assert answered.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "offline",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.0,
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.response.finish_reasons": ["end_turn"],
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 3,
        "canopy.cost_usd": pytest.approx((42 * 3.0 + 3 * 15.0) / 1e6),
    }
    assert (missing.status, missing.status_message) == ("STATUS_CODE_ERROR", "MissingFixture")
    assert missing.attributes["error.type"] == "MissingFixture"
    assert "gen_ai.response.model" not in missing.attributes
    [cancelled] = receiver.named("chat claude-haiku-4-5")
    assert (cancelled.status, cancelled.status_message) == ("STATUS_CODE_ERROR", "cancelled")
    assert cancelled.attributes["error.type"] == "CancelledError"


async def test_what_was_said_goes_on_spans_only_when_asked(
    tmp_path: Path, receiver: Receiver
) -> None:
    said = {
        "gen_ai.system_instructions",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
    quiet = await run_scenario("nested", tmp_path, receiver)
    assert not any(said & set(span.attributes) for span in quiet)

    receiver.spans.clear()
    loud = await run_scenario(
        "nested",
        tmp_path,
        receiver,
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true",
        OTEL_EXPORTER_OTLP_ENDPOINT="",  # the traces endpoint alone, as a full URL
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.url}/v1/traces",
    )
    [chat] = [span for span in loud if span.name == "chat claude-sonnet-4-5"]
    assert json.loads(chat.attributes["gen_ai.input.messages"]) == [
        {
            "role": "user",
            "parts": [{"type": "text", "content": "Classify: my card was charged twice"}],
        }
    ]
    assert json.loads(chat.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Answer with one word."}
    ]
    assert json.loads(chat.attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "billing"}],
            "finish_reason": "end_turn",
        }
    ]
    [follow_up] = [span for span in loud if span.name == "chat claude-haiku-4-5"]
    assert json.loads(follow_up.attributes["gen_ai.input.messages"])[1:] == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_1",
                    "name": "lookup_order",
                    "arguments": {"order": 17},
                }
            ],
        },
        {
            "role": "user",
            "parts": [{"type": "tool_call_response", "id": "call_1", "response": "refunded"}],
        },
    ]
    [tool] = [span for span in loud if span.name == "execute_tool lookup_order"]
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"order": "A-17"}
    assert json.loads(tool.attributes["gen_ai.tool.call.result"]) == {"status": "refunded"}


async def test_a_workflows_spans_nest_in_one_trace(tmp_path: Path, receiver: Receiver) -> None:
    exported = await run_scenario("nested", tmp_path, receiver, OTEL_SERVICE_NAME="triage-lab")
    spans = {span.name: span for span in exported}
    workflow = spans["invoke_workflow support-triage"]
    agent = spans["invoke_agent classifier"]
    chat = spans["chat claude-sonnet-4-5"]
    tool = spans["execute_tool lookup_order"]
    assert len({span.trace_id for span in (workflow, agent, chat, tool)}) == 1
    assert {span.service for span in exported} == {"triage-lab"}
    assert workflow.parent_id == ""
    assert agent.parent_id == workflow.span_id
    assert chat.parent_id == agent.span_id
    assert spans["chat claude-haiku-4-5"].parent_id == agent.span_id
    assert tool.parent_id == agent.span_id  # the agent runs the tool once the model asked
    assert workflow.attributes == {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "support-triage",
    }
    assert agent.attributes == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "classifier",
        "gen_ai.agent.id": "node-3",
        "gen_ai.provider.name": "offline",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 3,
    }
    assert tool.attributes == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup_order",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": "call_1",
    }
    assert all(span.kind == "SPAN_KIND_INTERNAL" for span in (workflow, agent, tool))


async def test_an_executions_agents_trace_their_calls_and_tools(
    tmp_path: Path, receiver: Receiver
) -> None:
    exported = await run_scenario("workflow", tmp_path, receiver)
    spans = {span.name: span for span in exported}
    workflow = spans["invoke_workflow triage"]
    agent = spans["invoke_agent classify"]
    chats = [span for span in exported if span.name == "chat claude-sonnet-4-5"]
    tool = spans["execute_tool lookup_order"]
    assert len({span.trace_id for span in (workflow, agent, tool, *chats)}) == 1
    assert workflow.parent_id == ""
    assert agent.parent_id == workflow.span_id
    assert [chat.parent_id for chat in chats] == [agent.span_id, agent.span_id]
    assert tool.parent_id == agent.span_id
    assert agent.attributes["gen_ai.agent.id"] == "triage/classify"
    assert agent.attributes["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert agent.status == "STATUS_CODE_UNSET"
    assert chats[1].attributes["gen_ai.usage.input_tokens"] == 42


# -- off --------------------------------------------------------------------------------------


def test_without_an_endpoint_nothing_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert start_tracing(SERVER_SERVICE) is None
    assert not tracing_enabled()
    instrument_http_server()
    assert web.Application is web_app.Application  # not the instrumented subclass
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
    with workflow_span("support-triage") as span:
        assert not span.is_recording()


# -- pods -------------------------------------------------------------------------------------


def test_pods_get_the_servers_tracing_settings_but_not_its_collector_credentials(
    tmp_path: Path,
) -> None:
    server = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=lab",
        "OTEL_BSP_MAX_QUEUE_SIZE": "4096",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer collector-secret",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-api-key=collector-secret",
        "OTEL_SERVICE_NAME": "canopy-lab-server",
        "CANOPY_TOKEN": "admin-token",
    }
    env = pod_environment(server, tmp_path / "pod", REPOSITORY)
    assert {name for name in env if name.startswith("OTEL_")} == {
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_BSP_MAX_QUEUE_SIZE",
    }
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    passed = pod_environment(
        server, tmp_path / "pod", REPOSITORY, passed=("OTEL_EXPORTER_OTLP_HEADERS",)
    )
    assert passed["OTEL_EXPORTER_OTLP_HEADERS"] == server["OTEL_EXPORTER_OTLP_HEADERS"]


async def test_a_pods_spans_reach_the_collector_when_its_worker_exits(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server (this process) does not trace; its pod, given OTEL_* by the server's
    environment, does, and exports when it is stopped with the server."""
    for name, value in traced(receiver, OTEL_BSP_SCHEDULE_DELAY=SCHEDULE_NEVER).items():
        if name.startswith("OTEL_"):
            monkeypatch.setenv(name, value)
    data = tmp_path / ".canopy"
    async with (
        open_store(f"sqlite:///{data / 'events.db'}") as store,
        pod_server(store, data) as running,
    ):
        async with remote_control(running) as control:
            info = await control.launch(LaunchSpec("tests.server.pods.traced:lookup"))
            await control.tick(info.id, 1)
            await control.settle(info.id)
        assert receiver.spans == []  # still queued in the running pod
    spans = await receiver.wait_for(
        lambda spans: any(span.name == "execute_tool lookup_order" for span in spans),
        "the pod's tool span",
    )
    [tool] = [span for span in spans if span.name == "execute_tool lookup_order"]
    assert (tool.service, tool.attributes["gen_ai.tool.call.id"]) == ("canopy-pod", "call_7")
