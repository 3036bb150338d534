"""History cases: a repository's bug fixes, turned around.

A commit whose subject (its message's first line) looks like a bug fix (``--pattern``; a body's
"Fixes #12" names an issue, which may as well be a feature) and that changes a few lines of
source (``--max-files``, ``--max-lines``) is a bug someone found. The case's diff is the fix
undone, ``git diff FIX FIX^`` on its source files only: a change that re-introduces the bug
into the fixed code, labelled on the lines it changes. Tests, docs and changelogs of the fix
never reach the case, nor does its message: they would give the answer away. Only fixes that
modify existing source files count (a fix that adds or deletes a file is not a line-level bug).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reviewbot.engine.diff import GIT_DIFF_OPTIONS, Diff, Side, parse_diff
from reviewbot.errors import InputError
from reviewbot.eval.cases import Case, Label, Source
from reviewbot.eval.code_text import SOURCE_EXTENSIONS, is_comment, language_of
from reviewbot.eval.paths import is_source_path, neutral_title
from reviewbot.head_files import run_git

DEFAULT_PATTERN = r"(?i)\b(fix(e[sd])?|fixing|bug(fix)?|regression|crash(es|ed)?|incorrect(ly)?|wrong(ly)?)\b"
# Fixes of words, types, tooling or tests, not of behaviour a reviewer would catch.
DEFAULT_EXCLUDE = (
    r"(?i)\b(typos?|spelling|grammar|grammatical|docs?|docstrings?|documentation|readme|changelog|comments?|"
    r"lint(ing|er)?|flake8|mypy|pyright|pre-commit|format(ting)?|style|whitespace|warnings?|"
    r"typing|type ?hints?|annotations?|tests?|ci|build|compil(e|ation))\b"
)
_REMOTE = re.compile(r"[:/]([\w.-]+/[\w.-]+?)(?:\.git)?/?$")
_RECORD, _FIELD = "\x1e", "\x1f"


@dataclass(frozen=True, slots=True)
class HistoryOptions:
    """Which commits become cases: those before ``revision`` since ``since`` (anything
    ``git log --since`` takes; a date makes a build that can be rerun to the same cases)."""

    since: str = "2 years ago"
    revision: str = "HEAD"
    pattern: str = DEFAULT_PATTERN
    exclude: str = DEFAULT_EXCLUDE
    max_files: int = 3  # source files the fix changes
    max_lines: int = 40  # source lines the fix adds and removes
    extensions: tuple[str, ...] = SOURCE_EXTENSIONS
    max_cases: int | None = None
    repository: str | None = None  # the name cases carry; from the origin remote when None
    licence: str | None = None  # an SPDX identifier; guessed from the licence files when None


@dataclass(frozen=True, slots=True)
class _Commit:
    sha: str
    parents: tuple[str, ...]
    message: str


def build_from_history(repo: Path, options: HistoryOptions | None = None) -> list[Case]:
    """The cases of ``repo``'s bug fixes since ``options.since``, newest first."""
    options = options or HistoryOptions()
    name = options.repository or repository_name(repo)
    licence = options.licence if options.licence is not None else guess_licence(repo, options.revision)
    pattern, exclude = re.compile(options.pattern), re.compile(options.exclude)
    cases: list[Case] = []
    seen: set[bytes] = set()
    for commit in _commits(repo, options.since, options.revision):
        subject = commit.message.partition("\n")[0]
        if len(commit.parents) != 1 or not pattern.search(subject) or exclude.search(subject):
            continue
        case = _case(repo, commit, name, licence, options)
        # The same fix landed twice (a cherry-pick, a re-applied revert) is one case, the newest.
        if case is not None and case.diff not in seen:
            seen.add(case.diff)
            cases.append(case)
            if options.max_cases is not None and len(cases) >= options.max_cases:
                break
    return cases


def _case(repo: Path, commit: _Commit, name: str, licence: str | None, options: HistoryOptions) -> Case | None:
    parent = commit.parents[0]
    sources = _source_files(repo, commit, options)
    if sources is None:
        return None
    diff = _git(repo, "diff", *GIT_DIFF_OPTIONS, commit.sha, parent, "--", *sources)
    parsed = parse_diff(diff)
    labels = labels_of(parsed)
    if not labels or not _changes_code(parsed):
        return None
    slug = name.rsplit("/", 1)[-1]
    return Case(
        id=f"{slug}-{commit.sha[:12]}",
        title=neutral_title([file.path for file in parsed.files]),
        description="",
        diff=diff,
        labels=labels,
        source=Source(name, commit.sha, parent, licence, "history"),
        # The diff leads back to the parent: its files are what function context reads around the hunks.
        heads=tuple((file.path, _git(repo, "show", f"{parent}:{file.path}")) for file in parsed.files if file.new_path),
    )


