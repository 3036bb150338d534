"""A review result → the one GitHub review we post: inline comments and a body.

Pure: no I/O. Every inline comment carries a hidden fingerprint so that a finding already on
the pull request is never posted again, and the body carries the head SHA so that a restarted
worker can tell the review already went out.

The model's words are neutralised before they go in (:mod:`reviewbot.render.model_text`): a
pull request can steer them. And markers are read back only from where this module writes
them: a comment's fingerprint from its last line, a body's head and job from the marker lines
it ends with, a body's fingerprints from lines of their own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reviewbot.engine.diff import Side
from reviewbot.engine.pricing import CostReport, cost_note
from reviewbot.engine.result import Finding, ReviewResult
from reviewbot.render.markdown import code_span, fence
from reviewbot.render.model_text import close_fence, neutralise, neutralise_line
from reviewbot.render.text import line_span, plural

_FAILED_REQUEST = "the model request failed"
_REFUSED = "GitHub did not take this review with its comments, so its findings are listed here."
# GitHub refuses bodies over 65,536 characters; keep a margin for the markers.
MAX_BODY = 65_000
HEAD_MARKER = "<!-- reviewbot:head={sha} -->"
_HEAD_PATTERN = re.compile(r"<!-- reviewbot:head=([0-9a-f]{7,64}) -->")
JOB_MARKER = "<!-- reviewbot:job={job} -->"
_JOB_PATTERN = re.compile(r"<!-- reviewbot:job=(\d+) -->")
FINGERPRINT_MARKER = "<!-- reviewbot:fingerprint={print_} -->"
_FINGERPRINT_PATTERN = re.compile(r"<!-- reviewbot:fingerprint=([0-9a-f]{16}) -->")
_ANY_MARKER = re.compile(r"<!-- reviewbot:[a-z]+(?:=[0-9a-f]+)? -->")
_CUT = "\n\n… (cut to fit GitHub's limit)"


@dataclass(frozen=True, slots=True)
class ReviewComment:
    """An inline comment to post, in the fields GitHub's create-review endpoint takes: one line,
    or the lines ``start_line``..``line`` of one hunk. ``fingerprint`` stays on our side."""

    path: str
    body: str
    line: int
    side: Side
    start_line: int | None = None
    start_side: Side | None = None
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class ReviewDraft:
    """What to post: the body, the inline comments, and every fingerprint the review covers."""

    body: str
    comments: tuple[ReviewComment, ...]
    fingerprints: frozenset[str]
    new_findings: int
    # The last resort when GitHub refuses the review and its body-only form: the new findings
    # as a plain list, with the cost note and the markers.
    plain_body: str


def fingerprint(finding: Finding) -> str:
    """Stable across pushes: path, title and code, not line numbers (code moves as a PR grows)."""
    code = "\n".join(line.strip() for line in (finding.code or "").splitlines())
    title = " ".join(finding.title.lower().split())
    return hashlib.sha256(f"{finding.path}\n{title}\n{code}".encode()).hexdigest()[:16]


def trailer_of(body: str | None) -> list[str]:
    """The marker lines a body of ours ends with, the last one first."""
    trailer: list[str] = []
    for line in reversed((body or "").rstrip().split("\n")):
        if not _ANY_MARKER.fullmatch(line.strip()):
            break
        trailer.append(line.strip())
    return trailer


def split_trailer(body: str) -> tuple[str, str]:
    """A body of ours as its text and the marker lines it ends with."""
    lines = body.rstrip().split("\n")
    kept = len(lines) - len(trailer_of(body))
    return "\n".join(lines[:kept]).rstrip(), "\n".join(lines[kept:])


def job_marker_of(body: str) -> int | None:
    """The job that posted a review of ours, read back from the end of its body."""
    return next((int(m.group(1)) for line in trailer_of(body) if (m := _JOB_PATTERN.fullmatch(line))), None)


def head_marker_of(body: str) -> str | None:
    """The head SHA a review of ours was made for, read back from the end of its body."""
    return next((m.group(1) for line in trailer_of(body) if (m := _HEAD_PATTERN.fullmatch(line))), None)


def fingerprint_of_comment(body: str) -> str | None:
    """The fingerprint of the finding an inline comment of ours raised: its last line.

    Anything above it may be the model's (a suggestion is posted as the model wrote it)."""
    match = _FINGERPRINT_PATTERN.fullmatch((body or "").rstrip().rsplit("\n", 1)[-1].strip())
    return match.group(1) if match else None


