"""``--judge MODEL``: a model asked whether a finding near a labelled bug describes that bug.

A finding catches a label by location when it sits within the tolerance of it (see
:mod:`reviewbot.eval.matching`). Sitting there is not describing it: a finding on the right
line may be about something else. For each finding that sits near a label, the judge gets the
labelled bug (its file, lines, kind and description, and the hunk it is in, as the reviewer saw
it) and the finding, and answers ``{"same_bug": true|false}``. Its answers go through the same
cache and cost cap as the reviewers'. A request that fails counts as "no" and, not being
cached, is asked again on the next run; an answer without a verdict counts as "no" too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reviewbot.engine.diff import Diff, Side
from reviewbot.engine.prompt import render_hunk_header, render_lines
from reviewbot.engine.result import Finding
from reviewbot.engine.review import gather_or_cancel
from reviewbot.errors import ModelAuthError, ModelError
from reviewbot.eval.cache import AnswerCache
from reviewbot.eval.cases import Case, Label
from reviewbot.eval.completer import CachingCompleter, CallRecord, Endpoint
from reviewbot.eval.matching import near_pairs
from reviewbot.eval.models import ModelUnderTest
from reviewbot.eval.spend import CostGuard

SCHEMA_NAME = "judge"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"same_bug": {"type": "boolean"}},
    "required": ["same_bug"],
    "additionalProperties": False,
}
INSTRUCTIONS = (
    "You check a code review against a known bug. You are shown a bug that is known to be in a diff (where it is "
    "and what it is) and one finding a reviewer wrote near it. Answer whether the finding describes this bug: the "
    "same fault, even in other words or with another fix. A finding about something else on the same lines (style, "
    'naming, another problem) does not. Answer only with JSON: {"same_bug": true} or {"same_bug": false}.'
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judge on one (finding, label) pair of a case; ``same_bug`` is None when its request failed."""

    finding: int  # index in the review's findings
    label: int  # index in the case's labels
    same_bug: bool | None


@dataclass(frozen=True, slots=True)
class Judged:
    """The judge's verdicts on one review of one case, and the answers they took."""

    verdicts: tuple[Verdict, ...]
    calls: tuple[CallRecord, ...]

    @property
    def agreed(self) -> frozenset[tuple[int, int]]:
        return frozenset((verdict.finding, verdict.label) for verdict in self.verdicts if verdict.same_bug)

    @property
    def failed(self) -> int:
        return sum(1 for verdict in self.verdicts if verdict.same_bug is None)


class Judge:
    """One judge model for a whole run: one client, the run's cache and cap."""

    def __init__(self, model: ModelUnderTest, cache: AnswerCache, guard: CostGuard, tolerance: int) -> None:
        self.model = model
        self._endpoint = Endpoint(model)
        self._cache = cache
        self._guard = guard
        self._tolerance = tolerance

    async def judge(self, case: Case, findings: tuple[Finding, ...]) -> Judged:
        diff = case.parsed()
        completer = CachingCompleter(self._endpoint, self._cache, self._guard)
        pairs = near_pairs(diff, case.labels, findings, self._tolerance)
        answers = await gather_or_cancel(
            [self._ask(completer, diff, case.labels[label], findings[finding]) for finding, label in pairs]
        )
        verdicts = tuple(
            Verdict(finding, label, answer) for (finding, label), answer in zip(pairs, answers, strict=True)
        )
        return Judged(verdicts, tuple(completer.calls))

    async def aclose(self) -> None:
        await self._endpoint.aclose()

    async def _ask(self, completer: CachingCompleter, diff: Diff, label: Label, finding: Finding) -> bool | None:
        try:
            answer = await completer.complete(judge_messages(diff, label, finding), SCHEMA, SCHEMA_NAME)
        except ModelAuthError:
            raise  # a refused key stops the run, as it does for the reviewers
        except ModelError:
            return None
        return same_bug(answer.text)


def judge_messages(diff: Diff, label: Label, finding: Finding) -> list[dict[str, str]]:
    lines = f"{label.start_line}" if label.start_line == label.end_line else f"{label.start_line}-{label.end_line}"
    where = "new" if label.side is Side.RIGHT else "removed"
    shown = finding.line if finding.start_line is None else f"{finding.start_line}-{finding.line}"
    user = "\n".join(
        [
            "Known bug:",
            f"File: {label.path}, {where} lines {lines}",
            f"Kind: {label.kind}",
            f"Description: {label.description}",
            "",
            *_hunk(diff, label),
            "",
            "Finding:",
            f"File: {finding.path}, line {shown}",
            f"Title: {finding.title}",
            f"Body: {finding.body}",
        ]
    )
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": user}]


def same_bug(text: str) -> bool | None:
    """The verdict in an answer; None when it holds none."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    verdict = data.get("same_bug") if isinstance(data, dict) else None
    return verdict if isinstance(verdict, bool) else None


def _hunk(diff: Diff, label: Label) -> list[str]:
    """The hunk that holds the label's first line, rendered as the reviewer saw it."""
    for file in diff.files:
        if file.path != label.path:
            continue
        for hunk in file.hunks:
            if any(line.side is label.side and line.number == label.start_line for line in hunk.lines):
                return ["```diff", render_hunk_header(hunk), *render_lines(hunk.lines), "```"]
    return []
