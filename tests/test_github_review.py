from __future__ import annotations

from reviewbot.engine.diff import Side
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.pricing import cost_report
from reviewbot.engine.result import Category, Finding, NotReviewed, Repairs, ReviewResult, SkippedFile
from reviewbot.engine.usage import Usage
from reviewbot.github.draft import (
    MAX_BODY,
    ReviewContextInfo,
    build_review,
    fingerprint,
    fingerprint_of_comment,
    fingerprints_of_review,
    head_marker_of,
)
from reviewbot.severity import Severity

HEAD = "0123456789abcdef0123456789abcdef01234567"


def make(line: int | None, severity: Severity = Severity.HIGH, title: str = "Bug", **fields: object) -> Finding:
    base: dict[str, object] = {
        "path": "app.py",
        "line": line,
        "side": Side.RIGHT,
        "severity": severity,
        "category": Category.BUG,
        "title": title,
        "body": "Explain.",
        "code": f"code {title}",
    }
    base.update(fields)
    return Finding(**base)  # type: ignore[arg-type]


def result(*findings: Finding, **fields: object) -> ReviewResult:
    base: dict[str, object] = {
        "findings": findings,
        "skipped": (SkippedFile("uv.lock", "modified", "lock file"),),
        "not_reviewed": (),
        "repairs": Repairs(),
        "usage": Usage(1000, 100, requests=1),
        "model": "gpt-4o-mini",
        "requests_planned": 1,
    }
    base.update(fields)
    return ReviewResult(**base)  # type: ignore[arg-type]


def test_posts_each_anchored_finding_as_an_inline_comment_with_a_fingerprint() -> None:
    single = make(12)
    ranged = make(20, title="Range", start_line=18, suggestion="fixed()\n")
    draft = build_review(
        result(single, ranged),
        cost_report(Usage(1000, 100, requests=1), "gpt-4o-mini", Prices()),
        ReviewContextInfo(head_sha=HEAD, files_reviewed=2),
        known_fingerprints=set(),
        max_comments=10,
    )
    first, second = draft.comments
    assert (first.path, first.line, first.side, first.start_line, first.start_side) == (
        "app.py",
        12,
        "RIGHT",
        None,
        None,
    )
    assert (second.start_line, second.line, second.start_side) == (18, 20, "RIGHT")
    assert "```suggestion\nfixed()\n```" in second.body
    assert fingerprint_of_comment(first.body) == fingerprint(single)
    assert draft.fingerprints == {fingerprint(single), fingerprint(ranged)}


def test_the_body_carries_the_head_marker_the_cost_note_and_what_was_skipped() -> None:
    draft = build_review(
        result(make(3)),
        cost_report(Usage(1000, 100, requests=1), "gpt-4o-mini", Prices()),
        ReviewContextInfo(
            head_sha=HEAD, files_reviewed=2, config_problems=("bad toml",), omitted=(("big.bin", "no patch"),)
        ),
        known_fingerprints=set(),
        max_comments=10,
    )
    assert head_marker_of(draft.body) == HEAD
    assert "1 request to gpt-4o-mini" in draft.body
    assert "uv.lock" in draft.body
    assert "lock file" in draft.body
    assert "big.bin" in draft.body
    assert "bad toml" in draft.body
    assert "reviewed 2 files at `0123456`" in draft.body


def test_a_finding_already_on_the_pull_request_is_not_posted_again() -> None:
    old, new = make(3, title="Old"), make(9, title="New")
    draft = build_review(
        result(old, new),
        cost_report(Usage(), "gpt-4o-mini", Prices()),
        ReviewContextInfo(head_sha=HEAD),
        known_fingerprints={fingerprint(old)},
        max_comments=10,
    )
    assert [comment.line for comment in draft.comments] == [9]
    assert draft.new_findings == 1
    assert "already raised earlier not repeated" in draft.body


def test_the_fingerprint_survives_the_code_moving_to_another_line() -> None:
    assert fingerprint(make(3)) == fingerprint(make(40))
    assert fingerprint(make(3)) != fingerprint(make(3, title="Other"))


