"""Which price applies: the layers and their order, the provider at a base URL, cache rates, dates, estimates.

Expected figures come from genai-prices itself (its bundled snapshot, never fetched), so these
tests check how reviewbot chooses and applies a price, whatever the installed data says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage as Tokens
from genai_prices import calc_price

from reviewbot.engine.filters import FilterRules
from reviewbot.engine.price_layers import Prices, is_local
from reviewbot.engine.price_table import PriceTable, default_price_table
from reviewbot.engine.review import ReviewOptions
from reviewbot.engine.tokens import ESTIMATED_OUTPUT_TOKENS
from reviewbot.engine.usage import Usage
from reviewbot.errors import ConfigError
from reviewbot.settings import Settings

OPENAI = "https://api.openai.com/v1"
OPENROUTER = "https://openrouter.ai/api/v1"
DEEPSEEK = "https://api.deepseek.com/v1"
LOCAL = "http://localhost:8000/v1"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
MILLION = Usage(1_000_000, 1_000_000, requests=1)


def database(model: str, provider: str, usage: Usage = MILLION, at: datetime = NOW) -> float:
    """What genai-prices itself says these tokens cost."""
    tokens = Tokens(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
    if usage.cached_tokens:
        tokens.cache_read_tokens = usage.cached_tokens
    return float(calc_price(tokens, model, provider_id=provider, genai_request_timestamp=at).total_price)


# -- the layers and their order ---------------------------------------------------------------------


def test_the_endpoints_own_figure_wins_over_every_price() -> None:
    prices = Prices(base_url=OPENAI).with_overrides({"gpt-4o": (1.0, 1.0)})
    priced = prices.cost(Usage(1_000, 100, requests=1, cost_usd=0.0042), "gpt-4o", NOW)
    assert (priced.usd, priced.key) == (0.0042, "endpoint")


def test_the_operators_prices_win_over_the_database() -> None:
    prices = Prices(base_url=OPENAI).with_overrides({"gpt-4o": (1.0, 2.0)})
    priced = prices.cost(MILLION, "gpt-4o", NOW)
    assert priced.key == "settings"
    assert priced.usd == pytest.approx(3.0)
    assert database("gpt-4o", "openai") != pytest.approx(3.0)


def test_the_operators_prices_win_over_reviewbots_table() -> None:
    priced = Prices().with_overrides({"gpt-4o": (1.0, 2.0)}).cost(MILLION, "gpt-4o", NOW)
    assert priced.key == "settings"
    assert priced.usd == pytest.approx(3.0)


def test_a_side_the_operator_leaves_unset_comes_from_the_next_layer() -> None:
    priced = Prices().with_overrides({"qwen3-coder-30b": (0.07, None)}).cost(MILLION, "qwen3-coder-30b", NOW)
    assert priced.usd == pytest.approx(0.07 + 0.35)  # the output price is the table's
    assert priced.key == "settings"
    assert priced.quote is not None
    assert priced.quote.describe() == "at the operator's prices, the rest at reviewbot's price table"


def test_reviewbots_table_prices_the_default_endpoint_which_the_database_does_not_know() -> None:
    prices = Prices()
    assert prices.provider is None
    priced = prices.cost(MILLION, "deepseek-v4-flash", NOW)
    assert priced.key == "reviewbot"
    assert priced.usd == pytest.approx(0.18 + 0.25)


def test_the_database_prices_an_endpoint_it_knows_and_the_table_is_not_consulted() -> None:
    priced = Prices(base_url=DEEPSEEK).cost(MILLION, "deepseek-v4-flash", NOW)
    assert priced.key == "genai-prices:deepseek"
    assert priced.usd == pytest.approx(database("deepseek-v4-flash", "deepseek"))
    assert priced.usd != pytest.approx(0.18 + 0.25)  # the table's figure for the default endpoint


def test_a_model_the_providers_database_entry_lacks_stays_unknown_even_if_the_table_has_it() -> None:
    priced = Prices(base_url=OPENROUTER).cost(MILLION, "qwen3-coder-30b", NOW)
    assert (priced.usd, priced.key, priced.missing) == (None, "unknown", ("input", "output"))


def test_openrouter_is_priced_by_its_own_names_for_models() -> None:
    priced = Prices(base_url=OPENROUTER).cost(MILLION, "qwen/qwen3-coder-30b-a3b-instruct", NOW)
    assert priced.key == "genai-prices:openrouter"
    assert priced.usd == pytest.approx(database("qwen/qwen3-coder-30b-a3b-instruct", "openrouter"))


# -- the provider at a base URL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "provider"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.deepseek.com/v1", "deepseek"),
        ("https://api.deepseek.com", "deepseek"),
        ("https://api.together.xyz/v1", "together"),
        ("https://api.fireworks.ai/inference/v1", "fireworks"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://generativelanguage.googleapis.com/v1beta/openai", "google"),
        ("https://api.anthropic.com/v1", "anthropic"),
        ("https://api.mistral.ai/v1", "mistral"),
        ("https://api.x.ai/v1", "x-ai"),
    ],
)
def test_the_provider_is_the_one_whose_api_is_at_the_base_url(base_url: str, provider: str) -> None:
    found = Prices(base_url=base_url).provider
    assert found is not None
    assert found.id == provider


@pytest.mark.parametrize(
    "base_url",
    [
        "http://localhost:8000/v1",
        "http://127.0.0.1:11434/v1",
        "http://[::1]:8080/v1",
        "http://10.0.0.7:8000/v1",
        "http://192.168.1.20:1234/v1",
        "http://vllm:8000/v1",
        "http://gpu-box.local:8000/v1",
        "http://host.docker.internal:11434/v1",
    ],
)
def test_a_local_endpoint_is_no_providers_and_publishes_no_price(base_url: str) -> None:
    prices = Prices(base_url=base_url)
    assert is_local(base_url)
    assert prices.provider is None
    # Not the database's OpenAI price, and not the default endpoint's from reviewbot's table.
    priced = prices.cost(MILLION, "gpt-4o", NOW)
    assert (priced.usd, priced.key) == (None, "unknown")


@pytest.mark.parametrize("base_url", ["https://global-apis.com/v1", "https://llm.example.com/v1", OPENAI])
def test_a_public_endpoint_is_not_local(base_url: str) -> None:
    assert not is_local(base_url)


def test_the_operator_names_the_provider_of_a_gateway_the_database_cannot_recognise() -> None:
    prices = Prices(base_url=LOCAL, provider_id="openrouter")
    priced = prices.cost(MILLION, "qwen/qwen3-coder-30b-a3b-instruct", NOW)
    assert priced.key == "genai-prices:openrouter"
    assert priced.usd == pytest.approx(database("qwen/qwen3-coder-30b-a3b-instruct", "openrouter"))


def test_the_named_provider_overrides_the_one_at_the_base_url() -> None:
    priced = Prices(base_url=OPENAI, provider_id="azure").cost(MILLION, "gpt-4o", NOW)
    assert priced.key == "genai-prices:azure"


def test_a_provider_the_database_does_not_know_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"REVIEWBOT_PRICE_PROVIDER=nowhere .*openrouter"):
        Prices.from_settings(Settings(price_provider="nowhere"))


# -- cached tokens, tiers and dates ---------------------------------------------------------------------


def test_cached_input_tokens_are_priced_at_the_databases_cache_rate() -> None:
    usage = Usage(1_000_000, 0, requests=1, cached_tokens=400_000)
    priced = Prices(base_url=OPENAI).cost(usage, "gpt-4o", NOW)
    quote = priced.quote
    assert quote is not None
    assert quote.price.input is not None
    assert quote.price.cached_input is not None
    assert quote.price.cached_input < quote.price.input
    expected = (600_000 * quote.price.input + 400_000 * quote.price.cached_input) / 1_000_000
    assert priced.usd == pytest.approx(expected)
    assert priced.usd == pytest.approx(database("gpt-4o", "openai", usage))


def test_without_a_cache_rate_cached_tokens_cost_what_input_costs() -> None:
    usage = Usage(1_000_000, 0, requests=1, cached_tokens=400_000)
    assert Prices().cost(usage, "gpt-4o", NOW).usd == pytest.approx(2.50)


def test_the_operator_may_set_a_cache_rate() -> None:
    settings = Settings(prices={"my-model": {"input": 1.0, "output": 2.0, "cached_input": 0.1}})
    usage = Usage(1_000_000, 0, requests=1, cached_tokens=500_000)
    assert Prices.from_settings(settings).cost(usage, "my-model", NOW).usd == pytest.approx(0.5 + 0.05)


def test_a_price_that_changed_is_the_one_of_the_requests_date() -> None:
    # OpenAI cut o3's price on 10 June 2025; the database keeps both.
    before, after = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 20, tzinfo=UTC)
    prices = Prices(base_url=OPENAI)
    then, now = prices.cost(MILLION, "o3", before).usd, prices.cost(MILLION, "o3", after).usd
    assert then == pytest.approx(database("o3", "openai", at=before))
    assert now == pytest.approx(database("o3", "openai", at=after))
    assert then != pytest.approx(now)


def test_each_request_is_priced_on_its_own_so_a_tier_applies_to_one_prompt() -> None:
    # A model whose price rises once a prompt passes a size: ten small prompts stay at the base rate.
    model = "qwen/qwen3-coder-flash"
    prices = Prices(base_url=OPENROUTER)
    part = Usage(20_000, 1_000, requests=1)
    parts = [part] * 10
    total = sum(parts, Usage())
    one_by_one = prices.cost(total, model, NOW, parts).usd
    assert one_by_one == pytest.approx(10 * database(model, "openrouter", part))
    assert one_by_one != pytest.approx(database(model, "openrouter", total))


# -- the labelled estimate ---------------------------------------------------------------------------


def test_an_unknown_price_gets_an_estimate_at_another_providers_price_of_the_same_model() -> None:
    # The default endpoint publishes only an output price for Qwen3-Coder-30B; OpenRouter both.
    prices = Prices()
    usage = Usage(12_000, 800, requests=1)
    assert prices.cost(usage, "qwen3-coder-30b", NOW).usd is None
    estimate = prices.estimate(usage, "qwen3-coder-30b", NOW)
    assert estimate is not None
    assert estimate.model.provider.id == "openrouter"
    assert estimate.usd == pytest.approx(database("qwen/qwen3-coder-30b-a3b-instruct", "openrouter", usage))
    assert estimate.describe() == "at OpenRouter's price for this model"


def test_a_local_server_gets_an_estimate_from_the_models_maker() -> None:
    estimate = Prices(base_url=LOCAL).estimate(MILLION, "gpt-4o", NOW)
    assert estimate is not None
    assert estimate.model.provider.id == "openai"


def test_no_estimate_from_the_endpoints_own_provider_or_a_model_nobody_prices() -> None:
    assert Prices(base_url=OPENROUTER).estimate(MILLION, "qwen/qwen3-coder-30b-a3b-instruct", NOW) is None
    assert Prices().estimate(MILLION, "my-finetune", NOW) is None


# -- the reference models --------------------------------------------------------------------------------


def test_the_comparison_keeps_the_seeds_figures_by_default_whatever_the_endpoint() -> None:
    for prices in (Prices(), Prices(base_url=OPENROUTER), Prices(base_url=LOCAL)):
        comparisons = prices.comparisons(MILLION, NOW)
        assert [(c.model, c.label) for c in comparisons] == [
            ("gpt-4o", "GPT-4o"),
            ("claude-3-5-sonnet", "Claude 3.5 Sonnet"),
        ]
        assert [c.usd for c in comparisons] == [pytest.approx(12.5), pytest.approx(18.0)]


def test_other_reference_models_are_priced_from_the_database() -> None:
    prices = Prices.from_settings(Settings(compare_with="gpt-4o,claude-sonnet-4,openrouter:qwen/qwen3-coder"))
    comparisons = prices.comparisons(MILLION, NOW)
    assert [c.label for c in comparisons] == ["gpt-4o", "claude-sonnet-4", "qwen/qwen3-coder"]
    assert [c.usd for c in comparisons] == [
        pytest.approx(database("gpt-4o", "openai")),
        pytest.approx(database("claude-sonnet-4", "anthropic")),
        pytest.approx(database("qwen/qwen3-coder", "openrouter")),
    ]


def test_a_reference_model_the_database_does_not_know_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="REVIEWBOT_COMPARE_WITH names gpt-99"):
        Prices.from_settings(Settings(compare_with="gpt-4o,gpt-99"))


# -- from settings --------------------------------------------------------------------------------------


def test_settings_configure_every_layer() -> None:
    settings = Settings(
        base_url=OPENROUTER,
        model="qwen/qwen3-coder-30b-a3b-instruct",
        input_price=0.05,
        prices={"other-model": {"output": 9.0}},
    )
    prices = Prices.from_settings(settings)
    assert prices.provider is not None
    assert prices.provider.id == "openrouter"
    quote = prices.quote("qwen/qwen3-coder-30b-a3b-instruct", NOW)
    assert quote is not None
    assert quote.source.key == "settings"
    assert quote.price.input == 0.05
    assert quote.filled_from is not None
    assert quote.filled_from.key == "genai-prices:openrouter"
    other = prices.quote("other-model", NOW)
    assert other is not None
    assert (other.price.input, other.price.output) == (None, 9.0)


def test_the_shipped_table_names_the_same_model_in_the_database_for_its_partial_prices() -> None:
    for entry in default_price_table().entries.values():
        if entry.same_as is None:
            continue
        provider, _, model = entry.same_as.partition(":")
        assert calc_price(Tokens(), model, provider_id=provider).total_price == Decimal(0)


def test_an_empty_operator_table_changes_nothing() -> None:
    assert Prices(operator=PriceTable({})).cost(MILLION, "gpt-4o", NOW).key == "reviewbot"


def test_the_cost_cap_measures_a_request_at_the_price_the_review_will_be_charged() -> None:
    model = "qwen/qwen3-coder-30b-a3b-instruct"
    options = ReviewOptions(
        model=model,
        context_window=32_768,
        max_output_tokens=4_096,
        rules=FilterRules(),
        prices=Prices(OPENROUTER),
        max_cost=0.01,
    )
    [cap] = options.budget().caps
    expected = database(model, "openrouter", Usage(10_000, ESTIMATED_OUTPUT_TOKENS, requests=1), datetime.now(UTC))
    assert cap.measure(10_000) == pytest.approx(expected)
