"""Hypothesis strategies for hostile JSON, shared by the property tests of every edge that
reads JSON from outside (HTTP bodies, DAP messages, tree files).

Values are built as Python data and written with :func:`json_text`, which escapes every
non-ASCII character: a lone surrogate (``"\\ud800"``), which no valid UTF-8 text holds, can then
travel as its JSON escape, exactly as a hostile client would send it.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

INT64 = 2**63
LONE_SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\udc00b", "\ud83d"])
"""Strings no UTF-8 text can hold; JSON can name them by escape."""

edge_integers = st.sampled_from([INT64 - 1, -INT64, INT64, -INT64 - 1, 2**64, 10**30, -(10**300)])
integers = st.integers() | edge_integers
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.1, -0.0, 1e308, 5e-324, 1.7976931348623157e308, 1.0, 2.0**63]
)
texts = st.text(max_size=40) | LONE_SURROGATES
scalars = st.none() | st.booleans() | integers | floats | texts


def values(max_leaves: int = 20, *, surrogates: bool = True) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars, arrays and objects, nested a few levels; without lone
    surrogates on request (every value holding one is refused, so a property about accepted
    values needs some without)."""
    text = texts if surrogates else st.text(max_size=40)
    leaves = st.none() | st.booleans() | integers | floats | text
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=max_leaves,
    )


@st.composite
def deep(draw: st.DrawFn, low: int = 100, high: int = 300) -> Any:
    """A value nested between ``low`` and ``high`` levels: around the 128-level bound."""
    value: Any = draw(scalars)
    for _ in range(draw(st.integers(low, high))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


def json_text(value: Any) -> bytes:
    """``value`` as JSON text: ASCII, lone surrogates escaped."""
    return json.dumps(value).encode("ascii")


def same(sent: Any, got: Any) -> bool:
    """Whether ``got`` is exactly ``sent``: same types all the way down (``1``, ``1.0`` and
    ``True`` differ), same floats to the bit, same keys."""
    if type(sent) is not type(got):
        return False
    if isinstance(sent, dict):
        return sent.keys() == got.keys() and all(same(sent[k], got[k]) for k in sent)
    if isinstance(sent, list):
        return len(sent) == len(got) and all(map(same, sent, got))
    if isinstance(sent, float):
        return sent.hex() == got.hex()
    return bool(sent == got)
