"""Language-model agents in real executions against the offline model: rendered prompts, text
and JSON outputs, the tool loop and its bound, and failures kept to their node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from canopy.server.llm import ModelRequest, ToolSpec
from canopy.server.runtime.agent_capture import DIGEST_DIGITS, digest
from canopy.server.runtime.definition import DefinitionError
from canopy.server.runtime.engine import CaptureLevel
from canopy.server.runtime.inprocess import InProcessControl

from ..conftest import eventually
from ..llm.messages_server import MessagesServer, error, reply
from .agent_runs import run_tree, user, write_fixtures

MODEL = "claude-haiku-4-5"
TICKET = "My invoice is wrong"

TOOLS = """
def lookup_order(order):
    return {"order": order, "status": "shipped"}


def explode(order):
    raise KeyError(order)
"""

LOOKUP = ToolSpec(
    "lookup_order",
    "Find an order",
    {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
)


def triage(params: str, *, ticket: bool = True, fixtures: str = "") -> str:
    """A triage workflow whose ``classify`` agent has these extra params."""
    board = f'blackboard:\n  ticket: "{TICKET}"\n' if ticket else ""
    extra = f"\n        fixtures: {fixtures}" if fixtures else ""
    return f"""{board}
root:
  type: Sequence
  name: triage
  children:
    - type: llm
      name: classify
      params:
        model: {MODEL}
        prompt: "Classify: {{{{ ticket }}}}"
        inputs: [ticket]{extra}
{params}"""


def ask(text: str = f"Classify: {TICKET}", **fields: Any) -> ModelRequest:
    return ModelRequest(model=MODEL, messages=user(text), **fields)


async def test_a_prompt_is_rendered_and_the_answer_written_with_its_usage_and_cost(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    request = ask(system="You sort tickets for ACME.", max_tokens=50, temperature=0.0)
    write_fixtures(
        tmp_path / "triage.fixtures.yaml",
        [(request, {"text": "billing", "usage": {"input_tokens": 40, "output_tokens": 2}})],
    )
    params = (
        '        system: "You sort tickets for {{ company }}."\n'
        "        output: /ticket/category\n"
        "        max_tokens: 50\n"
        "        temperature: 0.0"
    )
    path = write("triage.yaml", triage(params).replace("[ticket]", "[ticket, company]"))
    run = await run_tree(sqlite_control, path, blackboard={"company": "ACME"})
    assert run.blackboard["/ticket/category"] == "billing"
    started = run.one("AgentCallStarted")
    assert started["fingerprint"] == request.fingerprint()
    assert started["model"] == MODEL
    assert started["system"] == "You sort tickets for ACME."
    assert started["prompt"] == f"Classify: {TICKET}"
    assert started["messages"] == [{"role": "user", "content": f"Classify: {TICKET}"}]
    assert started["inputs"] == {"ticket": TICKET, "company": "ACME"}
    completed = run.one("AgentCallCompleted")
    assert completed["text"] == "billing"
    assert completed["stop_reason"] == "end_turn"
    assert (completed["input_tokens"], completed["output_tokens"]) == (40, 2)
    assert completed["cost_usd"] == pytest.approx((40 * 1.0 + 2 * 5.0) / 1e6)
    assert completed["rounds"] == 1
    assert completed["tool_calls"] == []
    assert completed["outputs"] == {"/ticket/category": "billing"}


async def test_a_model_without_a_price_has_no_cost(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write_fixtures(
        tmp_path / "triage.fixtures.yaml",
        [(ask(), {"text": "billing", "model": "house-model-1"})],
    )
    run = await run_tree(sqlite_control, write("triage.yaml", triage("        output: category")))
    completed = run.one("AgentCallCompleted")
    assert completed["model"] == "house-model-1"
    assert completed["cost_usd"] is None


async def test_the_project_file_prices_a_model_the_defaults_lack(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("canopy.toml", '[prices."house-model"]\ninput = 2.5\noutput = 10\n')
    write_fixtures(
        tmp_path / "triage.fixtures.yaml",
        [(ask(), {"text": "billing", "model": "house-model-1", "usage": {"input_tokens": 40}})],
    )
    run = await run_tree(sqlite_control, write("triage.yaml", triage("        output: category")))
    assert run.one("AgentCallCompleted")["cost_usd"] == pytest.approx(40 * 2.5 / 1e6)

    write("canopy.toml", '[prices."house-model"]\ninput = -1\noutput = 10\n')
    with pytest.raises(DefinitionError, match=r"canopy.toml:1:1: \[prices\]: price of 'house"):
        await run_tree(sqlite_control, tmp_path / "triage.yaml")


SCHEMA_PARAMS = """        schema:
          type: object
          required: [label, score]
          properties:
            label: {type: string, enum: [billing, shipping]}
            score: {type: number}
        outputs: [label, /ticket/score]"""


async def test_a_json_answer_is_checked_and_its_properties_written(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write_fixtures(
        tmp_path / "triage.fixtures.yaml", [(ask(), {"text": '{"label": "billing", "score": 0.9}'})]
    )
    run = await run_tree(sqlite_control, write("triage.yaml", triage(SCHEMA_PARAMS)))
    assert run.blackboard["/label"] == "billing"
    assert run.blackboard["/ticket/score"] == 0.9
    assert run.one("AgentCallCompleted")["outputs"] == {"/label": "billing", "/ticket/score": 0.9}


@pytest.mark.parametrize(
    ("answer", "error_type", "message"),
    [
        (
            '{"label": "returns", "score": 0.9}',
            "SchemaViolation",
            "property 'label' violates the schema: 'returns' is not one of ['billing', 'shipping']",
        ),
        (
            '{"label": "billing"}',
            "SchemaViolation",
            "the response violates the schema: 'score' is a required property",
        ),
        (
            "billing, I think",
            "InvalidResponse",
            "the response is not JSON: unexpected character, expected a JSON value: "
            "line 1 column 1 (char 0)",
        ),
    ],
)
async def test_an_answer_that_breaks_the_schema_fails_the_node_saying_why(
    sqlite_control: InProcessControl,
    write: Callable[[str, str], Path],
    tmp_path: Path,
    answer: str,
    error_type: str,
    message: str,
) -> None:
    write_fixtures(tmp_path / "triage.fixtures.yaml", [(ask(), {"text": answer})])
    run = await run_tree(sqlite_control, write("triage.yaml", triage(SCHEMA_PARAMS)))
    failed = run.one("AgentCallFailed")
    assert failed["error_type"] == error_type
    assert failed["message"] == f"node 'triage/classify': {message}"
    assert "/label" not in run.blackboard
    assert run.info.end_reason == "completed"  # the tree failed; the execution is healthy


def line_of(path: Path, text: str) -> int:
    """The first line of ``path`` that holds ``text``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def tool_params(function: str = "lookup_order", rounds: int = 5) -> str:
    return f"""        output: answer
        max_tool_rounds: {rounds}
        tools:
          - function: "tools:{function}"
            name: lookup_order
            description: Find an order
            input_schema:
              type: object
              properties: {{order: {{type: string}}}}
              required: [order]"""


