"""The cost of a review and the cost note people read.

The price comes from the first layer that knows it (:mod:`reviewbot.engine.price_layers`): the
endpoint's own figure, the operator's prices, reviewbot's table, or the price database; the note
names which. A price nobody knows stays unknown: the note says so and how to set it, and never
shows $0. It may add what the tokens would cost at another provider's price of the same model,
labelled as an estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from reviewbot.engine.price_layers import Comparison, Estimate, Prices, PriceSource, Quote
from reviewbot.engine.result import ReviewResult
from reviewbot.engine.usage import Usage

_CENTS, _FOUR, _SIX = Decimal("0.01"), Decimal("0.0001"), Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class CostReport:
    """What a set of requests cost, and what the same tokens would have cost elsewhere.

    ``source`` is ``"endpoint"``, ``"price table"`` (tokens × a price, from any layer but the
    endpoint) or ``"unknown"``; ``price_source`` names the layer itself.
    """

    model: str
    usage: Usage
    usd: float | None
    source: str
    missing: tuple[str, ...]  # the price sides we lacked: "input", "output"
    comparisons: tuple[Comparison, ...]
    partial_usd: float | None = None  # when the cost is unknown: what the sides we do know come to
    price_source: PriceSource | None = None  # None: unknown
    quote: Quote | None = None  # the price the tokens were (or would have been) priced at
    estimate: Estimate | None = None  # while the cost is unknown: another provider's price of the model
    by_model: tuple[CostReport, ...] = ()  # when fallbacks answered some requests: each model's own share

    @property
    def known(self) -> bool:
        return self.usd is not None

    @property
    def price_source_key(self) -> str:
        return self.price_source.key if self.price_source is not None else "unknown"


def cost_report(
    usage: Usage, model: str, prices: Prices, *, parts: Sequence[Usage] = (), at: datetime | None = None
) -> CostReport:
    """Price ``usage`` (the sum of the requests ``parts``, each priced on its own when given) for ``model``."""
    priced = prices.cost(usage, model, at, parts)
    known = priced.source is not None
    return CostReport(
        model=model,
        usage=usage,
        usd=priced.usd,
        source=("endpoint" if priced.source.layer == "endpoint" else "price table") if priced.source else "unknown",
        missing=priced.missing,
        comparisons=prices.comparisons(usage, at, parts),
        partial_usd=priced.partial_usd,
        price_source=priced.source,
        quote=priced.quote,
        estimate=None if known else prices.estimate(usage, model, at, parts),
    )


def review_cost(result: ReviewResult, prices: Prices, *, at: datetime | None = None) -> CostReport:
    """What a review cost: its requests priced one by one, summed; each by the price of the model
    that answered it (a fallback's, when the configured model failed)."""
    by_model: dict[str, list[Usage]] = {}
    for call in result.calls:
        if call.usage.requests:
            by_model.setdefault(call.model, []).append(call.usage)
    if set(by_model) <= {result.model}:
        parts = tuple(by_model.get(result.model, ()))
        return cost_report(result.usage, result.model, prices, parts=parts, at=at)
    reports = tuple(
        cost_report(sum(parts, Usage()), model, prices, parts=parts, at=at) for model, parts in by_model.items()
    )
    known = all(report.usd is not None for report in reports)
    sources = {report.source for report in reports}
    # One model answered every request (a fallback, the configured one having failed): its price is
    # the review's. Several did: each share names its own, and the whole names none.
    only = reports[0] if len(reports) == 1 else None
    return CostReport(
        model=result.model,
        usage=result.usage,
        usd=sum(report.usd or 0.0 for report in reports) if known else None,
        source=sources.pop() if known and len(sources) == 1 else ("price table" if known else "unknown"),
        missing=tuple(dict.fromkeys(side for report in reports for side in report.missing)),
        comparisons=prices.comparisons(result.usage, at, [part for parts in by_model.values() for part in parts]),
        price_source=only.price_source if only is not None else None,
        quote=only.quote if only is not None else None,
        by_model=reports,
    )


def format_usd(usd: float | Decimal | None) -> str:
    """Dollars with enough digits that a review costing a fraction of a cent still shows it.

    One rounding rule everywhere: the amount as written in decimal (a float by its shortest
    repr, so $0.0004955 is 0.0004955, not the binary fraction next to it), rounded half up to
    2 places from $1, 4 from a cent, else 6.
    """
    if usd is None:
        return "unknown"
    amount = usd if isinstance(usd, Decimal) else Decimal(repr(float(usd)))
    if amount == 0:
        return "$0.00"
    if amount < _SIX / 2:
        return "< $0.000001"  # a cost that rounds to nothing is still not free
    places = _CENTS if amount >= 1 else _FOUR if amount >= Decimal("0.01") else _SIX
    return f"${amount.quantize(places, rounding=ROUND_HALF_UP):,}"


def cost_note(report: CostReport) -> str:
    """One paragraph: requests, tokens, cost and where its price comes from, and the reference models."""
    if report.by_model:
        return _models_note(report)
    usage = report.usage
    if not usage.requests and not usage.input_tokens and not usage.output_tokens:
        # Nothing answered (everything skipped, or every request failed): nothing to price.
        return f"No request to {report.model} was answered, so there is nothing to pay for."
    plural = "" if usage.requests == 1 else "s"
    about = "~" if usage.estimated else ""
    tokens = f"{about}{usage.input_tokens:,} input"
    if usage.cached_tokens:
        tokens += f" ({usage.cached_tokens:,} cached)"
    parts = [
        f"{usage.requests} request{plural} to {report.model}",
        f"{tokens} + {about}{usage.output_tokens:,} output tokens",
    ]
    if usage.reasoning_tokens:
        parts[-1] += f" (of which {usage.reasoning_tokens:,} reasoning)"
    if report.usd is not None:
        source = report.quote or report.price_source  # the endpoint's own figure has no quote
        how = f" {source.describe()}" if source is not None else ""
        parts.append(f"cost {format_usd(report.usd)}{how}")
    elif usage.estimated:
        some = "" if usage.estimated_requests == usage.requests else f" for {usage.estimated_requests} of them"
        parts.append(
            f"cost unknown (the endpoint reported no token counts{some}; the counts shown are estimated "
            "from the text, and no price is applied to an estimate)"
        )
    else:
        sides = " and ".join(report.missing)
        known = f"; the known side alone is {format_usd(report.partial_usd)}" if report.partial_usd else ""
        parts.append(
            f"cost unknown ({sides} price of {report.model} not known{known}; set {_price_hint(report.missing)})"
        )
        if report.estimate is not None:
            parts.append(f"estimate ≈ {format_usd(report.estimate.usd)} {report.estimate.describe()}")
    comparisons = ", ".join(f"{c.label} {format_usd(c.usd)}" for c in report.comparisons)
    return "; ".join(parts) + f". The same tokens would have cost {comparisons}."


def _models_note(report: CostReport) -> str:
    """The note of a review that more than one model answered: each model's requests and cost."""
    shares = []
    for part in report.by_model:
        requests = f"{part.usage.requests} request{'' if part.usage.requests == 1 else 's'}"
        role = "" if part.model == report.model else " (fallback)"
        if part.usd is not None:
            cost = format_usd(part.usd)
        elif part.usage.estimated:
            cost = "cost unknown: the endpoint reported no token counts"
        else:
            cost = f"cost unknown: no {' and '.join(part.missing) or 'known'} price"
        shares.append(f"{requests} to {part.model}{role}, {cost}")
    usage = report.usage
    about = "~" if usage.estimated else ""
    total = f"cost {format_usd(report.usd)}" if report.usd is not None else "cost unknown"
    comparisons = ", ".join(f"{c.label} {format_usd(c.usd)}" for c in report.comparisons)
    return (
        f"{'; '.join(shares)}; {about}{usage.input_tokens:,} input + {about}{usage.output_tokens:,} output tokens "
        f"in all; {total}. The same tokens would have cost {comparisons}."
    )


def _price_hint(missing: tuple[str, ...]) -> str:
    names = [f"REVIEWBOT_{side.upper()}_PRICE" for side in missing]
    return " and ".join(names) + " in USD per million tokens"
