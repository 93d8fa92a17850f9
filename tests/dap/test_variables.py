"""What a stopped tree shows: the Node, Blackboard (as namespaces) and Tick scopes, paging,
setVariable / setExpression with the safe expression language, evaluate in every context, and
completions."""

from __future__ import annotations

import json

from .client import DapClient, launch_configured
from .helpers import PATROL, frames, scopes, values, variables

BOARD = {
    "battery": 100,
    "/robot/pose/x": 1.5,
    "/robot/pose/y": -2,
    "/robot/name": "r2",
    "waypoints": [f"w{i}" for i in range(12)],
}


async def stopped_in_drain(client: DapClient) -> None:
    """Manual mode, stopped before drain's update on tick 2 (battery still 100)."""
    await launch_configured(
        client, PATROL, mode="manual", blackboard=BOARD, breakpoints=[{"name": "drain"}]
    )
    await client.wait_for("stopped", reason="entry")
    await client.ok("continue", {"threadId": 1})
    await client.wait_for("stopped", reason="step")
    await client.ok("continue", {"threadId": 1})
    await client.wait_for("stopped", reason="breakpoint")


async def test_scopes_show_the_node_the_blackboard_and_the_tick(client: DapClient) -> None:
    await stopped_in_drain(client)
    top = (await frames(client))[0]
    found = (await client.ok("scopes", {"frameId": top["id"]}))["scopes"]
    assert [(s["name"], s["expensive"]) for s in found] == [
        ("Node", False),
        ("Blackboard", False),
        ("Tick", False),
    ]
    node, board, ticks = (s["variablesReference"] for s in found)
    paged = await client.ok("stackTrace", {"threadId": 1, "startFrame": 1, "levels": 1})
    assert [f["name"] for f in paged["stackFrames"]] == ["round [Sequence] RUNNING"]
    assert paged["totalFrames"] == 3

    shown = await variables(client, node)
    assert {v["name"]: v["value"] for v in shown} == {
        "id": "'patrol/round/drain'",
        "name": "'drain'",
        "kind": "'tests.server.runtime.factories:Drain'",
        "status": "'INVALID'",
        "feedback": "''",
        "visits": "0",
    }
    assert all(v["presentationHint"] == {"attributes": ["readOnly"]} for v in shown)
    assert await values(client, ticks) == {"tick": "2", "state": "'stopped'", "past": "False"}

    # The blackboard is a tree of namespaces; lists are paged.
    top_level = {v["name"]: v for v in await variables(client, board)}
    assert list(top_level) == ["battery", "robot", "waypoints"]
    assert top_level["battery"]["value"] == "100"
    assert top_level["battery"]["evaluateName"] == "battery"
    robot = {
        v["name"]: v for v in await variables(client, top_level["robot"]["variablesReference"])
    }
    assert robot["name"]["value"] == "'r2'"
    assert robot["name"]["evaluateName"] == "robot.name"
    pose = await values(client, robot["pose"]["variablesReference"])
    assert pose == {"x": "1.5", "y": "-2"}
    waypoints = top_level["waypoints"]
    assert waypoints["indexedVariables"] == 12
    page = await variables(client, waypoints["variablesReference"], start=10, count=5)
    assert [(v["name"], v["value"]) for v in page] == [("[10]", "'w10'"), ("[11]", "'w11'")]


async def test_set_variable_writes_the_blackboard_and_invalidates(client: DapClient) -> None:
    await stopped_in_drain(client)
    board = (await scopes(client))["Blackboard"]
    answer = await client.ok(
        "setVariable", {"variablesReference": board, "name": "battery", "value": "battery - 5"}
    )
    assert answer["value"] == "95"
    assert await client.next_event("invalidated") == {"areas": ["variables"], "threadId": 1}
    # The reference handed out before the write reads the new value, and so does a new one.
    assert (await values(client, board))["battery"] == "95"
    assert (await values(client, (await scopes(client))["Blackboard"]))["battery"] == "95"

    robot = next(v for v in await variables(client, board) if v["name"] == "robot")
    answer = await client.ok(
        "setVariable",
        {"variablesReference": robot["variablesReference"], "name": "name", "value": '"dock"'},
    )
    assert answer["value"] == "'dock'"
    await client.next_event("invalidated")
    answer = await client.ok(
        "setExpression", {"expression": "robot.pose.x", "value": "round(2.25 * 2, 1)"}
    )
    assert answer["value"] == "4.5"
    await client.next_event("invalidated")
    top = (await frames(client))[0]
    for expression, expected in (("robot.name", "'dock'"), ("robot.pose.x", "4.5")):
        result = await client.ok("evaluate", {"expression": expression, "frameId": top["id"]})
        assert result["result"] == expected

    # The tree goes on with the edited value: drain takes 30 from 95.
    await client.ok("next", {"threadId": 1})
    await client.wait_for("stopped", reason="step")
    assert (await values(client, (await scopes(client))["Blackboard"]))["battery"] == "65"


