"""Which price applies to a model at an endpoint: layers, in order, the first that knows wins.

1. ``endpoint``: the endpoint's own figure for a request (OpenRouter's ``usage.cost``);
2. ``settings``: the operator's prices (``REVIEWBOT_INPUT_PRICE`` / ``REVIEWBOT_OUTPUT_PRICE`` for
   the configured model, ``REVIEWBOT_PRICES`` for any); a side left unset comes from the next
   layer that knows it;
3. ``reviewbot``: reviewbot's own table (:mod:`reviewbot.engine.price_table`), for an endpoint
   the database does not know, such as the default one, whose published prices it holds;
4. ``genai-prices``: the database (:mod:`reviewbot.engine.price_db`), for the provider at the
   base URL (``REVIEWBOT_PRICE_PROVIDER`` names another), at the price of the request's date.

An endpoint is either one the database knows (layer 4) or not (layer 3), never both. A local
endpoint (localhost, a private address, a host name without a dot) is neither: it publishes no
price, so only the first two layers price it. A price nobody knows stays unknown. When another
provider's price of the same model is known, :meth:`Prices.estimate` says what the tokens would
cost there: an estimate, labelled as one, never the cost.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

from reviewbot.engine import price_db
from reviewbot.engine.price_db import DbModel, DbProvider
from reviewbot.engine.price_table import Entry, Price, PriceTable, default_price_table, normalise_model_name
from reviewbot.engine.tokens import ESTIMATED_OUTPUT_TOKENS
from reviewbot.engine.usage import Usage
from reviewbot.errors import ConfigError
from reviewbot.settings import DEFAULT_BASE_URL

if TYPE_CHECKING:
    from reviewbot.settings import Settings

Layer = Literal["endpoint", "settings", "reviewbot", "genai-prices"]
# The models every cost note compares against unless REVIEWBOT_COMPARE_WITH names others: the
# seed's figures, from reviewbot's table.
REFERENCE_MODELS: Final = ("gpt-4o", "claude-3-5-sonnet")
_LOCAL_SUFFIXES: Final = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


@dataclass(frozen=True, slots=True)
class PriceSource:
    """Where a price comes from: the layer, and for the database the provider whose price it is."""

    layer: Layer
    provider: DbProvider | None = None

    @property
    def key(self) -> str:
        """``endpoint``, ``settings``, ``reviewbot`` or ``genai-prices:openrouter``, as the ledger and JSON say it."""
        return f"{self.layer}:{self.provider.id}" if self.provider is not None else self.layer

    def describe(self) -> str:
        """How the cost note says it: ``at OpenRouter's prices (genai-prices)``."""
        if self.layer == "endpoint":
            return "as reported by the endpoint"
        if self.layer == "settings":
            return "at the operator's prices"
        if self.layer == "reviewbot":
            return "at reviewbot's price table"
        name = self.provider.name if self.provider is not None else "the provider"
        return f"at {name}'s prices (genai-prices)"


