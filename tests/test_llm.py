"""The model client, with the real openai SDK talking to a fake endpoint over loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from typing import Any

import openai
import pytest

from fake_openai import FORMAT_REFUSALS, FakeOpenAI, Reply, TokenUsage
from reviewbot.engine.llm import ModelClient, ModelReply, strip_thinking
from reviewbot.engine.usage import Usage
from reviewbot.errors import ConfigError, ContextLengthError, ModelAuthError, ModelError
from reviewbot.settings import Settings

KEY = "sk-test-0123456789abcdef"
MESSAGES = [
    {"role": "system", "content": "You review code."},
    {"role": "user", "content": "Review this diff."},
]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"findings": {"type": "array", "items": {"type": "string"}}},
    "required": ["findings"],
    "additionalProperties": False,
}
FAST = {"retry-after-ms": "10"}


def make_client(
    base_url: str,
    *,
    api_key: str = KEY,
    timeout: float = 5.0,
    max_retries: int = 2,
    concurrency: int = 4,
    disable_thinking: bool = True,
) -> ModelClient:
    return ModelClient(
        base_url=base_url,
        api_key=api_key,
        model="fake-model",
        timeout=timeout,
        max_retries=max_retries,
        concurrency=concurrency,
        max_output_tokens=512,
        temperature=0.1,
        disable_thinking=disable_thinking,
    )


def ask(base_url: str, *, calls: int = 1, **options: Any) -> list[ModelReply]:
    """Make ``calls`` requests one after another with one client; return the replies."""

    async def main() -> list[ModelReply]:
        async with make_client(base_url, **options) as client:
            return [await client.complete(MESSAGES, SCHEMA) for _ in range(calls)]

    return asyncio.run(main())


def ask_error(base_url: str, **options: Any) -> ModelError:
    with pytest.raises(ModelError) as info:
        ask(base_url, **options)
    return info.value


def response_formats(fake: FakeOpenAI) -> list[str]:
    return [request.body.get("response_format", {}).get("type", "text") for request in fake.requests]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- answers and usage ------------------------------------------------------------------------


def test_a_json_reply_comes_back_with_its_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.json({"findings": ["x"]}, usage=TokenUsage(prompt_tokens=120, completion_tokens=30)))

    [reply] = ask(fake_openai.base_url)

    assert reply.text == '{"findings": ["x"]}'
    assert reply.usage == Usage(input_tokens=120, output_tokens=30, reasoning_tokens=0, requests=1, cost_usd=None)
    assert reply.usage_reported
    assert reply.response_format == "json_schema"
    assert reply.finish_reason == "stop"
    assert reply.seconds > 0


def test_the_request_carries_the_model_settings_and_the_strict_schema(fake_openai: FakeOpenAI) -> None:
    ask(fake_openai.base_url)

    [request] = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "fake-model"
    assert request.body["messages"] == MESSAGES
    assert request.body["temperature"] == 0.1
    assert request.body["max_tokens"] == 512
    assert "stream" not in request.body
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "review", "schema": SCHEMA, "strict": True},
    }


def test_the_cost_the_endpoint_reports_is_kept(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.json({}, usage=TokenUsage(prompt_tokens=1000, completion_tokens=200, cost=0.00042)))

    [reply] = ask(fake_openai.base_url)

    assert reply.usage.cost_usd == pytest.approx(0.00042)


def test_reasoning_tokens_are_counted(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.json({}, usage=TokenUsage(prompt_tokens=10, completion_tokens=90, reasoning_tokens=70)))

    [reply] = ask(fake_openai.base_url)

    assert (reply.usage.output_tokens, reply.usage.reasoning_tokens) == (90, 70)


def test_cached_prompt_tokens_are_counted_as_openai_reports_them(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.json({}, usage=TokenUsage(prompt_tokens=2_000, completion_tokens=50, cached_tokens=1_536)))

    [reply] = ask(fake_openai.base_url)

    assert (reply.usage.input_tokens, reply.usage.cached_tokens) == (2_000, 1_536)


def test_cached_prompt_tokens_are_counted_as_deepseek_reports_them(fake_openai: FakeOpenAI) -> None:
    usage = TokenUsage(prompt_tokens=2_000, completion_tokens=50, cache_hit_tokens=1_280)
    fake_openai.push(Reply.json({}, usage=usage))

    [reply] = ask(fake_openai.base_url)

    assert (reply.usage.input_tokens, reply.usage.cached_tokens) == (2_000, 1_280)


def test_cached_tokens_are_never_more_than_the_prompt(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.json({}, usage=TokenUsage(prompt_tokens=100, completion_tokens=5, cached_tokens=4_000)))

    [reply] = ask(fake_openai.base_url)

    assert reply.usage.cached_tokens == 100


@pytest.mark.parametrize(
    "reply",
    [
        Reply.no_usage({"findings": []}),
        Reply.json({"findings": []}, usage=TokenUsage(prompt_tokens=0, completion_tokens=0)),
    ],
    ids=["no usage", "zeros"],
)
def test_a_reply_without_token_counts_gets_estimates_marked_as_such(fake_openai: FakeOpenAI, reply: Reply) -> None:
    fake_openai.push(reply)

    [answer] = ask(fake_openai.base_url)

    assert not answer.usage_reported
    assert answer.usage.estimated
    assert answer.usage.input_tokens > 10
    assert answer.usage.output_tokens > 0
    assert answer.usage.cost_usd is None
    assert answer.text == '{"findings": []}'


def test_content_null_after_thinking_to_the_limit_keeps_the_billed_usage(fake_openai: FakeOpenAI) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "qwen3-coder-30b",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "reasoning_content": "Let me think"},
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": 900,
            "completion_tokens": 1024,
            "total_tokens": 1924,
            "completion_tokens_details": {"reasoning_tokens": 1024},
        },
    }
    fake_openai.push(Reply.raw(body))

    [answer] = ask(fake_openai.base_url)

    assert (answer.text, answer.finish_reason) == ("", "length")
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.reasoning_tokens) == (900, 1024, 1024)
    assert not answer.usage.estimated


def test_litellm_s_cost_header_is_the_endpoint_s_figure(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(dataclasses.replace(Reply.json({"findings": []}), headers={"x-litellm-response-cost": "0.00042"}))

    [answer] = ask(fake_openai.base_url)

    assert answer.usage.cost_usd == 0.00042


@pytest.mark.parametrize("cost", ["1e400", "-0.5", "NaN", '"lots"'])
def test_a_reported_cost_that_is_no_amount_of_dollars_is_ignored_and_said(
    fake_openai: FakeOpenAI, cost: str, caplog: pytest.LogCaptureFixture
) -> None:
    completion = (
        '{"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [{"index": 0, '
        '"message": {"role": "assistant", "content": "{\\"findings\\": []}"}, "finish_reason": "stop"}], '
        f'"usage": {{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": {cost}}}}}'
    )
    fake_openai.push(Reply.json_text(completion))

    [answer] = ask(fake_openai.base_url)

    assert answer.usage.cost_usd is None
    assert answer.usage.input_tokens == 10
    assert "which is no amount of dollars" in caplog.text


def test_a_server_that_always_streams_still_gives_its_answer_and_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.streamed_anyway('{"findings": []}', usage=TokenUsage(prompt_tokens=50, completion_tokens=7)))

    [answer] = ask(fake_openai.base_url)

    assert "stream" not in fake_openai.requests[0].body
    assert answer.text == '{"findings": []}'
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (50, 7)
    assert answer.finish_reason == "stop"


def test_think_blocks_are_stripped_from_the_answer(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.text('<think>\nThe diff adds a loop.\n</think>\n\n{"findings": []}', finish_reason="length"))

    [reply] = ask(fake_openai.base_url)

    assert reply.text == '{"findings": []}'
    assert reply.finish_reason == "length"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("<think>a</think>answer", "answer"),
        ("\n <think>\nquotes </think> early</think>answer", "early</think>answer"),
        ("<think>a</think> one <think>b</think> two", "one <think>b</think> two"),
        ('{"quote": "<think>x</think>"}', '{"quote": "<think>x</think>"}'),
        ('{"quote": "</think>"} </think>', '{"quote": "</think>"} </think>'),
        ("reasoning the template opened</think>\nanswer", "reasoning the template opened</think>\nanswer"),
        ("<think>cut off while thinking", ""),
        ("<think>", ""),
        ("no thinking at all", "no thinking at all"),
    ],
)
def test_strip_thinking_removes_only_the_block_the_answer_opens_with(content: str, expected: str) -> None:
    assert strip_thinking(content) == expected


@pytest.mark.parametrize(
    "reply",
    [
        Reply.raw({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}),
        Reply.raw("not a completion"),
    ],
    ids=["no choices", "not an object"],
)
def test_an_empty_answer_is_a_model_error(fake_openai: FakeOpenAI, reply: Reply) -> None:
    fake_openai.push(reply)

    error = ask_error(fake_openai.base_url)

    assert "the endpoint returned no answer" in str(error)


# -- the structured-output ladder and the thinking switch ---------------------------------------


# 400s that are about something else than the response format: a lower rung would be refused alike.
UNRELATED_REFUSALS = {
    "unknown argument": Reply.error(400, "Unrecognized request argument supplied: foo"),
    # OpenRouter answers an unknown model with a 400
    "unknown model": Reply.error(400, "qwen3-coder-30b is not a valid model ID"),
    "content filter": Reply.error(
        400,
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
        "Please modify your prompt and retry.",
        param="prompt",
        error_code="content_filter",
    ),
    "malformed message": Reply.error(
        400,
        "Invalid type for 'messages[1].content': expected one of a string or array of objects, but got an object "
        "instead.",
        param="messages.[1].content",
        error_code="invalid_type",
    ),
    # LiteLLM refuses other parameters in the words it refuses response_format with
    "litellm temperature": Reply.error(
        400,
        "litellm.UnsupportedParamsError: gpt-5-nano doesn't support temperature=0.1 while reasoning is active. "
        "To drop unsupported params set `litellm.drop_params = True`.",
        error_code="400",
    ),
}

# Bad requests that give no reason at all.
SILENT_REFUSALS = {
    "no body": Reply.json_text("", status=400),
    "empty object": Reply.raw({}, status=400),
    "error without words": Reply.raw({"error": {"code": 400, "type": "invalid_request_error"}}, status=400),
}


def fail_and_level(base_url: str, **options: Any) -> tuple[ModelError, str]:
    """The error of one request that fails, and the ladder level the client is left at."""

    async def main() -> tuple[ModelError, str]:
        async with make_client(base_url, **options) as client:
            with pytest.raises(ModelError) as info:
                await client.complete(MESSAGES, SCHEMA)
            return info.value, client.response_format

    return asyncio.run(main())


@pytest.mark.parametrize("server", sorted(FORMAT_REFUSALS))
def test_a_refused_response_format_is_asked_one_step_down_and_later_requests_start_there(
    fake_openai: FakeOpenAI, server: str
) -> None:
    fake_openai.push(FORMAT_REFUSALS[server])

    # No retries: a refusal sent as a 500 is the SDK's to retry first, which is not what this test is about.
    first, second = ask(fake_openai.base_url, calls=2, max_retries=0)

    assert response_formats(fake_openai) == ["json_schema", "json_object", "json_object"]
    assert first.response_format == second.response_format == "json_object"


def test_an_endpoint_refusing_both_json_modes_is_asked_in_plain_text(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        FORMAT_REFUSALS["openai-unsupported"],
        # OpenAI's words for a model without JSON mode (github.com/openai-php/client/issues/259)
        Reply.error(
            400,
            "Invalid parameter: 'response_format' of type 'json_object' is not supported with this model.",
            param="response_format",
        ),
        Reply.text("plain answer"),
    )

    first, second = ask(fake_openai.base_url, calls=2)

    assert response_formats(fake_openai) == ["json_schema", "json_object", "text", "text"]
    assert "response_format" not in fake_openai.requests[-1].body
    assert (first.text, first.response_format, second.response_format) == ("plain answer", "text", "text")


def test_lm_studio_refusing_json_object_is_asked_in_plain_text(fake_openai: FakeOpenAI) -> None:
    # LM Studio takes json_schema and text only (github.com/lmstudio-ai/lmstudio-bug-tracker/issues/189)
    lm_studio = Reply.raw({"error": "'response_format.type' must be 'json_schema' or 'text'"}, status=400)
    fake_openai.push(FORMAT_REFUSALS["lm-studio"], lm_studio)

    [reply] = ask(fake_openai.base_url)

    assert response_formats(fake_openai) == ["json_schema", "json_object", "text"]
    assert reply.response_format == "text"


def test_a_refusal_sent_as_a_500_is_retried_before_the_step_down(fake_openai: FakeOpenAI) -> None:
    ollama = dataclasses.replace(FORMAT_REFUSALS["ollama"], headers=FAST)
    fake_openai.push(ollama, ollama)

    [reply] = ask(fake_openai.base_url, max_retries=1)

    assert response_formats(fake_openai) == ["json_schema", "json_schema", "json_object"]
    assert reply.response_format == "json_object"


def test_a_500_that_says_nothing_of_the_format_does_not_step_down(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_default(lambda body: Reply.status(500))

    error, level = fail_and_level(fake_openai.base_url, max_retries=0)

    assert response_formats(fake_openai) == ["json_schema"]
    assert (error.status, level) == (500, "json_schema")


@pytest.mark.parametrize("refusal", list(UNRELATED_REFUSALS.values()), ids=list(UNRELATED_REFUSALS))
def test_a_bad_request_about_something_else_is_a_model_error_at_once_and_keeps_the_level(
    fake_openai: FakeOpenAI, refusal: Reply
) -> None:
    fake_openai.set_default(lambda body: refusal)

    error, level = fail_and_level(fake_openai.base_url)

    assert response_formats(fake_openai) == ["json_schema"]
    assert refusal.error_body is not None
    assert f"answered HTTP 400: {refusal.error_body.message}" in str(error)
    assert level == "json_schema"


# What a FastAPI-based server's 422 echoes in "input": words the client looks for in an error, there
# only because the request (the pull request's code, or the client's own fields) held them.
ECHOED_WORDS = {
    "format": {"role": "user", "content": "class UserSchema(BaseModel): ..."},
    "context length": {"role": "user", "content": 'raise ValueError("prompt is too long")'},
    "thinking switch": {"chat_template_kwargs": {"enable_thinking": False}},
}


@pytest.mark.parametrize("echo", list(ECHOED_WORDS.values()), ids=list(ECHOED_WORDS))
def test_a_validation_error_is_read_by_what_it_says_not_by_the_request_it_echoes(
    fake_openai: FakeOpenAI, echo: dict[str, Any]
) -> None:
    detail = [
        {
            "type": "extra_forbidden",
            "loc": ["body", "messages", 1, "name"],
            "msg": "Extra inputs are not permitted",
            "input": echo,
        }
    ]
    fake_openai.set_default(lambda body: Reply.raw({"detail": detail}, status=422))

    error, level = fail_and_level(fake_openai.base_url, disable_thinking=True)

    # One request: no step down the ladder, no retry without the thinking switch.
    assert [request.body.get("chat_template_kwargs") for request in fake_openai.requests] == [
        {"enable_thinking": False}
    ]
    assert type(error) is ModelError  # not a ContextLengthError, which would split the request
    assert "HTTP 422: Extra inputs are not permitted" in str(error)
    assert level == "json_schema"


@pytest.mark.parametrize(
    ("refusal", "shown"),
    [
        # LM Studio's shape: the error is a bare string
        (Reply.raw({"error": "'messages' field is required"}, status=400), "HTTP 400: 'messages' field is required"),
        # TGI's shape, and its status for a request it will not take
        (
            Reply.raw({"error": "`top_p` must be > 0.0 and < 1.0", "error_type": "validation"}, status=422),
            "HTTP 422: `top_p` must be > 0.0 and < 1.0",
        ),
        # FastAPI's, as servers built on it send a refusal of their own
        (
            Reply.raw({"detail": "Invalid request:\n  stop must be a list"}, status=400),
            "HTTP 400: Invalid request: stop",
        ),
        (Reply.raw({"error": f"Invalid header: Bearer {KEY}"}, status=400), "HTTP 400: Invalid header: Bearer ***"),
        (Reply.raw({"errors": [{"reason": "bad"}]}, status=400), 'HTTP 400: {"errors": [{"reason": "bad"}]}'),
    ],
    ids=["lm-studio", "tgi", "fastapi", "key echoed", "unknown shape"],
)
def test_the_model_error_of_a_bad_request_gives_the_server_s_words_on_one_line(
    fake_openai: FakeOpenAI, refusal: Reply, shown: str
) -> None:
    fake_openai.set_default(lambda body: refusal)

    error, _ = fail_and_level(fake_openai.base_url)

    assert shown in str(error)
    assert "\n" not in str(error)
    assert KEY not in str(error)


@pytest.mark.parametrize("refusal", list(SILENT_REFUSALS.values()), ids=list(SILENT_REFUSALS))
def test_a_bad_request_that_gives_no_reason_is_asked_again_one_step_down(
    fake_openai: FakeOpenAI, refusal: Reply
) -> None:
    fake_openai.push(refusal)

    first, second = ask(fake_openai.base_url, calls=2)

    assert response_formats(fake_openai) == ["json_schema", "json_object", "json_object"]
    assert first.response_format == second.response_format == "json_object"


def test_bad_requests_that_never_give_a_reason_end_in_a_model_error_and_keep_the_level(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.set_default(lambda body: SILENT_REFUSALS["no body"])

    error, level = fail_and_level(fake_openai.base_url)

    assert response_formats(fake_openai) == ["json_schema", "json_object", "text"]
    assert "HTTP 400: no error message" in str(error)
    assert level == "json_schema"


def test_a_step_down_the_ladder_is_logged_once_with_the_refusal(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.push(FORMAT_REFUSALS["vllm-xgrammar"])

    with caplog.at_level(logging.WARNING, logger="reviewbot.llm"):
        ask(fake_openai.base_url, calls=2)

    [warning] = [record.getMessage() for record in caplog.records if record.name == "reviewbot.llm"]
    assert "json_object" in warning
    assert "not supported by xgrammar" in warning


def test_a_request_over_the_context_window_is_refused_once_and_names_the_setting(fake_openai: FakeOpenAI) -> None:
    too_long = "This model's maximum context length is 32768 tokens."
    fake_openai.set_default(lambda body: Reply.error(400, too_long, error_code="context_length_exceeded"))

    async def main() -> str:
        async with make_client(fake_openai.base_url) as client:
            with pytest.raises(ContextLengthError) as info:
                await client.complete(MESSAGES, SCHEMA)
            return str(info.value)

    message = asyncio.run(main())

    assert response_formats(fake_openai) == ["json_schema"]  # no response format makes a prompt shorter
    assert too_long in message
    assert "set REVIEWBOT_CONTEXT_WINDOW" in message


def test_the_thinking_switch_is_sent_only_when_thinking_is_disabled(fake_openai: FakeOpenAI) -> None:
    ask(fake_openai.base_url, disable_thinking=True)
    ask(fake_openai.base_url, disable_thinking=False)

    with_switch, without_switch = fake_openai.requests
    assert with_switch.body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "chat_template_kwargs" not in without_switch.body


def test_a_refused_chat_template_kwargs_is_dropped_and_not_sent_again(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.error(400, "Unrecognized request argument supplied: chat_template_kwargs"))

    first, second = ask(fake_openai.base_url, calls=2)

    sent = ["chat_template_kwargs" in request.body for request in fake_openai.requests]
    assert sent == [True, False, False]
    assert response_formats(fake_openai) == ["json_schema", "json_schema", "json_schema"]
    assert first.response_format == second.response_format == "json_schema"


# -- retries and errors ------------------------------------------------------------------------


def test_a_429_is_retried_after_the_retry_after_ms_delay(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.status(429, headers=FAST), Reply.json({"findings": []}))

    [reply] = ask(fake_openai.base_url)

    assert reply.text == '{"findings": []}'
    assert len(fake_openai.requests) == 2
    assert fake_openai.requests[1].headers["x-stainless-retry-count"] == "1"


def test_a_retry_after_header_in_whole_seconds_is_honoured(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.status(429, headers={"retry-after": "1"}))

    ask(fake_openai.base_url)

    first, retry = fake_openai.requests
    assert retry.received_at - first.received_at >= 0.95


def test_a_500_is_retried_and_the_retry_succeeds(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.status(500, headers=FAST), Reply.json({"ok": True}))

    [reply] = ask(fake_openai.base_url)

    assert reply.text == '{"ok": true}'
    assert len(fake_openai.requests) == 2


def test_a_lasting_500_becomes_a_model_error_after_the_retries(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_default(lambda body: Reply.status(500, headers=FAST))

    error = ask_error(fake_openai.base_url, max_retries=1)

    assert len(fake_openai.requests) == 2
    assert "HTTP 500" in str(error)
    assert not isinstance(error, ModelAuthError)
    assert isinstance(error.__cause__, openai.InternalServerError)


def test_a_lasting_429_becomes_a_model_error_naming_the_rate_limit(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_default(lambda body: Reply.status(429, headers=FAST))

    error = ask_error(fake_openai.base_url, max_retries=1)

    assert "429" in str(error)
    assert "rate limit" in str(error)
    assert isinstance(error.__cause__, openai.RateLimitError)


def test_a_reply_slower_than_the_timeout_becomes_a_model_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.delay(2.0))
    started = time.monotonic()

    error = ask_error(fake_openai.base_url, timeout=0.3, max_retries=0)

    assert time.monotonic() - started < 1.5
    assert "timed out after 0.3 s" in str(error)
    assert isinstance(error.__cause__, openai.APITimeoutError)


def test_a_refused_key_is_a_model_auth_error_that_does_not_show_the_key(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.status(401))

    error = ask_error(fake_openai.base_url)

    assert isinstance(error, ModelAuthError)
    assert "HTTP 401" in str(error)
    assert fake_openai.base_url in str(error)
    assert KEY in str(error.__cause__)  # the endpoint did echo it...
    assert KEY not in str(error)  # ...but we do not
    assert len(fake_openai.requests) == 1


def test_an_endpoint_error_echoing_the_key_is_redacted(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.status(503, message="upstream refused {key}"))

    error = ask_error(fake_openai.base_url, max_retries=0)

    assert "HTTP 503: upstream refused ***" in str(error)
    assert KEY not in str(error)


def test_an_unknown_model_is_a_model_error_naming_the_model(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.status(404))

    error = ask_error(fake_openai.base_url)

    assert "'fake-model'" in str(error)
    assert "may be unknown" in str(error)
    assert len(fake_openai.requests) == 1


def test_a_closed_port_is_a_model_error_naming_the_url() -> None:
    base_url = f"http://127.0.0.1:{closed_port()}/v1"

    error = ask_error(base_url, max_retries=0)

    assert f"could not connect to {base_url}" in str(error)
    assert isinstance(error.__cause__, openai.APIConnectionError)


# -- concurrency and settings ------------------------------------------------------------------


def test_no_more_requests_than_the_concurrency_are_in_flight(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(*[Reply.delay(0.1)] * 6)

    async def main() -> list[ModelReply]:
        async with make_client(fake_openai.base_url, concurrency=2) as client:
            return await asyncio.gather(*[client.complete(MESSAGES, SCHEMA) for _ in range(6)])

    replies = asyncio.run(main())

    assert len(replies) == 6
    assert len(fake_openai.requests) == 6
    assert fake_openai.max_in_flight == 2
    assert max(reply.seconds for reply in replies) < 0.25  # the wait for a slot is not counted


def test_from_settings_without_a_key_is_a_config_error() -> None:
    settings = Settings(base_url="http://127.0.0.1:9/v1", api_key=None)

    with pytest.raises(ConfigError, match=r"no API key: set REVIEWBOT_API_KEY \(or OPENAI_API_KEY\)") as info:
        ModelClient.from_settings(settings)

    assert "http://127.0.0.1:9/v1" in str(info.value)


def test_from_settings_sends_the_configured_key_and_model(fake_openai: FakeOpenAI) -> None:
    settings = Settings(base_url=fake_openai.base_url, api_key="sk-from-settings", model="qwen3-coder")

    async def main() -> None:
        async with ModelClient.from_settings(settings) as client:
            await client.complete(MESSAGES, SCHEMA)

    asyncio.run(main())

    [request] = fake_openai.requests
    assert request.headers["authorization"] == "Bearer sk-from-settings"
    assert request.body["model"] == "qwen3-coder"


# -- the fake itself speaks streaming ------------------------------------------------------------
