from __future__ import annotations

import dataclasses

import pytest

from reviewbot.engine.price_layers import Prices
from reviewbot.engine.price_table import Price, PriceTable, default_price_table
from reviewbot.engine.pricing import cost_note, cost_report, format_usd, review_cost
from reviewbot.engine.result import ModelCall, Repairs, ReviewResult
from reviewbot.engine.usage import Usage

OPENROUTER = "https://openrouter.ai/api/v1"


def test_ships_the_design_price_table() -> None:
    table = default_price_table()
    gpt4o = table.lookup("gpt-4o")
    assert gpt4o is not None
    assert (gpt4o.input, gpt4o.output) == (2.50, 10.00)
    coder = table.lookup("qwen3-coder-30b")
    assert coder is not None
    assert (coder.input, coder.output) == (None, 0.35)


@pytest.mark.parametrize(
    ("model", "label"),
    [
        ("Qwen/Qwen3-Coder-30B-A3B-Instruct", "Qwen3-Coder-30B"),
        ("openai/gpt-4o-mini", "GPT-4o-mini"),
        ("gpt-4o-2024-08-06", "GPT-4o"),
        ("claude-3.5-sonnet", "Claude 3.5 Sonnet"),
        ("anthropic/claude-3-5-sonnet-20241022", "Claude 3.5 Sonnet"),
    ],
)
def test_finds_a_model_by_its_longest_known_prefix(model: str, label: str) -> None:
    price = default_price_table().lookup(model)
    assert price is not None
    assert price.label == label


def test_an_unknown_model_has_no_price() -> None:
    assert default_price_table().lookup("my-finetune") is None


def test_costs_tokens_times_price_exactly() -> None:
    report = cost_report(Usage(1_000_000, 2_000_000, requests=3), "gpt-4o", Prices())
    assert report.usd == pytest.approx(2.50 + 20.00)
    assert (report.source, report.price_source_key) == ("price table", "reviewbot")
    assert [c.usd for c in report.comparisons] == [pytest.approx(22.5), pytest.approx(33.0)]


def test_an_unknown_input_price_makes_the_cost_unknown_and_says_how_to_set_it() -> None:
    report = cost_report(Usage(1200, 300, requests=1), "qwen3-coder-30b", Prices())
    assert report.usd is None
    assert report.missing == ("input",)
    note = cost_note(report)
    assert "cost unknown" in note
    assert "REVIEWBOT_INPUT_PRICE" in note
    assert "cost $0" not in note
    assert "the known side alone is $0.000105" in note


def test_an_unknown_cost_comes_with_an_estimate_labelled_as_one_never_as_the_cost() -> None:
    report = cost_report(Usage(12_000, 800, requests=1), "qwen3-coder-30b", Prices())
    assert report.usd is None
    assert report.estimate is not None
    note = cost_note(report)
    assert f"; estimate ≈ {format_usd(report.estimate.usd)} at OpenRouter's price for this model." in note
    assert f"cost {format_usd(report.estimate.usd)}" not in note


def test_a_known_cost_needs_no_estimate() -> None:
    assert cost_report(Usage(12_000, 800, requests=1), "gpt-4o", Prices()).estimate is None


def test_the_endpoints_own_cost_wins() -> None:
    report = cost_report(Usage(1200, 300, requests=1, cost_usd=0.00042), "qwen3-coder-30b", Prices())
    assert (report.usd, report.source, report.price_source_key) == (0.00042, "endpoint", "endpoint")
    assert "cost $0.000420 as reported by the endpoint" in cost_note(report)


def test_operator_overrides_fill_in_a_missing_side() -> None:
    prices = Prices().with_overrides({"qwen3-coder-30b": (0.07, None)})
    report = cost_report(Usage(1_000_000, 1_000_000, requests=1), "qwen3-coder-30b", prices)
    assert report.usd == pytest.approx(0.07 + 0.35)
    assert "cost $0.4200 at the operator's prices, the rest at reviewbot's price table" in cost_note(report)


def test_operator_prices_name_a_model_the_table_lacks() -> None:
    prices = Prices().with_overrides({"my-finetune": (0.1, 0.2)})
    report = cost_report(Usage(10**6, 10**6, requests=1), "my-finetune", prices)
    assert report.usd == pytest.approx(0.3)
    assert "cost $0.3000 at the operator's prices." in cost_note(report)


