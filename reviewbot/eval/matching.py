"""Which findings catch which labelled bugs: pure functions over one case's diff, findings and labels.

A finding catches a label when it is on the label's file and its lines come within
``tolerance`` lines (3 by default) of the labelled range. On the same side of the diff the
distance is between line numbers; a finding on the other side (a removed line against a label
on new lines, or the reverse) is measured in lines of the diff as the model saw it, within one
hunk. A file-level note (a finding the engine could not place on a line) catches nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from reviewbot.engine.diff import Diff, DiffFile, Side
from reviewbot.engine.result import Finding
from reviewbot.eval.cases import Label

DEFAULT_TOLERANCE = 3


@dataclass(frozen=True, slots=True)
class CaseMatch:
    """How one review of one case fared: for each label whether it was caught, for each finding
    whether it caught a label."""

    caught: tuple[bool, ...]  # one per label, in the case's order
    hits: tuple[bool, ...]  # one per finding, in the review's order

    @property
    def labels_caught(self) -> int:
        return sum(self.caught)

    @property
    def false_alarms(self) -> int:
        """Findings that caught no label (some may still be right: nobody labelled them)."""
        return len(self.hits) - sum(self.hits)


class _Rows:
    """Where each line of a file's diff stands: (side, number) → (hunk, row in that hunk)."""

    def __init__(self, file: DiffFile) -> None:
        self.spots: dict[tuple[Side, int], tuple[int, int]] = {}
        for hunk_number, hunk in enumerate(file.hunks):
            for row, line in enumerate(hunk.lines):
                self.spots[(line.side, line.number)] = (hunk_number, row)

    def rows(self, side: Side, start: int, end: int) -> list[tuple[int, int]]:
        found = (self.spots.get((side, number)) for number in range(start, end + 1))
        return [spot for spot in found if spot is not None]


def near_pairs(
    diff: Diff, labels: Sequence[Label], findings: Sequence[Finding], tolerance: int = DEFAULT_TOLERANCE
) -> tuple[tuple[int, int], ...]:
    """(finding index, label index) of each finding that sits near a label: what a judge is asked about."""
    rows = {file.path: _Rows(file) for file in diff.files}
    return tuple(
        (finding_index, label_index)
        for finding_index, finding in enumerate(findings)
        for label_index, label in enumerate(labels)
        if _catches(finding, label, rows.get(label.path), tolerance)
    )


def match_case(
    diff: Diff,
    labels: Sequence[Label],
    findings: Sequence[Finding],
    tolerance: int = DEFAULT_TOLERANCE,
    agreed: Collection[tuple[int, int]] | None = None,
) -> CaseMatch:
    """Which labels the findings catch by location; with ``agreed``, only the (finding, label)
    pairs in it count as well (those a judge said describe the labelled bug)."""
    pairs = set(near_pairs(diff, labels, findings, tolerance))
    if agreed is not None:
        pairs &= set(agreed)
    caught = tuple(any((finding, label) in pairs for finding in range(len(findings))) for label in range(len(labels)))
    hits = tuple(any((finding, label) in pairs for label in range(len(labels))) for finding in range(len(findings)))
    return CaseMatch(caught=caught, hits=hits)


def _catches(finding: Finding, label: Label, rows: _Rows | None, tolerance: int = DEFAULT_TOLERANCE) -> bool:
    if finding.path != label.path or finding.line is None:
        return False
    start = finding.start_line if finding.start_line is not None else finding.line
    if finding.side is label.side:
        return _gap(start, finding.line, label.start_line, label.end_line) <= tolerance
    if rows is None:
        return False
    # The other side: compare positions in the diff, within one hunk.
    found = rows.rows(finding.side, start, finding.line)
    wanted = rows.rows(label.side, label.start_line, label.end_line)
    return any(
        hunk == other_hunk and abs(row - other_row) <= tolerance
        for hunk, row in found
        for other_hunk, other_row in wanted
    )


def _gap(start: int, end: int, other_start: int, other_end: int) -> int:
    """Lines between two ranges; 0 when they overlap."""
    return max(0, other_start - end, start - other_end)
