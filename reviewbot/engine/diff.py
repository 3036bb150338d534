"""Unified diff text → our own immutable files, hunks and commentable lines.

``unidiff`` does the line-level parsing; this module adds what a review needs on top: the
status GitHub would show for each file, path names exactly as GitHub spells them, and for
every hunk the lines a review comment may sit on (new-file numbers on the RIGHT side for added
and context lines, old-file numbers on the LEFT side for removed lines).
"""

from __future__ import annotations

import gc
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchedFile, PatchSet

from reviewbot.engine.gitpath import strip_prefix, unquote_c_style
from reviewbot.errors import DiffError

_SUBMODULE_MODE = "160000"
_SIMILARITY = re.compile(r"^similarity index (\d+)%")
_RENAME_OR_COPY = re.compile(r"^(rename|copy) (from|to) (.+?)\r?\n?$")
_HUNK_LINE_KINDS = frozenset("+- ")
_MODE = re.compile(r"^(?:old|new|new file|deleted file) mode (\d+)|^index \S+ (\d+)")


#: ``git diff`` options whose output :func:`parse_diff` reads as GitHub shows a pull request: -M
#: finds renames as GitHub does, full hashes and no colour keep it parseable, and the a/ b/
#: prefixes are forced (the user's diff.mnemonicPrefix or diff.noprefix would change them).
GIT_DIFF_OPTIONS = ("-M", "--full-index", "--no-color", "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/")


class FileStatus(StrEnum):
    """What happened to a file, in the words GitHub's files API uses where it has one."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "removed"
    RENAMED = "renamed"
    COPIED = "copied"
    BINARY = "binary"
    MODE_CHANGED = "mode-changed"
    SUBMODULE = "submodule"


class Side(StrEnum):
    """The side of a diff a comment sits on, as GitHub's review comments API names it."""

    LEFT = "LEFT"
    RIGHT = "RIGHT"


class DiffLine(NamedTuple):
    """One line of a hunk. A NamedTuple, not a dataclass: a big diff has millions of these."""

    kind: str  # "+", "-" or " "
    text: str  # without the line ending
    old_no: int | None
    new_no: int | None

    @property
    def side(self) -> Side:
        return Side.LEFT if self.kind == "-" else Side.RIGHT

    @property
    def number(self) -> int:
        """The number a comment uses for this line on its own side."""
        number = self.old_no if self.kind == "-" else self.new_no
        assert number is not None  # every hunk line has a number on its own side
        return number


@dataclass(frozen=True, slots=True)
class Hunk:
    """One ``@@`` block: its header numbers, the function context git found, and its lines.

    ``context_before`` and ``context_after`` are unchanged lines of the new file around the hunk
    that are not part of the diff (see :mod:`reviewbot.engine.context`): shown to the model, never
    commented on, as GitHub accepts comments only on lines of the diff.
    """

    old_start: int
    old_length: int
    new_start: int
    new_length: int
    section: str
    lines: tuple[DiffLine, ...]
    context_before: tuple[DiffLine, ...] = ()
    context_after: tuple[DiffLine, ...] = ()

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.kind == "+")

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.kind == "-")


@dataclass(frozen=True, slots=True)
class DiffFile:
    """One file of a diff. ``old_path`` is None for an added file, ``new_path`` for a deleted one."""

    old_path: str | None
    new_path: str | None
    status: FileStatus
    hunks: tuple[Hunk, ...]
    similarity: int | None = None
    old_mode: str | None = None
    new_mode: str | None = None

    @property
    def path(self) -> str:
        """The name a review comment uses: the new path, or the old one for a deleted file."""
        path = self.new_path or self.old_path
        assert path is not None  # a file always has at least one side
        return path

    @property
    def added(self) -> int:
        return sum(hunk.added for hunk in self.hunks)

    @property
    def removed(self) -> int:
        return sum(hunk.removed for hunk in self.hunks)


@dataclass(frozen=True, slots=True)
class Diff:
    """A whole parsed diff."""

    files: tuple[DiffFile, ...]

    @property
    def changed_lines(self) -> int:
        return sum(file.added + file.removed for file in self.files)


