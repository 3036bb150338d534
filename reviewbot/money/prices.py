"""``reviewbot prices [MODEL]``: which price applies to the configured endpoint and model, and why.

    reviewbot prices                                   # the configured model (REVIEWBOT_MODEL)
    reviewbot prices gpt-4o --base-url https://api.openai.com/v1
    reviewbot prices o3 --base-url https://api.openai.com/v1 --date 2025-06-01
    reviewbot prices --format json

It walks the layers a review's cost goes through (:mod:`reviewbot.engine.price_layers`) and says
what each knows of the model, which one applies, the labelled estimate a cost note would add
while the price is unknown, and the reference models' prices. Nothing is sent to the endpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from reviewbot.engine import price_db
from reviewbot.engine.price_layers import Estimate, Prices, Quote
from reviewbot.engine.price_table import Price
from reviewbot.engine.usage import Usage
from reviewbot.render.json_out import quote_to_dict
from reviewbot.settings import load_settings

FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class LayerView:
    """What one layer knows of the model: its price, or why it has none; and whether it applies."""

    layer: str
    price: Price | None
    note: str
    applies: bool = False


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``reviewbot prices`` on the command line's subcommands."""
    prices = commands.add_parser(
        "prices",
        help="show which price applies to the configured endpoint and model, and where it comes from",
        description="Show, layer by layer, the price a review of MODEL at the configured endpoint would be "
        "charged at: the endpoint's own figure, the operator's settings, reviewbot's table, or genai-prices.",
    )
    prices.add_argument("model", nargs="?", help="model name (default: REVIEWBOT_MODEL)")
    prices.add_argument("--base-url", help="OpenAI-compatible base URL (default: REVIEWBOT_BASE_URL)")
    prices.add_argument("--provider", help="genai-prices provider whose prices apply (REVIEWBOT_PRICE_PROVIDER)")
    prices.add_argument(
        "--date", type=_parse_date, metavar="YYYY-MM-DD", help="prices of this day, at noon UTC (default: now)"
    )
    prices.add_argument("--format", "-f", choices=FORMATS, default="text", help="output format (default: text)")


def run(args: argparse.Namespace) -> int:
    """``reviewbot prices``: print the layers; 0 whether or not a price is known."""
    settings = load_settings(base_url=args.base_url, price_provider=args.provider)
    model = args.model or settings.model
    at = args.date or datetime.now(UTC)
    prices = Prices.from_settings(settings)
    views = layers(prices, model, at)
    sys.stdout.write(
        render_json(prices, model, at, views) if args.format == "json" else render_text(prices, model, at, views)
    )
    return 0


def layers(prices: Prices, model: str, at: datetime) -> list[LayerView]:
    """Each layer in order, with what it knows of ``model`` on ``at``."""
    quote = prices.quote(model, at)
    applying = {quote.source.layer, quote.filled_from.layer if quote.filled_from else ""} if quote else set()
    own = prices.operator.lookup(model)
    views = [
        LayerView("endpoint", None, "the endpoint's own figure for a request, when it sends one (usage.cost); it wins"),
        LayerView(
            "settings",
            own,
            "the operator's prices"
            if own
            else "not set (REVIEWBOT_INPUT_PRICE, REVIEWBOT_OUTPUT_PRICE, REVIEWBOT_PRICES)",
            "settings" in applying,
        ),
    ]
    provider = prices.provider
    table = prices.table.lookup(model)
    if provider is not None:
        views.append(LayerView("reviewbot", None, f"not used: genai-prices prices {provider.name}'s endpoint"))
    elif prices.local:
        views.append(LayerView("reviewbot", None, "not used: a local endpoint publishes no price"))
    else:
        note = f"{table.label}, from the default endpoint's published prices" if table else "no price of this model"
        views.append(LayerView("reviewbot", table, note, "reviewbot" in applying))
    views.append(_database_view(prices, model, at, "genai-prices" in applying))
    return views


def _database_view(prices: Prices, model: str, at: datetime, applies: bool) -> LayerView:
    provider = prices.provider
    where = f"genai-prices {price_db.version()}"
    if provider is None:
        if prices.local:
            why = "a local endpoint; REVIEWBOT_PRICE_PROVIDER names the provider it forwards to, if any"
        else:
            why = f"{where} knows no provider at {prices.base_url}; REVIEWBOT_PRICE_PROVIDER names one"
        return LayerView("genai-prices", None, f"not used: {why}")
    how = "named by REVIEWBOT_PRICE_PROVIDER" if prices.provider_id else "at the base URL"
    found = price_db.find(model, provider)
    if found is None:
        return LayerView("genai-prices", None, f"{provider.name} ({how}) has no price of this model in {where}")
    tiers = ", rising with the prompt's size" if price_db.tiered(found, at) else ""
    note = f"{provider.name} ({how}) as {found.id}{tiers}, {where}"
    return LayerView("genai-prices", price_db.price(found, at), note, applies)


