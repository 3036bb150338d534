"""REVIEWBOT_FALLBACK_MODELS: when the configured model fails in a way another may not, the next
one answers; the cost note names who answered and prices each by its own price."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply, TokenUsage
from fixtures_path import SAMPLE_DIFFS
from reviewbot.cli import main
from reviewbot.engine.fallback import ModelChain
from reviewbot.engine.llm import ModelReply
from reviewbot.errors import ContextLengthError, ModelAuthError, ModelError
from reviewbot.settings import load_settings

LEEWAY = SAMPLE_DIFFS / "sample_leeway.diff"
MESSAGES = [{"role": "system", "content": "Review."}, {"role": "user", "content": "diff"}]
SCHEMA: dict[str, Any] = {"type": "object"}
BUG: dict[str, Any] = {
    "path": "src/itsdangerous/timed.py",
    "line": 155,
    "side": "RIGHT",
    "severity": "high",
    "category": "bug",
    "title": "Negative leeway check is inverted",
    "body": "`age < self.leeway` rejects every fresh signature.",
    "quote": "if age < self.leeway:",
}

pytestmark = pytest.mark.usefixtures("clean_environment")


def by_model(failing: Reply, answer: Reply | None = None) -> Any:
    """The configured model (qwen3-coder-30b) fails as ``failing``; any other model answers."""
    ok = answer or Reply.json({"findings": [BUG]}, usage=TokenUsage(prompt_tokens=1_000, completion_tokens=100))
    return lambda body: failing if body["model"] == "qwen3-coder-30b" else ok


def models_asked(fake: FakeOpenAI) -> list[str]:
    return [request.body["model"] for request in fake.requests]


def ask(calls: int = 1) -> list[ModelReply]:
    async def go() -> list[ModelReply]:
        async with ModelChain.from_settings(load_settings()) as chain:
            assert isinstance(chain, ModelChain)
            return [await chain.complete(MESSAGES, SCHEMA) for _ in range(calls)]

    return asyncio.run(go())


@pytest.mark.parametrize(
    "failing",
    [Reply.status(503), Reply.status(429), Reply.status(404, message="The model `qwen3-coder-30b` does not exist")],
    ids=["5xx", "429 past its retries", "unknown model"],
)
def test_a_failing_model_hands_the_request_to_the_next_and_later_requests_start_there(
    endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, failing: Reply
) -> None:
    monkeypatch.setenv("REVIEWBOT_FALLBACK_MODELS", "gpt-4o-mini, gpt-4o")
    endpoint.set_default(by_model(failing))

    first, second = ask(calls=2)

    assert (first.model, second.model) == ("gpt-4o-mini", "gpt-4o-mini")
    assert models_asked(endpoint) == ["qwen3-coder-30b", "gpt-4o-mini", "gpt-4o-mini"]


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        (Reply.status(401), ModelAuthError),
        (Reply.error(400, "This model's maximum context length is 8192 tokens."), ContextLengthError),
    ],
    ids=["refused key", "over the context window"],
)
def test_errors_another_model_would_not_mend_are_raised_at_once(
    endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, failing: Reply, error: type[ModelError]
) -> None:
    monkeypatch.setenv("REVIEWBOT_FALLBACK_MODELS", "gpt-4o-mini")
    endpoint.set_default(by_model(failing))

    with pytest.raises(error):
        ask()
    assert models_asked(endpoint) == ["qwen3-coder-30b"]


def test_when_every_model_fails_the_error_names_each(endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWBOT_FALLBACK_MODELS", "gpt-4o-mini")
    endpoint.set_default(lambda body: Reply.status(503))

    with pytest.raises(ModelError) as info:
        ask()
    assert str(info.value).startswith("qwen3-coder-30b: the endpoint")
    assert "; then the endpoint" in str(info.value)


def test_the_cost_note_names_who_answered_and_prices_each_by_its_own_price(
    endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The fallback is served elsewhere (another address of the same server), at prices of its own.
    elsewhere = endpoint.base_url.replace("127.0.0.1", "localhost")
    fallback = {"model": "my-finetune", "base_url": elsewhere, "input_price": 1.0, "output_price": 2.0}
    monkeypatch.setenv("REVIEWBOT_FALLBACK_MODELS", json.dumps([fallback]))
    endpoint.set_default(by_model(Reply.status(502)))

    assert main(["review", str(LEEWAY), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [finding["line"] for finding in report["findings"]] == [155]
    # 1,000 input tokens at $1.00 and 100 output tokens at $2.00 per million.
    assert report["cost"]["usd"] == pytest.approx(0.0012)

    assert main(["review", str(LEEWAY)]) == 0
    note = capsys.readouterr().out.strip().splitlines()[-1]
    assert note.startswith("1 request to my-finetune (fallback), $0.001200; 1,000 input + 100 output tokens in all")
    assert "cost $0.001200" in note


def test_fallbacks_are_read_from_names_and_endpoints_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWBOT_FALLBACK_MODELS", "gpt-4o-mini@https://api.openai.com/v1, qwen3-coder-480b")
    read = [(f.model, f.base_url) for f in load_settings().fallback_models]
    assert read == [("gpt-4o-mini", "https://api.openai.com/v1"), ("qwen3-coder-480b", None)]
    monkeypatch.setenv("REVIEWBOT_FALLBACK_MODELS", '[{"model": "m", "api_key": "sk-other", "output_price": 0.5}]')
    (only,) = load_settings().fallback_models
    assert only.api_key is not None
    assert (only.model, only.api_key.get_secret_value(), only.output_price) == ("m", "sk-other", 0.5)


def test_a_fallback_that_reports_no_usage_is_named_with_the_reason_its_cost_is_unknown(
    endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REVIEWBOT_FALLBACK_MODELS", "gpt-4o-mini")
    endpoint.set_default(by_model(Reply.status(503), Reply.no_usage({"findings": []})))

    assert main(["review", str(LEEWAY)]) == 0
    note = capsys.readouterr().out.strip().splitlines()[-1]
    share = "1 request to gpt-4o-mini (fallback), cost unknown: the endpoint reported no token counts; ~"
    assert note.startswith(share)
    assert "cost $" not in note


def test_when_only_a_fallback_answered_the_json_names_its_price(
    endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fallback = {"model": "my-finetune", "input_price": 1.0, "output_price": 2.0}
    monkeypatch.setenv("REVIEWBOT_FALLBACK_MODELS", json.dumps([fallback]))
    endpoint.set_default(by_model(Reply.status(503)))

    assert main(["review", str(LEEWAY), "--format", "json"]) == 0
    cost = json.loads(capsys.readouterr().out)["cost"]
    assert cost["usd"] == pytest.approx(0.0012)
    assert cost["price_source"] == "settings"
    assert (cost["price"]["input"], cost["price"]["output"]) == (1.0, 2.0)
