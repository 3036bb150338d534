"""Prices per million tokens kept by reviewbot itself, and the operator's own in the same shape.

The table ships as package data (``data/prices.toml``): the default endpoint's published prices,
and the seed's GPT-4o and Claude 3.5 Sonnet figures every cost note compares against. It prices
only endpoints the price database does not know (see :mod:`reviewbot.engine.price_layers`). A
price nobody published stays None: it is reported as unknown, never as $0.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources

_PER_TOKEN = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens; None where nobody has said.

    ``cached_input`` is the rate of input tokens served from the provider's prompt cache; when
    it is unknown they are priced as any other input token (what a provider without a cache
    discount charges).
    """

    label: str
    input: float | None
    output: float | None
    cached_input: float | None = None

    def missing(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> tuple[str, ...]:
        """The sides these tokens need a price for that this price lacks: ``"input"``, ``"output"``."""
        cached = min(cached_tokens, input_tokens)
        needs_input = input_tokens > cached or (cached > 0 and self.cached_input is None)
        sides = (("input", needs_input and self.input is None), ("output", output_tokens > 0 and self.output is None))
        return tuple(side for side, lacking in sides if lacking)

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float | None:
        """Exact cost of these tokens, or None if a price needed for it is unknown."""
        if self.missing(input_tokens, output_tokens, cached_tokens):
            return None
        cached = min(cached_tokens, input_tokens)
        cached_rate = self.cached_input if self.cached_input is not None else self.input
        # Decimal arithmetic on the prices as written: $0.07 × 1,234 tokens is exactly $0.00008638.
        total = Decimal(0)
        for tokens, rate in ((input_tokens - cached, self.input), (cached, cached_rate), (output_tokens, self.output)):
            if tokens:
                assert rate is not None  # missing() found every needed rate
                total += tokens * Decimal(repr(rate))
        return float(total / _PER_TOKEN)

    def known_part(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float | None:
        """What the sides this price knows come to, when another side is unknown; None if nothing is known."""
        known_input = input_tokens if self.input is not None else 0
        known_output = output_tokens if self.output is not None else 0
        return self.cost(known_input, known_output, min(cached_tokens, known_input)) or None


@dataclass(frozen=True, slots=True)
class Entry:
    """A model of the table: its price, and where the database prices the same model, if it does.

    ``same_as`` (``provider:model`` in genai-prices) is used only for a labelled estimate while
    this price lacks a side, never as the cost.
    """

    price: Price
    same_as: str | None = None


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by normalised model name, with aliases folded in."""

    entries: Mapping[str, Entry]

    @classmethod
    def of(cls, prices: Mapping[str, tuple[float | None, float | None]]) -> PriceTable:
        """A table of ``{model: (input, output)}``, each labelled with its model's name."""
        return cls(
            {normalise_model_name(model): Entry(Price(model, *sides)) for model, sides in prices.items()},
        )

    def entry(self, model: str) -> Entry | None:
        """The entry of ``model``: the one whose name is the longest prefix of its normalised name."""
        name = normalise_model_name(model)
        best: str | None = None
        for key in self.entries:
            if name.startswith(key) and (best is None or len(key) > len(best)):
                best = key
        return self.entries[best] if best is not None else None

    def lookup(self, model: str) -> Price | None:
        """The price of ``model``, found as :meth:`entry` finds it."""
        found = self.entry(model)
        return found.price if found is not None else None


def normalise_model_name(model: str) -> str:
    """``Qwen/Qwen3-Coder-30B-A3B-Instruct`` → ``qwen3-coder-30b-a3b-instruct``."""
    return model.rsplit("/", 1)[-1].strip().lower()


@cache
def default_price_table() -> PriceTable:
    """The table shipped with reviewbot."""
    raw = tomllib.loads(resources.files("reviewbot").joinpath("data/prices.toml").read_text("utf-8"))
    entries: dict[str, Entry] = {}
    for name, fields in raw["models"].items():
        price = Price(fields["label"], fields.get("input"), fields.get("output"), fields.get("cached_input"))
        entry = Entry(price, fields.get("same_as"))
        for key in (name, *fields.get("aliases", ())):
            entries[normalise_model_name(key)] = entry
    return PriceTable(entries)
