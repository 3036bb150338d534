from __future__ import annotations

from pathlib import Path
from typing import Any

from builders import modified_file_diff, parsed
from reviewbot.engine.anchor import anchor_findings, build_indexes, finalize
from reviewbot.engine.context import extend_file
from reviewbot.engine.diff import Side
from reviewbot.engine.findings import CandidateFinding
from reviewbot.engine.result import Category, Finding
from reviewbot.severity import Severity


def candidate(**fields: Any) -> CandidateFinding:
    base: dict[str, Any] = {
        "path": "app/service.py",
        "line": 14,
        "side": "RIGHT",
        "severity": "high",
        "category": "security",
        "title": "SQL injection",
        "body": "The token is concatenated into SQL.",
        "quote": "",
    }
    base.update(fields)
    return CandidateFinding.model_validate(base)


def anchor(*candidates: CandidateFinding) -> tuple[list[Finding], dict[str, int]]:
    indexes = build_indexes(parsed(modified_file_diff()).files)
    findings, repairs = anchor_findings(candidates, indexes)
    return findings, {name: getattr(repairs, name) for name in repairs.__slots__ if getattr(repairs, name)}


def test_keeps_a_finding_on_an_added_line_as_it_is() -> None:
    findings, repairs = anchor(candidate(quote='query = "SELECT * FROM users WHERE token = \'" + token + "\'"'))
    assert [(f.path, f.line, f.side, f.start_line) for f in findings] == [("app/service.py", 14, Side.RIGHT, None)]
    assert findings[0].code is not None
    assert "SELECT" in findings[0].code
    assert repairs == {}


def test_keeps_a_finding_on_a_context_line() -> None:
    findings, _ = anchor(candidate(line=15, quote="result = db.execute(query)"))
    assert findings[0].line == 15


def test_keeps_a_removed_line_on_the_left_side_with_its_old_number() -> None:
    findings, repairs = anchor(candidate(line=39, side="LEFT", quote="item.close()"))
    assert (findings[0].line, findings[0].side) == (39, Side.LEFT)
    assert repairs == {}


def test_moves_a_line_just_off_the_hunk_to_the_line_its_quote_matches() -> None:
    findings, repairs = anchor(candidate(line=20, quote="token = request.headers['Authorization']".replace("'", '"')))
    assert findings[0].line == 13
    assert repairs == {"moved": 1}


def test_moves_a_wrong_number_inside_the_hunk_when_the_quote_names_another_line() -> None:
    findings, repairs = anchor(candidate(line=16, quote="log(item)"))
    # 16 is a valid line but its code is "return result"; "log(item)" is line 42, too far to move.
    assert findings[0].line == 16
    assert repairs == {}


def test_moves_a_right_side_claim_to_the_removed_line_it_quotes() -> None:
    findings, repairs = anchor(candidate(line=41, side="RIGHT", quote="item.close()"))
    # Line 41 on the right is "item.close" (no call); the quote is the removed line, old 39.
    assert (findings[0].line, findings[0].side) == (39, Side.LEFT)
    assert repairs == {"moved": 1}


def test_keeps_a_finding_that_cannot_be_placed_as_a_file_level_note() -> None:
    findings, repairs = anchor(candidate(line=300, quote="nowhere()"))
    assert findings[0].line is None
    assert findings[0].anchored is False
    assert repairs == {"to_file_level": 1}


def test_drops_a_finding_on_a_file_that_is_not_in_the_diff() -> None:
    findings, repairs = anchor(candidate(path="app/other.py"))
    assert findings == []
    assert repairs == {"dropped": 1}


def test_accepts_git_prefixes_and_dot_slash_in_paths() -> None:
    findings, _ = anchor(candidate(path="b/app/service.py"), candidate(path="./app/service.py", title="x"))
    assert [f.path for f in findings] == ["app/service.py", "app/service.py"]


def test_keeps_a_valid_range_inside_one_hunk() -> None:
    findings, repairs = anchor(candidate(start_line=13, line=14))
    assert (findings[0].start_line, findings[0].line) == (13, 14)
    assert repairs == {}


def test_drops_a_start_line_equal_to_the_line() -> None:
    findings, repairs = anchor(candidate(start_line=14, line=14))
    assert findings[0].start_line is None
    assert repairs == {}