def fingerprints_of_review(body: str) -> set[str]:
    """Fingerprints of the findings a review body of ours lists, each on a line of its own.

    No text of the model's there can make such a line: its words are neutralised and the
    comments moved into a body are made inert above their last lines.
    """
    return {m.group(1) for line in (body or "").split("\n") if (m := _FINGERPRINT_PATTERN.fullmatch(line.strip()))}


@dataclass(frozen=True, slots=True)
class ReviewContextInfo:
    """Facts about the run that the body reports."""

    head_sha: str
    incremental_base: str | None = None  # the head reviewed before, when only new commits were reviewed
    files_reviewed: int = 0
    config_problems: tuple[str, ...] = ()
    omitted: tuple[tuple[str, str], ...] = ()  # files GitHub sent no patch for
    notes: tuple[str, ...] = ()  # things the people on the PR should know, e.g. a budget that was not checked
    job_id: int | None = None  # set for /review commands, which may review a head again


def build_review(
    result: ReviewResult,
    cost: CostReport,
    info: ReviewContextInfo,
    *,
    known_fingerprints: set[str],
    max_comments: int,
) -> ReviewDraft:
    """The review to post, leaving out findings already on the pull request."""
    fresh: list[tuple[Finding, str]] = []
    repeated = 0
    for finding in result.findings:
        print_ = fingerprint(finding)
        if print_ in known_fingerprints:
            repeated += 1
            continue
        fresh.append((finding, print_))
    anchored = [(f, p) for f, p in fresh if f.anchored]
    # The cap keeps the most severe inline; the rest are listed in the body.
    anchored.sort(key=lambda pair: pair[0].severity.rank)
    inline, overflow = anchored[:max_comments], anchored[max_comments:]
    notes = [(f, p) for f, p in fresh if not f.anchored]
    comments = tuple(_comment(finding, print_) for finding, print_ in inline)
    body = _body(result, cost, info, notes, overflow, repeated)
    plain = [_summary(result, info, repeated), _REFUSED, *([_listing(fresh)] if fresh else []), cost_note(cost)]
    return ReviewDraft(
        body=body,
        comments=comments,
        fingerprints=frozenset(print_ for _, print_ in fresh),
        new_findings=len(fresh),
        plain_body=_finish(plain, info),
    )


def _comment(finding: Finding, print_: str) -> ReviewComment:
    assert finding.line is not None
    lines = [f"**{finding.severity.upper()}** · {finding.category} — {neutralise_line(finding.title)}"]
    if finding.body.strip():
        lines += ["", neutralise(finding.body.strip())]
    if finding.suggestion is not None and finding.side is Side.RIGHT:
        # As the model wrote it: a suggestion is code, applied as is, and GitHub finds no mention in code.
        lines += ["", *fence(finding.suggestion.rstrip("\n"), "suggestion")]
    ranged = finding.start_line is not None
    return ReviewComment(
        path=finding.path,
        body=_clip("\n".join(lines), FINGERPRINT_MARKER.format(print_=print_)),
        line=finding.line,
        side=finding.side,
        start_line=finding.start_line if ranged else None,
        start_side=finding.side if ranged else None,
        fingerprint=print_,
    )


