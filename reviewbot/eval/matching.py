"""Which findings catch which labelled bugs: pure functions over one case's diff, findings and labels.

A finding catches a label when it is on the label's file and its lines come within
``tolerance`` lines (3 by default) of the labelled range. On the same side of the diff the
distance is between line numbers; a finding on the other side (a removed line against a label
on new lines, or the reverse) is measured in lines of the diff as the model saw it, within one
hunk. A file-level note (a finding the engine could not place on a line) catches nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def match_case(
    diff: Diff, labels: Sequence[Label], findings: Sequence[Finding], tolerance: int = DEFAULT_TOLERANCE
) -> CaseMatch:
    rows = {file.path: _Rows(file) for file in diff.files}
    pairs = [[_catches(finding, label, rows.get(label.path), tolerance) for label in labels] for finding in findings]
    caught = tuple(any(pair[index] for pair in pairs) for index in range(len(labels)))
    return CaseMatch(caught=caught, hits=tuple(any(pair) for pair in pairs))


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
