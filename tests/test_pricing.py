from __future__ import annotations

import pytest

from reviewbot.engine.pricing import PriceTable, cost_note, cost_report, default_price_table, format_usd
from reviewbot.engine.usage import Usage


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
    report = cost_report(Usage(1_000_000, 2_000_000, requests=3), "gpt-4o", default_price_table())
    assert report.usd == pytest.approx(2.50 + 20.00)
    assert report.source == "price table"
    assert [c.usd for c in report.comparisons] == [pytest.approx(22.5), pytest.approx(33.0)]


def test_an_unknown_input_price_makes_the_cost_unknown_and_says_how_to_set_it() -> None:
    report = cost_report(Usage(1200, 300, requests=1), "qwen3-coder-30b", default_price_table())
    assert report.usd is None
    assert report.missing == ("input",)
    note = cost_note(report)
    assert "cost unknown" in note
    assert "REVIEWBOT_INPUT_PRICE" in note
    assert "cost $0" not in note
    assert "the known side alone is $0.000105" in note


def test_the_endpoints_own_cost_wins() -> None:
    report = cost_report(Usage(1200, 300, requests=1, cost_usd=0.00042), "qwen3-coder-30b", default_price_table())
    assert (report.usd, report.source) == (0.00042, "endpoint")
    assert "as reported by the endpoint" in cost_note(report)


def test_operator_overrides_fill_in_a_missing_side() -> None:
    table = default_price_table().with_overrides({"qwen3-coder-30b": (0.07, None)})
    report = cost_report(Usage(1_000_000, 1_000_000, requests=1), "qwen3-coder-30b", table)
    assert report.usd == pytest.approx(0.07 + 0.35)


def test_operator_prices_name_a_model_the_table_lacks() -> None:
    table = default_price_table().with_overrides({"my-finetune": (0.1, 0.2)})
    assert cost_report(Usage(10**6, 10**6, requests=1), "my-finetune", table).usd == pytest.approx(0.3)


def test_the_note_names_requests_tokens_cost_and_the_reference_models() -> None:
    note = cost_note(
        cost_report(Usage(2143, 312, reasoning_tokens=12, requests=2), "gpt-4o-mini", default_price_table())
    )
    assert note.startswith("2 requests to gpt-4o-mini; 2,143 input + 312 output tokens (of which 12 reasoning)")
    assert "cost $0.000509" in note
    assert "GPT-4o $0.008478" in note
    assert "Claude 3.5 Sonnet $0.0111." in note


@pytest.mark.parametrize(
    ("usd", "text"),
    [(None, "unknown"), (0.0, "$0.00"), (0.0000042, "$0.000004"), (0.0421, "$0.0421"), (1234.5, "$1,234.50")],
)
def test_formats_dollars_so_small_costs_still_show(usd: float | None, text: str) -> None:
    assert format_usd(usd) == text


def test_usage_sums_keep_a_cost_only_when_every_part_had_one() -> None:
    assert (Usage(1, 1, requests=1, cost_usd=0.1) + Usage(1, 1, requests=1, cost_usd=0.2)).cost_usd == pytest.approx(
        0.3
    )
    assert (Usage(1, 1, requests=1, cost_usd=0.1) + Usage(1, 1, requests=1)).cost_usd is None
    assert (Usage() + Usage(1, 1, requests=1, cost_usd=0.1)).cost_usd == 0.1


def test_empty_table_lookup_is_none() -> None:
    assert PriceTable({}).lookup("gpt-4o") is None