def test_drops_a_start_line_after_the_line() -> None:
    findings, repairs = anchor(candidate(start_line=16, line=14))
    assert findings[0].start_line is None
    assert repairs == {"trimmed": 1}


def test_trims_a_range_that_crosses_hunks_to_the_hunk_of_its_last_line() -> None:
    findings, repairs = anchor(candidate(start_line=12, line=42, quote="log(item)"))
    assert (findings[0].start_line, findings[0].line) == (40, 42)
    assert repairs == {"trimmed": 1}


def test_drops_a_suggestion_on_a_removed_line() -> None:
    findings, _ = anchor(candidate(line=39, side="LEFT", suggestion="item.close()"))
    assert findings[0].suggestion is None


def test_keeps_a_suggestion_on_an_added_line() -> None:
    findings, _ = anchor(candidate(line=41, quote="item.close", suggestion="        item.close()"))
    assert findings[0].suggestion == "        item.close()"


def _finding(line: int | None, severity: Severity, title: str = "t", category: Category = Category.BUG) -> Finding:
    return Finding("a.py", line, Side.RIGHT, severity, category, title, "body")


def test_merges_identical_findings_and_keeps_the_more_severe() -> None:
    kept, repairs = finalize(
        [_finding(3, Severity.LOW, "Same  Title"), _finding(3, Severity.HIGH, "same title")],
        min_severity=Severity.INFO,
        max_findings=10,
        include_nits=False,
        file_order=["a.py"],
    )
    assert [f.severity for f in kept] == [Severity.HIGH]
    assert repairs.merged == 1


def test_caps_the_number_of_findings_keeping_the_most_severe() -> None:
    findings = [_finding(n, severity, f"t{n}") for n, severity in enumerate(Severity, start=1)]
    kept, repairs = finalize(
        findings, min_severity=Severity.INFO, max_findings=2, include_nits=False, file_order=["a.py"]
    )
    assert [f.severity for f in kept] == [Severity.CRITICAL, Severity.HIGH]
    assert repairs.capped == 3


def test_leaves_out_findings_below_the_minimum_severity_and_style_without_nits() -> None:
    kept, repairs = finalize(
        [_finding(1, Severity.LOW), _finding(2, Severity.HIGH, category=Category.STYLE), _finding(3, Severity.HIGH)],
        min_severity=Severity.MEDIUM,
        max_findings=10,
        include_nits=False,
        file_order=["a.py"],
    )
    assert [f.line for f in kept] == [3]
    assert repairs.below_threshold == 2


def test_sorts_findings_by_file_order_then_line_with_file_notes_first() -> None:
    findings = [
        Finding("b.py", 2, Side.RIGHT, Severity.LOW, Category.BUG, "x", ""),
        Finding("a.py", 9, Side.RIGHT, Severity.LOW, Category.BUG, "y", ""),
        Finding("a.py", None, Side.RIGHT, Severity.LOW, Category.BUG, "z", ""),
    ]
    kept, _ = finalize(
        findings, min_severity=Severity.INFO, max_findings=10, include_nits=False, file_order=["a.py", "b.py"]
    )
    assert [(f.path, f.line) for f in kept] == [("a.py", None), ("a.py", 9), ("b.py", 2)]


TOKEN_LINE = 'token = request.headers["Authorization"]'


def test_a_moved_finding_drops_a_range_its_quote_does_not_cover_and_its_suggestion() -> None:
    # The model says 14-16 with a three-line suggestion, but quotes line 13: applied at 13 the
    # suggestion would replace lines nobody checked.
    findings, repairs = anchor(candidate(start_line=14, line=16, quote=TOKEN_LINE, suggestion="a\nb\nc"))
    assert (findings[0].start_line, findings[0].line) == (None, 13)
    assert findings[0].suggestion is None
    assert findings[0].code == f"    {TOKEN_LINE}"
    assert repairs == {"moved": 1, "trimmed": 1}


def test_a_moved_finding_keeps_its_range_when_the_quote_covers_it_shifted() -> None:
    query_line = 'query = "SELECT * FROM users WHERE token = \'" + token + "\'"'
    quote = f"{TOKEN_LINE}\n{query_line}"
    findings, repairs = anchor(candidate(start_line=16, line=17, quote=quote, suggestion="x\ny"))
    assert (findings[0].start_line, findings[0].line) == (13, 14)
    assert findings[0].suggestion == "x\ny"
    assert repairs == {"moved": 1}


