"""Which files of a change are tests, and the neutral title a case gets from its files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

# Folders that hold tests or their data, and the file names test runners collect.
_TEST_FOLDERS = frozenset({"test", "tests", "testing", "spec", "specs", "__tests__", "testdata", "fixtures", "benches"})
_TEST_FILES = re.compile(
    r"(?:test_.*\.py|.*_test\.py|conftest\.py|.*_test\.go|.*_tests?\.rs|tests?\.rs|.*\.(?:test|spec)\.[jt]sx?"
    r"|.*Tests?\.(?:java|kt|cs|swift)|.*_spec\.rb)",
    re.IGNORECASE,
)


def is_test_path(path: str) -> bool:
    """Whether ``path`` is a test, or data for tests, by the conventions of the usual test runners."""
    parts = PurePosixPath(path).parts
    return any(part.lower() in _TEST_FOLDERS for part in parts[:-1]) or bool(_TEST_FILES.fullmatch(parts[-1]))


_DOC_FOLDERS = frozenset({"doc", "docs"})


def is_source_path(path: str, extensions: tuple[str, ...]) -> bool:
    """Code the product runs: a file with one of ``extensions``, neither a test nor under docs/."""
    parts = PurePosixPath(path).parts
    return (
        path.lower().endswith(extensions)
        and not is_test_path(path)
        and not any(part.lower() in _DOC_FOLDERS for part in parts[:-1])
    )


def neutral_title(paths: Sequence[str]) -> str:
    """``Change src/app.py`` or ``Change src/app.py and 2 other files``: what changed, never why."""
    if not paths:
        return "Change"
    others = len(paths) - 1
    if not others:
        return f"Change {paths[0]}"
    return f"Change {paths[0]} and {others} other file{'s' if others != 1 else ''}"
