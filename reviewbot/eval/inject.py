"""Injected-bug cases: one real mutation planted in an added line of a real diff, labelled on that line.

The bug sits among real changes, so a reviewer has to find it the way it would find one in a
pull request. Only added lines of source files are mutated (never tests, docs, comments or the
inside of strings), and only the mutated line's text changes: every other byte of the diff,
its hunk headers and line numbers stay as git printed them. The choice is deterministic: the
same diff, name and seed always give the same cases.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from reviewbot.engine.diff import Side
from reviewbot.eval.cases import Case, Label, Source
from reviewbot.eval.code_text import SOURCE_EXTENSIONS, is_comment, language_of, switches_text
from reviewbot.eval.mutations import Mutation, mutations, variable_names
from reviewbot.eval.paths import is_source_path, neutral_title

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True, slots=True)
class _AddedLine:
    """An added line of the raw diff: where it is, and what the hunk around it holds."""

    path: str
    number: int  # new-file line number
    raw_index: int  # index in the diff's lines
    text: str  # without the leading "+" and the line ending
    hunk_lines: tuple[str, ...]  # the hunk's added and unchanged lines, for variable names
    in_text: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    """A mutation that can be planted on an added line."""

    line: _AddedLine
    mutation: Mutation


def candidates(diff: bytes) -> list[Candidate]:
    """Every mutation that can be planted in the added source lines of ``diff``, in diff order."""
    found: list[Candidate] = []
    for added in _added_lines(diff):
        language = language_of(added.path)
        if language is None or not is_source_path(added.path, SOURCE_EXTENSIONS):
            continue
        if added.in_text or is_comment(added.text, language):
            continue
        names = variable_names(added.hunk_lines, language)
        found.extend(Candidate(added, mutation) for mutation in mutations(added.text, language, names))
    return found


def inject(diff: bytes, *, name: str, source: Source, seed: int = 1, count: int = 1) -> list[Case]:
    """Up to ``count`` cases from ``diff``, each with one planted bug on a different line, of
    different kinds where the diff allows; ``name`` makes their ids and their share of the seed."""
    chosen = choose(candidates(diff), random.Random(f"{seed}:{name}"), count)  # noqa: S311 - reproducible, not secret
    return [_case(diff, name, number, candidate, source) for number, candidate in enumerate(chosen, 1)]


def choose(found: Sequence[Candidate], generator: random.Random, count: int) -> list[Candidate]:
    """Pick up to ``count`` candidates on distinct lines, a kind at a time in an order the generator
    draws, so that no kind with many places (a variable, a comparison) crowds out the others."""
    by_kind: dict[str, list[Candidate]] = {}
    for candidate in found:
        by_kind.setdefault(candidate.mutation.kind, []).append(candidate)
    kinds = sorted(by_kind)
    generator.shuffle(kinds)
    chosen: list[Candidate] = []
    used_lines: set[tuple[str, int]] = set()
    while kinds and len(chosen) < count:
        for kind in list(kinds):
            options = [c for c in by_kind[kind] if (c.line.path, c.line.number) not in used_lines]
            if not options:
                kinds.remove(kind)
                continue
            pick = options[generator.randrange(len(options))]
            chosen.append(pick)
            used_lines.add((pick.line.path, pick.line.number))
            if len(chosen) == count:
                break
    return chosen


def _case(diff: bytes, name: str, number: int, candidate: Candidate, source: Source) -> Case:
    line = candidate.line
    lines = diff.decode("utf-8", "surrogateescape").split("\n")
    raw = lines[line.raw_index]
    ending = "\r" if raw.endswith("\r") else ""
    lines[line.raw_index] = "+" + candidate.mutation.apply(line.text) + ending
    mutated = "\n".join(lines).encode("utf-8", "surrogateescape")
    label = Label(
        line.path, Side.RIGHT, line.number, line.number, candidate.mutation.kind, candidate.mutation.description
    )
    paths = _paths(diff)
    return Case(
        id=f"{name}-{number}",
        title=neutral_title(paths),
        description="",
        diff=mutated,
        labels=(label,),
        source=source,
    )


def _paths(diff: bytes) -> list[str]:
    text = diff.decode("utf-8", "surrogateescape")
    return [line[6:].rstrip("\r") for line in text.split("\n") if line.startswith("+++ b/")]


def _added_lines(diff: bytes) -> Iterator[_AddedLine]:
    """The added lines of a git diff, read hunk by hunk from its counts (as ``git apply`` does)."""
    lines = diff.decode("utf-8", "surrogateescape").split("\n")
    path: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("+++ "):
            target = line[4:].rstrip("\r")
            path = target[2:] if target.startswith("b/") else None  # quoted or /dev/null: left alone
        header = _HUNK.match(line)
        index += 1
        if header is None:
            continue
        old_left, new_left = int(header.group(2) or "1"), int(header.group(4) or "1")
        number = int(header.group(3))
        rows: list[tuple[str, int, int, str]] = []  # (kind, raw index, new number, text) of "+" and " " lines
        while index < len(lines) and (old_left > 0 or new_left > 0):
            kind, text = lines[index][:1], lines[index][1:].rstrip("\r")
            if kind not in "+- \\" or not kind:
                break  # a hunk shorter than its header says: stop reading it
            if kind in "+ ":
                rows.append((kind, index, number, text))
                number += 1
                new_left -= 1
            if kind in "- ":
                old_left -= 1
            index += 1
        if path is not None:
            yield from _in_hunk(path, rows)


def _in_hunk(path: str, rows: list[tuple[str, int, int, str]]) -> Iterator[_AddedLine]:
    kept = tuple(text for _, _, _, text in rows)
    language = language_of(path)
    # Text that runs over lines (a docstring, a block comment, a long string) is not code. What
    # came before the hunk is unknown; most hunks start in code.
    inside = False
    for kind, raw_index, number, text in rows:
        switches = language is not None and switches_text(text, language)
        if kind == "+":
            yield _AddedLine(path, number, raw_index, text, kept, inside or switches)
        if switches:
            inside = not inside