def test_a_moved_single_line_finding_keeps_its_suggestion() -> None:
    fixed = '    token = request.headers.get("Authorization")'
    findings, _ = anchor(candidate(line=20, quote=TOKEN_LINE, suggestion=fixed))
    assert findings[0].line == 13
    assert findings[0].suggestion == fixed


def test_a_quote_that_is_only_part_of_the_claimed_line_does_not_hold_it_there() -> None:
    # Line 14 contains "token" but is not the quoted line; the quoted line is 13.
    findings, repairs = anchor(candidate(line=14, quote="token"))
    assert findings[0].line == 14
    assert repairs == {}
    findings, repairs = anchor(candidate(line=14, quote="db.execute(query)"))
    assert findings[0].line == 14  # "result = db.execute(query)" is line 15: a fragment moves nothing
    findings, repairs = anchor(candidate(line=14, quote="result   =  db.execute(query)"))
    assert findings[0].line == 15
    assert repairs == {"moved": 1}


def test_a_quote_that_matches_two_lines_equally_never_moves_the_finding_to_the_other_side() -> None:
    text = "\n".join(
        [
            "diff --git a/a.py b/a.py",
            "--- a/a.py",
            "+++ b/a.py",
            "@@ -1,4 +1,6 @@",
            "+close()",  # new 1
            " a = 1",  # old 1, new 2
            "-close()",  # old 2
            " b = 2",  # old 3, new 3
            " c = 3",  # old 4, new 4
            "+close()",  # new 5
            "+d()",  # new 6
            "",
        ]
    )
    indexes = build_indexes(parsed(text).files)
    # From new 4 the nearest "close()" on its own side is new 5: it moves there.
    findings, _ = anchor_findings([candidate(path="a.py", line=4, quote="close()")], indexes)
    assert (findings[0].line, findings[0].side) == (5, Side.RIGHT)
    # From new 3, new 1 and new 5 tie: it stays where the model put it, not on the removed line.
    findings, repairs = anchor_findings([candidate(path="a.py", line=3, quote="close()")], indexes)
    assert (findings[0].line, findings[0].side) == (3, Side.RIGHT)
    assert not repairs.moved


def test_a_quote_of_a_line_cut_in_the_prompt_still_anchors_and_moves() -> None:
    long_line = "x = '" + "a" * 2_000 + "'"
    text = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,4 @@\n"
        f" first = 1\n+{long_line}\n+second = 2\n third = 3\n"
    )
    indexes = build_indexes(parsed(text).files)
    as_shown = long_line[:800] + f" …[{len(long_line) - 800:,} more characters cut]"
    for quote in (as_shown, long_line[:800]):
        findings, repairs = anchor_findings([candidate(path="a.py", line=2, quote=quote)], indexes)
        assert findings[0].line == 2
        assert repairs.moved == 0
        findings, repairs = anchor_findings([candidate(path="a.py", line=4, quote=quote)], indexes)
        assert findings[0].line == 2
        assert repairs.moved == 1


def test_a_finding_on_a_line_shown_only_as_context_becomes_a_counted_file_note() -> None:
    diff = parsed((Path(__file__).parent / "data" / "diffs" / "flask-73a47a0db1a1.diff").read_text())
    head = Path(__file__).parent / "data" / "heads" / "flask-73a47a0db1a1" / "examples" / "minitwit" / "minitwit.py"
    wider = extend_file(diff.files[0], head.read_text(encoding="utf-8"), max_tokens=1_000)
    assert wider is not None
    indexes = build_indexes([wider])
    path = "examples/minitwit/minitwit.py"
    on_context = CandidateFinding.model_validate(
        {
            **candidate().model_dump(),
            "path": path,
            "line": 128,
            "quote": "[session['user_id'], profile_user['user_id']], one=True) is not None",
        }
    )
    on_the_signature = CandidateFinding.model_validate(
        {**candidate().model_dump(), "path": path, "line": 91, "quote": "def timeline():"}
    )
    on_the_diff = CandidateFinding.model_validate(
        {**candidate().model_dump(), "path": path, "line": 124, "quote": "followed = False"}
    )
    findings, repairs = anchor_findings([on_context, on_the_signature, on_the_diff], indexes)
    assert [(finding.line, finding.anchored) for finding in findings] == [(None, False), (None, False), (124, True)]
    assert (repairs.on_context, repairs.to_file_level, repairs.moved) == (2, 0, 0)