def test_caps_inline_comments_keeping_the_most_severe_and_lists_the_rest_in_the_body() -> None:
    findings = [
        make(n, severity, f"t{n}") for n, severity in enumerate([Severity.LOW, Severity.CRITICAL, Severity.MEDIUM], 1)
    ]
    draft = build_review(
        result(*findings),
        cost_report(Usage(), "gpt-4o-mini", Prices()),
        ReviewContextInfo(head_sha=HEAD),
        known_fingerprints=set(),
        max_comments=2,
    )
    assert sorted(comment.line for comment in draft.comments) == [2, 3]
    assert "past the cap" in draft.body
    assert "`app.py:1`" in draft.body
    # Listed findings are fingerprinted too, so the next push does not repeat them.
    assert fingerprint(findings[0]) in fingerprints_of_review(draft.body)


def test_file_level_notes_go_in_the_body() -> None:
    draft = build_review(
        result(make(None, title="Whole file")),
        cost_report(Usage(), "gpt-4o-mini", Prices()),
        ReviewContextInfo(head_sha=HEAD),
        known_fingerprints=set(),
        max_comments=10,
    )
    assert draft.comments == ()
    assert "Notes on files" in draft.body
    assert "Whole file" in draft.body


def test_a_suggestion_on_a_removed_line_is_never_a_suggestion_block() -> None:
    draft = build_review(
        result(make(5, side=Side.LEFT, suggestion=None)),
        cost_report(Usage(), "gpt-4o-mini", Prices()),
        ReviewContextInfo(head_sha=HEAD),
        known_fingerprints=set(),
        max_comments=10,
    )
    assert draft.comments[0].side == "LEFT"
    assert "```suggestion" not in draft.comments[0].body


def test_the_body_stays_under_githubs_limit() -> None:
    many = [make(None, title=f"note {n}", body="x" * 2_000) for n in range(60)]
    draft = build_review(
        result(*many, not_reviewed=tuple(NotReviewed("a.py", n, n, "cap") for n in range(100))),
        cost_report(Usage(), "gpt-4o-mini", Prices()),
        ReviewContextInfo(head_sha=HEAD),
        known_fingerprints=set(),
        max_comments=10,
    )
    assert len(draft.body) <= 65_536
    assert len(draft.body) <= MAX_BODY
    assert head_marker_of(draft.body) == HEAD


def test_a_command_review_carries_its_job_so_a_restart_can_find_it() -> None:
    from reviewbot.github.draft import job_marker_of

    draft = build_review(
        result(),
        cost_report(Usage(), "gpt-4o-mini", Prices()),
        ReviewContextInfo(head_sha=HEAD, job_id=41),
        known_fingerprints=set(),
        max_comments=10,
    )
    assert job_marker_of(draft.body) == 41
    assert head_marker_of(draft.body) == HEAD
    plain = build_review(
        result(),
        cost_report(Usage(), "gpt-4o-mini", Prices()),
        ReviewContextInfo(head_sha=HEAD),
        known_fingerprints=set(),
        max_comments=10,
    )
    assert job_marker_of(plain.body) is None


def test_the_body_says_parts_failed_without_repeating_the_endpoints_errors() -> None:
    from reviewbot.engine.result import FailedRequest

    secret_detail = "could not connect to http://10.0.0.5:8000/v1 (internal-host)"
    failed = result(
        failed=(FailedRequest(0, secret_detail),),
        requests_planned=2,
        not_reviewed=(NotReviewed("a.py", 1, 9, f"the model request failed: {secret_detail}"),),
    )
    draft = build_review(
        failed,
        cost_report(Usage(), "gpt-4o-mini", Prices()),
        ReviewContextInfo(head_sha=HEAD),
        known_fingerprints=set(),
        max_comments=10,
    )
    assert "1 of 2 parts could not be reviewed" in draft.body
    assert "10.0.0.5" not in draft.body
    assert "`a.py:1-9` — not reviewed: the model request failed" in draft.body