def test_the_note_names_the_database_and_the_provider_whose_price_it_is() -> None:
    report = cost_report(Usage(12_000, 800, requests=1), "qwen/qwen3-coder-30b-a3b-instruct", Prices(OPENROUTER))
    assert report.price_source_key == "genai-prices:openrouter"
    assert f"cost {format_usd(report.usd)} at OpenRouter's prices (genai-prices)" in cost_note(report)


def test_the_note_names_requests_tokens_cost_and_the_reference_models() -> None:
    note = cost_note(cost_report(Usage(2143, 312, reasoning_tokens=12, requests=2), "gpt-4o-mini", Prices()))
    assert note.startswith("2 requests to gpt-4o-mini; 2,143 input + 312 output tokens (of which 12 reasoning)")
    assert "cost $0.000509 at reviewbot's price table" in note
    assert "GPT-4o $0.008478" in note
    assert "Claude 3.5 Sonnet $0.0111." in note


def test_the_note_says_how_many_input_tokens_were_cached() -> None:
    note = cost_note(cost_report(Usage(2143, 312, requests=1, cached_tokens=1024), "gpt-4o-mini", Prices()))
    assert note.startswith("1 request to gpt-4o-mini; 2,143 input (1,024 cached) + 312 output tokens")


def test_a_review_is_priced_request_by_request() -> None:
    calls = tuple(
        ModelCall(index, "qwen/qwen3-coder-flash", Usage(20_000, 1_000, requests=1), 1.0, "ok") for index in range(10)
    )
    result = ReviewResult((), (), (), Repairs(), sum((c.usage for c in calls), Usage()), "qwen/qwen3-coder-flash", 10)
    prices = Prices(OPENROUTER)
    one_by_one = review_cost(dataclasses.replace(result, calls=calls), prices)
    assert one_by_one.usd == pytest.approx(10 * (prices.cost(calls[0].usage, calls[0].model).usd or 0))
    assert one_by_one.usd != pytest.approx(review_cost(result, prices).usd)  # the sum as one prompt passes a tier


@pytest.mark.parametrize(
    ("usd", "text"),
    [(None, "unknown"), (0.0, "$0.00"), (0.0000042, "$0.000004"), (0.0421, "$0.0421"), (1234.5, "$1,234.50")],
)
def test_formats_dollars_so_small_costs_still_show(usd: float | None, text: str) -> None:
    assert format_usd(usd) == text


def test_usage_sums_add_cached_tokens() -> None:
    assert (Usage(10, 1, requests=1, cached_tokens=4) + Usage(20, 1, requests=1, cached_tokens=6)).cached_tokens == 10


def test_usage_sums_keep_a_cost_only_when_every_part_had_one() -> None:
    assert (Usage(1, 1, requests=1, cost_usd=0.1) + Usage(1, 1, requests=1, cost_usd=0.2)).cost_usd == pytest.approx(
        0.3
    )
    assert (Usage(1, 1, requests=1, cost_usd=0.1) + Usage(1, 1, requests=1)).cost_usd is None
    assert (Usage() + Usage(1, 1, requests=1, cost_usd=0.1)).cost_usd == 0.1


def test_empty_table_lookup_is_none() -> None:
    assert PriceTable({}).lookup("gpt-4o") is None


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (0.0004955, "$0.000496"),
        (0.0007045, "$0.000705"),
        (0.0000865, "$0.000087"),
        (0.012345, "$0.0123"),
        (0.00995, "$0.009950"),
        (1234.565, "$1,234.57"),
        (0.0000004, "< $0.000001"),
        (0.0, "$0.00"),
        (None, "unknown"),
    ],
)
def test_dollars_round_half_up_from_the_amount_as_written(usd: float | None, shown: str) -> None:
    assert format_usd(usd) == shown


def test_a_price_times_tokens_is_exact_in_decimal() -> None:
    price = Price("m", input=0.07, output=0.28)
    assert price.cost(1_234, 0) == 0.00008638
    assert price.cost(3, 7) == 0.00000217
    assert format_usd(price.cost(1_000_000, 1_000_000)) == "$0.3500"
