"""Prices by model: a dated id pays its family's price, an unknown model has no cost, and an
override is checked before it replaces a price."""

from __future__ import annotations

import pytest

from canopy.bridge import InvalidArgument
from canopy.server.llm import Usage
from canopy.server.llm.costs import DEFAULT_PRICES, CostTable, Price


def test_a_dated_model_id_takes_its_familys_price() -> None:
    table = CostTable()
    assert table.price("claude-sonnet-4-5-20250929") == Price(3.0, 15.0)
    assert table.price("claude-opus-4-1-20250805") == Price(15.0, 75.0)  # not claude-opus-4's
    assert table.price("claude-opus-4-5-20251101") == Price(5.0, 25.0)
    assert table.price("claude-haiku-4-5") == DEFAULT_PRICES["claude-haiku-4-5"]
    cost = table.cost("claude-sonnet-4-5-20250929", Usage(input_tokens=2000, output_tokens=500))
    assert cost == pytest.approx((2000 * 3.0 + 500 * 15.0) / 1e6)


def test_an_unknown_model_has_no_cost() -> None:
    table = CostTable()
    assert table.price("gpt-4o") is None
    assert table.cost("gpt-4o", Usage(100, 100)) is None
    assert table.price("claude") is None  # a prefix of families is no family


def test_overrides_replace_and_add_prices() -> None:
    table = CostTable.with_overrides(
        {
            "claude-sonnet-4-5": {"input": 2, "output": 10.5},
            "house-model": {"input": 0, "output": 0},
        }
    )
    assert table.price("claude-sonnet-4-5-20250929") == Price(2.0, 10.5)
    assert table.cost("house-model-v2", Usage(10, 10)) == 0.0
    assert table.price("claude-haiku-4-5") == Price(1.0, 5.0)  # the rest stay the defaults
    assert DEFAULT_PRICES["claude-sonnet-4-5"] == Price(3.0, 15.0)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"input": 1}, "expected input and output"),
        ({"input": 1, "output": 2, "cache": 3}, "expected input and output"),
        (3.0, "expected input and output"),
        ({"input": -1, "output": 2}, "expected numbers ≥ 0"),
        ({"input": "1", "output": 2}, "expected numbers ≥ 0"),
        ({"input": True, "output": 2}, "expected numbers ≥ 0"),
    ],
)
def test_a_bad_override_is_refused_naming_its_model(entry: object, words: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        CostTable.with_overrides({"claude-sonnet-4-5": entry})
    assert "'claude-sonnet-4-5'" in str(raised.value)
    assert words in str(raised.value)
