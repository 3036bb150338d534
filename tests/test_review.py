"""The whole engine against the fake endpoint over loopback, with the real openai client."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply, TokenUsage
from fixtures_path import SAMPLE_DIFFS
from reviewbot.engine.diff import Side, parse_diff
from reviewbot.engine.filters import FilterRules
from reviewbot.engine.llm import ModelClient
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.result import ReviewResult
from reviewbot.engine.review import Prepared, ReviewOptions, execute, prepare
from reviewbot.errors import ModelAuthError
from reviewbot.severity import Severity

LEEWAY = SAMPLE_DIFFS / "sample_leeway.diff"
LARGE = SAMPLE_DIFFS / "sample_large_trace.diff"


def options(context_window: int = 32_768, **fields: Any) -> ReviewOptions:
    return ReviewOptions(
        model="qwen3-coder-30b",
        context_window=context_window,
        max_output_tokens=1_024,
        rules=FilterRules(),
        prices=Prices(),
        **fields,
    )


def run(server: FakeOpenAI, prepared: Prepared, *, max_retries: int = 0, key: str = "sk-test") -> ReviewResult:
    async def go() -> ReviewResult:
        async with ModelClient(
            base_url=server.base_url,
            api_key=key,
            model="qwen3-coder-30b",
            timeout=5,
            max_retries=max_retries,
            concurrency=3,
            max_output_tokens=1_024,
            temperature=0.1,
            disable_thinking=True,
        ) as client:
            return await execute(prepared, client)

    return asyncio.run(go())


def finding(path: str, line: int, quote: str = "", **fields: Any) -> dict[str, Any]:
    base = {
        "path": path,
        "line": line,
        "start_line": None,
        "side": "RIGHT",
        "severity": "high",
        "category": "bug",
        "title": "Call before the docstring",
        "body": "The call makes the docstring a plain string expression.",
        "quote": quote,
        "suggestion": None,
    }
    base.update(fields)
    return base


def test_reviews_the_sample_change_and_places_the_finding_on_its_line(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        Reply.json(
            {"findings": [finding("src/itsdangerous/timed.py", 155, "if age < self.leeway:", severity="medium")]},
            usage=TokenUsage(prompt_tokens=2_000, completion_tokens=120),
        )
    )
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()))
    assert [(f.path, f.line, f.side, f.severity) for f in result.findings] == [
        ("src/itsdangerous/timed.py", 155, Side.RIGHT, Severity.MEDIUM)
    ]
    assert [skipped.path for skipped in result.skipped] == ["uv.lock"]
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.requests) == (2_000, 120, 1)
    body = fake_openai.requests[0].body
    assert body["model"] == "qwen3-coder-30b"
    assert body["response_format"]["type"] == "json_schema"
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    user = body["messages"][1]["content"]
    assert "155 +            if age < self.leeway:" in user
    assert "L148 -            if age < 0:" in user
    assert "uv.lock" not in user


def test_asks_once_more_when_the_answer_is_not_json_and_counts_it(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        Reply.text('{"findings": [{"path": "x", "line": 1,,}]}', usage=TokenUsage(100, 10)),
        Reply.json({"findings": [finding("CHANGES.rst", 8)]}, usage=TokenUsage(150, 20)),
    )
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()))
    assert [(f.path, f.line) for f in result.findings] == [("CHANGES.rst", 8)]
    assert result.repairs.invalid_json == 1
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.requests) == (250, 30, 2)
    repair = fake_openai.requests[1].body["messages"]
    assert repair[-2]["role"] == "assistant"
    assert "invalid JSON" in repair[-1]["content"]


def test_reports_a_request_whose_answer_stays_unreadable(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply.text("I think it looks fine."), Reply.text("Still fine!"))
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()))
    assert result.findings == ()
    assert len(result.failed) == 1
    assert "not valid JSON twice" in result.failed[0].reason
    assert {item.path for item in result.not_reviewed} == {
        "CHANGES.rst",
        "src/itsdangerous/timed.py",
        "tests/test_itsdangerous/test_timed.py",
    }
    assert result.all_requests_failed


def test_a_failed_request_is_reported_and_the_rest_of_the_review_still_comes_out(fake_openai: FakeOpenAI) -> None:
    prepared = prepare(parse_diff(LARGE.read_bytes()), options(context_window=4_096))
    assert len(prepared.plan.requests) >= 3
    doomed = prepared.plan.requests[1].messages[1]["content"]

    def answer(body: dict[str, Any]) -> Reply:
        if body["messages"][1]["content"] == doomed:
            return Reply.status(500)
        user = body["messages"][1]["content"]
        path = re.search(r"^File: (\S+)", user, re.MULTILINE)
        line = re.search(r"^(\d+) \+", user, re.MULTILINE)
        assert path is not None
        assert line is not None
        return Reply.json({"findings": [finding(path.group(1), int(line.group(1)), title=f"t{line.group(1)}")]})

    fake_openai.set_default(answer)
    result = run(fake_openai, prepared)
    assert [failure.index for failure in result.failed] == [1]
    assert "500" in result.failed[0].reason
    assert len(result.findings) == len(prepared.plan.requests) - 1
    failed_paths = set(prepared.plan.requests[1].paths)
    assert failed_paths <= {item.path for item in result.not_reviewed}
    assert not result.all_requests_failed


def test_a_line_off_the_diff_is_moved_or_kept_as_a_file_note(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        Reply.json(
            {
                "findings": [
                    finding("src/itsdangerous/timed.py", 161, "if age < self.leeway:", title="moved"),
                    finding("src/itsdangerous/timed.py", 900, "nowhere()", title="note"),
                    finding("not/in/the/diff.py", 3, title="dropped"),
                ]
            }
        )
    )
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()))
    placed = {f.title: f.line for f in result.findings}
    assert placed == {"moved": 155, "note": None}
    assert (result.repairs.moved, result.repairs.to_file_level, result.repairs.dropped) == (1, 1, 1)


def test_a_refused_key_stops_the_review(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_default(lambda body: Reply.status(401))
    prepared = prepare(parse_diff(LARGE.read_bytes()), options(context_window=4_096))
    with pytest.raises(ModelAuthError) as caught:
        run(fake_openai, prepared, key="sk-very-secret")
    assert "sk-very-secret" not in str(caught.value)


def test_retries_a_rate_limited_request_and_keeps_its_findings(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        Reply.status(429, headers={"retry-after-ms": "20"}),
        Reply.json({"findings": [finding("CHANGES.rst", 8)]}),
    )
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()), max_retries=2)
    assert len(result.findings) == 1
    assert len(fake_openai.requests) == 2


def test_sums_the_endpoints_own_cost(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_default(lambda body: Reply.json({"findings": []}, usage=TokenUsage(1_000, 50, cost=0.00021)))
    prepared = prepare(parse_diff(LARGE.read_bytes()), options(context_window=4_096))
    result = run(fake_openai, prepared)
    assert result.usage.requests == len(prepared.plan.requests)
    assert result.usage.cost_usd == pytest.approx(0.00021 * len(prepared.plan.requests))


def test_records_every_model_call_for_the_ledger(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        Reply.text("not json", usage=TokenUsage(100, 10)),
        Reply.json({"findings": []}, usage=TokenUsage(150, 20, cost=0.001)),
    )
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()))
    assert [(c.request_index, c.outcome, c.usage.input_tokens, c.usage.output_tokens) for c in result.calls] == [
        (0, "invalid_json", 100, 10),
        (0, "ok", 150, 20),
    ]
    assert result.calls[1].usage.cost_usd == 0.001
    assert all(c.model == "qwen3-coder-30b" and c.seconds >= 0 for c in result.calls)


def test_records_a_failed_call_with_its_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_default(lambda body: Reply.status(500))
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()))
    assert [(c.outcome, c.usage.input_tokens) for c in result.calls] == [("error", 0)]
    assert result.calls[0].error is not None
    assert "500" in result.calls[0].error


BUG = finding("src/itsdangerous/timed.py", 155, "if age < self.leeway:", title="Negative leeway check is inverted")
SLEEP = finding("tests/test_itsdangerous/test_timed.py", 48, "", title="Sleeps in a test")
# vLLM's answer to a prompt over --max-model-len (an OpenAI-style error body, HTTP 400).
VLLM_TOO_LONG: dict[str, Any] = {
    "object": "error",
    "message": "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens "
    "(4904 in the messages, 4096 in the completion). Please reduce the length of the messages or completion.",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}


def shown_files(body: dict[str, Any]) -> set[str]:
    return set(re.findall(r"^File: (\S+)", body["messages"][1]["content"], re.MULTILINE))


def cut_answer() -> Reply:
    """The answer to the whole change, cut at max_tokens in the middle of its second finding."""
    text = json.dumps({"findings": [BUG, SLEEP]})
    return Reply.text(text[: text.index('"tests/') + 10], finish_reason="length")


def halves_answer(body: dict[str, Any]) -> Reply:
    """The halves' answers, titled in other words than the cut answer's, as a model would."""
    files = shown_files(body)
    found = [dict(item, title=f"{item['title']} (seen again)") for item in (BUG, SLEEP) if item["path"] in files]
    return Reply.json({"findings": found})


def test_a_cut_answer_keeps_its_findings_and_the_request_is_asked_again_in_halves(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_default(lambda body: cut_answer() if len(shown_files(body)) > 1 else halves_answer(body))
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()))

    assert len(fake_openai.requests) >= 3
    # The cut answer's finding on line 155 was made again by a half: one comment, not two.
    assert sorted((f.path, f.line) for f in result.findings) == [
        ("src/itsdangerous/timed.py", 155),
        ("tests/test_itsdangerous/test_timed.py", 48),
    ]
    assert result.not_reviewed == ()
    assert result.failed == ()
    assert result.usage.requests == len(fake_openai.requests)


def test_a_cut_answer_to_one_hunk_keeps_its_findings_and_lists_the_lines_not_reviewed(
    fake_openai: FakeOpenAI,
) -> None:
    text = json.dumps({"findings": [BUG, dict(BUG, line=156, title="Second")]})
    fake_openai.set_default(lambda body: Reply.text(text[: text.index('"Second"')], finish_reason="length"))
    diff = parse_diff(LEEWAY.read_bytes())
    timed = next(file for file in diff.files if file.path == "src/itsdangerous/timed.py")
    one_hunk = dataclasses.replace(timed, hunks=timed.hunks[1:])
    prepared = prepare(dataclasses.replace(diff, files=(one_hunk,)), options())
    result = run(fake_openai, prepared)

    assert [(f.path, f.line) for f in result.findings] == [("src/itsdangerous/timed.py", 155)]
    assert result.failed == ()
    reasons = {gap.reason for gap in result.not_reviewed}
    assert len(reasons) == 1
    assert "cut at the 1,024-token limit (REVIEWBOT_MAX_OUTPUT_TOKENS)" in reasons.pop()


def test_a_request_too_long_for_the_model_is_split_once_and_never_sent_down_the_format_ladder(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.set_default(
        lambda body: Reply.raw(VLLM_TOO_LONG, status=400) if len(shown_files(body)) == 3 else halves_answer(body)
    )
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()))

    # The whole request once (three files), then its two halves.
    assert [len(shown_files(request.body)) for request in fake_openai.requests].count(3) == 1
    assert len(fake_openai.requests) == 3
    assert {(f.path, f.line) for f in result.findings} == {
        ("src/itsdangerous/timed.py", 155),
        ("tests/test_itsdangerous/test_timed.py", 48),
    }
    assert result.failed == ()


def test_a_request_still_too_long_after_a_split_fails_naming_the_context_window_setting(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.set_default(lambda body: Reply.raw(VLLM_TOO_LONG, status=400))
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()))

    assert len(fake_openai.requests) == 3  # the request, then its two halves: no retries, no ladder
    assert len(result.failed) == 2
    (reason,) = {failure.reason for failure in result.failed}
    assert "maximum context length is 8192 tokens" in reason
    assert "set REVIEWBOT_CONTEXT_WINDOW" in reason


def test_a_cut_answer_is_not_asked_again_in_halves_past_the_prompt_token_cap(fake_openai: FakeOpenAI) -> None:
    # The plan fits the cap; asking again in halves would send the prompt a second time and pass it.
    diff = parse_diff(LEEWAY.read_bytes())
    planned = prepare(diff, options()).plan.estimated_tokens
    fake_openai.set_default(lambda body: cut_answer() if len(shown_files(body)) > 1 else halves_answer(body))

    result = run(fake_openai, prepare(diff, options(max_input_tokens=planned + planned // 2)))

    assert len(fake_openai.requests) == 1
    assert [(f.path, f.line) for f in result.findings] == [("src/itsdangerous/timed.py", 155)]
    reasons = {gap.reason for gap in result.not_reviewed}
    assert len(reasons) == 1
    reason = reasons.pop()
    assert "cut at the 1,024-token limit" in reason
    assert "REVIEWBOT_MAX_INPUT_TOKENS" in reason


def test_a_cut_answer_s_finding_the_halves_do_not_make_again_is_kept(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_default(lambda body: cut_answer() if len(shown_files(body)) > 1 else Reply.json({"findings": []}))
    result = run(fake_openai, prepare(parse_diff(LEEWAY.read_bytes()), options()))

    assert [(f.path, f.line) for f in result.findings] == [("src/itsdangerous/timed.py", 155)]
