"""The user's frames of a behaviour's exception, with their locals bounded and safely shown."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any

from canopy.bridge.jsondata import INT_MAX
from canopy.server.runtime.raised import (
    LOCALS,
    MAX_FRAMES,
    MAX_LOCALS,
    MAX_RENDERED,
    MAX_TOTAL,
    raised_frames,
)
from canopy.server.runtime.values import jsonable


class Level(enum.IntEnum):
    LOW = 1


class Loud:
    def __repr__(self) -> str:
        raise KeyError("nope")


class Exits:
    def __repr__(self) -> str:
        raise SystemExit(3)


class Pose:
    def __init__(self) -> None:
        self.x = 1.5
        self.label = "dock"
        self.broken = Loud()


def capture(function: Callable[[], object]) -> list[dict[str, Any]]:
    """The recorded frames of the exception ``function`` raises."""
    try:
        function()
    except ZeroDivisionError as error:
        return raised_frames(error.__traceback__)
    raise AssertionError("did not raise")


def shown(frame: dict[str, Any]) -> dict[str, Any]:
    return {local["name"]: local["value"] for local in frame["locals"]}


def divide(by: int) -> int:
    return 10 // by


def calls_divide() -> None:
    by = 0
    divide(by)


def test_user_frames_come_innermost_first_with_their_line_and_locals() -> None:
    inner, outer, *_ = capture(calls_divide)
    assert (inner["function"], inner["code"], shown(inner)) == (
        "divide",
        "return 10 // by",
        {"by": 0},
    )
    assert (outer["function"], outer["code"], shown(outer)) == (
        "calls_divide",
        "divide(by)",
        {"by": 0},
    )


def test_code_that_is_not_a_file_is_not_the_users() -> None:
    frames = capture(lambda: exec("1 // 0"))
    assert [f["function"] for f in frames] == [
        "test_code_that_is_not_a_file_is_not_the_users.<locals>.<lambda>",
        "capture",
    ]


def test_values_keep_to_the_logs_rules_and_bounds() -> None:
    def values() -> None:
        wide, fits, level = 2**64, INT_MAX, Level.LOW  # noqa: F841
        text, many = "x" * 1000, list(range(100))  # noqa: F841
        1 // 0  # noqa: B018

    locals_ = shown(capture(values)[0])
    assert locals_["wide"] == str(2**64)  # the log keeps 64-bit integers only
    assert locals_["fits"] == INT_MAX
    assert locals_["level"] == 1
    assert type(locals_["level"]) is int
    assert locals_["text"] == "x" * LOCALS.string + "…"
    assert locals_["many"] == [*range(LOCALS.items), "…"]


def test_an_object_is_its_attributes_and_a_raising_repr_says_so() -> None:
    def objects() -> None:
        pose, loud, exits = Pose(), Loud(), [Exits()]  # noqa: F841
        1 // 0  # noqa: B018

    (frame, *_) = capture(objects)
    assert frame["locals"] == [
        {
            "name": "pose",
            "type": "Pose",
            "value": {"x": 1.5, "label": "dock", "broken": "<Loud object: repr() raised KeyError>"},
        },
        {"name": "loud", "type": "Loud", "value": "<Loud object: repr() raised KeyError>"},
        {"name": "exits", "type": "list", "value": ["<Exits object: repr() raised SystemExit>"]},
    ]
    json.dumps(frame)  # all of it is JSON


def test_a_large_local_is_kept_shallower() -> None:
    def large() -> None:
        big = {f"key{i}": ["y" * 150] * 16 for i in range(16)}  # noqa: F841
        1 // 0  # noqa: B018

    (frame, *_) = capture(large)
    value = shown(frame)["big"]
    assert len(json.dumps(value, ensure_ascii=False)) <= MAX_RENDERED
    assert value["key0"] == "…"


def test_frames_and_locals_are_counted_past_their_limits() -> None:
    def deep(n: int) -> None:
        if n == 0:
            1 // 0  # noqa: B018
        deep(n - 1)

    assert len(capture(lambda: deep(MAX_FRAMES + 2))) == MAX_FRAMES

    source = "def many():\n" + "".join(f"    v{i} = {i}\n" for i in range(MAX_LOCALS + 5))
    namespace: dict[str, Any] = {}
    exec(compile(source + "    1 // 0\n", __file__, "exec"), namespace)  # a file of the user's
    (frame, *_) = capture(namespace["many"])
    assert len(frame["locals"]) == MAX_LOCALS + 1
    assert frame["locals"][-1] == {"name": "…", "type": "", "value": "5 more"}


def test_an_int_enum_is_stored_as_its_value() -> None:
    assert jsonable([Level.LOW]) == [1]
    assert type(jsonable(Level.LOW)) is int


def test_the_locals_of_one_exception_stay_within_a_total() -> None:
    # Frames of the user's, each with as many locals as are kept, each nearly as large as kept.
    big = "    " + ", ".join(f"v{i}" for i in range(MAX_LOCALS - 1)) + " = "
    big += ", ".join(["['z' * 150] * 12"] * (MAX_LOCALS - 1)) + "\n"
    source = f"def many(depth):\n{big}    many(depth - 1) if depth else 1 // 0\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, __file__, "exec"), namespace)

    frames = capture(lambda: namespace["many"](MAX_FRAMES))
    assert [len(frame["locals"]) for frame in frames] == [MAX_LOCALS] * MAX_FRAMES
    values = [local["value"] for frame in frames for local in frame["locals"]]
    assert len(json.dumps(values, ensure_ascii=False)) < MAX_TOTAL + MAX_RENDERED
    assert values[0] == 0  # the innermost frame's come first: its depth...
    assert values[1] == ["z" * 150] * 12  # ...and its first list, whole
    assert values[-1] == "…"
