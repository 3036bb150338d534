"""A small labelled case set from real diffs, and a reviewer on the fake endpoint that follows a script.

The script says, for each case (known by its title), which lines the model flags; every answer
reports the same usage, so what a run costs is known to the cent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fake_openai import Reply, TokenUsage
from fixtures_path import FIXTURE_DIFFS
from reviewbot.engine.diff import Side, parse_diff
from reviewbot.eval.cases import Case, Label, Source, write_set

# Every answer's usage, and the prices the tests give the model: each answer costs $0.0012.
USAGE = TokenUsage(prompt_tokens=1000, completion_tokens=100)
INPUT_PRICE, OUTPUT_PRICE = 1.0, 2.0
ANSWER_USD = (USAGE.prompt_tokens * INPUT_PRICE + USAGE.completion_tokens * OUTPUT_PRICE) / 1_000_000


def _case(case_id: str, fixture: str, *labels: tuple[str, Side, int, int]) -> Case:
    return Case(
        id=case_id,
        title=f"Change {case_id}",
        description="",
        diff=(FIXTURE_DIFFS / f"{fixture}.diff").read_bytes(),
        labels=tuple(Label(path, side, start, end, "manual", "a labelled line") for path, side, start, end in labels),
        source=Source("example/repo", None, None, "MIT", "manual"),
    )


# Five cases, six labels: two labels in one case, a label on a removed line, and a clean case.
CASES = (
    _case("lib", "bat-c132e19e7443", ("src/lib.rs", Side.RIGHT, 23, 24), ("src/lib.rs", Side.RIGHT, 28, 28)),
    _case(
        "minitwit",
        "flask-73a47a0db1a1",
        ("examples/minitwit/minitwit.py", Side.RIGHT, 124, 124),
        ("examples/minitwit/minitwit.py", Side.LEFT, 99, 99),
    ),
    _case("version", "flask-07a705888cbd", ("flask/__init__.py", Side.RIGHT, 13, 13)),
    _case("types", "ripgrep-7e0fa1c6be26", ("ignore/src/types.rs", Side.RIGHT, 193, 193)),
    _case("contributing", "flask-5e41e409bca4"),
)


def write_cases(folder: Path, cases: Iterable[Case] = CASES) -> Path:
    write_set(folder, cases)
    return folder


def line_text(case: Case, path: str, side: Side, number: int) -> str:
    for file in parse_diff(case.diff).files:
        if file.path != path:
            continue
        for hunk in file.hunks:
            for line in hunk.lines:
                if line.side is side and line.number == number:
                    return line.text
    raise AssertionError(f"{case.id} shows no line {number} ({side}) of {path}")


def finding(case: Case, path: str, side: Side, line: int, title: str = "a bug") -> dict[str, Any]:
    return {
        "path": path,
        "line": line,
        "start_line": None,
        "side": str(side),
        "severity": "high",
        "category": "bug",
        "title": title,
        "body": "It breaks.",
        "quote": line_text(case, path, side, line),
        "suggestion": None,
    }


def on_labels(case: Case) -> list[dict[str, Any]]:
    """A finding on the last line of each label of ``case``."""
    return [finding(case, label.path, label.side, label.end_line) for label in case.labels]


def far_from_labels(case: Case, most: int) -> list[dict[str, Any]]:
    """Findings on up to ``most`` new-file lines more than 3 lines from every label of ``case``
    (and outside every hunk that holds a label on removed lines)."""
    found: list[dict[str, Any]] = []
    removed = {
        (label.path, number)
        for label in case.labels
        if label.side is Side.LEFT
        for number in range(label.start_line, label.end_line + 1)
    }
    for file in parse_diff(case.diff).files:
        for hunk in file.hunks:
            if any((file.path, line.old_no) in removed for line in hunk.lines if line.kind == "-"):
                continue
            for line in hunk.lines:
                if line.side is not Side.RIGHT or len(found) == most:
                    continue
                near = any(
                    label.path == file.path
                    and label.side is Side.RIGHT
                    and label.start_line - 3 <= line.number <= label.end_line + 3
                    for label in case.labels
                )
                if not near:
                    found.append(finding(case, file.path, Side.RIGHT, line.number, "a false alarm"))
    return found


def title_of(user: str) -> str:
    """The title a review request's user message gives its change."""
    return next(line.removeprefix("Title: ") for line in user.splitlines() if line.startswith("Title: "))


Script = Callable[[Case], list[dict[str, Any]]]


def shows_file(user: str, path: str) -> bool:
    """Whether a review request's user message shows the file ``path`` (a modified file's header has no status)."""
    return re.search(rf"^File: {re.escape(path)}(?: \(.+\))?$", user, re.MULTILINE) is not None


def reviewer(cases: Iterable[Case], script: Script) -> Callable[[dict[str, Any]], Reply]:
    """A responder for the fake endpoint: the findings ``script`` gives the case a request is about,
    restricted to the files the request shows."""
    by_title = {case.title: case for case in cases}

    def answer(body: dict[str, Any]) -> Reply:
        user = body["messages"][1]["content"]
        findings = [item for item in script(by_title[title_of(user)]) if shows_file(user, item["path"])]
        return Reply.json({"findings": findings}, usage=USAGE)

    return answer
