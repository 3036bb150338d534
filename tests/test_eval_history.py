"""History cases from a small repository the test makes with git: exactly the bug fixes that
qualify become cases, turned around, with no test, changelog or commit message in them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from reviewbot.cli import main
from reviewbot.engine.diff import Side, parse_diff
from reviewbot.eval.build import parse_since
from reviewbot.eval.cases import Label, load_set, write_set
from reviewbot.eval.history import HistoryOptions, build_from_history, guess_licence, repository_name

PAGER = """\
def pages(items, size):
    count = len(items) // size
    result = []
    page = 0
    while page < count:
        result.append(items[page * size : (page + 1) * size])
        page += 1
    return result


def first(items):
    # The first item.
    return items[0]
"""
MIT = "Permission is hereby granted, free of charge, to any person obtaining a copy\n"


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", "https://github.com/octo-org/pager.git")

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        done = subprocess.run(["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    def commit(self, message: str, files: dict[str, str | None]) -> str:
        for name, text in files.items():
            path = self.path / name
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "pager")
    buggy = PAGER.replace("count = len(items) // size", "count = (len(items) + size - 1) // size")
    repo.commit(
        "Add the pager",
        {
            "src/pager.py": buggy.replace("    while page < count:", "    while page <= count:"),
            "docs/conf.py": "project = 'pager'\n",
            "LICENSE": MIT,
        },
    )
    return repo


def test_the_fixes_that_qualify_become_cases_turned_around(repo: Repo, tmp_path: Path) -> None:
    pager = repo.path / "src/pager.py"
    fixed_bound = pager.read_text("utf-8").replace("while page <= count:", "while page < count:")
    bound = repo.commit(
        "Fix the pager's off-by-one on the last page\n\nThe loop ran once too often.",
        {
            "src/pager.py": fixed_bound,
            "tests/test_pager.py": "def test_last_page():\n    assert pages([1, 2, 3], 2) == [[1, 2], [3]]\n",
            "CHANGES.md": "- Fix the pager's off-by-one on the last page.\n",
        },
    )
    repo.commit("Fix typo in README", {"README.md": "A pager.\n"})
    repo.commit("Refactor: name the result", {"src/pager.py": fixed_bound.replace("result", "chunks")})
    guarded = pager.read_text("utf-8").replace(
        "def first(items):\n", "def first(items):\n    if not items:\n        return None\n"
    )
    guard = repo.commit("Fix a crash on an empty list", {"src/pager.py": guarded})
    repo.commit("Fix the intersphinx mapping", {"docs/conf.py": "project = 'Pager'\n"})  # docs are no source
    repo.commit("Fix the comment", {"src/pager.py": guarded.replace("# The first item.", "# The first one.")})
    repo.commit("Fix the helper", {"src/util.py": "def helper():\n    return 1\n"})
    big = "\n".join(f"def f{n}():\n    return {n}\n" for n in range(30))
    repo.commit("Fix everything at once", {"src/pager.py": pager.read_text("utf-8") + big})

    cases = build_from_history(repo.path, HistoryOptions(since="1 year ago"))

    assert [case.id for case in cases] == [f"pager-{guard[:12]}", f"pager-{bound[:12]}"]
    removed_guard, off_by_one = cases
    assert removed_guard.labels == (
        Label("src/pager.py", Side.LEFT, 12, 13, "reverted-fix", "re-introduces the bug a later commit fixed"),
    )
    assert off_by_one.labels == (
        Label("src/pager.py", Side.RIGHT, 5, 5, "reverted-fix", "re-introduces the bug a later commit fixed"),
    )
    # The case's diff goes from the fix back to its parent, on the source file alone.
    (file,) = parse_diff(off_by_one.diff).files
    assert file.path == "src/pager.py"
    assert [(line.kind, line.text) for line in file.hunks[0].lines if line.kind != " "] == [
        ("-", "    while page < count:"),
        ("+", "    while page <= count:"),
    ]
    for case in cases:
        assert b"test_pager" not in case.diff
        assert b"CHANGES" not in case.diff
        assert b"Fix" not in case.diff
        assert (case.title, case.description) == ("Change src/pager.py", "")
        assert case.source.repository == "octo-org/pager"
        assert case.source.licence == "MIT"
        assert case.source.method == "history"
    assert (off_by_one.source.commit, off_by_one.source.parent) == (bound, repo.git("rev-parse", f"{bound}^"))
    # The diff leads back to the parent: its file, byte for byte, is what function context reads.
    parent_file = subprocess.run(
        ["git", "-C", str(repo.path), "show", f"{bound}^:src/pager.py"], check=True, capture_output=True
    ).stdout
    assert off_by_one.heads == (("src/pager.py", parent_file),)
    assert b"while page <= count:" in parent_file
    write_set(tmp_path / "set", cases)  # every label sits on lines its diff shows
    assert load_set(str(tmp_path / "set")).cases == tuple(cases)


def test_the_limits_and_patterns_are_the_callers(repo: Repo) -> None:
    pager = repo.path / "src/pager.py"
    repo.commit("Fix the bound", {"src/pager.py": pager.read_text("utf-8").replace("<= count", "< count")})
    # The fix reverted, then made again the same way: one case, not two.
    repo.commit("Revert the bound", {"src/pager.py": pager.read_text("utf-8").replace("< count", "<= count")})
    repo.commit("Fix the bound again", {"src/pager.py": pager.read_text("utf-8").replace("<= count", "< count")})
    repo.commit("Correct the empty case", {"src/pager.py": pager.read_text("utf-8").replace("items[0]", "items[:1]")})

    assert len(build_from_history(repo.path, HistoryOptions(since="1 year ago"))) == 1
    assert len(build_from_history(repo.path, HistoryOptions(since="1 year ago", pattern=r"(?i)\bcorrect"))) == 1
    assert build_from_history(repo.path, HistoryOptions(since="1 year ago", max_lines=1)) == []
    assert build_from_history(repo.path, HistoryOptions(since="1 year ago", extensions=(".rs",))) == []
    assert len(build_from_history(repo.path, HistoryOptions(since="1 year ago", pattern=".", max_cases=1))) == 1
    assert build_from_history(repo.path, HistoryOptions(since="1 year ago", repository="x/y"))[0].id.startswith("y-")
    # The history up to a commit: a later fix is not in it.
    before = HistoryOptions(since="1 year ago", pattern=r"(?i)\bcorrect", revision="HEAD~1")
    assert build_from_history(repo.path, before) == []


def test_the_repository_and_its_licence_are_named(repo: Repo) -> None:
    assert repository_name(repo.path) == "octo-org/pager"
    assert guess_licence(repo.path) == "MIT"
    repo.git("remote", "remove", "origin")
    assert repository_name(repo.path) == "pager"
    unlicense = "This is free and unencumbered software released into the public domain.\n"
    repo.commit("Dual licence", {"UNLICENSE": unlicense, "LICENSE": None, "LICENSE-MIT": MIT})
    assert guess_licence(repo.path) == "MIT OR Unlicense"


def test_eval_build_git_writes_the_cases_their_notice_and_licence(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pager = repo.path / "src/pager.py"
    fix = repo.commit("Fix the bound", {"src/pager.py": pager.read_text("utf-8").replace("<= count", "< count")})
    out = tmp_path / "bench"

    assert main(["eval", "build", "--git", str(repo.path), "--since", "1y", "-o", str(out)]) == 0

    assert capsys.readouterr().out == f"wrote 1 case (1 labels) to {out / 'cases.jsonl'}\n"
    (case,) = load_set(str(out)).cases
    assert case.source.commit == fix
    assert (out / "LICENSES" / "octo-org-pager" / "LICENSE").read_text("utf-8") == MIT
    notice = (out / "NOTICE.md").read_text("utf-8")
    assert "## octo-org/pager" in notice
    assert "Licence: MIT." in notice
    assert f"- `pager-{fix[:12]}` (history): {fix}" in notice


def test_eval_build_git_without_a_qualifying_fix_says_how_to_widen(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "build", "--git", str(repo.path), "-o", str(tmp_path / "bench")]) == 2
    assert "no bug fix since 2 years ago in" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()
    assert main(["eval", "build", "--git", str(tmp_path), "-o", str(tmp_path / "b")]) == 2
    assert "failed: fatal: not a git repository" in capsys.readouterr().err
    assert main(["eval", "build", "--git", str(repo.path), "--pattern", "(", "-o", str(tmp_path / "b")]) == 2
    assert "--pattern '(' is not a regular expression" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "git"), [("2y", "2 years ago"), ("18m", "18 months ago"), ("2024-01-31", "2024-01-31")]
)
def test_since_takes_short_spans_and_dates(given: str, git: str) -> None:
    assert parse_since(given) == git
