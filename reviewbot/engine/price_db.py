"""The price database: pydantic's ``genai-prices``, and the only module that imports it.

genai-prices is a maintained, provider-aware database of model prices (per million tokens, with
cache-read rates, tiers, and the dates prices changed). Its package carries a snapshot of the
data, and reviewbot reads only that snapshot: it never asks for updates, so pricing needs no
network and a figure can be reproduced from the installed version. Upgrading the package
upgrades the prices.

A provider is found by its API's URL (``https://openrouter.ai/api/v1`` is OpenRouter) or named
by its id; a model by the provider's own names for it. The import is deferred to the first
lookup (it loads the data of hundreds of models), and every lookup is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from reviewbot.engine.price_table import Price
from reviewbot.engine.usage import Usage

if TYPE_CHECKING:
    from genai_prices.types import ModelPrice, PriceCalculation, Provider, TieredPrices

# Where a model is looked for when the provider is not named: the provider whose model names it
# matches (gpt-… is OpenAI's), then OpenRouter, which serves the most models under their makers' names.
_WIDEST = "openrouter"


@dataclass(frozen=True, slots=True)
class DbProvider:
    """A provider of the database: its id (``openrouter``) and the name people know it by."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class DbModel:
    """A model as one provider prices it: ``ref`` is the name it was found by, ``id`` the database's."""

    provider: DbProvider
    ref: str
    id: str
    name: str


def version() -> str:
    """The installed genai-prices version, whose snapshot the prices come from."""
    from genai_prices import __version__

    return __version__


def provider_at(base_url: str) -> DbProvider | None:
    """The provider whose API lives at ``base_url``, or None (a local server, an unknown gateway)."""
    return _provider(None, base_url)


def provider_named(provider_id: str) -> DbProvider | None:
    """The provider of this id (or one of its usual spellings: ``together-ai``), or None."""
    return _provider(provider_id.strip().lower(), None)


def provider_ids() -> tuple[str, ...]:
    """Every provider the database knows, by id."""
    return tuple(provider.id for provider in _snapshot_providers())


def find(model: str, provider: DbProvider | None = None) -> DbModel | None:
    """The model as ``provider`` prices it; with no provider, as its maker or OpenRouter does."""
    if provider is not None:
        return _find(model.strip(), provider.id)
    return _find(model.strip(), None) or _find(model.strip(), _WIDEST)


def price(model: DbModel, at: datetime) -> Price:
    """The model's rates at ``at``, the base rate where a price is tiered by prompt size."""
    rates = _calculate(model, Usage(), at).model_price
    return Price(
        label=model.name,
        input=_rate(rates, "input_mtok"),
        output=_rate(rates, "output_mtok"),
        cached_input=_rate(rates, "cache_read_mtok"),
    )


def tiered(model: DbModel, at: datetime) -> bool:
    """Whether the model's price at ``at`` depends on the size of the prompt."""
    from genai_prices.types import TieredPrices

    rates = _calculate(model, Usage(), at).model_price
    return any(isinstance(getattr(rates, key), TieredPrices) for key in ("input_mtok", "output_mtok"))


def cost(model: DbModel, usage: Usage, at: datetime) -> float:
    """What ``usage`` costs at the model's price on ``at``: cached input at the cache rate, tiers applied."""
    return float(_calculate(model, usage, at).total_price)


def _calculate(model: DbModel, usage: Usage, at: datetime) -> PriceCalculation:
    from genai_prices import Usage as Tokens
    from genai_prices import calc_price

    tokens = Tokens(
        input_tokens=usage.input_tokens,
        # genai-prices counts cache reads inside input_tokens, as OpenAI does.
        cache_read_tokens=min(usage.cached_tokens, usage.input_tokens),
        output_tokens=usage.output_tokens,
    )
    return calc_price(tokens, model.ref, provider_id=model.provider.id, genai_request_timestamp=at)


def _rate(rates: ModelPrice, key: str) -> float | None:
    value: Decimal | TieredPrices | None = getattr(rates, key)
    if value is None:
        return None
    return float(value if isinstance(value, Decimal) else value.base)


@lru_cache(maxsize=1024)
def _find(model: str, provider_id: str | None) -> DbModel | None:
    from genai_prices import Usage as Tokens
    from genai_prices import calc_price

    try:
        # Without a provider, genai-prices picks the one whose model names match (gpt-… is OpenAI).
        found = calc_price(Tokens(), model, provider_id=provider_id)
    except LookupError:
        return None
    provider = DbProvider(found.provider.id, found.provider.name)
    return DbModel(provider, model, found.model.id, found.model.name or found.model.id)


@lru_cache(maxsize=256)
def _provider(provider_id: str | None, base_url: str | None) -> DbProvider | None:
    from genai_prices.data_snapshot import get_snapshot

    try:
        found: Provider = get_snapshot().find_provider(None, provider_id, base_url)
    except LookupError:
        return None
    return DbProvider(found.id, found.name)


def _snapshot_providers() -> list[Provider]:
    from genai_prices.data_snapshot import get_snapshot

    return get_snapshot().providers