def decode(data: bytes) -> str:
    """Decode diff bytes: UTF-8, with bytes that are not UTF-8 shown as U+FFFD.

    Replacing keeps every line and so every line number; only the odd byte reads differently.
    """
    return data.decode("utf-8", errors="replace")


class _LineCounter:
    """Feeds lines to unidiff and remembers how far it got, so an error can name the line."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text)  # splits on "\n" only, so a CRLF keeps its "\r"
        self.number = 0
        self.line = ""

    def __iter__(self) -> Iterator[str]:
        for number, line in enumerate(self._lines, 1):
            self.number, self.line = number, line
            yield line


def parse_diff(data: str | bytes) -> Diff:
    """Parse unified diff text (``git diff``, GitHub's diff media type) into a :class:`Diff`.

    An empty or blank input is an empty diff. Input that holds no diff at all, or a hunk whose
    lines disagree with its header, raises :class:`DiffError` naming the line.
    """
    text = decode(data) if isinstance(data, bytes) else data
    if not text.strip():
        return Diff(files=())
    _refuse_combined(text)
    text = _protect_ambiguous_names(text)
    counter = _LineCounter(text)
    # Parsing builds two objects per diff line and frees nothing until it is done, so the
    # cyclic collector would rescan them again and again for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        patch = PatchSet(counter)
        files = tuple(_convert_file(patched) for patched in patch)
    except UnidiffParseError as exc:
        raise DiffError(
            f"line {counter.number} of the diff is malformed ({_describe(exc)}): {_shorten(counter.line)}"
        ) from exc
    finally:
        if collecting:
            gc.enable()
    if not files:
        first = next(line for line in text.splitlines() if line.strip())
        raise DiffError(
            f"the input is not a unified diff: line 1 reads {_shorten(first)}; "
            "pass the output of `git diff` or a .diff/.patch file"
        )
    return Diff(files=files)


#: How a combined diff (``git diff --cc``, ``git show`` of a merge) starts each file.
_COMBINED_HEADERS = ("diff --cc ", "diff --combined ")


def _refuse_combined(text: str) -> None:
    """A combined diff compares a merge with each parent at once: its lines have no one old and
    new number a review comment could sit on, so it is refused with what to run instead."""
    for header in _COMBINED_HEADERS:
        # str.find, not a multiline regex: this runs over every diff, and finds are several times quicker.
        at = text.find(header)
        while at > 0 and text[at - 1] != "\n":
            at = text.find(header, at + 1)
        if at == -1:
            continue
        number = text.count("\n", 0, at) + 1
        line = text[at:].split("\n", 1)[0]
        raise DiffError(
            f"line {number} of the diff is part of a combined diff of a merge: {_shorten(line)}; it has no single "
            "parent to comment against, so review against one parent instead, e.g. `git diff MAIN...BRANCH` "
            "or `git diff MERGE^1 MERGE`"
        )


def _describe(exc: UnidiffParseError) -> str:
    message = str(exc).split(":", 1)[0].strip()
    return message[0].lower() + message[1:] if message else "unreadable"


def _shorten(line: str, limit: int = 80) -> str:
    line = line.rstrip("\r\n")
    return repr(line if len(line) <= limit else line[: limit - 1] + "…")


def _convert_file(patched: PatchedFile) -> DiffFile:
    info = list(patched.patch_info or ())
    similarity: int | None = None
    renamed: dict[str, str] = {}
    kind = ""
    modes: list[str] = []
    for line in info:
        if match := _SIMILARITY.match(line):
            similarity = int(match.group(1))
        elif match := _RENAME_OR_COPY.match(line):
            kind = match.group(1)
            renamed[match.group(2)] = unquote_c_style(match.group(3))
        elif match := _MODE.match(line):
            modes.append(match.group(1) or match.group(2))

    old_path = _clean_path(patched.source_file)
    new_path = _clean_path(patched.target_file)
    # "rename from/to" lines carry the names without a/ b/ prefixes and are the most exact.
    if old_path is not None and "from" in renamed:
        old_path = renamed["from"]
    if new_path is not None and "to" in renamed:
        new_path = renamed["to"]

    hunks = tuple(_convert_hunk(hunk) for hunk in patched)
    old_mode = patched.source_mode if old_path is not None else None
    new_mode = patched.target_mode if new_path is not None else None
    status = _status(patched, old_path, new_path, kind, hunks, modes, old_mode, new_mode)
    return DiffFile(
        old_path=old_path,
        new_path=new_path,
        status=status,
        hunks=hunks,
        similarity=similarity,
        old_mode=old_mode,
        new_mode=new_mode,
    )


def _status(
    patched: PatchedFile,
    old_path: str | None,
    new_path: str | None,
    kind: str,
    hunks: tuple[Hunk, ...],
    modes: list[str],
    old_mode: str | None,
    new_mode: str | None,
) -> FileStatus:
    if _SUBMODULE_MODE in modes:
        return FileStatus.SUBMODULE
    if patched.is_binary_file:
        return FileStatus.BINARY
    if old_path is None:
        return FileStatus.ADDED
    if new_path is None:
        return FileStatus.DELETED
    # A copy also has two different names, so it must be told apart before a rename.
    if kind == "copy":
        return FileStatus.COPIED
    if kind == "rename" or old_path != new_path:
        return FileStatus.RENAMED
    if not hunks and old_mode != new_mode:
        return FileStatus.MODE_CHANGED
    return FileStatus.MODIFIED


def _clean_path(raw: str | None) -> str | None:
    if raw is None or raw == "/dev/null":
        return None
    return strip_prefix(unquote_c_style(raw.rstrip("\r"))).replace(_HIDDEN_B, " b/")


# A name holding " b/" ("Plan b/notes.md") makes "diff --git a/X b/X" ambiguous, and unidiff
# splits it at the wrong place. Text diffs never contain NUL, so inside such a name " b/" is
# written with one until the name is read back.
_AMBIGUOUS_HEADER = re.compile(r"^diff --git a/(.* b/.*) b/\1$", re.MULTILINE)
_HIDDEN_B = " b\0/"


def _protect_ambiguous_names(text: str) -> str:
    if " b/" not in text or _AMBIGUOUS_HEADER.search(text) is None:
        return text
    for name in {match.group(1) for match in _AMBIGUOUS_HEADER.finditer(text)}:
        hidden = name.replace(" b/", _HIDDEN_B)
        quoted = re.escape(name)
        # Header lines only; a code line that mentions the name stays as it is.
        literal = hidden.replace("\\", "\\\\")  # re.sub templates read backslashes as escapes
        text = re.sub(f"^diff --git a/{quoted} b/{quoted}$", f"diff --git a/{literal} b/{literal}", text, flags=re.M)
        text = re.sub(f"^(--- a/|\\+\\+\\+ b/){quoted}(?=\t|\r?$)", f"\\g<1>{literal}", text, flags=re.M)
    return text


def _convert_hunk(hunk: object) -> Hunk:
    lines: list[DiffLine] = []
    append = lines.append
    new_line = tuple.__new__
    for line in hunk:  # type: ignore[attr-defined]
        kind = line.line_type
        # Skip "\ No newline at end of file" (it belongs to the line before it) and the blank
        # separator line unidiff attaches after a finished hunk (type "", on neither side).
        if kind not in _HUNK_LINE_KINDS:
            continue
        text = line.value
        if text.endswith("\n"):
            text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
        # tuple.__new__ skips NamedTuple's Python-level constructor: this runs once per diff line.
        append(new_line(DiffLine, (kind, text, line.source_line_no, line.target_line_no)))
    return Hunk(
        old_start=hunk.source_start,  # type: ignore[attr-defined]
        old_length=hunk.source_length,  # type: ignore[attr-defined]
        new_start=hunk.target_start,  # type: ignore[attr-defined]
        new_length=hunk.target_length,  # type: ignore[attr-defined]
        section=hunk.section_header,  # type: ignore[attr-defined]
        lines=tuple(lines),
    )
