"""Reasoning is removed only where the model wrote it: a pull request cannot cut the answer.

The real engine (and, for a posted review, the real service) runs against the scripted model on
loopback. Every added line of the pull request here carries ``</think>`` or ``<think>``, and the
model quotes those lines in its findings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_github import FakeGitHub
from fake_openai import FakeOpenAI, Reasoning, Reply
from reviewbot.engine.diff import parse_diff
from reviewbot.engine.result import ReviewResult
from reviewbot.engine.review import prepare
from reviewbot.store.store import open_store
from test_review import options, run
from test_service import BASE, HEAD, NUMBER, REPO, Harness, make_service, make_settings

pytestmark = pytest.mark.usefixtures("clean_environment")

PATH = "app/chat_template.py"
ADDED = [
    'OPEN = "<think>"  # </think> closes it',
    'CLOSE = "</think>"',
    "def strip(text):  # drops <think>...</think>",
    '    return text.split("</think>")[-1]  # </think>',
    "def wrap(text):  # </think>",
    '    return "<think>" + text + "</think>"',
]
TAGGED_DIFF = "\n".join(
    [
        f"diff --git a/{PATH} b/{PATH}",
        "new file mode 100644",
        "index 0000000..3333333",
        "--- /dev/null",
        f"+++ b/{PATH}",
        f"@@ -0,0 +1,{len(ADDED)} @@",
        *(f"+{line}" for line in ADDED),
        "",
    ]
)


def finding(line: int, title: str, body: str, suggestion: str | None = None) -> dict[str, Any]:
    return {
        "path": PATH,
        "line": line,
        "start_line": None,
        "side": "RIGHT",
        "severity": "high",
        "category": "bug",
        "title": title,
        "body": body,
        "quote": ADDED[line - 1],
        "suggestion": suggestion,
    }


PLANTED = [
    finding(2, "The closing tag is hard-coded", "`</think>` differs between templates; read it from the tokenizer."),
    finding(
        4,
        "Splitting on </think> keeps only the last part",
        "An answer that itself quotes </think> loses everything before its last quote.",
        '    return text.split("</think>", 1)[-1]  # </think>',
    ),
    finding(6, "wrap() nests <think> blocks", "Calling wrap twice gives <think><think>…</think></think>."),
]
ANSWER = {"findings": PLANTED}
DRAFT = json.dumps({"findings": [finding(1, "draft only", "not the answer")]})  # what reasoning may hold


def review(fake_openai: FakeOpenAI, *replies: Reply) -> ReviewResult:
    """The real engine on the tagged pull request, the model answering ``replies`` in turn."""
    fake_openai.push(*replies)
    return run(fake_openai, prepare(parse_diff(TAGGED_DIFF), options()))


def titles(result: ReviewResult) -> list[str]:
    return [finding.title for finding in result.findings]


def test_findings_that_quote_think_tags_all_come_through_intact(fake_openai: FakeOpenAI) -> None:
    result = review(fake_openai, Reply.json(ANSWER))

    assert result.failed == ()
    assert len(fake_openai.requests) == 1  # no repair round was needed
    assert [(f.line, f.title, f.body, f.suggestion) for f in result.findings] == [
        (item["line"], item["title"], item["body"], item["suggestion"]) for item in PLANTED
    ]


def test_a_leading_reasoning_block_is_removed_even_when_it_quotes_a_closing_tag(fake_openai: FakeOpenAI) -> None:
    reasoning = (
        '<think>\nLine 2 is CLOSE = "</think>"; a draft: {"findings": [{"path": "app/chat_template.py", '
        '"line": 1, "title": "draft only", "body": "x"}]}\n</think>\n\n'
    )

    result = review(fake_openai, Reply.text(reasoning + json.dumps(ANSWER)))

    assert titles(result) == [item["title"] for item in PLANTED]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
@pytest.mark.parametrize("thinking", [f"<think>{DRAFT}</think> then </think>", f"{DRAFT} <think>"])
def test_reasoning_sent_in_its_own_field_is_ignored(fake_openai: FakeOpenAI, field: Any, thinking: str) -> None:
    result = review(fake_openai, Reply.json(ANSWER, reasoning=Reasoning(thinking, field)))

    assert titles(result) == [item["title"] for item in PLANTED]


def test_reasoning_whose_opening_tag_was_in_the_prompt_is_passed_over(fake_openai: FakeOpenAI) -> None:
    # DeepSeek-R1 and Qwen3 thinking templates open the block in the prompt: only </think> is in the reply.
    content = f"The diff adds template tags. A first draft: {DRAFT}\nDone thinking.\n</think>\n\n{json.dumps(ANSWER)}"

    result = review(fake_openai, Reply.text(content))

    assert titles(result) == [item["title"] for item in PLANTED]


def test_reasoning_cut_off_by_the_token_limit_is_no_answer_not_its_draft(fake_openai: FakeOpenAI) -> None:
    cut = Reply.text(
        '<think>\nA draft: {"findings": [{"path": "app/chat_template.py", "line": 2, "title": "draft only", '
        '"body": "x"}]}\nBut wait',
        finish_reason="length",
    )

    result = review(fake_openai, cut, cut)

    assert result.findings == ()
    assert len(fake_openai.requests) == 2
    (failed,) = result.failed
    assert "the reply was empty" in failed.reason


# -- through the service, onto the pull request ----------------------------------------------


@pytest.fixture
def tagged_harness(fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[Harness]:
    settings = make_settings(fake_github, fake_openai)
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    fake_github.add_pull(REPO, NUMBER, TAGGED_DIFF, head_sha=HEAD, base_sha=BASE, title="Chat template tags")
    yield Harness(fake_github, fake_openai, settings, store, make_service(settings, store))
    store.close()


def test_a_pull_request_full_of_think_tags_gets_every_planted_finding_posted(tagged_harness: Harness) -> None:
    tagged_harness.model.set_default(lambda body: Reply.json(ANSWER))

    outcome = tagged_harness.run()

    assert outcome.state == "done"
    assert tagged_harness.placed() == [(PATH, 2, None), (PATH, 4, None), (PATH, 6, None)]
    bodies = [comment["body"] for comment in tagged_harness.github.comments(REPO, NUMBER)]
    for item, body in zip(PLANTED, bodies, strict=True):
        assert item["body"] in body
    assert '```suggestion\n    return text.split("</think>", 1)[-1]  # </think>\n```' in bodies[1]
    assert "3 new findings" in tagged_harness.only_review()["body"]
