"""Signatures: the variants of one bug collide, different bugs do not."""

from __future__ import annotations

import pytest

from canopy.server.incidents import Frame
from canopy.server.incidents.signature import frame_names, normalise_message, signature_of

APP = Frame("app/orders.py", "total", 42, True, "app.orders")
CALLER = Frame("app/main.py", "main", 10, True, "app.main")
LIBRARY = Frame("/usr/lib/python3/lib.py", "call", 99, False, "lib")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("user 42 not found", "user 7 not found"),
        ("order_1234 missing", "order_99 missing"),
        (
            "no session 0f8fad5b-d9cb-469f-a165-70867728950e",
            "no session 7C9E6679-7425-40DE-944B-E07FC1F90AE7",
        ),
        ("<Node object at 0x7f3a2b1c9d60>", "<Node object at 0x10a2c4e50>"),
        ("cannot open /tmp/tmpab12cd/data.json", "cannot open /tmp/pytest-of-ann/x/data.json"),
        ("request 5d41402abc4b2a76b9719d911017c592 failed", "request 7215ee9c7d9dc229 failed"),
        ("took 1.25 s", "took 30 s"),
    ],
)
def test_what_varies_in_a_message_is_normalised_away(first: str, second: str) -> None:
    assert normalise_message(first) == normalise_message(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("user not found", "order not found"),
        ("cannot open /home/ann/data.json", "cannot open /home/ann/other.json"),
        ("KeyError 'price'", "KeyError 'count'"),
    ],
)
def test_messages_that_say_different_things_stay_apart(first: str, second: str) -> None:
    assert normalise_message(first) != normalise_message(second)


def test_the_same_bug_collides_across_lines_libraries_recursion_and_messages() -> None:
    base = signature_of("ZeroDivisionError", [CALLER, LIBRARY, APP], "division by zero")
    moved = [
        Frame("app/main.py", "main", 12, True, "app.main", "run()"),
        Frame("/venv/lib/python3.12/lib.py", "invoke", 7, False, "lib"),
        Frame("app/orders.py", "total", 57, True, "app.orders", "x / y"),
        Frame("app/orders.py", "total", 57, True, "app.orders", "x / y"),
    ]
    assert signature_of("ZeroDivisionError", moved, "float division by zero") == base
    assert signature_of("ZeroDivisionError", [CALLER, APP], "other words") == base


def test_different_bugs_do_not_collide() -> None:
    base = signature_of("ZeroDivisionError", [CALLER, APP], "")
    elsewhere = Frame("app/orders.py", "average", 42, True, "app.orders")
    assert signature_of("KeyError", [CALLER, APP], "") != base
    assert signature_of("ZeroDivisionError", [CALLER, elsewhere], "") != base
    assert signature_of("ZeroDivisionError", [APP], "") != base
    assert signature_of("ZeroDivisionError", [APP, CALLER], "") != base


def test_without_frames_the_normalised_message_decides() -> None:
    assert signature_of("", [], "payment 17 declined") == signature_of(
        "", [], "payment 4242 declined"
    )
    assert signature_of("", [], "payment declined") != signature_of("", [], "payment refunded")


def test_library_frames_count_only_when_no_frame_is_in_app() -> None:
    assert frame_names([CALLER, LIBRARY, APP]) == ["app.main:main", "app.orders:total"]
    assert frame_names([LIBRARY]) == ["lib:call"]
    assert frame_names([Frame("/tmp/tmpx1/job.py", "run", 1, True)]) == ["<tmp>:run"]
