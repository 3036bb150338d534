"""Pull requests and their diffs: the records, GitHub's diff limits, and rebuilding a diff from the files list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

# GitHub's limits for the diff media type of a pull request; past them it answers 406.
MAX_DIFF_FILES: Final = 300
MAX_DIFF_LINES: Final = 20_000
# The files API lists at most this many files of a pull request.
MAX_LISTED_FILES: Final = 3_000
NO_PATCH: Final = "GitHub sent no patch (binary or too large)"


@dataclass(frozen=True, slots=True)
class PullRequest:
    """A pull request as ``GET /repos/{owner}/{repo}/pulls/{number}`` describes it."""

    repo: str  # "owner/name"
    number: int
    title: str
    body: str  # "" when the description is empty
    state: str  # "open" or "closed"
    draft: bool
    merged: bool
    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    author: str
    author_type: str  # "User", "Bot" or "Organization"
    changed_files: int
    additions: int
    deletions: int
    html_url: str


@dataclass(frozen=True, slots=True)
class DiffFetch:
    """A pull request's diff. ``source`` is "diff" (GitHub's diff) or "files" (rebuilt from the
    files API); ``omitted`` names the files whose changes the rebuilt diff lacks, with why."""

    text: str
    omitted: tuple[tuple[str, str], ...]
    source: str


# -- a git diff from the files API ------------------------------------------------------------


def rebuild_diff(entries: Sequence[Mapping[str, Any]]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A git-style diff from ``GET /pulls/{n}/files`` entries, and the files it had to leave out.

    Each entry's ``patch`` starts at its first ``@@`` line; the file headers git would print
    before it are written here. Entries without a patch are left out (binary files and files
    too large for GitHub to show), except renames and copies with no change, which need none.
    """
    parts: list[str] = []
    omitted: list[tuple[str, str]] = []
    for entry in entries:
        new = str(entry["filename"])
        status = str(entry["status"])
        old = str(entry.get("previous_filename") or new)
        patch = entry.get("patch")
        moved = status in ("renamed", "copied")
        if not patch and not (moved and not entry.get("changes")):
            omitted.append((new, NO_PATCH))
            continue
        lines = [f"diff --git {quote_path('a/' + old)} {quote_path('b/' + new)}"]
        if status == "added":
            lines.append("new file mode 100644")
        elif status == "removed":
            lines.append("deleted file mode 100644")
        elif moved:
            kind = "rename" if status == "renamed" else "copy"
            if not entry.get("changes"):
                lines.append("similarity index 100%")
            lines += [f"{kind} from {quote_path(old)}", f"{kind} to {quote_path(new)}"]
        if patch:
            minus = "/dev/null" if status == "added" else quote_path("a/" + old)
            plus = "/dev/null" if status == "removed" else quote_path("b/" + new)
            lines += [_file_line("---", minus), _file_line("+++", plus)]
            lines.append(patch if patch.endswith("\n") else patch + "\n")
            parts.append("\n".join(lines))
        else:
            parts.append("\n".join(lines) + "\n")
    return "".join(parts), tuple(omitted)


def _file_line(marker: str, name: str) -> str:
    # git ends a ---/+++ line with a tab when the name holds a space, so patch(1) reads it whole.
    return f"{marker} {name}\t" if " " in name else f"{marker} {name}"


_C_ESCAPES: Final = {0x07: "\\a", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f", 0x0D: "\\r"}


def quote_path(path: str) -> str:
    """A path as git prints it (``quote_c_style`` with ``core.quotePath`` on): in double quotes,
    with C escapes and octal UTF-8 bytes, when it holds a quote, a backslash, a control
    character or anything outside ASCII; unchanged otherwise."""
    data = path.encode("utf-8", errors="surrogateescape")
    if all(0x20 <= byte < 0x7F and byte not in (0x22, 0x5C) for byte in data):
        return path
    out = ['"']
    for byte in data:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif byte in _C_ESCAPES:
            out.append(_C_ESCAPES[byte])
        elif byte < 0x20 or byte >= 0x7F:
            out.append(f"\\{byte:03o}")
        else:
            out.append(chr(byte))
    out.append('"')
    return "".join(out)
