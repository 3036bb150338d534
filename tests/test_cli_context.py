"""``reviewbot review`` with function context, end to end against the scripted model on loopback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply
from reviewbot import head_files
from reviewbot.cli import main

pytestmark = pytest.mark.usefixtures("clean_environment")

BEFORE = """\
import os


def total(items, limit):
    count = 0
    result = 0
    for item in items:
        if item.size > limit:
            continue
        count += 1
        result += item.size
    return result / count


def other():
    return os.sep
"""
AFTER = BEFORE.replace("        if item.size > limit:", "        if item.size >= limit:")


def finding(line: int, quote: str, title: str) -> dict[str, Any]:
    return {
        "path": "calc.py",
        "line": line,
        "start_line": None,
        "side": "RIGHT",
        "severity": "high",
        "category": "bug",
        "title": title,
        "body": "Explained.",
        "quote": quote,
        "suggestion": None,
    }


def git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A repository whose last commit changes one line in the middle of a function."""
    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "calc.py").write_text(BEFORE, encoding="utf-8")
    git("add", ".")
    git("commit", "-qm", "one")
    (tmp_path / "calc.py").write_text(AFTER, encoding="utf-8")
    git("commit", "-qam", "two")
    return tmp_path


def test_git_range_shows_the_whole_function_and_keeps_findings_off_its_context_lines(
    endpoint: FakeOpenAI, repository: Path
) -> None:
    # The working tree moves on: a range names its head commit, which is what must be read.
    (repository / "calc.py").write_text("# rewritten\n" + AFTER, encoding="utf-8")
    endpoint.push(
        Reply.json(
            {
                "findings": [
                    finding(12, "return result / count", "Division by zero when every item is skipped"),
                    finding(8, "if item.size >= limit:", "Boundary changed"),
                ]
            }
        )
    )
    argv = ["review", "--git", "HEAD~1..HEAD", "--context", "function", "-f", "json", "-o", "out.json"]
    assert main(argv) == 0
    system, user = (message["content"] for message in endpoint.requests[0].body["messages"])
    assert '"12 ~code" lines show unchanged line 12' in system
    assert "4 ~def total(items, limit):\n5      count = 0" in user
    assert "11          result += item.size\n12 ~    return result / count" in user
    assert "other" not in user  # the next function is not this hunk's
    out = json.loads((repository / "out.json").read_text("utf-8"))
    assert sorted((f["line"] or 0, f["title"]) for f in out["findings"]) == [
        (0, "Division by zero when every item is skipped"),  # a file-level note: line 12 is not in the diff
        (8, "Boundary changed"),
    ]
    assert out["repairs"]["on_context"] == 1


def test_a_single_revision_reads_the_working_tree(endpoint: FakeOpenAI, repository: Path) -> None:
    # Only the working tree holds the new line 12: had HEAD been read, it would not match the diff.
    (repository / "calc.py").write_text(AFTER.replace("result / count", "result / max(count, 1)"), "utf-8")
    endpoint.push(Reply.json({"findings": []}))
    assert main(["review", "--git", "HEAD", "--context", "function", "-f", "json", "-o", "out.json"]) == 0
    user = endpoint.requests[0].body["messages"][1]["content"]
    assert "4 ~def total(items, limit):\n5 ~    count = 0\n6 ~    result = 0\n7 ~    for item in items:\n8 ~" in user
    assert "12 +    return result / max(count, 1)" in user


def test_the_default_sends_the_diff_alone(endpoint: FakeOpenAI, repository: Path) -> None:
    endpoint.push(Reply.json({"findings": []}))
    assert main(["review", "--git", "HEAD~1..HEAD", "-f", "json", "-o", "out.json"]) == 0
    messages = endpoint.requests[0].body["messages"]
    assert "~" not in messages[0]["content"]
    assert " ~" not in messages[1]["content"]


def test_a_diff_file_needs_repo_dir_for_function_context(
    endpoint: FakeOpenAI, repository: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    diff = subprocess.run(["git", "diff", "HEAD~1", "HEAD"], check=True, capture_output=True).stdout
    (repository / "change.diff").write_bytes(diff)
    monkeypatch.setenv("REVIEWBOT_CONTEXT", "function")
    endpoint.push(Reply.json({"findings": []}), Reply.json({"findings": []}))
    assert main(["review", "change.diff", "-f", "json", "-o", "out.json"]) == 0
    assert "function context needs the files the diff leads to; pass --repo-dir DIR" in capsys.readouterr().err
    assert "~" not in endpoint.requests[0].body["messages"][1]["content"]
    assert main(["review", "change.diff", "--repo-dir", str(repository), "-f", "json", "-o", "out.json"]) == 0
    assert "4 ~def total(items, limit):" in endpoint.requests[1].body["messages"][1]["content"]


def test_a_checkout_that_is_not_the_diffs_new_side_is_named_and_not_used(
    endpoint: FakeOpenAI, repository: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    diff = subprocess.run(["git", "diff", "HEAD~1", "HEAD"], check=True, capture_output=True).stdout
    (repository / "change.diff").write_bytes(diff)
    (repository / "calc.py").write_text(BEFORE, encoding="utf-8")
    endpoint.push(Reply.json({"findings": []}))
    argv = ["review", "change.diff", "--context", "function", "--repo-dir", ".", "-f", "json", "-o", "out.json"]
    assert main(argv) == 0
    assert "function context left out for 1 file(s)" in capsys.readouterr().err
    assert "~" not in endpoint.requests[0].body["messages"][1]["content"]


def test_a_path_that_climbs_out_of_the_checkout_is_never_read(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("key", encoding="utf-8")
    checkout = tmp_path / "checkout"
    (checkout / "src").mkdir(parents=True)
    (checkout / "src" / "a.py").write_text("x = 1\n", encoding="utf-8")
    (checkout / "link.py").symlink_to(tmp_path / "secret.txt")
    paths = ["src/a.py", "../secret.txt", "src/../../secret.txt", str(tmp_path / "secret.txt"), "link.py"]
    assert head_files.from_folder(checkout, paths) == {"src/a.py": "x = 1\n"}


@pytest.mark.parametrize(
    ("revisions", "head"),
    [
        ("main...feature", "feature"),
        ("HEAD~1..HEAD", "HEAD"),
        ("main..", "HEAD"),
        ("abc123^!", "abc123"),
        ("HEAD", None),
    ],
)
def test_the_head_of_a_range(revisions: str, head: str | None) -> None:
    assert head_files.head_revision(revisions) == head


def test_the_dry_run_says_how_many_files_function_context_widened(
    repository: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--git", "HEAD~1..HEAD", "--context", "function", "--dry-run"]) == 0
    assert "Context: function: 1 file widened to their enclosing functions or classes" in capsys.readouterr().out
    assert main(["review", "--git", "HEAD~1..HEAD", "--dry-run"]) == 0
    assert "Context:" not in capsys.readouterr().out


def test_head_files_are_read_for_the_first_hundred_paths_only(tmp_path: Path) -> None:
    paths = [f"f{number}.py" for number in range(head_files.MAX_FILES + 50)]
    for path in paths:
        (tmp_path / path).write_text("x = 1\n", "utf-8")
    read = head_files.from_folder(tmp_path, ["../outside.py", *paths])
    assert sorted(read) == sorted(paths[: head_files.MAX_FILES])
