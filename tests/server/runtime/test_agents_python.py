"""Python agents in real executions: a user's function (sync in a worker thread, async on the
loop) called with blackboard inputs, its result written to output keys, and its failures —
including ``sys.exit()`` — kept to its node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from canopy.server.llm import ModelRequest, ToolSpec
from canopy.server.runtime.inprocess import InProcessControl

from .agent_runs import run_tree, user, write_fixtures

STEPS = """
import asyncio
import sys


def total(prices, tax):
    return round(sum(prices) * (1 + tax), 2)


async def split(text):
    await asyncio.sleep(0)
    words = text.split()
    return {"first": words[0], "count": len(words)}


def broken(text):
    raise ValueError(f"cannot read {text!r}")


def leave(text):
    sys.exit(3)


async def leave_async(text):
    sys.exit(4)


def wrong_shape(text):
    return {"first": text, "extra": 1}
"""


def tree(*agents: str, fallback: bool = False) -> str:
    """A Sequence of agents (each a YAML node), optionally under a Selector whose second
    branch succeeds, so that a failing agent does not end the run as a failure."""
    children = "".join(agents)
    body = f"""
root:
  type: Sequence
  name: flow
  children:{children}
"""
    if not fallback:
        return "blackboard:\n  prices: [10, 20]\n  tax: 0.1\n  text: hello agent world\n" + body
    return (
        """
blackboard:
  text: hello agent world
root:
  type: Selector
  name: guard
  params: {memory: false}
  children:
    - type: Sequence
      name: flow
      children:"""
        + children.replace("\n    ", "\n        ")
        + """
    - type: Success
      name: fallback
