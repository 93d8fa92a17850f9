"""Bad input never ends a session: malformed frames, bodies that are not DAP, unknown
commands, missing or wrong arguments, requests out of order. Each is reported (a failed
response with a readable message, or an ``output`` event when there is no request to answer)
and the adapter answers the next valid request."""

from __future__ import annotations

from typing import Any

from canopy.dap.framing import MAX_MESSAGE_BYTES

from .client import DapClient, launch_configured
from .helpers import FOREVER, PATROL, frames, scopes, step


async def still_answers(client: DapClient) -> None:
    """A valid request after the bad input gets its answer."""
    assert "threads" in await client.ok("threads")


def framed(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


MALFORMED = {
    "no Content-Length": (b"Content-Type: application/json\r\n\r\n", "has no Content-Length"),
    "non-numeric length": (b"Content-Length: ten\r\n\r\n", "Content-Length is not a number: 'ten'"),
    "negative length": (b"Content-Length: -4\r\n\r\n", "Content-Length cannot be negative: -4"),
    "oversized length": (
        framed(b" " * (MAX_MESSAGE_BYTES + 1)),
        f"message of {MAX_MESSAGE_BYTES + 1} bytes is over the limit of {MAX_MESSAGE_BYTES}",
    ),
    "header block too long": (
        b"X-Padding: " + b"x" * 9000 + b"\r\nContent-Length: 2\r\n\r\n{}",
        "the header block is too long",
    ),
    "invalid JSON": (framed(b'{"type": "request", "command":'), "message body is not valid JSON"),
    "invalid UTF-8": (framed(b'{"command": "\xff"}'), "message body is not valid JSON"),
    "a JSON array": (framed(b'[{"seq": 1}]'), "message body must be a JSON object, not list"),
    "a JSON string": (framed(b'"threads"'), "message body must be a JSON object, not str"),
    "nested 100,000 deep": (
        framed(b'{"type": "request", "arguments": ' + b"[" * 100_000 + b"]" * 100_000),
        "nested deeper than 128 levels (line 1, column 161)",
    ),
}


async def test_each_malformed_message_is_reported_and_skipped(client: DapClient) -> None:
    for case, (data, problem) in MALFORMED.items():
        await client.send_raw(data)
        reported = await client.next_event("output")
        assert reported["category"] == "stderr", case
        assert reported["output"].startswith("malformed message: "), case
        assert problem in reported["output"], (case, reported["output"])
        await still_answers(client)


async def test_malformed_messages_in_a_row_then_a_whole_session(client: DapClient) -> None:
    for data, _ in MALFORMED.values():
        await client.send_raw(data)
    for _, problem in MALFORMED.values():
        assert problem in (await client.next_event("output"))["output"]
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    assert (await client.next_event("stopped"))["reason"] == "entry"
    assert (await step(client, "next"))["reason"] == "step"


MESSAGES: dict[str, tuple[dict[str, Any], str]] = {
    "no type": ({"command": "threads"}, "unknown message type None: expected a request"),
    "unknown type": ({"type": "banana"}, "unknown message type 'banana': expected a request"),
    "no command": ({"type": "request"}, "the request has no command"),
    "command not a string": ({"type": "request", "command": 7}, "the request has no command"),
    "unknown command": (
        {"type": "request", "command": "frobnicate"},
        "unknown request 'frobnicate'",
    ),
    "arguments not an object": (
        {"type": "request", "command": "initialize", "arguments": [1, 2]},
        "initialize: arguments must be an object",
    ),
}


async def test_each_message_that_is_not_a_valid_request_is_answered(client: DapClient) -> None:
    for case, (message, problem) in MESSAGES.items():
        response = await client.send_message(message)
        assert (response["type"], response["success"]) == ("response", False), case
        assert response["message"] == problem, case
        await still_answers(client)


async def test_an_unreadable_request_that_shows_its_seq_is_answered(client: DapClient) -> None:
    await client.send_raw(framed(b'{"command": "threads", "type": "request", "seq": 77, "x":'))
    await client.send_raw(  # a number beyond what a double holds (over 308 digits)
        framed(b'{"command": "evaluate", "seq": 78, "arguments": {"frameId": 1%s}}' % (b"0" * 400))
    )
    await still_answers(client)
    unreadable, huge, _ = client.responses
    assert (unreadable["request_seq"], unreadable["command"]) == (77, "threads")
    assert unreadable["message"].startswith("malformed message: message body is not valid JSON")
    assert (huge["request_seq"], huge["command"], huge["success"]) == (78, "evaluate", False)
    assert "number is infinity when parsed as double" in huge["message"]


HUGE = 10**30
WIDE: dict[str, tuple[str, dict[str, Any], str]] = {
    "threadId": ("stackTrace", {"threadId": 2**63}, f"'threadId': integer {2**63}"),
    "frameId": ("scopes", {"frameId": -(2**63) - 1}, f"'frameId': integer {-(2**63) - 1}"),
    "variablesReference": (
        "variables",
        {"variablesReference": HUGE},
        f"'variablesReference': integer {HUGE}",
    ),
    "line": (
        "setBreakpoints",
        {"source": {"path": "/tmp/x.yaml"}, "breakpoints": [{"line": HUGE}]},
        f"'breakpoints.0.line': integer {HUGE}",
    ),
    "tick": ("canopy/stateAt", {"tick": 10**300}, "'tick': integer of 301 digits"),
    "evaluate frameId": (
        "evaluate",
        {"expression": "battery", "frameId": HUGE},
        f"'frameId': integer {HUGE}",
    ),
    "launch": ("launch", {"program": PATROL, "maxTicks": 2**64}, f"'maxTicks': integer {2**64}"),
}


async def test_integers_beyond_64_bits_are_refused_by_name(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    for case, (command, arguments, problem) in WIDE.items():
        message = await client.fails(command, arguments)
        assert message == f"{command}: argument {problem} is outside the signed 64-bit range", case
        await still_answers(client)
    # At the edge of the range: an ordinary unknown reference, or a bound the schema sets.
    assert await client.fails("stackTrace", {"threadId": 2**63 - 1}) == (
        f"unknown thread {2**63 - 1}"
    )
    message = await client.fails("launch", {"program": PATROL, "intervalMs": 2**63 - 1})
    assert message.startswith("launch: intervalMs: 9223372036854775807 is greater than the max")
    assert (await step(client, "next"))["reason"] == "step"


async def test_a_seq_that_is_no_64_bit_integer_is_answered_as_request_seq_0(
    client: DapClient,
) -> None:
    """The response cannot echo an object, text or a 65-bit number as ``request_seq``."""
    for seq in (b'{"a": 1}', b"18446744073709551616", b'"7"', b"true", b"1.5"):
        await client.send_raw(framed(b'{"seq": %s, "type": "request", "command": "threads"}' % seq))
    await still_answers(client)  # answered in order: the five answers are in by now
    answered = [r for r in client.responses if r["request_seq"] == 0]
    assert [(r["command"], r["success"]) for r in answered] == [("threads", True)] * 5


async def test_responses_and_events_from_the_client_are_ignored(client: DapClient) -> None:
    await client.send_raw(framed(b'{"seq": 900, "type": "event", "event": "whatever"}'))
    await client.send_raw(
        framed(b'{"seq": 901, "type": "response", "request_seq": 1, "success": true}')
    )
    await still_answers(client)  # answered in order: anything for 900/901 would be here now
    assert [r["request_seq"] for r in client.responses] == [1]


LAUNCHES = {
    "without program": ({}, "launch: 'program' is a required property"),
    "program not a string": ({"program": 42}, "launch: program: 42 is not of type 'string'"),
    "empty program": ({"program": ""}, "launch: program:"),
    "unknown mode": (
        {"program": PATROL, "mode": "sometimes"},
        "launch: mode: 'sometimes' is not one of ['manual', 'auto', 'interval']",
    ),
    "no ticks": ({"program": PATROL, "maxTicks": 0}, "launch: maxTicks: 0 is less than"),
    "unknown pod": ({"program": PATROL, "pod": "mars"}, "launch: pod: 'mars' is not one of"),
    "missing tree file": (
        {"program": "trees/nope.yaml"},
        "the tree cannot be loaded:\n",
    ),
    "missing factory": (
        {"program": "tests.server.runtime.factories:missing"},
        "the tree cannot be loaded:\n",
    ),
}


async def test_bad_launches_say_what_is_wrong_and_a_good_one_follows(client: DapClient) -> None:
    await client.ok("initialize", {"adapterID": "canopy"})
    for case, (arguments, problem) in LAUNCHES.items():
        message = await client.fails("launch", arguments)
        assert message.startswith(problem), (case, message)
        assert "Traceback" not in message
        await still_answers(client)
        assert (await client.ok("threads"))["threads"] == []  # nothing half-launched
    message = await client.fails("launch", {"program": "trees/nope.yaml"})
    assert message.endswith("nope.yaml:1:1: tree file not found")
    message = await client.fails("launch", {"program": "tests.server.runtime.factories:missing"})
    assert "has no function 'missing'" in message
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    assert (await client.next_event("stopped"))["reason"] == "entry"


ARGUMENTS = {
    "setBreakpoints": ({}, "setBreakpoints: missing argument 'source'"),
    "setBreakpoints without path": (
        {"source": {"name": "x.yaml"}},
        "setBreakpoints: breakpoints need a source with a path",
    ),
    "setBreakpoints without line": (
        {"source": {"path": "/tmp/x.yaml"}, "breakpoints": [{"column": 3}]},
        "setBreakpoints: missing argument 'line'",
    ),
    "setBreakpoints line as text": (
        {"source": {"path": "/tmp/x.yaml"}, "breakpoints": [{"line": "3"}]},
        "setBreakpoints: argument 'line' must be an integer, not a string",
    ),
    "setFunctionBreakpoints": (
        {"breakpoints": "drain"},
        "setFunctionBreakpoints: argument 'breakpoints' must be an array, not a string",
    ),
    "setFunctionBreakpoints without name": (
        {"breakpoints": [{"condition": "battery < 5"}]},
        "setFunctionBreakpoints: missing argument 'name'",
    ),
    "setFunctionBreakpoints not objects": (
        {"breakpoints": ["drain"]},
        "setFunctionBreakpoints: each of 'breakpoints' must be an object, not a string",
    ),
    "setDataBreakpoints": (
        {"breakpoints": [{"condition": "x"}]},
        "setDataBreakpoints: missing argument 'dataId'",
    ),
    "setExceptionBreakpoints": ({}, "setExceptionBreakpoints: missing argument 'filters'"),
    "variables": ({}, "variables: missing argument 'variablesReference'"),
    "variables with text": (
        {"variablesReference": "3"},
        "variables: argument 'variablesReference' must be an integer, not a string",
    ),
    "scopes": ({"frameId": True}, "scopes: argument 'frameId' must be an integer, not a boolean"),
    "evaluate": ({}, "evaluate: missing argument 'expression'"),
    "completions": ({"column": 1}, "completions: missing argument 'text'"),
    "setExpression": ({"value": "1"}, "setExpression: missing argument 'expression'"),
    "setVariable": ({"variablesReference": 1, "name": "x"}, "setVariable: missing argument"),
    "dataBreakpointInfo": ({}, "dataBreakpointInfo: missing argument 'name'"),
    "canopy/diff": ({}, "canopy/diff: missing argument 'otherExecutionId'"),
    "canopy/stateAt": ({"tick": "last"}, "canopy/stateAt: argument 'tick' must be an integer"),
    "canopy/reload": ({"keepBlackboard": "yes"}, "canopy/reload: argument 'keepBlackboard'"),
    "canopy/fork": ({"live": [1]}, "canopy/fork: argument 'live' must be a list of node ids"),
    "canopy/fork with tick": ({"tick": "2"}, "canopy/fork: argument 'tick' must be an integer"),
}


async def test_missing_and_invalid_arguments_name_the_argument(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    for case, (arguments, problem) in ARGUMENTS.items():
        command = case.split(" ")[0]
        message = await client.fails(command, arguments)
        assert message.startswith(problem), (case, message)
        await still_answers(client)
    # None of the bad breakpoint requests stayed behind to spoil the next good one.
    placed = await client.ok("setFunctionBreakpoints", {"breakpoints": [{"name": "drain"}]})
    assert [b["verified"] for b in placed["breakpoints"]] == [True]
    placed = await client.ok(
        "setBreakpoints", {"source": {"path": "/tmp/x.yaml"}, "breakpoints": [{"line": 3}]}
    )
    assert [b["verified"] for b in placed["breakpoints"]] == [False]
    await step(client, "continue", "step")
    assert (await step(client, "continue"))["reason"] == "breakpoint"


async def test_requests_before_launch(client: DapClient) -> None:
    nothing = "nothing is being debugged yet: launch or attach first"
    await client.ok("initialize", {"adapterID": "canopy"})
    assert await client.fails("stackTrace", {"threadId": 1}) == nothing
    assert await client.fails("continue", {"threadId": 1}) == nothing
    assert await client.fails("next", {}) == nothing
    assert await client.fails("stepBack", {"threadId": 1}) == nothing
    assert await client.fails("pause", {"threadId": 1}) == nothing
    assert await client.fails("exceptionInfo", {"threadId": 1}) == nothing
    assert await client.fails("evaluate", {"expression": "1 + 1"}) == nothing
    assert await client.fails("completions", {"text": "b"}) == nothing
    assert await client.fails("canopy/timeline", {}) == nothing
    assert await client.fails("canopy/reload", {}) == nothing
    assert (
        await client.fails("breakpointLocations", {"source": {"path": "/tmp/x.yaml"}, "line": 1})
        == nothing
    )
    assert await client.fails("scopes", {"frameId": 1}) == (
        "unknown frame 1 (frames last only while the tree is stopped)"
    )
    assert await client.fails("variables", {"variablesReference": 1}) == (
        "unknown variablesReference 1 (it lasts only for one stop)"
    )
    assert await client.fails("attach", {"executionId": "nope"}) == (
        "no execution 'nope': no Canopy server is running to ask (`canopy serve` starts one)"
    )
    assert (await client.ok("threads"))["threads"] == []
    await client.ok("configurationDone")  # harmless before a launch
    await client.ok("terminate")  # nothing to terminate
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    assert (await client.next_event("stopped"))["reason"] == "entry"


async def test_stale_references_and_unknown_threads_and_frames(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    old_frame = (await frames(client))[0]["id"]
    old_board = (await scopes(client))["Blackboard"]
    await step(client, "next", "step")  # the tree moved: references of the last stop are gone
    assert await client.fails("variables", {"variablesReference": old_board}) == (
        f"unknown variablesReference {old_board} (it lasts only for one stop)"
    )
    assert await client.fails("scopes", {"frameId": old_frame}) == (
        f"unknown frame {old_frame} (frames last only while the tree is stopped)"
    )
    assert await client.fails("stackTrace", {"threadId": 7}) == "unknown thread 7"
    assert await client.fails("next", {"threadId": "1"}) == "unknown thread '1'"
    assert await client.fails("evaluate", {"expression": "battery", "frameId": 0}) == (
        "unknown frame 0 (frames last only while the tree is stopped)"
    )
    await still_answers(client)
    assert (await step(client, "next"))["reason"] == "step"


async def test_stepping_a_running_tree_is_refused(client: DapClient) -> None:
    await launch_configured(client, FOREVER, blackboard={"battery": 10**9})
    await client.ok("canopy/liveTree", {"threadId": 1})
    await client.wait_for("canopy/nodeStatus", type="TickCompleted")  # auto mode is on
    message = await client.fails("next", {"threadId": 1})
    assert message == "the tree is running, not stopped"
    await client.ok("pause", {"threadId": 1})
    assert (await client.next_event("stopped"))["reason"] == "pause"
    assert (await step(client, "next"))["reason"] == "step"
