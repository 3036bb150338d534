from __future__ import annotations

import json

import pytest

from reviewbot.engine.diff import Side
from reviewbot.engine.findings import parse_reply
from reviewbot.engine.result import Category
from reviewbot.severity import Severity

ONE = {
    "path": "a.py",
    "line": 3,
    "start_line": None,
    "side": "RIGHT",
    "severity": "high",
    "category": "bug",
    "title": "Off by one",
    "body": "The loop skips the last item.",
    "quote": "for i in range(n - 1):",
    "suggestion": None,
}


def test_reads_strict_json() -> None:
    parsed = parse_reply(json.dumps({"findings": [ONE]}))
    assert parsed.problem is None
    assert [(f.path, f.line, f.severity, f.category) for f in parsed.findings] == [
        ("a.py", 3, Severity.HIGH, Category.BUG)
    ]


def test_reads_json_in_a_code_fence_after_prose() -> None:
    text = "Here is my review:\n```json\n" + json.dumps({"findings": [ONE]}) + "\n```\nThanks!"
    assert len(parse_reply(text).findings) == 1


def test_reads_json_embedded_in_prose_without_a_fence() -> None:
    text = "Sure. " + json.dumps({"findings": [ONE]}) + " Let me know {if} you need more."
    assert len(parse_reply(text).findings) == 1


def test_reads_a_bare_list_and_ignores_a_think_block() -> None:
    text = "<think>the answer is {not this}</think>" + json.dumps([ONE])
    assert len(parse_reply(text).findings) == 1


def test_maps_severity_and_category_synonyms_and_lowercase_sides() -> None:
    item = dict(ONE, severity="Warning", category="logic", side="left")
    finding = parse_reply(json.dumps({"findings": [item]})).findings[0]
    assert (finding.severity, finding.category, finding.side) == (Severity.MEDIUM, Category.CORRECTNESS, Side.LEFT)


def test_accepts_line_numbers_sent_as_strings() -> None:
    finding = parse_reply(json.dumps({"findings": [dict(ONE, line="7", start_line="5")]})).findings[0]
    assert (finding.start_line, finding.line) == (5, 7)


def test_drops_and_counts_items_it_cannot_use() -> None:
    items = [ONE, {"path": "a.py"}, dict(ONE, line=0), dict(ONE, title="", body=""), "text"]
    parsed = parse_reply(json.dumps({"findings": items}))
    assert len(parsed.findings) == 1
    assert parsed.dropped == 4


def test_reports_invalid_json_with_its_position() -> None:
    parsed = parse_reply('{"findings": [{"path": "a.py", "line": 3,,}]}')
    assert parsed.findings == ()
    assert parsed.problem is not None
    assert "invalid JSON" in parsed.problem
    assert "column" in parsed.problem


def test_reports_an_empty_reply() -> None:
    assert parse_reply("  ").problem == "the reply was empty"


def test_reports_json_without_a_findings_list() -> None:
    assert parse_reply('{"verdict": "fine"}').problem == 'the JSON has no "findings" list'


def test_an_empty_findings_list_is_a_valid_answer() -> None:
    parsed = parse_reply('{"findings": []}')
    assert (parsed.findings, parsed.problem) == ((), None)


def test_keeps_the_indentation_of_a_suggestion() -> None:
    finding = parse_reply(json.dumps({"findings": [dict(ONE, suggestion="    return x\n")]})).findings[0]
    assert finding.suggestion == "    return x\n"


def test_reads_a_single_finding_sent_on_its_own() -> None:
    for text in (json.dumps(ONE), "One finding: " + json.dumps(ONE)):
        assert [f.line for f in parse_reply(text).findings] == [3]


def test_think_tags_and_fences_inside_the_answer_are_only_text() -> None:
    quoted = dict(ONE, quote='CLOSE = "</think>"', body="Ends with </think> and ``` too", suggestion="<think>\n")
    for text in (json.dumps({"findings": [quoted]}), "Review:\n```json\n" + json.dumps([quoted]) + "\n```"):
        (finding,) = parse_reply(text).findings
        assert (finding.quote, finding.body, finding.suggestion) == (quoted["quote"], quoted["body"], "<think>\n")


def test_the_answer_is_the_last_list_of_findings_after_reasoning_and_drafts() -> None:
    draft = json.dumps({"findings": [dict(ONE, title="Draft")]})
    text = f"Thinking. A draft: {draft}, and one finding alone {json.dumps(ONE)}</think>\n" + json.dumps(
        {"findings": [dict(ONE, title="Final")]}
    )
    assert [f.title for f in parse_reply(text).findings] == ["Final"]


def test_prose_after_the_answer_does_not_replace_it() -> None:
    text = json.dumps({"findings": [ONE]}) + '\nLines [3, 4] matter; see {"path": "b.py", "line": 1, "title": "x"}.'
    assert [f.path for f in parse_reply(text).findings] == ["a.py"]


def test_an_answer_cut_off_by_the_token_limit_keeps_its_complete_findings() -> None:
    text = json.dumps({"findings": [ONE, dict(ONE, line=9)]})[:-2] + ', {"path": "a.py", "li'
    assert [f.line for f in parse_reply(text).findings] == [3, 9]


def test_brackets_nested_past_the_decoders_depth_are_no_answer_not_a_crash() -> None:
    assert parse_reply("[" * 100_000).problem is not None


@pytest.mark.parametrize(
    ("field", "given", "read"),
    [
        ("severity", "urgent", "high"),
        ("severity", "HGIH", "high"),
        ("severity", "Critical ", "critical"),
        ("severity", "something else", "medium"),
        ("severity", 3, "medium"),
        ("category", "securty", "security"),
        ("category", "error_handling", "correctness"),
        ("category", "vibes", "maintainability"),
        ("side", "BOTH", "RIGHT"),
        ("side", "removed", "LEFT"),
    ],
)
def test_an_unknown_value_maps_to_the_nearest_known_one_and_keeps_the_finding(
    field: str, given: object, read: str
) -> None:
    item = {"path": "a.py", "line": 3, "title": "t", "body": "b", field: given}
    parsed = parse_reply(json.dumps({"findings": [item]}))
    (finding,) = parsed.findings
    assert parsed.dropped == 0
    assert str(getattr(finding, field)) == read
