"""The bounded JSON decoder every edge uses."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canopy.bridge.errors import InvalidJson
from canopy.bridge.jsondata import MAX_DEPTH, has_long_digits, loads


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_nesting_up_to_the_limit_is_read() -> None:
    value = loads(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1024, 100_000])
def test_deeper_nesting_is_refused_where_it_goes_too_deep(depth: int) -> None:
    text = b'{\n "a": "[[[{{", "b": ' + nested(depth) + b"}"
    with pytest.raises(InvalidJson) as raised:
        loads(text)
    assert str(raised.value) == f"nested deeper than {MAX_DEPTH} levels (line 2, column 148)"


def test_brackets_inside_strings_do_not_count() -> None:
    assert loads(b'["' + b"[" * 1000 + b'"]') == ["[" * 1000]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b'{"a": NaN}', "unexpected character"),
        (b'{"a": "\xff"}', "not valid UTF-8"),
        (b'{"a": 1', "unexpected end"),
    ],
)
def test_what_is_not_strict_json_is_refused_with_its_place(text: bytes, problem: str) -> None:
    with pytest.raises(InvalidJson) as raised:
        loads(text)
    assert problem in str(raised.value)
    assert raised.value.line == 1


def test_integers_are_exact_whatever_their_width() -> None:
    text = b"[9223372036854775807, -9223372036854775809, 18446744073709551616, 1.5e300]"
    assert loads(text) == [2**63 - 1, -(2**63) - 1, 2**64, 1.5e300]


def test_a_number_past_any_float_is_refused() -> None:
    with pytest.raises(InvalidJson, match="number is infinity when parsed as double"):
        loads(b"[" + b"1" * 5000 + b"]")


@given(
    st.lists(st.sampled_from([b"0", b"5", b"9", b"1", b" ", b"-", b".", b"e", b'"']), max_size=80)
)
def test_a_run_of_19_digits_is_found_exactly_where_a_pattern_finds_it(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert has_long_digits(data) == (re.search(rb"[0-9]{19}", data) is not None)


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"9223372036854775807", True),
        (b'{"t": 1765151234567890, "n": 123456789012345678}', False),
        (b"[1234567890123456789]", True),
        (b"99999999999999999 99", False),
    ],
)
def test_long_digit_runs_are_found_by_width(data: bytes, found: bool) -> None:
    assert has_long_digits(data) is found
