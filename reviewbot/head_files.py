"""The files a diff leads to, read for function context (``REVIEWBOT_CONTEXT=function``).

For ``reviewbot review --git RANGE`` they come from git: ``A..B`` and ``A...B`` lead to ``B``
(``HEAD`` when it is left out), and a single revision is diffed against the working tree, so
the files are read there. For a diff file they come from a checkout named with ``--repo-dir``.
A file that cannot be read is left out; the review then shows that file's hunks alone.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from reviewbot.errors import InputError

#: Larger files are left out: a generated or data file says little around a hunk.
MAX_HEAD_BYTES = 2_000_000
#: Files read for one review at most; a diff of thousands of files gets context for the first ones.
MAX_FILES = 100
_GIT_TIMEOUT = 60


def head_revision(revisions: str) -> str | None:
    """The revision ``git diff REVISIONS`` leads to, or None for the working tree."""
    if revisions.endswith("^!"):
        return revisions[:-2]
    if ".." in revisions:
        head = revisions.rsplit("..", 1)[1].lstrip(".")
        return head or "HEAD"
    return None


def from_git(revisions: str, paths: Iterable[str]) -> dict[str, str]:
    """The text of each of ``paths`` as ``git diff REVISIONS`` leaves it."""
    revision = head_revision(revisions)
    if revision is None:
        root = Path(_git("rev-parse", "--show-toplevel").decode("utf-8", errors="replace").strip())
        return from_folder(root, paths)
    texts: dict[str, str] = {}
    for path in _first_safe(paths):
        try:
            # "REV:path" names the path from the top of the tree, wherever git runs.
            data = _git("cat-file", "blob", f"{revision}:{path}")
        except InputError:
            continue  # not a blob at that revision (a submodule, or a name git reads otherwise)
        if len(data) <= MAX_HEAD_BYTES:
            texts[path] = data.decode("utf-8", errors="replace")
    return texts


def from_folder(root: Path, paths: Iterable[str]) -> dict[str, str]:
    """The text of each of ``paths`` under ``root``; a path that climbs out of it is never read."""
    if not root.is_dir():
        raise InputError(f"--repo-dir {root} is not a folder; point it at a checkout of the diff's new side")
    base = root.resolve()
    texts: dict[str, str] = {}
    for path in _first_safe(paths):
        file = (base / path).resolve()
        if not file.is_relative_to(base) or not file.is_file() or file.stat().st_size > MAX_HEAD_BYTES:
            continue
        try:
            texts[path] = file.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
    return texts


def _first_safe(paths: Iterable[str]) -> list[str]:
    """The first :data:`MAX_FILES` paths that stay inside their repository."""
    return list(itertools.islice((path for path in paths if _safe(path)), MAX_FILES))


def _safe(path: str) -> bool:
    """A relative path with no ``..`` part: what a diff names inside its repository."""
    return bool(path) and not path.startswith("/") and ".." not in Path(path).parts


def run_git(arguments: Sequence[str], *, shown: str, timeout: float = _GIT_TIMEOUT) -> bytes:
    """The output of ``git ARGUMENTS``; any failure is an :class:`InputError` naming ``shown``."""
    try:
        completed = subprocess.run(["git", *arguments], capture_output=True, check=False, timeout=timeout)
    except FileNotFoundError:
        raise InputError("git is not installed or not on PATH; pass a diff file instead") from None
    except subprocess.TimeoutExpired:
        raise InputError(f"`{shown}` took longer than {timeout:g} s") from None
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", errors="replace").strip().splitlines()
        detail = message[0] if message else f"exit code {completed.returncode}"
        raise InputError(f"`{shown}` failed: {detail}")
    return completed.stdout


def _git(*arguments: str) -> bytes:
    return run_git(arguments, shown=f"git {' '.join(arguments)}")