"""
    )


def agent(name: str, function: str, inputs: str, outputs: str = "[]") -> str:
    return f"""
    - type: python
      name: {name}
      params:
        function: "steps:{function}"
        inputs: {inputs}
        outputs: {outputs}"""


async def test_a_sync_function_gets_its_inputs_and_its_result_is_written(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path]
) -> None:
    write("steps.py", STEPS)
    path = write("flow.yaml", tree(agent("price", "total", "[prices, tax]", "[/order/total]")))
    run = await run_tree(sqlite_control, path)
    assert run.info.end_reason == "completed"
    assert run.blackboard["/order/total"] == 33.0
    started = run.one("AgentCallStarted")
    assert started["node_id"] == "flow/price"
    assert started["agent"] == "python"
    assert started["function"] == "steps:total"
    assert started["inputs"] == {"prices": [10, 20], "tax": 0.1}
    assert started["fingerprint"].startswith("sha256:")
    completed = run.one("AgentCallCompleted")
    assert completed["call_id"] == started["call_id"]
    assert completed["outputs"] == {"/order/total": 33.0}
    assert completed["retries"] == 0
    write_event = next(p for p in run.of("BlackboardChanged") if p["key"] == "/order/total")
    assert write_event["writer"] == "flow/price"  # written by the agent, from the tick thread
    assert run.types() == ["AgentCallStarted", "AgentCallCompleted"]


async def test_an_async_function_returns_a_mapping_for_several_outputs(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path]
) -> None:
    write("steps.py", STEPS)
    path = write("flow.yaml", tree(agent("words", "split", "[text]", "[first, /stats/count]")))
    run = await run_tree(sqlite_control, path)
    assert run.blackboard["/first"] == "hello"
    assert run.blackboard["/stats/count"] == 3
    assert run.one("AgentCallCompleted")["outputs"] == {"/first": "hello", "/stats/count": 3}


async def test_the_same_inputs_give_the_same_fingerprint_and_others_another(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path]
) -> None:
    write("steps.py", STEPS)
    path = write("flow.yaml", tree(agent("words", "split", "[text]", "[first, count]")))
    first = await run_tree(sqlite_control, path)
    again = await run_tree(sqlite_control, path)
    other = await run_tree(sqlite_control, path, blackboard={"text": "goodbye"})
    fingerprints = [r.one("AgentCallStarted")["fingerprint"] for r in (first, again, other)]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]


async def test_a_function_that_raises_fails_its_node_and_the_tree_goes_on(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path]
) -> None:
    write("steps.py", STEPS)
    path = write("flow.yaml", tree(agent("read", "broken", "[text]"), fallback=True))
    run = await run_tree(sqlite_control, path)
    assert run.info.end_reason == "completed"  # the fallback branch succeeded
    failed = run.one("AgentCallFailed")
    assert failed["node_id"] == "guard/flow/read"
    assert failed["error_type"] == "builtins.ValueError"
    assert failed["message"] == (
        "node 'guard/flow/read': ValueError: cannot read 'hello agent world'"
    )
    assert not run.of("BehaviourRaised")  # the agent's failure, not a behaviour's exception
    statuses = [(p["node_id"], p["status"]) for p in run.of("NodeStatusChanged")]
    assert ("guard/flow/read", "FAILURE") in statuses
    assert ("guard/fallback", "SUCCESS") in statuses


async def test_sys_exit_in_a_function_is_the_nodes_failure_not_the_processes(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path]
) -> None:
    write("steps.py", STEPS)
    for function, code in (("leave", 3), ("leave_async", 4)):
        path = write(f"{function}.yaml", tree(agent("quit", function, "[text]"), fallback=True))
        run = await run_tree(sqlite_control, path)
        failed = run.one("AgentCallFailed")
        assert failed["error_type"] == "builtins.SystemExit"
        assert failed["message"] == f"node 'guard/flow/quit': SystemExit: {code}"
        assert run.info.end_reason == "completed"
    # The loop that ran them still runs the next execution's calls.
    path = write("after.yaml", tree(agent("price", "total", "[prices, tax]", "[sum]")))
    assert (await run_tree(sqlite_control, path)).blackboard["/sum"] == 33.0


async def test_a_result_that_does_not_match_the_outputs_is_refused(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path]
) -> None:
    write("steps.py", STEPS)
    path = write("flow.yaml", tree(agent("shape", "wrong_shape", "[text]", "[first, count]")))
    run = await run_tree(sqlite_control, path)
    failed = run.one("AgentCallFailed")
    assert failed["error_type"] == "InvalidOutputs"
    assert failed["message"].endswith(
        "the function's result does not match outputs: missing count; unexpected extra"
    )
    assert "/first" not in run.blackboard  # nothing of a refused result is written


async def test_an_input_missing_from_the_blackboard_fails_before_the_call(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path]
) -> None:
    write("steps.py", STEPS)
    path = write("flow.yaml", tree(agent("read", "split", "[/nowhere/text]", "[first, count]")))
    run = await run_tree(sqlite_control, path)
    assert run.types() == ["AgentCallFailed"]
    failed = run.one("AgentCallFailed")
    assert failed["error_type"] == "MissingInput"
    assert failed["message"] == ("node 'flow/read': input '/nowhere/text' is not on the blackboard")


async def test_a_call_past_its_deadline_fails_the_node(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path]
) -> None:
    write(
        "steps.py",
        """
        import asyncio

        async def never(text):
            await asyncio.Event().wait()
        """,
    )
    body = agent("wait", "never", "[text]") + "\n        timeout_s: 0.05"
    run = await run_tree(sqlite_control, write("flow.yaml", tree(body, fallback=True)))
    failed = run.one("AgentCallFailed")
    assert failed["error_type"] == "Timeout"
    assert failed["message"] == "node 'guard/flow/wait': no answer within 0.05 s (timeout_s)"


FACTORY = """
import py_trees

from canopy.server.runtime.agents import LlmAgent, PythonAgent, Tool


def shout(said):
    return said.upper()


def spell(word):
    return "-".join(word)


def flow():
    ask = LlmAgent(
        "ask",
        model="claude-haiku-4-5",
        prompt="Say {{ word }}",
        inputs=["word"],
        output="said",
        tools=[Tool(spell, "Spell a word", {"type": "object"}, effects=False)],
    )
    loud = PythonAgent("loud", function=shout, inputs=["said"], outputs=["loud"])
    return py_trees.composites.Sequence("flow", memory=True, children=[ask, loud])
"""


async def test_a_python_factory_builds_agents_that_answer_from_its_fixture_file(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    factory = write("workflow.py", FACTORY)
    request = ModelRequest(
        model="claude-haiku-4-5",
        messages=user("Say hi"),
        tools=(ToolSpec("spell", "Spell a word", {"type": "object"}),),
    )
    write_fixtures(tmp_path / "workflow.fixtures.yaml", [(request, {"text": "hi there"})])
    run = await run_tree(sqlite_control, f"{factory}:flow", blackboard={"word": "hi"})
    assert run.blackboard["/loud"] == "HI THERE"
    assert [p["node_id"] for p in run.of("AgentCallCompleted")] == ["flow/ask", "flow/loud"]
    assert run.of("AgentCallStarted")[1]["function"] == "workflow:shout"