def tool_turns(rounds: int) -> list[tuple[ModelRequest, dict[str, Any]]]:
    """Answers for a conversation in which the model asks for ``lookup_order`` ``rounds``
    times, then answers."""
    messages: list[dict[str, Any]] = list(user(f"Classify: {TICKET}"))
    turns = []
    for index in range(1, rounds + 1):
        request = ModelRequest(model=MODEL, messages=tuple(messages), tools=(LOOKUP,))
        call = {"id": f"call_{index}", "name": "lookup_order", "input": {"order": f"A-{index}"}}
        turns.append(
            (request, {"text": "Let me look.", "tool_calls": [call], "usage": {"input_tokens": 10}})
        )
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", **call},
                ],
            }
        )
        result = f'{{"order":"A-{index}","status":"shipped"}}'
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"call_{index}", "content": result}
                ],
            }
        )
    final = ModelRequest(model=MODEL, messages=tuple(messages), tools=(LOOKUP,))
    turns.append((final, {"text": "shipping", "usage": {"input_tokens": 30, "output_tokens": 1}}))
    return turns


async def test_the_model_calls_a_python_tool_and_gets_its_result(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("tools.py", TOOLS)
    write_fixtures(tmp_path / "triage.fixtures.yaml", tool_turns(1))
    run = await run_tree(sqlite_control, write("triage.yaml", triage(tool_params())))
    assert run.blackboard["/answer"] == "shipping"
    tool = run.one("AgentToolCalled")
    assert tool["tool"] == "lookup_order"
    assert tool["round"] == 1
    assert tool["tool_use_id"] == "call_1"
    assert tool["input"] == {"order": "A-1"}
    assert tool["output"] == {"order": "A-1", "status": "shipped"}
    assert tool["effects"] is False
    completed = run.one("AgentCallCompleted")
    assert completed["rounds"] == 2
    assert completed["input_tokens"] == 40
    assert completed["tool_calls"] == [
        {"id": "call_1", "name": "lookup_order", "input": {"order": "A-1"}}
    ]
    assert run.types() == ["AgentCallStarted", "AgentToolCalled", "AgentCallCompleted"]


async def test_the_tool_loop_is_bounded(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("tools.py", TOOLS)
    write_fixtures(tmp_path / "triage.fixtures.yaml", tool_turns(3))
    run = await run_tree(sqlite_control, write("triage.yaml", triage(tool_params(rounds=2))))
    assert len(run.of("AgentToolCalled")) == 2
    failed = run.one("AgentCallFailed")
    assert failed["error_type"] == "ToolRoundsExceeded"
    assert failed["message"] == (
        "node 'triage/classify': the model still asked for tools after 2 rounds (max_tool_rounds)"
    )


async def test_a_tool_that_raises_fails_the_call(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    tools = write("tools.py", TOOLS)
    write_fixtures(tmp_path / "triage.fixtures.yaml", tool_turns(1))
    notes = sqlite_control.notifications()
    tree = write("triage.yaml", triage(tool_params("explode")))
    run = await run_tree(sqlite_control, tree)
    tool = run.one("AgentToolCalled")
    assert tool["error"] == "KeyError: 'A-1'"
    assert "output" not in tool
    failed = run.one("AgentCallFailed")
    assert failed["error_type"] == "builtins.KeyError"
    assert failed["message"] == "node 'triage/classify': tool 'lookup_order' raised KeyError: 'A-1'"
    # Told as it happened, down to the line of the user's tool that raised.
    told = []
    async for note in notes:
        if note.kind == "ended":
            break
        if note.kind == "output" and note.category == "stderr":
            told.append(note.text)
    assert told == [
        f"agent classify failed (tick {failed['tick']}):"
        " tool 'lookup_order' raised KeyError: 'A-1'\n"
        f"  node triage/classify at {tree}:{line_of(tree, 'name: classify') - 1}\n"
        f"  raised in explode at {tools}:{line_of(tools, 'raise KeyError')}:"
        " raise KeyError(order)\n"
    ]


async def test_a_template_naming_a_missing_key_fails_the_node(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write_fixtures(tmp_path / "triage.fixtures.yaml", [])
    path = write("triage.yaml", triage("        output: category", ticket=False))
    run = await run_tree(sqlite_control, path)
    assert run.types() == ["AgentCallFailed"]  # no call was made
    failed = run.one("AgentCallFailed")
    assert failed["error_type"] == "TemplateError"
    assert failed["message"] == "node 'triage/classify': prompt template: 'ticket' is undefined"


async def test_a_request_without_a_fixture_names_the_fingerprint_to_add(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    fixtures = write_fixtures(tmp_path / "triage.fixtures.yaml", [])
    run = await run_tree(sqlite_control, write("triage.yaml", triage("        output: category")))
    failed = run.one("AgentCallFailed")
    assert failed["error_type"] == "MissingFixture"
    assert failed["message"] == (
        f"node 'triage/classify': the offline model has no response for this request in "
        f"{fixtures}: add responses['{ask().fingerprint()}'] (prompt: 'Classify: {TICKET}')"
    )


async def test_a_missing_fixture_file_is_the_nodes_failure(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    path = write("triage.yaml", triage("        output: category"))
    run = await run_tree(sqlite_control, path)
    failed = run.one("AgentCallFailed")
    assert failed["error_type"] == "FixtureError"
    assert str(tmp_path / "triage.fixtures.yaml") in failed["message"]
    assert run.info.end_reason == "completed"


async def test_an_agent_may_name_its_own_fixture_file(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    (tmp_path / "answers").mkdir()
    write_fixtures(tmp_path / "answers" / "shared.yaml", [(ask(), {"text": "billing"})])
    path = write("triage.yaml", triage("        output: category", fixtures="answers/shared.yaml"))
    assert (await run_tree(sqlite_control, path)).blackboard["/category"] == "billing"


async def test_silent_capture_keeps_digests_not_content(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("tools.py", TOOLS)
    answer = "shipping"
    write_fixtures(tmp_path / "triage.fixtures.yaml", tool_turns(1))
    path = write("triage.yaml", triage(tool_params()))
    verbose = await run_tree(sqlite_control, path)
    silent = await run_tree(sqlite_control, path, capture=CaptureLevel.SILENT)
    assert silent.blackboard["/answer"] == answer  # the workflow ran the same
    agent_events = [event for event in silent.events if event.type.startswith("Agent")]
    for secret in (TICKET, "A-1", "shipped", answer):
        for event in agent_events:
            assert secret not in str(event.payload), f"{secret!r} in {event.type}"
    started = silent.one("AgentCallStarted")
    assert not {"prompt", "messages", "inputs", "fingerprint"} & set(started)
    told = verbose.one("AgentCallStarted")
    content = {name: told[name] for name in ("prompt", "messages", "inputs", "fingerprint")}
    assert started["digest"] == digest(content)  # one short digest of what was left out
    completed = silent.one("AgentCallCompleted")
    assert not {"text", "tool_calls", "outputs", "fingerprint"} & set(completed)
    assert len(completed["digest"]) == DIGEST_DIGITS
    assert (completed["input_tokens"], completed["output_tokens"]) == (40, 1)
    assert completed["cost_usd"] == verbose.one("AgentCallCompleted")["cost_usd"]
    tool = silent.one("AgentToolCalled")
    assert not {"input", "output"} & set(tool)
    ran = verbose.one("AgentToolCalled")
    assert tool["digest"] == digest({"input": ran["input"], "output": ran["output"]})
    again = await run_tree(sqlite_control, path, capture=CaptureLevel.SILENT)
    for kind in ("AgentCallStarted", "AgentCallCompleted", "AgentToolCalled"):
        assert again.one(kind)["digest"] == silent.one(kind)["digest"]  # equal runs, equal digests


async def test_silent_capture_does_not_quote_the_prompt_of_a_missing_fixture(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    fixtures = write_fixtures(tmp_path / "triage.fixtures.yaml", [])
    path = write("triage.yaml", triage("        output: category"))
    run = await run_tree(sqlite_control, path, capture=CaptureLevel.SILENT)
    assert run.one("AgentCallFailed")["message"] == (
        f"node 'triage/classify': the offline model has no response in {fixtures} "
        f"for {ask().fingerprint()}"
    )


async def test_a_rate_limited_call_is_retried_after_the_wait_the_model_asks_for(
    sqlite_control: InProcessControl,
    write: Callable[[str, str], Path],
    anthropic_messages: MessagesServer,
) -> None:
    limited = error(429, "rate_limit_error", "slow down", headers={"retry-after": "0"})
    anthropic_messages.script(ask(), limited, reply("billing"))
    run = await run_tree(sqlite_control, write("triage.yaml", triage("        output: category")))
    assert run.blackboard["/category"] == "billing"
    (retried,) = run.of("AgentRetried")
    assert (retried["attempt"], retried["status"]) == (1, 429)
    assert "slow down" in retried["reason"]
    assert run.one("AgentCallCompleted")["retries"] == 1
    assert anthropic_messages.calls == 2


async def test_a_request_the_model_refuses_is_not_retried_and_fails_its_node(
    sqlite_control: InProcessControl,
    write: Callable[[str, str], Path],
    anthropic_messages: MessagesServer,
) -> None:
    anthropic_messages.script(ask(), error(400, "invalid_request_error", "max_tokens too large"))
    run = await run_tree(sqlite_control, write("triage.yaml", triage("        output: category")))
    failed = run.one("AgentCallFailed")
    assert (failed["error_type"], failed["status"], failed["retries"]) == ("ModelError", 400, 0)
    assert "max_tokens too large" in failed["message"]
    assert not run.of("AgentRetried")
    assert anthropic_messages.calls == 1


async def test_an_ended_execution_closes_its_models_connections(
    sqlite_control: InProcessControl,
    write: Callable[[str, str], Path],
    anthropic_messages: MessagesServer,
) -> None:
    anthropic_messages.script(ask(), reply("billing"))
    run = await run_tree(sqlite_control, write("triage.yaml", triage("        output: category")))
    assert run.blackboard["/category"] == "billing"
    await eventually(
        lambda: anthropic_messages.open_connections() == 0, "the model's connection closed"
    )
