"""Candidate findings → findings on lines GitHub will accept, or file-level notes.

GitHub rejects a whole review (422) for one comment off the diff, a multi-line range that
spans hunks or sides, or ``start_line`` not before ``line``
(docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request). So every finding is
checked here against the commentable lines of its file, repaired only when the repair is
unambiguous, and otherwise kept as a note on the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reviewbot.engine.diff import DiffFile, Side
from reviewbot.engine.findings import CandidateFinding
from reviewbot.engine.gitpath import strip_prefix
from reviewbot.engine.prompt import MAX_LINE_CHARS, shown, without_cut_marker
from reviewbot.engine.result import Category, Finding, Repairs
from reviewbot.severity import Severity

# How far off the diff a claimed line may be and still be moved to the line it quoted.
MOVE_DISTANCE = 8


@dataclass(frozen=True, slots=True)
class _Spot:
    hunk: int
    text: str


@dataclass(slots=True)
class FileIndex:
    """The commentable lines of one file: (side, number) → hunk index and text."""

    file: DiffFile
    spots: dict[tuple[Side, int], _Spot] = field(default_factory=dict)
    # New-file lines shown only as context around hunks: never commentable.
    context: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, file: DiffFile) -> FileIndex:
        index = cls(file)
        for number, hunk in enumerate(file.hunks):
            for line in hunk.lines:
                index.spots[(line.side, line.number)] = _Spot(number, line.text)
            for line in (*hunk.context_before, *hunk.context_after):
                index.context[line.number] = line.text
        return index

    def hunk_right_lines(self, hunk: int) -> tuple[int, int] | None:
        """First and last new-file numbers of a hunk, or None if it has none."""
        numbers = [line.new_no for line in self.file.hunks[hunk].lines if line.new_no is not None]
        return (numbers[0], numbers[-1]) if numbers else None

    def quoted_lines(self, line: str, side: Side, near: int) -> list[int]:
        """The lines of ``side`` within reach whose code is ``line`` (whitespace-normalised), nearest first."""
        wanted = normalise(line)
        if not wanted:
            return []
        matches = [
            number
            for (spot_side, number), spot in self.spots.items()
            if spot_side is side and abs(number - near) <= MOVE_DISTANCE and _same_line(wanted, spot.text)
        ]
        return sorted(matches, key=lambda number: abs(number - near))

    def texts(self, side: Side, start: int, end: int, hunk: int) -> list[str] | None:
        """The code of lines ``start``..``end`` of one side, if all of them are in hunk ``hunk``."""
        spots = [self.spots.get((side, number)) for number in range(start, end + 1)]
        if any(spot is None or spot.hunk != hunk for spot in spots):
            return None
        return [spot.text for spot in spots if spot is not None]


def normalise(code: str) -> str:
    """Code with its runs of whitespace made one space: how quotes and lines are compared."""
    return " ".join(code.split())


def _same_line(quoted: str, code: str) -> bool:
    """Whether a normalised quote line is ``code``: the whole line, or all the model was shown of
    a line cut in the prompt."""
    if quoted == normalise(code):
        return True
    return len(code) > MAX_LINE_CHARS and quoted == normalise(without_cut_marker(shown(code)))


@dataclass(slots=True)
class _Tally:
    counts: Counter[str] = field(default_factory=Counter)

    def repairs(self) -> Repairs:
        return Repairs(**self.counts)


def build_indexes(files: Iterable[DiffFile]) -> dict[str, FileIndex]:
    """Indexes by every name a model might use for a file: new path and, for renames, old path."""
    indexes: dict[str, FileIndex] = {}
    for file in files:
        index = FileIndex.of(file)
        if file.old_path:
            indexes.setdefault(file.old_path, index)
        indexes[file.path] = index
    return indexes


def anchor_findings(
    candidates: Iterable[CandidateFinding], indexes: dict[str, FileIndex]
) -> tuple[list[Finding], Repairs]:
    """Place each candidate on a valid line of the diff, or keep it as a file-level note."""
    tally = _Tally()
    findings = []
    for candidate in candidates:
        finding = _anchor_one(candidate, indexes, tally)
        if finding is not None:
            findings.append(finding)
    return findings, tally.repairs()


def _resolve_path(path: str, indexes: dict[str, FileIndex]) -> FileIndex | None:
    for name in (path, path.removeprefix("./"), strip_prefix(path), path.lstrip("/")):
        if name in indexes:
            return indexes[name]
    return None


def _anchor_one(candidate: CandidateFinding, indexes: dict[str, FileIndex], tally: _Tally) -> Finding | None:
    index = _resolve_path(candidate.path, indexes)
    if index is None:
        tally.counts["dropped"] += 1
        return None
    side, line = candidate.side, candidate.line
    start, suggestion = candidate.start_line, candidate.suggestion
    spot = index.spots.get((side, line))
    context = index.context.get(line) if spot is None and side is Side.RIGHT else None
    if context is not None and _quote_fits(candidate.quote, context):
        # A line the model saw only as context: GitHub would refuse a comment on it, and moving it
        # to a diff line with the same code would put it where the model did not mean.
        tally.counts["on_context"] += 1
        return _finding(candidate, index.file.path, None, None, side, None, None)
    if spot is None or not _quote_fits(candidate.quote, spot.text):
        moved = _relocate(candidate, index)
        if moved is not None:
            side, line = moved
            spot = index.spots[(side, line)]
            tally.counts["moved"] += 1
            if start is not None and start < candidate.line:
                start, suggestion = _moved_range(candidate, index, side, line, spot.hunk, tally)
        elif spot is None:
            tally.counts["to_file_level"] += 1
            return _finding(candidate, index.file.path, None, None, side, None, None)
    start_line = _checked_start(start, side, line, spot.hunk, index, tally)
    code = _code(index, side, start_line or line, line)
    return _finding(candidate, index.file.path, line, start_line, side, code, suggestion)


def _quote_lines(quote: str) -> list[str]:
    return [normalise(without_cut_marker(part)) for part in quote.splitlines() if part.strip()]


def _quote_fits(quote: str, text: str) -> bool:
    """An empty quote says nothing; otherwise the line must be the quote, or one of its lines.
    A fragment of a line proves nothing: short code such as ``return x`` is part of many lines."""
    lines = _quote_lines(quote)
    return not lines or any(_same_line(line, text) for line in lines)


def _relocate(candidate: CandidateFinding, index: FileIndex) -> tuple[Side, int] | None:
    """Move a finding to the one nearby line whose code it quoted (a quote of several lines: its
    last), on its own side; on the other side only when its own side has no such line at all."""
    lines = _quote_lines(candidate.quote)
    if not lines:
        return None
    for side in (candidate.side, Side.LEFT if candidate.side is Side.RIGHT else Side.RIGHT):
        matches = index.quoted_lines(lines[-1], side, candidate.line)
        if len(matches) > 1 and abs(matches[0] - candidate.line) == abs(matches[1] - candidate.line):
            return None  # a tie: the quote does not say which line is meant
        if matches:
            return side, matches[0]
    return None


def _moved_range(
    candidate: CandidateFinding, index: FileIndex, side: Side, line: int, hunk: int, tally: _Tally
) -> tuple[int | None, str | None]:
    """The start line and suggestion of a range finding moved to ``line``: its range shifted along,
    if the quote covers every line of it there; else one line and no suggestion, which would
    replace lines nobody checked."""
    assert candidate.start_line is not None
    start = line - (candidate.line - candidate.start_line)
    texts = index.texts(side, start, line, hunk) if start >= 1 else None
    quoted = _quote_lines(candidate.quote)
    if texts is not None and len(texts) == len(quoted) and all(map(_same_line, quoted, texts)):
        return start, candidate.suggestion
    tally.counts["trimmed"] += 1
    return None, None


def _checked_start(start: int | None, side: Side, line: int, hunk: int, index: FileIndex, tally: _Tally) -> int | None:
    """A start line GitHub accepts: before ``line``, same side, same hunk; else trimmed or dropped."""
    if start is None or start == line:
        return None
    if start > line:
        tally.counts["trimmed"] += 1
        return None
    start_spot = index.spots.get((side, start))
    if start_spot is not None and start_spot.hunk == hunk and _contiguous(index, side, start, line):
        return start
    tally.counts["trimmed"] += 1
    trimmed = max(start, _first_of_hunk_run(index, side, hunk, line))
    return trimmed if trimmed < line else None


def _contiguous(index: FileIndex, side: Side, start: int, line: int) -> bool:
    return all((side, number) in index.spots for number in range(start, line + 1))


def _first_of_hunk_run(index: FileIndex, side: Side, hunk: int, line: int) -> int:
    """The first line of the unbroken run of same-side lines in ``hunk`` that ends at ``line``."""
    first = line
    while (spot := index.spots.get((side, first - 1))) is not None and spot.hunk == hunk:
        first -= 1
    return first


def _code(index: FileIndex, side: Side, start: int, end: int) -> str:
    return "\n".join(index.spots[(side, number)].text for number in range(start, end + 1))


def _finding(
    candidate: CandidateFinding,
    path: str,
    line: int | None,
    start_line: int | None,
    side: Side,
    code: str | None,
    suggestion: str | None,
) -> Finding:
    # A suggestion replaces new-file lines; on a removed line or a file-level note it means nothing.
    suggestion = suggestion if line is not None and side is Side.RIGHT else None
    return Finding(
        path=path,
        line=line,
        start_line=start_line,
        side=side,
        severity=candidate.severity,
        category=candidate.category,
        title=candidate.title or candidate.body.split("\n", 1)[0][:80],
        body=candidate.body,
        suggestion=suggestion,
        code=code,
    )


def finalize(
    findings: Sequence[Finding],
    *,
    min_severity: Severity,
    max_findings: int,
    include_nits: bool,
    file_order: Sequence[str],
) -> tuple[list[Finding], Repairs]:
    """Merge duplicates, drop what is below the bar, keep the most severe up to the cap, sort."""
    counts: Counter[str] = Counter()
    unique: dict[tuple[object, ...], Finding] = {}
    for finding in findings:
        if finding.category is Category.STYLE and not include_nits:
            counts["below_threshold"] += 1
            continue
        if not finding.severity.at_least(min_severity):
            counts["below_threshold"] += 1
            continue
        key = (finding.path, finding.line, finding.side, " ".join(finding.title.lower().split()))
        kept = unique.get(key)
        if kept is not None:
            counts["merged"] += 1
            if finding.severity.rank < kept.severity.rank:
                unique[key] = finding
            continue
        unique[key] = finding
    ranked = sorted(unique.values(), key=lambda finding: finding.severity.rank)
    chosen = ranked[:max_findings]
    counts["capped"] += len(ranked) - len(chosen)
    position = {path: number for number, path in enumerate(file_order)}
    chosen.sort(key=lambda f: (position.get(f.path, len(position)), f.line or 0, f.severity.rank))
    return chosen, Repairs(**counts)
