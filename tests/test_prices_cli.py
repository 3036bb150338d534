"""`reviewbot prices`: which layer prices the configured model, run in-process (nothing is sent anywhere)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from reviewbot.cli import main
from reviewbot.engine.price_layers import Prices

pytestmark = pytest.mark.usefixtures("clean_environment")

OPENROUTER = "https://openrouter.ai/api/v1"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["prices", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def applying(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines() if line.endswith("<- applies")]


def test_the_default_endpoints_model_is_priced_by_reviewbots_table_with_an_estimate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys)

    assert code == 0
    assert out.startswith("Prices of qwen3-coder-30b at https://global-apis.com/v1 on ")
    assert applying(out) == ["reviewbot"]
    assert "input unknown, output $0.35: Qwen3-Coder-30B" in out
    assert "until REVIEWBOT_INPUT_PRICE is set" in out
    assert "Estimate: input $0.07, output $0.28 at OpenRouter's price for this model" in out
    assert "never as the cost" in out
    assert "Compared with: GPT-4o (input $2.50, output $10.00), Claude 3.5 Sonnet (input $3.00, output $15.00)." in out


def test_an_endpoint_the_database_knows_is_priced_from_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "qwen/qwen3-coder-30b-a3b-instruct", "--base-url", OPENROUTER)

    assert code == 0
    assert applying(out) == ["genai-prices"]
    quote = Prices(OPENROUTER).quote("qwen/qwen3-coder-30b-a3b-instruct")
    assert quote is not None
    assert f"input ${quote.price.input:.2f}, output ${quote.price.output:.2f}: OpenRouter (at the base URL)" in out
    assert "not used: genai-prices prices OpenRouter's endpoint" in out
    assert "Estimate" not in out


def test_the_date_picks_the_price_of_that_day(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("o3", "--base-url", "https://api.openai.com/v1")
    _, before, _ = run(capsys, *args, "--date", "2025-06-01")
    _, after, _ = run(capsys, *args, "--date", "2025-06-20")

    prices = Prices("https://api.openai.com/v1")
    for out, day in ((before, datetime(2025, 6, 1, 12, tzinfo=UTC)), (after, datetime(2025, 6, 20, 12, tzinfo=UTC))):
        quote = prices.quote("o3", day)
        assert quote is not None
        assert f"Applies: input ${quote.price.input:.2f}," in out
    assert before != after


def test_the_operators_price_applies_and_the_next_layer_fills_the_rest(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEWBOT_INPUT_PRICE", "0.05")

    _, out, _ = run(capsys)

    assert applying(out) == ["settings", "reviewbot"]
    assert "Applies: input $0.05, output $0.35, at the operator's prices, the rest at reviewbot's price table." in out
    assert "Estimate" not in out


def test_a_local_endpoint_has_no_published_price(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "gpt-4o", "--base-url", "http://localhost:11434/v1")

    assert applying(out) == []
    assert "not used: a local endpoint publishes no price" in out
    assert "No price of gpt-4o is known here" in out
    assert "Estimate: input $2.50, cached input $1.25, output $10.00 at OpenAI's price for this model" in out


def test_the_named_provider_prices_a_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys, "qwen/qwen3-coder-30b-a3b-instruct", "--base-url", "http://localhost:4000", "--provider", "openrouter"
    )

    assert applying(out) == ["genai-prices"]
    assert "OpenRouter (named by REVIEWBOT_PRICE_PROVIDER)" in out


def test_json_has_every_layer_and_the_price_that_applies(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--format", "json")

    document = json.loads(out)
    assert (document["model"], document["base_url"], document["provider"], document["local"]) == (
        "qwen3-coder-30b",
        "https://global-apis.com/v1",
        None,
        False,
    )
    assert [(layer["layer"], layer["applies"]) for layer in document["layers"]] == [
        ("endpoint", False),
        ("settings", False),
        ("reviewbot", True),
        ("genai-prices", False),
    ]
    assert document["price"]["source"] == "reviewbot"
    assert (document["price"]["input"], document["price"]["output"]) == (None, 0.35)
    assert document["estimate"]["source"] == "genai-prices:openrouter"
    assert [reference["model"] for reference in document["comparisons"]] == ["gpt-4o", "claude-3-5-sonnet"]


def test_a_provider_the_database_does_not_know_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--provider", "nowhere")

    assert code == 2
    assert out == ""
    assert "REVIEWBOT_PRICE_PROVIDER=nowhere is not a provider genai-prices knows" in err


def test_a_date_that_is_not_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["prices", "--date", "June"])
    assert exit_info.value.code == 2
    assert "'June' is not a date (YYYY-MM-DD)" in capsys.readouterr().err