def render_text(prices: Prices, model: str, at: datetime, views: list[LayerView]) -> str:
    lines = [
        f"Prices of {model} at {prices.base_url} on {at:%Y-%m-%d}, USD per million tokens; "
        "the first layer that knows a price wins.",
        "",
    ]
    width = max(len(view.layer) for view in views)
    for number, view in enumerate(views, 1):
        price = f"{_rates(view.price)}: " if view.price is not None else ""
        mark = "  <- applies" if view.applies else ""
        lines.append(f"  {number}  {view.layer.ljust(width)}  {price}{view.note}{mark}")
    lines += ["", *_summary(prices, model, at)]
    return "\n".join(lines) + "\n"


def _summary(prices: Prices, model: str, at: datetime) -> list[str]:
    quote = prices.quote(model, at)
    if quote is None:
        lines = [
            f"No price of {model} is known here: a review's cost will be unknown (never $0) unless the endpoint "
            "reports it. Set REVIEWBOT_INPUT_PRICE and REVIEWBOT_OUTPUT_PRICE (USD per million tokens)."
        ]
    else:
        lines = [f"Applies: {_rates(quote.price)}, {quote.describe()}."]
        if missing := quote.missing(Usage(1, 1)):
            names = " and ".join(f"REVIEWBOT_{side.upper()}_PRICE" for side in missing)
            lines.append(f"A review's cost will be unknown (never $0) until {names} is set (USD per million tokens).")
    if found := _estimate(prices, model, at, quote):
        estimate, price = found
        lines.append(
            f"Estimate: {_rates(price)} {estimate.describe()} ({estimate.model.id} in genai-prices), "
            "shown beside the unknown cost, never as the cost."
        )
    references = ", ".join(f"{quote.price.label} ({_rates(quote.price)})" for _, quote in prices.references(at))
    lines.append(f"Compared with: {references}.")
    return lines


def _estimate(prices: Prices, model: str, at: datetime, quote: Quote | None) -> tuple[Estimate, Price] | None:
    """While a side of the price is unknown: the other provider's price a cost note's estimate would use."""
    if quote is not None and not quote.missing(Usage(1, 1)):
        return None
    found = prices.estimate(Usage(1, 1, requests=1), model, at)
    return (found, price_db.price(found.model, at)) if found is not None else None


def render_json(prices: Prices, model: str, at: datetime, views: list[LayerView]) -> str:
    quote = prices.quote(model, at)
    estimate = _estimate(prices, model, at, quote)
    document = {
        "model": model,
        "base_url": prices.base_url,
        "date": at.date().isoformat(),
        "provider": prices.provider.id if prices.provider is not None else None,
        "local": prices.local,
        "layers": [
            {"layer": view.layer, "price": _json_price(view.price), "note": view.note, "applies": view.applies}
            for view in views
        ],
        "price": quote_to_dict(quote) if quote is not None else None,
        "estimate": None
        if estimate is None
        else {
            "source": f"genai-prices:{estimate[0].model.provider.id}",
            "model": estimate[0].model.id,
            **(_json_price(estimate[1]) or {}),
        },
        "comparisons": [
            {**quote_to_dict(quote), "model": name, "label": quote.price.label} for name, quote in prices.references(at)
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _json_price(price: Price | None) -> dict[str, float | None] | None:
    """USD per million tokens by side; null where unknown."""
    if price is None:
        return None
    return {"input": price.input, "cached_input": price.cached_input, "output": price.output}


def _rates(price: Price) -> str:
    sides = [("input", price.input)]
    if price.cached_input is not None:
        sides.append(("cached input", price.cached_input))
    sides.append(("output", price.output))
    return ", ".join(f"{name} {_dollars(rate)}" for name, rate in sides)


def _dollars(rate: float | None) -> str:
    if rate is None:
        return "unknown"
    return f"${rate:,.2f}" if round(rate, 2) == rate else f"${rate:g}"


def _parse_date(value: str) -> datetime:
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").replace(hour=12, tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None