def _source_files(repo: Path, commit: _Commit, options: HistoryOptions) -> list[str] | None:
    """The source files the fix modifies, or None when the fix is not one to keep."""
    statuses = _git(repo, "diff", "--no-renames", "--name-status", "-z", commit.parents[0], commit.sha).split(b"\0")
    sources: list[str] = []
    for status, path in zip(statuses[::2], statuses[1::2], strict=False):
        name = path.decode("utf-8", "surrogateescape")
        if not is_source_path(name, options.extensions):
            continue
        if status != b"M":
            return None  # a source file added, deleted or changed in type
        sources.append(name)
    if not sources or len(sources) > options.max_files:
        return None
    counts = _git(repo, "diff", "--numstat", "-z", commit.parents[0], commit.sha, "--", *sources).split(b"\0")
    changed = 0
    for row in filter(None, counts):
        added, removed, _ = row.split(b"\t", 2)
        if added == b"-":
            return None  # binary
        changed += int(added) + int(removed)
    return sources if 0 < changed <= options.max_lines else None


def labels_of(diff: Diff) -> tuple[Label, ...]:
    """One label per run of changed lines: the new lines it brings (RIGHT), or, for a run that
    only removes lines, the removed lines (LEFT)."""
    labels: list[Label] = []
    description = "re-introduces the bug a later commit fixed"
    for file in diff.files:
        for hunk in file.hunks:
            run: list[tuple[str, int]] = []
            for line in (*hunk.lines, None):
                if line is not None and line.kind != " ":
                    run.append((line.kind, line.number))
                    continue
                if run:
                    added = [number for kind, number in run if kind == "+"]
                    side, numbers = (Side.RIGHT, added) if added else (Side.LEFT, [n for _, n in run])
                    labels.append(Label(file.path, side, min(numbers), max(numbers), "reverted-fix", description))
                    run = []
    return tuple(labels)


def _changes_code(diff: Diff) -> bool:
    """Whether any changed line is code: a fix of comments only is no bug to find."""
    for file in diff.files:
        language = language_of(file.path) or "c"
        for hunk in file.hunks:
            if any(line.kind != " " and not is_comment(line.text, language) for line in hunk.lines):
                return True
    return False


def _commits(repo: Path, since: str, revision: str) -> list[_Commit]:
    layout = f"--format=%H{_FIELD}%P{_FIELD}%B{_RECORD}"
    out = _git(repo, "log", "--no-merges", f"--since={since}", layout, revision, "--")
    commits = []
    for record in out.decode("utf-8", "replace").split(_RECORD):
        fields = record.strip("\n").split(_FIELD)
        if len(fields) == 3:
            commits.append(_Commit(fields[0], tuple(fields[1].split()), fields[2].strip()))
    return commits


def repository_name(repo: Path) -> str:
    """``owner/name`` from the origin remote's URL, else the folder's name."""
    try:
        url = _git(repo, "remote", "get-url", "origin").decode().strip()
    except InputError:
        url = ""
    found = _REMOTE.search(url)
    return found.group(1) if found else repo.resolve().name


_LICENCE_FILES = re.compile(r"(?i)^(licen[cs]e|copying|unlicense)([-._].*)?$")
_LICENCE_TEXTS = (
    ("MIT", re.compile(r"Permission is hereby granted, free of charge")),
    ("BSD-3-Clause", re.compile(r"Neither the name of .{0,80} nor the names of", re.DOTALL)),
    ("Apache-2.0", re.compile(r"Apache License,?\s+Version 2\.0")),
    ("Unlicense", re.compile(r"This is free and unencumbered software released into the public domain")),
)


def licence_files(repo: Path, revision: str = "HEAD") -> list[str]:
    """The licence files at the top of the repository at ``revision``."""
    names = _git(repo, "ls-tree", "--name-only", "-z", revision).decode("utf-8", "replace").split("\0")
    return sorted(name for name in names if _LICENCE_FILES.match(name))


def licence_file_texts(repo: Path, revision: str = "HEAD") -> dict[str, bytes]:
    """The licence files at the top of the repository at ``revision``, by name."""
    return {name: _git(repo, "show", f"{revision}:{name}") for name in licence_files(repo, revision)}


def guess_licence(repo: Path, revision: str = "HEAD") -> str | None:
    """An SPDX expression from the licence files' texts (``MIT OR Unlicense`` for several), or None."""
    found: list[str] = []
    for data in licence_file_texts(repo, revision).values():
        text = data.decode("utf-8", "replace")
        found += [spdx for spdx, marker in _LICENCE_TEXTS if marker.search(text) and spdx not in found]
    return " OR ".join(sorted(found)) or None


def _git(repo: Path, *args: str) -> bytes:
    return run_git(
        ["-C", str(repo), "-c", "core.quotepath=off", *args], shown=f"git {' '.join(args[:2])} in {repo}", timeout=300
    )
