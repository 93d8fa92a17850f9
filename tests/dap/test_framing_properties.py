"""Property tests of the adapter's input edge, on real ``canopy dap`` processes: whatever
arrives (any bytes on a connection, any JSON in a frame, any argument of any type for every
request), the adapter answers it with a DAP error or reports a malformed frame in an
``output`` event, and a well-formed request afterwards still works. One adapter process takes
all the examples of a test, so it must also survive every earlier one."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ..jsonvalues import deep, json_text, texts, values
from .client import Connect, DapClient, adapter_over_tcp, launch_configured
from .helpers import PATROL
from .test_bad_input import framed, still_answers

COMMANDS = (
    *("attach", "breakpointLocations", "completions", "configurationDone", "continue"),
    *("dataBreakpointInfo", "evaluate", "exceptionInfo", "initialize", "launch", "next"),
    *("pause", "reverseContinue", "scopes", "setBreakpoints", "setDataBreakpoints"),
    *("setExceptionBreakpoints", "setExpression", "setFunctionBreakpoints", "setVariable"),
    *("stackTrace", "stepBack", "stepIn", "stepOut", "terminate", "threads", "variables"),
    *("canopy/debugPython", "canopy/diff", "canopy/liveTree", "canopy/picture"),
    *("canopy/reload", "canopy/stateAt", "canopy/statistics", "canopy/timeline"),
)
"""Every request the adapter serves but ``disconnect``, which ends the session by design."""
ARGUMENTS = (
    *("source", "breakpoints", "line", "column", "endLine", "name", "condition"),
    *("hitCondition", "logMessage", "dataId", "filters", "variablesReference", "frameId"),
    *("threadId", "expression", "text", "value", "program", "mode", "maxTicks", "blackboard"),
    *("pod", "executionId", "tick", "otherExecutionId", "keepBlackboard", "batchMs", "after"),
    *("context", "format", "levels", "startFrame", "accessType", "adapterID", "path"),
    "agentsAfter",
)

arguments = st.dictionaries(
    st.sampled_from(ARGUMENTS) | texts, values(max_leaves=6) | deep(), max_size=4
) | values(max_leaves=3)
requests = st.fixed_dictionaries(
    {"type": st.just("request"), "command": st.sampled_from(COMMANDS)},
    optional={"arguments": arguments},
)
_seqs = itertools.count(1_000_000)
_launched: set[int] = set()


@settings(max_examples=150)
@given(request=requests)
async def test_any_arguments_of_any_request_are_answered(client: DapClient, request: Any) -> None:
    """Each request gets its response (success or a failure with a message), or, when its
    frame cannot be read (a lone surrogate, nesting past the bound), a ``malformed message``
    output; then the next request is answered as usual. The first example launches a tree
    stopped at entry, so that requests meet a stopped, running or ended execution."""
    if id(client) not in _launched:
        _launched.add(id(client))
        await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    seq = next(_seqs)
    reported = malformed_reports(client)
    await client.send_raw(framed(json_text({**request, "seq": seq})))
    await still_answers(client)  # answered in order: the response to seq is in by now
    answers = [r for r in client.responses if r["request_seq"] == seq]
    if answers:
        (answer,) = answers
        assert answer["command"] == request["command"]
        assert answer["success"] or (isinstance(answer["message"], str) and answer["message"])
        assert "Traceback" not in answer.get("message", "")
    else:
        assert malformed_reports(client) == reported + 1


def malformed_reports(client: DapClient) -> int:
    """How many ``malformed message`` outputs the adapter has sent so far."""
    return sum(
        1
        for event in client.events
        if event["event"] == "output"
        and event.get("body", {}).get("output", "").startswith("malformed message: ")
    )


envelopes = st.fixed_dictionaries(
    {
        "seq": values(max_leaves=2),
        "type": st.just("request") | values(max_leaves=2),
        "command": st.sampled_from(COMMANDS) | values(max_leaves=2),
    },
    optional={"arguments": arguments},
)
"""Requests whose own fields (``seq``, ``type``, ``command``) may have any type."""


@settings(max_examples=100)
@given(body=envelopes | values() | deep(0, 200) | st.binary(max_size=100))
async def test_any_frame_body_is_answered_or_reported(client: DapClient, body: Any) -> None:
    """A frame whose body is anything at all: never the end of the session."""
    await client.send_raw(framed(body if isinstance(body, bytes) else json_text(body)))
    await still_answers(client)


HEADERS = st.sampled_from(
    [b"Content-Length: 2\r\n\r\n{}", b"Content-Length: 99\r\n\r\n", b"\r\n\r\n", b"Content-"]
)


@pytest.fixture
async def connect(tmp_path: Path) -> AsyncIterator[Connect]:
    """``canopy dap --port 0``: one process, a new session per connection."""
    async with adapter_over_tcp(tmp_path) as opener:
        yield opener


@settings(max_examples=60)
@given(data=st.lists(st.binary(max_size=200) | HEADERS, max_size=4).map(b"".join))
async def test_any_bytes_on_a_connection_leave_the_adapter_serving(
    connect: Connect, data: bytes
) -> None:
    """Any bytes then a hang-up end that session only: the adapter closes it, and the next
    connection is served."""
    hostile = await connect()
    await hostile.send_raw(data)
    await hostile.hang_up()
    good = await connect()
    await still_answers(good)
    await good.close()
