"""Function context: each hunk widened to the function or class it sits in, in the new file.

With ``REVIEWBOT_CONTEXT=function`` the model sees, around every hunk, the unchanged lines of
the enclosing function or class as they are in the head revision, up to a token cap per hunk.
Those lines are not part of the diff, so nothing may be commented on them (GitHub accepts review
comments only on lines of the diff); they are kept apart from the hunk's own lines for that.

The enclosing block is found without a parser, by one rule for every language:

* Its first line is the nearest line at or above the hunk that sits at a lower indent than
  everything between them and opens a block: it starts with a definition keyword (``def``,
  ``class``, ``fn``, ``func``, ``function``, ``impl``, ``struct``, ``enum``, ``trait``,
  ``interface``, ``mod``, ``module``, ``namespace``, ``object``, after modifiers such as ``pub``,
  ``async``, ``export``, ``static``, ``public``), or it ends with ``{`` after a parameter list
  and is not a statement such as ``if`` or ``for`` (a method in Java, C#, C++, JavaScript).
  Decorators and attributes (``@…``, ``#[…]``) straight above it belong to it.
* It runs down to the last line indented deeper than its first line; lines at its indent that
  start with ``)`` or ``]`` continue a signature, and a closing ``}`` or ``end`` at its indent
  is its last line.
* A line at the outermost indent that opens nothing has no enclosing block: nothing is added.

Within the cap the block's first line (what the hunk is inside) comes first, then lines
nearest the hunk, one above and one below in turn. Two hunks of one block share it: no line is
shown twice. A file whose head text does not hold the diff's new lines is left as it is.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence

from reviewbot.engine.diff import Diff, DiffFile, DiffLine, Hunk
from reviewbot.engine.filters import FilterRules, select_files
from reviewbot.engine.prompt import render_context_line
from reviewbot.engine.tokens import estimate_tokens

#: The values ``REVIEWBOT_CONTEXT`` takes.
CONTEXT_MODES = ("diff", "function")

_MODIFIERS = (
    r"(?:(?:pub(?:\([^)]*\))?|async|export|default|static|public|private|protected|internal|override|final|"
    r"abstract|sealed|open|unsafe|const|extern(?:\s+\"[^\"]*\")?|inline|virtual|suspend|data|partial)\s+)*"
)
_DEFINITION = re.compile(
    rf"^{_MODIFIERS}(?:def|class|fn|func|function\*?|impl|struct|enum|trait|interface|mod|module|namespace|object)\b"
)
_STATEMENT = re.compile(r"^(?:if|else|elif|for|foreach|while|switch|match|catch|try|do|loop|return|with|case)\b")
_DECORATOR = re.compile(r"^(?:@|#\[)")
_CLOSERS = (")", "]", "}")


def indent(text: str) -> int:
    """Columns of leading whitespace, a tab counting as four."""
    expanded = text.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def opens_block(text: str) -> bool:
    """Whether a line starts a function, class or similar definition (see the module's rule)."""
    code = text.strip().lstrip("}) ")  # "} else {" is read from its keyword
    if _DEFINITION.match(code):
        return True
    if not code.endswith("{") or "(" not in code or _STATEMENT.match(code):
        return False
    # "x = call(function() {" is a statement; "const f = (a) => {" defines a function.
    return "=>" in code or not re.search(r"(?<![=!<>])=(?!=)", code.split("(", 1)[0])


def _is_closer(code: str) -> bool:
    return code.startswith(_CLOSERS) or code == "end" or code.startswith("end ")


def enclosing_block(lines: Sequence[str], number: int) -> tuple[int, int] | None:
    """The first and last line (1-based) of the block that line ``number`` sits in, or None."""
    at = number - 1
    if not 0 <= at < len(lines):
        return None
    limit = _indent_near(lines, at) + 1  # the line itself may open the block
    for index in range(at, -1, -1):
        code = lines[index].strip()
        if not code or _is_closer(code):
            continue  # a closing line belongs to the block above it, never bounds one
        level = indent(lines[index])
        if level >= limit:
            continue
        if opens_block(code):
            last = _block_end(lines, index)
            return (_decorated_start(lines, index) + 1, last + 1) if last >= at else None
        if level == 0:
            return None
        limit = level
    return None


def _indent_near(lines: Sequence[str], at: int) -> int:
    """The indent of line ``at``, or of the nearest non-blank line below it (else above it)."""
    for index in (*range(at, len(lines)), *range(at - 1, -1, -1)):
        if lines[index].strip():
            return indent(lines[index]) + (1 if _is_closer(lines[index].strip()) else 0)
    return 0


def _block_end(lines: Sequence[str], start: int) -> int:
    level = indent(lines[start])
    last = start
    for index in range(start + 1, len(lines)):
        code = lines[index].strip()
        if not code:
            continue
        if indent(lines[index]) > level or code.startswith((")", "]")):
            last = index
            continue
        return index if code.startswith(("}", "end ")) or code == "end" else last
    return last


def _decorated_start(lines: Sequence[str], start: int) -> int:
    level = indent(lines[start])
    while start > 0 and _DECORATOR.match(lines[start - 1].strip()) and indent(lines[start - 1]) == level:
        start -= 1
    return start


def split_lines(text: str) -> list[str]:
    """A file's lines as a diff numbers them: split on ``\\n`` only, a CR before it dropped."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def matches(file: DiffFile, lines: Sequence[str]) -> bool:
    """Whether ``lines`` hold every new-side line of ``file``'s hunks where the diff says."""
    return all(
        line.new_no is not None and line.new_no <= len(lines) and lines[line.new_no - 1] == line.text
        for hunk in file.hunks
        for line in hunk.lines
        if line.kind != "-"
    )


def extend_file(file: DiffFile, head_text: str, max_tokens: int) -> DiffFile | None:
    """``file`` with each hunk's enclosing block added as context, or None when ``head_text`` is
    not the file the diff leads to."""
    lines = split_lines(head_text)
    if not matches(file, lines):
        return None
    hunks: list[Hunk] = []
    shown_up_to = 0  # the last new-file line already shown by an earlier hunk
    for position, hunk in enumerate(file.hunks):
        first, last = _new_span(hunk)
        following = file.hunks[position + 1] if position + 1 < len(file.hunks) else None
        stop = _new_span(following)[0] - 1 if following is not None else len(lines)
        start_block = enclosing_block(lines, max(first, 1)) if lines else None
        end_block = enclosing_block(lines, max(min(last, len(lines)), 1)) if lines else None
        above = range(max(start_block[0], shown_up_to + 1), first) if start_block else range(0)
        below = range(last + 1, min(end_block[1], stop) + 1) if end_block else range(0)
        chosen = _within_cap(lines, above, below, start_block[0] if start_block else 0, max_tokens)
        before = tuple(_context_line(lines, number) for number in above if number in chosen)
        after = tuple(_context_line(lines, number) for number in below if number in chosen)
        hunks.append(dataclasses.replace(hunk, context_before=before, context_after=after))
        shown_up_to = max(last, after[-1].new_no if after and after[-1].new_no else 0)
    return dataclasses.replace(file, hunks=tuple(hunks))


def extend_files(
    files: Sequence[DiffFile], heads: Mapping[str, str], max_tokens: int
) -> tuple[tuple[DiffFile, ...], tuple[str, ...]]:
    """Every file with its head text in ``heads`` extended, and the paths reviewed with the diff
    alone: those that need head text and have none, then those whose head text does not match."""
    extended: list[DiffFile] = []
    missing: list[str] = []
    mismatched: list[str] = []
    for file in files:
        text = heads.get(file.path) if needs_head(file) else None
        wider = extend_file(file, text, max_tokens) if text is not None else None
        if needs_head(file) and text is None:
            missing.append(file.path)
        elif text is not None and wider is None:
            mismatched.append(file.path)
        extended.append(wider or file)
    return tuple(extended), (*missing, *mismatched)


def needs_head(file: DiffFile) -> bool:
    """Whether function context would read ``file``'s head text: it has a new side and hunks."""
    return bool(file.new_path) and bool(file.hunks)


def head_paths(diff: Diff, rules: FilterRules) -> list[str]:
    """The files whose head text function context needs: those reviewed that have a new side."""
    return [file.path for file in select_files(diff, rules)[0] if needs_head(file)]


def context_lines(file: DiffFile) -> int:
    """How many context lines were added to ``file``."""
    return sum(len(hunk.context_before) + len(hunk.context_after) for hunk in file.hunks)


def _new_span(hunk: Hunk) -> tuple[int, int]:
    """First and last new-file line of a hunk; for a hunk with no new lines, an empty span just
    after the line it follows (``+N,0`` means after line N)."""
    if hunk.new_length == 0:
        return hunk.new_start + 1, hunk.new_start
    return hunk.new_start, hunk.new_start + hunk.new_length - 1


def _within_cap(lines: Sequence[str], above: range, below: range, block_first: int, max_tokens: int) -> set[int]:
    chosen: set[int] = set()
    used = 0
    for number in _by_priority(above, below, block_first):
        cost = estimate_tokens(render_context_line(number, lines[number - 1])) + 1
        if used + cost > max_tokens:
            break
        chosen.add(number)
        used += cost
    return chosen


def _by_priority(above: range, below: range, block_first: int) -> Iterator[int]:
    """The block's first line, then the nearest lines, one above and one below in turn."""
    upward = list(reversed(above))
    if above and above[0] == block_first:
        yield upward.pop()
    downward = list(below)
    for index in range(max(len(upward), len(downward))):
        yield from upward[index : index + 1]
        yield from downward[index : index + 1]


def _context_line(lines: Sequence[str], number: int) -> DiffLine:
    return DiffLine(" ", lines[number - 1], None, number)
