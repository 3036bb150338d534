"""Reading an endpoint's error body, with plain data (the ladder itself is tested over loopback in test_llm)."""

from __future__ import annotations

import pytest

from reviewbot.engine.refusal import about_response_format, described, server_words


def test_fastapi_s_list_of_validation_errors_gives_each_message() -> None:
    body = {"detail": [{"loc": ["body", "stop"], "msg": "Input should be a list", "type": "list_type"}, {"msg": "x"}]}

    assert server_words(body) == "Input should be a list; x"


def test_openrouter_s_provider_error_gives_the_provider_s_body() -> None:
    body = {"message": "Provider returned error", "code": 400, "metadata": {"raw": "model is overloaded"}}

    assert server_words(body) == "Provider returned error: model is overloaded"


def test_a_page_of_words_is_cut_to_one_line() -> None:
    words = server_words("line\n" * 400)

    assert len(words) == 500
    assert "\n" not in words
    assert words.endswith("…")


def test_a_body_nested_deeper_than_any_server_nests_its_message_gives_no_words() -> None:
    body: object = "deep"
    for _ in range(10):
        body = {"error": body}

    assert server_words(body) == ""
    assert described(body).startswith('{"error": {"error":')


@pytest.mark.parametrize("body", [None, "", "  \n", {}, []])
def test_a_body_without_words_is_said_to_have_none(body: object) -> None:
    assert described(body) == "no error message"


@pytest.mark.parametrize(
    "text",
    [
        "Unrecognized request argument supplied: chat_template_kwargs",
        "This model's maximum context length is 8192 tokens.",
        "Invalid 'messages[0].content': string too long.",
    ],
)
def test_refusals_of_something_else_are_not_about_the_response_format(text: str) -> None:
    assert not about_response_format(text)