def _body(
    result: ReviewResult,
    cost: CostReport,
    info: ReviewContextInfo,
    notes: Sequence[tuple[Finding, str]],
    overflow: Sequence[tuple[Finding, str]],
    repeated: int,
) -> str:
    sections = [_summary(result, info, repeated)]
    if info.config_problems:
        sections.append("**Configuration:**\n" + "\n".join(f"- {problem}" for problem in info.config_problems))
    sections.extend(f"> [!NOTE]\n> {' '.join(note.split())}" for note in info.notes)
    if notes:
        sections.append("**Notes on files** (not placeable on a diff line):\n" + _listing(notes))
    if overflow:
        sections.append(f"**More findings** (past the cap of inline comments):\n{_listing(overflow)}")
    if result.failed:
        # The reasons name the endpoint and echo its errors: they go to the service log, not the PR.
        total = max(result.requests_planned, len(result.failed))
        sections.append(
            f"> [!WARNING]\n> {len(result.failed)} of {total} parts could not be reviewed: the model endpoint "
            "failed for them (the service log has the details); their lines are listed below."
        )
    left_out = _left_out(result, info.omitted)
    if left_out:
        sections.append(left_out)
    sections.append(cost_note(cost))
    return _finish(sections, info)


def _summary(result: ReviewResult, info: ReviewContextInfo, repeated: int) -> str:
    scope = (
        f"the commits since {code_span(info.incremental_base[:7])}"
        if info.incremental_base
        else f"{plural(info.files_reviewed, 'file')}"
    )
    new = len(result.findings) - repeated
    summary = f"**reviewbot** reviewed {scope} at {code_span(info.head_sha[:7])}: "
    summary += plural(new, "new finding") if new else "no new findings"
    if repeated:
        summary += f" ({plural(repeated, 'finding')} already raised earlier not repeated)"
    return summary + "."


def _finish(sections: Sequence[str], info: ReviewContextInfo) -> str:
    """The sections, cut to GitHub's limit, and the markers at the very end."""
    marker = HEAD_MARKER.format(sha=info.head_sha)
    if info.job_id is not None:
        # A /review command re-reviews a head on purpose; this tells a restarted worker whether
        # the command's own review already went out.
        marker += "\n" + JOB_MARKER.format(job=info.job_id)
    return _clip("\n\n".join(sections), marker)


def _listing(findings: Sequence[tuple[Finding, str]]) -> str:
    lines = []
    for finding, print_ in findings:
        span = line_span(finding)
        where = code_span(finding.path if span is None else f"{finding.path}:{span}")
        words = neutralise_line(f"{finding.title}: {finding.body}")
        lines.append(f"- **{finding.severity.upper()}** {where} — {words}")
        lines.append("  " + FINGERPRINT_MARKER.format(print_=print_))
    return "\n".join(lines)


def _left_out(result: ReviewResult, omitted: Sequence[tuple[str, str]]) -> str:
    rows = [f"- {code_span(item.path)} — {item.reason}" for item in result.skipped]
    rows += [f"- {code_span(path)} — {reason}" for path, reason in omitted]
    for gap in result.not_reviewed:
        span = str(gap.start_line) if gap.start_line == gap.end_line else f"{gap.start_line}-{gap.end_line}"
        reason = _FAILED_REQUEST if gap.reason.startswith(_FAILED_REQUEST) else gap.reason
        rows.append(f"- {code_span(f'{gap.path}:{span}')} — not reviewed: {reason}")
    if not rows:
        return ""
    return (
        f"<details><summary>{plural(len(rows), 'item')} not reviewed</summary>\n\n" + "\n".join(rows) + "\n\n</details>"
    )


def _clip(text: str, markers: str) -> str:
    """``text`` cut to fit GitHub's limit, then ``markers``, which stay the last lines."""
    if len(text) + len(markers) + 2 > MAX_BODY:
        text = close_fence(text[: MAX_BODY - len(markers) - len(_CUT) - 10]) + _CUT
    return f"{text}\n\n{markers}"
