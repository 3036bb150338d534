"""Prices per million tokens, the cost of a review, and the cost note people read.

The table ships as package data (``data/prices.toml``); operators override any entry. A price
the table does not know stays unknown: the note says so and how to set it, and never shows $0.
When the endpoint reports its own cost (OpenRouter's ``usage.cost``), that figure wins.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from reviewbot.engine.usage import Usage

# The reference models every cost note compares against.
REFERENCE_MODELS = ("gpt-4o", "claude-3-5-sonnet")
_PER_TOKEN = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens; None where nobody has said."""

    label: str
    input: float | None
    output: float | None

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """Exact cost of these tokens, or None if a price needed for it is unknown."""
        total = 0.0
        if input_tokens:
            if self.input is None:
                return None
            total += input_tokens * self.input / _PER_TOKEN
        if output_tokens:
            if self.output is None:
                return None
            total += output_tokens * self.output / _PER_TOKEN
        return total


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by normalised model name, with aliases folded in."""

    prices: Mapping[str, Price]

    def lookup(self, model: str) -> Price | None:
        """The price of ``model``: the entry whose name is the longest prefix of its normalised name."""
        name = normalise_model_name(model)
        best: str | None = None
        for key in self.prices:
            if name.startswith(key) and (best is None or len(key) > len(best)):
                best = key
        return self.prices[best] if best is not None else None

    def with_overrides(self, overrides: Mapping[str, tuple[float | None, float | None]]) -> PriceTable:
        """A table where each named model's known sides take the operator's figures."""
        merged = dict(self.prices)
        for model, (input_price, output_price) in overrides.items():
            key = normalise_model_name(model)
            base = self.lookup(model) or Price(label=model, input=None, output=None)
            merged[key] = Price(
                label=base.label,
                input=input_price if input_price is not None else base.input,
                output=output_price if output_price is not None else base.output,
            )
        return PriceTable(merged)


def normalise_model_name(model: str) -> str:
    """``Qwen/Qwen3-Coder-30B-A3B-Instruct`` → ``qwen3-coder-30b-a3b-instruct``."""
    return model.rsplit("/", 1)[-1].strip().lower()


@cache
def default_price_table() -> PriceTable:
    """The table shipped with reviewbot."""
    raw = tomllib.loads(resources.files("reviewbot").joinpath("data/prices.toml").read_text("utf-8"))
    prices: dict[str, Price] = {}
    for name, entry in raw["models"].items():
        price = Price(label=entry["label"], input=entry.get("input"), output=entry.get("output"))
        for key in (name, *entry.get("aliases", ())):
            prices[normalise_model_name(key)] = price
    return PriceTable(prices)


@dataclass(frozen=True, slots=True)
class Comparison:
    label: str
    usd: float | None


@dataclass(frozen=True, slots=True)
class CostReport:
    """What a set of requests cost, and what the same tokens would have cost elsewhere."""

    model: str
    usage: Usage
    usd: float | None
    source: str  # "endpoint", "price table" or "unknown"
    missing: tuple[str, ...]  # the price sides we lacked: "input", "output"
    comparisons: tuple[Comparison, ...]
    partial_usd: float | None = None  # when the cost is unknown: what the sides we do know come to

    @property
    def known(self) -> bool:
        return self.usd is not None


def cost_report(usage: Usage, model: str, table: PriceTable) -> CostReport:
    """Price ``usage`` for ``model``: the endpoint's own figure, else tokens × the table's price."""
    price = table.lookup(model)
    missing: list[str] = []
    if price is None or (usage.input_tokens and price.input is None):
        missing.append("input")
    if price is None or (usage.output_tokens and price.output is None):
        missing.append("output")
    if usage.cost_usd is not None:
        usd: float | None = usage.cost_usd
        source = "endpoint"
    elif price is not None and (usd := price.cost(usage.input_tokens, usage.output_tokens)) is not None:
        source = "price table"
    else:
        usd, source = None, "unknown"
    comparisons = []
    for reference in REFERENCE_MODELS:
        reference_price = table.lookup(reference)
        assert reference_price is not None  # the shipped table always has the reference models
        comparisons.append(
            Comparison(reference_price.label, reference_price.cost(usage.input_tokens, usage.output_tokens))
        )
    partial = None
    if source == "unknown" and price is not None:
        known_input = usage.input_tokens if price.input is not None else 0
        known_output = usage.output_tokens if price.output is not None else 0
        partial = price.cost(known_input, known_output) or None
    return CostReport(
        partial_usd=partial,
        model=model,
        usage=usage,
        usd=usd,
        source=source,
        missing=tuple(missing) if source == "unknown" else (),
        comparisons=tuple(comparisons),
    )


def format_usd(usd: float | None) -> str:
    """Dollars with enough digits that a review costing a fraction of a cent still shows it."""
    if usd is None:
        return "unknown"
    if usd == 0:
        return "$0.00"
    if usd >= 1:
        return f"${usd:,.2f}"
    if usd >= 0.01:
        return f"${usd:.4f}"
    return f"${usd:.6f}"


def cost_note(report: CostReport) -> str:
    """One paragraph: requests, tokens, cost, and the same tokens on the reference models."""
    usage = report.usage
    plural = "" if usage.requests == 1 else "s"
    parts = [
        f"{usage.requests} request{plural} to {report.model}",
        f"{usage.input_tokens:,} input + {usage.output_tokens:,} output tokens",
    ]
    if usage.reasoning_tokens:
        parts[-1] += f" (of which {usage.reasoning_tokens:,} reasoning)"
    if report.usd is not None:
        suffix = " as reported by the endpoint" if report.source == "endpoint" else ""
        parts.append(f"cost {format_usd(report.usd)}{suffix}")
    else:
        sides = " and ".join(report.missing)
        hint = _price_hint(report.missing)
        known = f"; the known side alone is {format_usd(report.partial_usd)}" if report.partial_usd else ""
        parts.append(f"cost unknown ({sides} price of {report.model} not known{known}; set {hint})")
    comparisons = ", ".join(f"{c.label} {format_usd(c.usd)}" for c in report.comparisons)
    return "; ".join(parts) + f". The same tokens would have cost {comparisons}."


def _price_hint(missing: tuple[str, ...]) -> str:
    names = [f"REVIEWBOT_{side.upper()}_PRICE" for side in missing]
    return " and ".join(names) + " in USD per million tokens"
