from __future__ import annotations

from builders import modified_file_diff
from reviewbot.engine.diff import parse_diff
from reviewbot.engine.incremental import restrict_to_changes


def test_keeps_only_the_pr_hunks_that_the_new_commits_touched() -> None:
    pr_diff = parse_diff(modified_file_diff() + modified_file_diff("other.py"))
    changes = parse_diff(
        "diff --git a/app/service.py b/app/service.py\nindex 1..2 100644\n--- a/app/service.py\n"
        "+++ b/app/service.py\n@@ -41,1 +41,2 @@\n         item.close\n+        log(item)\n"
    )
    restricted = restrict_to_changes(pr_diff, changes)
    assert [file.path for file in restricted.files] == ["app/service.py"]
    assert [hunk.new_start for hunk in restricted.files[0].hunks] == [40]
    # The kept hunk is the PR's own, so anchoring on it stays valid on GitHub.
    assert restricted.files[0].hunks[0] is pr_diff.files[0].hunks[1]


def test_nothing_new_means_nothing_to_review() -> None:
    pr_diff = parse_diff(modified_file_diff())
    assert restrict_to_changes(pr_diff, parse_diff("")).files == ()


def test_a_deletion_in_the_new_commits_keeps_the_hunk_around_it() -> None:
    pr_diff = parse_diff(modified_file_diff())
    changes = parse_diff(
        "diff --git a/app/service.py b/app/service.py\nindex 1..2 100644\n--- a/app/service.py\n"
        "+++ b/app/service.py\n@@ -13,1 +12,0 @@\n-    stale = 1\n"
    )
    assert [hunk.new_start for hunk in restrict_to_changes(pr_diff, changes).files[0].hunks] == [10]