ENDPOINT: Final = PriceSource("endpoint")
SETTINGS: Final = PriceSource("settings")
TABLE: Final = PriceSource("reviewbot")


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of a model on a date, where it comes from, and how exactly it prices tokens.

    ``db`` is set when the database prices the tokens itself (tiers by prompt size, hours of
    the day, cache rates); ``filled_from`` when the operator set some sides and this layer the rest.
    """

    price: Price
    source: PriceSource
    at: datetime
    db: DbModel | None = None
    filled_from: PriceSource | None = None

    def missing(self, usage: Usage) -> tuple[str, ...]:
        return self.price.missing(usage.input_tokens, usage.output_tokens, usage.cached_tokens)

    def cost(self, parts: Sequence[Usage]) -> float | None:
        """What these requests cost, each priced on its own (a tier applies to one request's prompt)."""
        if any(self.missing(part) for part in parts):
            return None
        if self.db is not None:
            return sum(price_db.cost(self.db, part, self.at) for part in parts)
        total = 0.0
        for part in parts:
            usd = self.price.cost(part.input_tokens, part.output_tokens, part.cached_tokens)
            assert usd is not None  # no side is missing
            total += usd
        return total

    def request_cost(self, prompt_tokens: int, output_tokens: int = ESTIMATED_OUTPUT_TOKENS) -> float | None:
        """What one request of ``prompt_tokens`` is estimated to cost, with a typical answer (or
        ``output_tokens``); None if a side it needs has no price."""
        return self.cost((Usage(prompt_tokens, output_tokens, requests=1),))

    def describe(self) -> str:
        if self.filled_from is None:
            return self.source.describe()
        return f"{self.source.describe()}, the rest {self.filled_from.describe()}"


@dataclass(frozen=True, slots=True)
class Priced:
    """What some tokens cost and where the figure comes from; ``source`` None: unknown.

    ``missing`` names the price sides that were lacking, ``partial_usd`` what the known ones come to.
    """

    usd: float | None
    source: PriceSource | None
    quote: Quote | None = None
    missing: tuple[str, ...] = ()
    partial_usd: float | None = None

    @property
    def key(self) -> str:
        return self.source.key if self.source is not None else "unknown"


@dataclass(frozen=True, slots=True)
class Estimate:
    """What the tokens would cost at another provider's price of the same model: never the cost."""

    usd: float
    model: DbModel

    def describe(self) -> str:
        return f"at {self.model.provider.name}'s price for this model"


@dataclass(frozen=True, slots=True)
class Comparison:
    """What the same tokens would have cost on a reference model (``model`` as configured)."""

    model: str
    label: str
    usd: float | None


@dataclass(frozen=True, slots=True)
class Prices:
    """The price layers for one endpoint; see the module's docstring for their order.

    ``compare_with`` names the reference models priced from the database
    (``REVIEWBOT_COMPARE_WITH``); empty, the seed's figures of GPT-4o and Claude 3.5 Sonnet.
    """

    base_url: str = DEFAULT_BASE_URL
    provider_id: str | None = None
    operator: PriceTable = field(default_factory=lambda: PriceTable({}))
    table: PriceTable = field(default_factory=default_price_table)
    compare_with: tuple[str, ...] = ()
    # Fallback models served elsewhere (REVIEWBOT_FALLBACK_MODELS with a base URL): their endpoint's layers.
    elsewhere: tuple[tuple[str, Prices], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Prices:
        """The layers ``REVIEWBOT_*`` settings configure; ConfigError for a provider or model the database lacks."""
        own = {
            name: Price(name, price.input, price.output, price.cached_input) for name, price in settings.prices.items()
        }
        if settings.input_price is not None or settings.output_price is not None:
            own[settings.model] = Price(settings.model, settings.input_price, settings.output_price)
        elsewhere = []
        for fallback in settings.fallback_models:
            given = fallback.input_price is not None or fallback.output_price is not None
            price = Price(fallback.model, fallback.input_price, fallback.output_price)
            if fallback.base_url is None or fallback.base_url == settings.base_url:
                if given:
                    own[fallback.model] = price
                continue
            name = normalise_model_name(fallback.model)
            operator = PriceTable({name: Entry(price)} if given else {})
            # Its own endpoint, so its own provider; a provider named for the main endpoint is not its.
            elsewhere.append((name, cls(base_url=fallback.base_url, operator=operator)))
        prices = cls(
            base_url=settings.base_url,
            provider_id=settings.price_provider,
            operator=PriceTable({normalise_model_name(name): Entry(price) for name, price in own.items()}),
            compare_with=tuple(settings.compare_with),
            elsewhere=tuple(elsewhere),
        )
        prices.check()
        return prices

    def for_model(self, model: str) -> Prices:
        """The layers that price ``model``: a fallback's own endpoint's, else these."""
        name = normalise_model_name(model)
        return next((prices for served, prices in self.elsewhere if served == name), self)

    def check(self) -> None:
        """Resolve the named provider and reference models now, so a misspelt one fails at start-up."""
        _ = self.provider
        self.references()

    def with_overrides(self, overrides: Mapping[str, tuple[float | None, float | None]]) -> Prices:
        """These layers with the operator's ``{model: (input, output)}`` prices added."""
        added = {normalise_model_name(model): Entry(Price(model, *sides)) for model, sides in overrides.items()}
        return replace(self, operator=PriceTable({**self.operator.entries, **added}))

    @property
    def provider(self) -> DbProvider | None:
        """The database's provider whose prices apply: named by the operator, else found by the base URL."""
        if self.provider_id is not None:
            found = price_db.provider_named(self.provider_id)
            if found is None:
                known = ", ".join(price_db.provider_ids())
                raise ConfigError(
                    f"REVIEWBOT_PRICE_PROVIDER={self.provider_id} is not a provider genai-prices knows; "
                    f"use one of {known}"
                )
            return found
        return None if self.local else price_db.provider_at(self.base_url)

    @property
    def local(self) -> bool:
        """Whether the endpoint is a local server, which publishes no price."""
        return self.provider_id is None and is_local(self.base_url)

    def quote(self, model: str, at: datetime | None = None) -> Quote | None:
        """The price that applies to ``model`` on ``at`` (now if None) before any endpoint figure, or None."""
        if (other := self.for_model(model)) is not self:
            return other.quote(model, at)
        when = at or datetime.now(UTC)
        published = self._published(model, when)
        own = self.operator.lookup(model)
        if own is None:
            return published
        if published is None or not own.missing(1, 1, 1):
            label = published.price.label if published is not None else own.label
            return Quote(replace(own, label=label), SETTINGS, when)
        base = published.price
        # A cache rate belongs with the input price it discounts: the operator's input has none of the base's.
        cached = own.cached_input if own.input is not None else base.cached_input
        merged = Price(
            base.label,
            own.input if own.input is not None else base.input,
            own.output if own.output is not None else base.output,
            cached,
        )
        return Quote(merged, SETTINGS, when, filled_from=published.source)

    def cost(self, usage: Usage, model: str, at: datetime | None = None, parts: Sequence[Usage] = ()) -> Priced:
        """What ``usage`` (the sum of ``parts``, when given) cost: the endpoint's figure, else tokens × the quote."""
        if (other := self.for_model(model)) is not self:
            return other.cost(usage, model, at, parts)
        if usage.cost_usd is not None:
            return Priced(usage.cost_usd, ENDPOINT)
        if usage.estimated:
            # Token counts the endpoint did not report are guesses: no price turns them into a cost.
            return Priced(None, None)
        quote = self.quote(model, at)
        if quote is None:
            return Priced(None, None, missing=("input", "output"))
        missing = quote.missing(usage)
        if missing:
            partial = quote.price.known_part(usage.input_tokens, usage.output_tokens, usage.cached_tokens)
            return Priced(None, None, quote, missing, partial)
        return Priced(quote.cost(parts or (usage,)), quote.source, quote)

    def estimate(
        self, usage: Usage, model: str, at: datetime | None = None, parts: Sequence[Usage] = ()
    ) -> Estimate | None:
        """What the tokens would cost at another provider's price of the same model, if the database knows one."""
        if (other := self.for_model(model)) is not self:
            return other.estimate(usage, model, at, parts)
        when = at or datetime.now(UTC)
        own = self.provider
        entry = self.table.entry(model)
        candidates = [_same_as(entry.same_as) if entry is not None and entry.same_as else None, price_db.find(model)]
        for candidate in candidates:
            if candidate is None or (own is not None and candidate.provider.id == own.id):
                continue
            quote = Quote(
                price_db.price(candidate, when), PriceSource("genai-prices", candidate.provider), when, candidate
            )
            usd = quote.cost(parts or (usage,))
            if usd is not None:
                return Estimate(usd, candidate)
        return None

    def comparisons(
        self, usage: Usage, at: datetime | None = None, parts: Sequence[Usage] = ()
    ) -> tuple[Comparison, ...]:
        """What the same tokens would have cost on each reference model."""
        when = at or datetime.now(UTC)
        return tuple(
            Comparison(name, quote.price.label, quote.cost(parts or (usage,))) for name, quote in self.references(when)
        )

    def references(self, at: datetime | None = None) -> tuple[tuple[str, Quote], ...]:
        """The reference models, as configured, with their quotes (ConfigError for one the database lacks)."""
        when = at or datetime.now(UTC)
        if not self.compare_with:
            seeds = [(name, self.table.lookup(name)) for name in REFERENCE_MODELS]
            return tuple((name, Quote(price, TABLE, when)) for name, price in seeds if price is not None)
        quotes = []
        for name in self.compare_with:
            found = _same_as(name) if ":" in name else price_db.find(name)
            if found is None:
                raise ConfigError(
                    f"REVIEWBOT_COMPARE_WITH names {name}, which genai-prices does not know; "
                    "name a model it prices (`reviewbot prices MODEL` shows one), or provider:model"
                )
            label = name.partition(":")[2] if ":" in name else name
            price = replace(price_db.price(found, when), label=label)
            quotes.append((name, Quote(price, PriceSource("genai-prices", found.provider), when, found)))
        return tuple(quotes)

    def _published(self, model: str, at: datetime) -> Quote | None:
        """The price the endpoint's provider publishes: the database's, else reviewbot's table's."""
        provider = self.provider
        if provider is not None:
            found = price_db.find(model, provider)
            if found is None:
                return None
            return Quote(price_db.price(found, at), PriceSource("genai-prices", provider), at, found)
        if self.local:
            return None
        price = self.table.lookup(model)
        return Quote(price, TABLE, at) if price is not None else None


def is_local(base_url: str) -> bool:
    """Whether ``base_url`` is a server on this machine or network: loopback, private, or a bare host name."""
    host = (urlsplit(base_url).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host or host.endswith(_LOCAL_SUFFIXES)
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


def _same_as(reference: str) -> DbModel | None:
    """``openrouter:qwen/qwen3-coder-30b-a3b-instruct`` → that model as that provider prices it."""
    provider_id, _, model = reference.partition(":")
    provider = price_db.provider_named(provider_id)
    return price_db.find(model, provider) if provider is not None and model else None
