"""What a review produces: findings, what was left out and why, and what it cost.

These are the plain data every output format (text, JSON, Markdown, SARIF, GitHub
annotations, and later the GitHub review itself) renders from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from reviewbot.engine.diff import Side
from reviewbot.engine.usage import Usage
from reviewbot.severity import Severity


class Category(StrEnum):
    BUG = "bug"
    SECURITY = "security"
    CORRECTNESS = "correctness"
    PERFORMANCE = "performance"
    MAINTAINABILITY = "maintainability"
    STYLE = "style"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the reviewer wants a human to look at.

    ``line`` is None for a file-level note: a finding that could not be placed on a line of
    the diff. Otherwise ``line`` (and ``start_line`` for a range) are numbers on ``side`` that
    were checked against the diff, so GitHub will accept them.
    """

    path: str
    line: int | None
    side: Side
    severity: Severity
    category: Category
    title: str
    body: str
    start_line: int | None = None
    suggestion: str | None = None
    code: str | None = None  # the diff line(s) the finding points at, for display

    @property
    def anchored(self) -> bool:
        return self.line is not None


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file deliberately not sent to the model, with the reason a person would give."""

    path: str
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class NotReviewed:
    """Lines that should have been reviewed but were not (budget, cap or a failed request)."""

    path: str
    start_line: int
    end_line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Repairs:
    """What anchoring had to fix or throw away in the model's answer."""

    moved: int = 0  # a line just off the hunk, moved to the line whose code it quoted
    trimmed: int = 0  # a range that crossed hunks, trimmed to one hunk
    to_file_level: int = 0  # could not be placed on a line; kept as a file-level note
    dropped: int = 0  # unusable (unknown file, empty, start after end …)
    merged: int = 0  # duplicates of another finding
    capped: int = 0  # left out by the cap on the number of findings
    below_threshold: int = 0  # below the minimum severity
    invalid_json: int = 0  # replies that needed a repair round or could not be read
    on_context: int = 0  # on a line shown only as context (REVIEWBOT_CONTEXT=function); kept as a file-level note

    def __add__(self, other: Repairs) -> Repairs:
        return Repairs(*(a + b for a, b in zip(_fields(self), _fields(other), strict=True)))


def _fields(repairs: Repairs) -> tuple[int, ...]:
    return (
        repairs.moved,
        repairs.trimmed,
        repairs.to_file_level,
        repairs.dropped,
        repairs.merged,
        repairs.capped,
        repairs.below_threshold,
        repairs.invalid_json,
        repairs.on_context,
    )


@dataclass(frozen=True, slots=True)
class FailedRequest:
    """A model request that still failed after retries; its lines are in ``not_reviewed``."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One call to the model endpoint, for the cost ledger: what it used and how it ended.

    ``outcome`` is "ok", "invalid_json" (answered, but not with readable JSON) or "error"
    (failed after the client's retries; ``usage`` is then empty, as nothing was billed to us
    that the endpoint reported).
    """

    request_index: int
    model: str
    usage: Usage
    seconds: float
    outcome: str
    error: str | None = None
    status: int | None = None  # the HTTP status of a call that failed with one


@dataclass(frozen=True, slots=True)
class ReviewResult:
    """Everything one review produced."""

    findings: tuple[Finding, ...]
    skipped: tuple[SkippedFile, ...]
    not_reviewed: tuple[NotReviewed, ...]
    repairs: Repairs
    usage: Usage
    model: str
    requests_planned: int
    failed: tuple[FailedRequest, ...] = field(default=())
    calls: tuple[ModelCall, ...] = field(default=())

    @property
    def all_requests_failed(self) -> bool:
        return self.requests_planned > 0 and len(self.failed) == self.requests_planned
