"""``reviewbot eval build``: labelled cases from a repository's history, or bugs planted in diffs.

    reviewbot eval build --git ../flask --since 2y -o flask-bench/
    reviewbot eval build --inject a.diff b.diff --repository octo-org/app --licence MIT -o planted/

The folder gets ``cases.jsonl`` and the diffs (see :mod:`reviewbot.eval.cases`), a ``NOTICE.md``
saying where every case came from, and for ``--git`` the repository's licence files under
``LICENSES/``.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from reviewbot.errors import ConfigError, InputError
from reviewbot.eval.cases import CASES_FILE, Case, Source, write_set
from reviewbot.eval.history import (
    DEFAULT_EXCLUDE,
    DEFAULT_PATTERN,
    HistoryOptions,
    build_from_history,
    licence_file_texts,
    repository_name,
)
from reviewbot.eval.inject import inject

_SINCE = re.compile(r"(\d{1,4})\s*([ymwd])")
_UNITS = {"y": "years", "m": "months", "w": "weeks", "d": "days"}
NOTICE_FILE = "NOTICE.md"
LICENSES_FOLDER = "LICENSES"


def add_parser(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = actions.add_parser(
        "build",
        help="make labelled cases from a repository's bug fixes, or by planting bugs in diffs",
        description="Write a case folder: from --git, each bug-fix commit undone (its source files only, never "
        "its tests or message), labelled on the lines it changes; from --inject, one real mutation planted "
        "in an added line of each diff, labelled on that line.",
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--git", metavar="PATH", help="a git repository whose bug fixes become cases")
    source.add_argument("--inject", nargs="+", metavar="DIFF", help="diff files to plant one bug in per case")
    build.add_argument("--output", "-o", required=True, metavar="DIR", help="the case folder to write")
    build.add_argument("--since", default="2y", type=parse_since, help="--git: commits since (2y, 6m, 30d, a date)")
    build.add_argument("--rev", default="HEAD", help="--git: the history up to this commit (default: HEAD)")
    build.add_argument("--pattern", default=DEFAULT_PATTERN, help="--git: a bug fix's subject matches this")
    build.add_argument("--exclude", default=DEFAULT_EXCLUDE, help="--git: subjects matching this are not bug fixes")
    build.add_argument("--max-files", type=int, default=3, metavar="N", help="--git: source files a fix may change")
    build.add_argument("--max-lines", type=int, default=40, metavar="N", help="--git: source lines a fix may change")
    build.add_argument("--max-cases", type=int, metavar="N", help="--git: stop after N cases (newest first)")
    build.add_argument(
        "--extensions",
        type=lambda text: tuple(f".{part.strip().lstrip('.')}" for part in text.split(",") if part.strip()),
        metavar="LIST",
        help="--git: source file extensions, comma-separated (default: py, rs, go, js, ts, c, java and others)",
    )
    build.add_argument("--seed", type=int, default=1, help="--inject: the seed that picks the lines (default: 1)")
    build.add_argument("--per-diff", type=int, default=1, metavar="N", help="--inject: cases per diff (default: 1)")
    build.add_argument("--repository", metavar="NAME", help="where the code comes from, e.g. pallets/flask")
    build.add_argument("--licence", metavar="SPDX", help="the code's licence, e.g. BSD-3-Clause")


def parse_since(value: str) -> str:
    """``2y`` → ``2 years ago``; anything else (a date) as git takes it."""
    found = _SINCE.fullmatch(value.strip().lower())
    return f"{found.group(1)} {_UNITS[found.group(2)]} ago" if found else value


def build(args: argparse.Namespace) -> int:
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder} is a file; name a folder")
    if args.git:
        repo = Path(args.git)
        options = HistoryOptions(
            since=args.since,
            revision=args.rev,
            pattern=_regex(args.pattern, "--pattern"),
            exclude=_regex(args.exclude, "--exclude"),
            max_files=args.max_files,
            max_lines=args.max_lines,
            max_cases=args.max_cases,
            repository=args.repository,
            licence=args.licence,
            **({"extensions": args.extensions} if args.extensions else {}),
        )
        cases = build_from_history(repo, options)
        if not cases:
            raise InputError(f"no bug fix since {args.since} in {repo} qualified; widen --since, --pattern or limits")
        write_set(folder, cases)
        name = options.repository or repository_name(repo)
        write_licences(folder, name, licence_file_texts(repo, options.revision))
    else:
        cases = _injected(args)
        if not cases:
            raise InputError("no added line of source code to plant a bug in, in any diff given")
        write_set(folder, cases)
    write_notice(folder, cases)
    labels = sum(len(case.labels) for case in cases)
    print(f"wrote {len(cases)} case{'s' if len(cases) != 1 else ''} ({labels} labels) to {folder / CASES_FILE}")
    return 0


def _injected(args: argparse.Namespace) -> list[Case]:
    cases: list[Case] = []
    source = Source(args.repository or "unknown", None, None, args.licence, "injected")
    for name in args.inject:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror}") from None
        stem = re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)
        cases += inject(data, name=stem, source=source, seed=args.seed, count=args.per_diff)
    return cases


def _regex(text: str, option: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise ConfigError(f"{option} {text!r} is not a regular expression: {exc}") from None
    return text


def write_licences(folder: Path, repository: str, texts: dict[str, bytes]) -> None:
    """Keep a project's licence files beside its cases, under ``LICENSES/<owner>-<name>/``."""
    target = folder / LICENSES_FOLDER / repository.replace("/", "-")
    target.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (target / name).write_bytes(text)


def write_notice(folder: Path, cases: Iterable[Case]) -> None:
    """``NOTICE.md``: for each repository, its licence and the commits the cases came from."""
    by_repository: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        by_repository[case.source.repository].append(case)
    lines = [
        "# Where these cases come from",
        "",
        "Each case's diff is code of the project named below, changed as its `source.method` says:",
        "`history` undoes a bug-fix commit (`git diff COMMIT PARENT`), `injected` plants one bug in an",
        "added line of the commit's diff. The projects' licences apply to that code; their licence files",
        f"are under `{LICENSES_FOLDER}/` where they were available.",
    ]
    for repository, group in sorted(by_repository.items()):
        licences = sorted({case.source.licence or "unknown" for case in group})
        lines += ["", f"## {repository}", "", f"Licence: {', '.join(licences)}.", ""]
        lines += [f"- `{case.id}` ({case.source.method}): {case.source.commit or 'commit unknown'}" for case in group]
    (folder / NOTICE_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
