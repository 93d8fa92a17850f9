"""Per-execution blackboards: every write recorded, executions isolated, names for expressions."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from py_trees.blackboard import Blackboard, Client
from py_trees.common import Access

from canopy.server.runtime.blackboard import MISSING, BlackboardView, Installation, RecordingStorage
from canopy.server.runtime.expressions import Expression
from canopy.server.runtime.values import jsonable


def test_every_kind_of_write_is_reported() -> None:
    storage = RecordingStorage({"/a": 1})
    seen: list[tuple[str, Any, Any]] = []
    storage.on_write = lambda key, old, new: seen.append((key, old, new))
    storage["/a"] = 2
    storage["/b"] = 3
    del storage["/a"]
    storage.update({"/c": 4})
    storage.setdefault("/d", 5)
    assert storage.pop("/b") == 3
    storage.clear()
    assert seen == [
        ("/a", 1, 2),
        ("/b", MISSING, 3),
        ("/a", 2, MISSING),
        ("/c", MISSING, 4),
        ("/d", MISSING, 5),
        ("/b", 3, MISSING),
        ("/c", 4, MISSING),
        ("/d", 5, MISSING),
    ]


def test_py_trees_clients_write_through_the_installed_storage() -> None:
    storage = RecordingStorage()
    writes: list[str] = []
    storage.on_write = lambda key, old, new: writes.append(key)
    client = Client(name="writer")
    client.register_key("battery", access=Access.WRITE)
    with Installation(storage):
        client.battery = 42
        assert client.battery == 42
    assert storage == {"/battery": 42}
    assert writes == ["/battery"]
    assert "/battery" not in Blackboard.storage  # the process-wide storage is untouched


def test_a_stopped_execution_lets_another_tick_meanwhile() -> None:
    first, second = RecordingStorage(), RecordingStorage()
    with Installation(first) as installed:
        with installed.suspended():
            other = threading.Thread(target=lambda: Installation(second).__enter__().__exit__())
            other.start()
            other.join(10)
            assert not other.is_alive()
        assert Blackboard.storage is first


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("battery.level", 20),
        ('battery[""]', 80),
        ("robot.pose.x", 1.5),
        ("tick + 1", 4),
    ],
)
def test_names_resolve_like_flatten_blackboard(expression: str, expected: Any) -> None:
    storage = RecordingStorage(
        {"/battery": 80, "/battery/level": 20, "/robot/pose/x": 1.5, "/tick": 3}
    )
    assert Expression.compile(expression).evaluate(BlackboardView(storage)) == expected


def test_namespaces_follow_keys_as_they_come_and_go() -> None:
    storage = RecordingStorage({"/a/b": 1})
    assert storage.namespaces() == {"/a/"}
    storage["/x/y/z"] = 2
    assert storage.namespaces() == {"/a/", "/x/", "/x/y/"}
    del storage["/a/b"]
    assert storage.namespaces() == {"/x/", "/x/y/"}
    assert sorted(BlackboardView(storage)) == ["x"]


def test_recorded_integers_beyond_64_bits_are_their_exact_text() -> None:
    assert jsonable({"a": [2**63 - 1, -(2**63), 2**63, -(2**64)]}) == {
        "a": [2**63 - 1, -(2**63), "9223372036854775808", "-18446744073709551616"]
    }
    assert jsonable(10**5000) == "<an integer of 16610 bits>"
