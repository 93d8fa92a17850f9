"""What a call cost, in US dollars, from its token usage and a per-model price table.

Prices change and deployments negotiate their own, so the table is configuration: the defaults
below are Anthropic's list prices per million tokens, and ``canopy.toml`` may replace or add
entries. A model missing from the table has no cost (None), never a guessed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from canopy.bridge import InvalidArgument

from .model import Usage

__all__ = ["DEFAULT_PRICES", "CostTable", "Price"]


@dataclass(frozen=True)
class Price:
    """US dollars per million input and output tokens."""

    input: float
    output: float


DEFAULT_PRICES: Final[Mapping[str, Price]] = MappingProxyType(
    {
        "claude-opus-4-5": Price(5.0, 25.0),
        "claude-opus-4-1": Price(15.0, 75.0),
        "claude-opus-4": Price(15.0, 75.0),
        "claude-sonnet-4-5": Price(3.0, 15.0),
        "claude-sonnet-4": Price(3.0, 15.0),
        "claude-haiku-4-5": Price(1.0, 5.0),
        "claude-3-5-haiku": Price(0.8, 4.0),
    }
)
"""List prices by model family; a dated model id (``claude-sonnet-4-5-20250929``) takes the
price of the longest family name it starts with."""


class CostTable:
    """Prices by model; :meth:`cost` of a call's usage."""

    def __init__(self, prices: Mapping[str, Price] = DEFAULT_PRICES) -> None:
        self.prices = dict(prices)

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, object]) -> CostTable:
        """The default table with ``overrides`` (model -> ``{input = $, output = $}`` per
        million tokens, as ``canopy.toml`` gives them) on top; InvalidArgument names a bad
        entry."""
        prices = dict(DEFAULT_PRICES)
        for model, entry in overrides.items():
            if not isinstance(entry, Mapping) or set(entry) != {"input", "output"}:
                raise InvalidArgument(f"price of {model!r}: expected input and output")
            values = [entry["input"], entry["output"]]
            if not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values
            ):
                raise InvalidArgument(f"price of {model!r}: expected numbers ≥ 0 (USD per Mtok)")
            prices[model] = Price(float(values[0]), float(values[1]))
        return cls(prices)

    def price(self, model: str) -> Price | None:
        """The price of ``model``: exact, else the longest family name it starts with."""
        if model in self.prices:
            return self.prices[model]
        families = [name for name in self.prices if model.startswith(name)]
        return self.prices[max(families, key=len)] if families else None

    def cost(self, model: str, usage: Usage) -> float | None:
        """US dollars for ``usage`` on ``model``; None when the model has no price."""
        price = self.price(model)
        if price is None:
            return None
        return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1e6
