"""Python agents in real executions: a user's function (sync in a worker thread, async on the
loop) called with blackboard inputs, its result written to output keys, and its failures —
including ``sys.exit()`` — kept to its node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from canopy.server.runtime.inprocess import InProcessControl

from .agent_runs import run_tree

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