async def test_set_variable_refuses_what_it_cannot_write(client: DapClient) -> None:
    await stopped_in_drain(client)
    found = await scopes(client)
    message = await client.fails(
        "setVariable", {"variablesReference": found["Node"], "name": "status", "value": "1"}
    )
    assert message == "status is not a blackboard value: only those can be edited"
    message = await client.fails(
        "setVariable",
        {"variablesReference": found["Blackboard"], "name": "battery", "value": "open('x')"},
    )
    assert "calls are limited to" in message
    assert "'open'" in message
    message = await client.fails(
        "setVariable",
        {"variablesReference": found["Blackboard"], "name": "battery", "value": "battery +"},
    )
    assert message.startswith("column 10: invalid syntax")
    message = await client.fails(
        "setVariable", {"variablesReference": 9999, "name": "battery", "value": "1"}
    )
    assert message == "unknown variablesReference 9999 (it lasts only for one stop)"
    assert (await values(client, found["Blackboard"]))["battery"] == "100"  # unchanged


async def test_evaluate_in_every_context(client: DapClient) -> None:
    await stopped_in_drain(client)
    top, parent, _ = await frames(client)
    for context in ("watch", "hover", "repl"):
        result = await client.ok(
            "evaluate", {"expression": "robot.pose", "frameId": top["id"], "context": context}
        )
        assert result["result"] == "{'x': 1.5, 'y': -2}"
        expanded = await values(client, result["variablesReference"])
        assert expanded == {"x": "1.5", "y": "-2"}
    copied = await client.ok(
        "evaluate", {"expression": "robot.pose", "frameId": top["id"], "context": "clipboard"}
    )
    assert json.loads(copied["result"]) == {"x": 1.5, "y": -2}
    assert copied["variablesReference"] == 0

    # Node state is that of the frame's node; without a frame, that of the current node.
    status = await client.ok("evaluate", {"expression": "status", "frameId": parent["id"]})
    assert status["result"] == "'RUNNING'"
    name = await client.ok("evaluate", {"expression": "name", "context": "repl"})
    assert name["result"] == "'drain'"
    result = await client.ok(
        "evaluate", {"expression": "len(waypoints) + battery // 10", "frameId": top["id"]}
    )
    assert (result["result"], result["variablesReference"]) == ("22", 0)


async def test_evaluate_errors_are_readable(client: DapClient) -> None:
    await stopped_in_drain(client)
    top = (await frames(client))[0]
    cases = {
        "batery + 1": "column 1: unknown name 'batery'",
        "battery <": "column 10: invalid syntax: the expression is incomplete",
        "__import__('os')": "column 1: calls are limited to",
        "robot.__class__": "column 7:",
        "9 ** 9 ** 9": "column 1:",
    }
    for expression, start in cases.items():
        response = await client.request(
            "evaluate", {"expression": expression, "frameId": top["id"], "context": "watch"}
        )
        assert response["success"] is False, expression
        assert response["message"].startswith(start), (expression, response["message"])
        assert "Traceback" not in response["message"]
    message = await client.fails("evaluate", {"expression": "battery", "frameId": 424242})
    assert message == "unknown frame 424242 (frames last only while the tree is stopped)"


async def test_completions_offer_blackboard_keys_and_node_names(client: DapClient) -> None:
    await stopped_in_drain(client)
    top = (await frames(client))[0]
    answer = await client.ok("completions", {"text": "bat", "column": 4, "frameId": top["id"]})
    assert answer["targets"] == [
        {"label": "battery", "text": "battery", "start": 0, "length": 3, "type": "variable"}
    ]
    answer = await client.ok("completions", {"text": "x + robot.p", "column": 12})
    assert [(t["label"], t["start"], t["length"]) for t in answer["targets"]] == [
        ("robot.pose.x", 4, 7),
        ("robot.pose.y", 4, 7),
    ]
    # In the middle of the text: only what is before the cursor counts.
    answer = await client.ok("completions", {"text": "dr + 1", "column": 3})
    assert [t["label"] for t in answer["targets"]] == ["drain"]
    everything = {t["label"] for t in (await client.ok("completions", {"text": ""}))["targets"]}
    assert {"battery", "robot.name", "waypoints", "patrol", "round", "status", "tick"} <= everything


async def test_no_invalidated_events_for_a_client_that_does_not_want_them(
    client: DapClient,
) -> None:
    await launch_configured(
        client,
        PATROL,
        mode="manual",
        blackboard={"battery": 100},
        initialize={"supportsInvalidatedEvent": False},
    )
    await client.next_event("stopped")
    board = (await scopes(client))["Blackboard"]
    await client.ok("setVariable", {"variablesReference": board, "name": "battery", "value": "1"})
    await client.ok("canopy/reload", {})
    await client.ok("threads")  # answered after anything the requests above sent
    assert [e["event"] for e in client.events if e["event"] == "invalidated"] == []
