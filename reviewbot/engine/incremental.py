"""Review only what changed since the last reviewed head, still anchored on the PR's own diff.

Both the pull request's diff and the diff between the last reviewed head and the new one end
on the same commit, so their new-file line numbers agree: a hunk of the PR diff is kept when
it overlaps a hunk of the newer changes. The kept hunks are real hunks of the PR diff, so
every comment placed on them is one GitHub accepts.
"""

from __future__ import annotations

import dataclasses

from reviewbot.engine.diff import Diff, DiffFile, Hunk


def restrict_to_changes(pr_diff: Diff, changes: Diff) -> Diff:
    """The PR diff cut down to the hunks that overlap ``changes``."""
    touched: dict[str, list[tuple[int, int]]] = {}
    for file in changes.files:
        if file.new_path is None:
            continue
        touched[file.new_path] = [_new_range(hunk) for hunk in file.hunks]
    kept: list[DiffFile] = []
    for file in pr_diff.files:
        ranges = touched.get(file.path)
        if ranges is None:
            continue
        hunks = tuple(hunk for hunk in file.hunks if any(_overlaps(_new_range(hunk), r) for r in ranges))
        if hunks or not file.hunks:
            kept.append(dataclasses.replace(file, hunks=hunks))
    return Diff(files=tuple(kept))


def _new_range(hunk: Hunk) -> tuple[int, int]:
    """First and last new-file line a hunk covers; a pure deletion covers the line it sits at."""
    return hunk.new_start, hunk.new_start + max(hunk.new_length, 1) - 1


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]
