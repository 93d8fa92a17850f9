"""An exception stop leads with the user's own code: the exception widget's trace starts at
the innermost frame of the user's, the Call Stack has the raising lines above the node frames,
and those frames show the locals recorded with the exception, also when the stop is
revisited from the log."""

from __future__ import annotations

import inspect
from typing import Any

from . import raising_behaviours
from .client import DapClient, launch_configured
from .helpers import frames, values, variables

PROGRAM = "tests.dap.raising_behaviours:tree"
MODULE = inspect.getsourcefile(raising_behaviours)
LINES = inspect.getsource(raising_behaviours).splitlines()
DIVIDE = 1 + next(
    i for i, text in enumerate(LINES) if text.endswith("# RAISES: an empty battery has no steps")
)
CALL = 1 + next(i for i, text in enumerate(LINES) if "exposure(self.scale, battery)" in text)


async def stopped_on_the_exception(client: DapClient, **launch: Any) -> None:
    await launch_configured(
        client,
        PROGRAM,
        blackboard={"battery": 5},
        exception_filters=["raised"],
        **launch,
    )
    stopped = await client.next_event("stopped")
    if launch.get("mode") == "manual":  # waits at tick 0 for the user to tick
        assert stopped["reason"] == "entry"
        await client.ok("continue", {"threadId": 1})
        stopped = await client.next_event("stopped")
    assert stopped["reason"] == "exception"
    assert (
        stopped["description"] == "builtins.ZeroDivisionError: integer division or modulo by zero"
    )


async def locals_of(client: DapClient, frame: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = (await client.ok("scopes", {"frameId": frame["id"]}))["scopes"]
    assert [scope["name"] for scope in found] == ["Locals", "Node", "Blackboard", "Tick"]
    assert found[0]["presentationHint"] == "locals"
    return {v["name"]: v for v in await variables(client, found[0]["variablesReference"])}


async def assert_user_frames(client: DapClient, past: bool) -> None:
    """The raising lines first, innermost on top, then the node frames; each user frame with
    its locals as they were when it raised."""
    shown = await frames(client)
    top, caller, node = shown[0], shown[1], shown[2]
    assert (top["name"], top["source"]["path"], top["line"]) == ("exposure", MODULE, DIVIDE)
    assert (caller["name"], caller["source"]["path"], caller["line"]) == (
        "Expose.update",
        MODULE,
        CALL,
    )
    assert node["name"].startswith("expose [")
    assert [f["name"].split(" ")[0] for f in shown[2:]] == ["expose", "camera"]
    assert ("presentationHint" in top) is past

    inner = await locals_of(client, top)
    assert {name: (v["value"], v["type"]) for name, v in inner.items()} == {
        "scale": ("100", "int"),
        "battery": ("5", "int"),
        "steps": ("0", "int"),
    }

    outer = await locals_of(client, caller)
    assert outer["battery"]["value"] == "5"
    # Wider than the log's 64-bit integers: kept as its exact text.
    assert (outer["huge"]["value"], outer["huge"]["type"]) == (str(2**70), "int")
    assert (outer["broken"]["value"], outer["broken"]["type"]) == (
        "<BrokenRepr object: repr() raised RuntimeError>",
        "BrokenRepr",
    )
    assert outer["readings"]["value"] == "[5, 'dark']"
    assert await values(client, outer["readings"]["variablesReference"]) == {
        "[0]": "5",
        "[1]": "'dark'",
    }
    me = outer["self"]
    assert me["type"] == "Expose"
    shown_self = await values(client, me["variablesReference"])
    assert shown_self["name"] == "'expose'"
    assert shown_self["status"] == "'INVALID'"  # its first update: no status yet
    assert shown_self["scale"] == "100"
    assert shown_self["blackboard"] == "{'/battery': 5}"
    assert "iterator" not in shown_self
    assert "parent" not in shown_self


async def test_exception_info_leads_with_the_users_innermost_frame(client: DapClient) -> None:
    await stopped_on_the_exception(client)
    info = await client.ok("exceptionInfo", {"threadId": 1})
    assert info["exceptionId"] == "builtins.ZeroDivisionError"
    lines = info["details"]["stackTrace"].splitlines()
    assert lines[:4] == [
        f'  File "{MODULE}", line {DIVIDE}, in exposure',
        "    return scale // steps  # RAISES: an empty battery has no steps",
        f'  File "{MODULE}", line {CALL}, in Expose.update',
        "    return Status.SUCCESS if exposure(self.scale, battery) else Status.FAILURE",
    ]
    hidden = lines[4]
    assert hidden.startswith("  … ")
    assert hidden.endswith(
        " frames of Canopy, py_trees and libraries hidden;"
        " the whole traceback, most recent call last:"
    )
    whole = lines[5:]
    count = int(hidden.split()[1])
    assert len(whole) == 2 * (count + 2)  # every frame, two lines each
    assert "engine.py" in whole[0]  # the whole traceback starts in the engine...
    assert whole[-2:] == lines[:2]  # ...and ends at the same innermost line


async def test_the_call_stack_opens_the_raising_line_with_its_locals(client: DapClient) -> None:
    await stopped_on_the_exception(client)
    await assert_user_frames(client, past=False)


async def test_the_locals_are_there_when_the_stop_is_revisited_from_the_log(
    client: DapClient,
) -> None:
    await stopped_on_the_exception(client, mode="manual", keepTicking=True)
    await revisit_from_the_log(client)


async def revisit_from_the_log(client: DapClient) -> None:
    """From a manual, keep-ticking execution stopped on the exception: move past it, travel
    back to it (the user frames and locals now come from the log), then before it."""
    await client.ok("continue", {"threadId": 1})
    await client.wait_for("continued", threadId=1)
    after = await client.next_event("stopped")
    assert after["reason"] == "step"  # the end of the tick the exception failed
    assert (await frames(client))[0]["name"].startswith("camera [")  # no exception any more

    await client.ok("reverseContinue", {"threadId": 1})
    assert (await client.next_event("stopped"))["description"].startswith("tick 1 ")
    await assert_user_frames(client, past=True)

    await client.ok("stepBack", {"threadId": 1})  # to tick 0: before it raised
    await client.next_event("stopped")
    assert [f["name"].split(" ")[0] for f in await frames(client)] == ["camera"]
