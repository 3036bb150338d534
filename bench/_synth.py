"""Deterministic synthetic ``git diff`` text for the benchmarks.

Each file is built as a sequence of unchanged runs and edits, so the old and the new file are
both known exactly and every hunk header is computed the way git's xdiff computes it: three
lines of context, changes closer than seven unchanged lines merged into one hunk, ``,1`` left
out of a range of one line, an empty range written as the line before it (``-0,0`` for an added
file), and the section after ``@@`` taken from git's default funcname rule (the nearest line
above the hunk starting with a letter, ``_`` or ``$``, cut to 80 bytes and right-stripped).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Final

CONTEXT: Final = 3
_MERGE_GAP: Final = 2 * CONTEXT  # git merges changes with at most this many unchanged lines between them
_FUNC_BYTES: Final = 80


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS: Final = _words(
    "request user token value result items index buffer config path name count offset limit "
    "session cache state handler parser reader writer stream options context error message "
    "payload header status retry timeout queue worker record entry key data size total"
)
_CALLS: Final = _words("get set load save parse render open close send fetch update check build merge split")

_DIRS: Final = (
    "src/core",
    "src/api",
    "src/api/v2",
    "src/storage",
    "src/util",
    "src/cli",
    "lib/net",
    "lib/text",
    "tests",
    "tests/integration",
    "docs",
    "web/components",
)
_EXTENSIONS: Final = (".py", ".py", ".py", ".rs", ".ts", ".go", ".md")


@dataclass
class _Edit:
    old_at: int  # 0-based index of the first removed line (or of the line the insertion precedes)
    new_at: int
    removed: list[str]
    added: list[str]


@dataclass
class SynthFile:
    """One file of the synthetic change; ``old``/``new`` are None for an added/deleted file."""

    status: str  # "modified", "added", "deleted", "renamed"
    old_path: str
    new_path: str
    old: list[str] | None
    new: list[str] | None
    edits: list[_Edit] = field(default_factory=list)
    no_newline_at_end: bool = False

    @property
    def changed(self) -> int:
        return sum(len(edit.removed) + len(edit.added) for edit in self.edits)


class _Lines:
    """Code-like lines of varied length and indentation, with top-level lines now and then."""

    def __init__(self, rng: random.Random, extension: str) -> None:
        self._rng = rng
        self._extension = extension

    def top_level(self) -> str:
        rng = self._rng
        name = f"{rng.choice(_CALLS)}_{rng.choice(_WORDS)}"
        args = ", ".join(rng.sample(_WORDS, rng.randint(0, 4)))
        return {
            ".py": f"def {name}({args}):" if rng.random() < 0.8 else f"class {name.title().replace('_', '')}:",
            ".rs": f"pub fn {name}({args}) -> Result<(), Error> {{",
            ".ts": f"export function {name}({args}) {{",
            ".go": f"func {name}({args}) error {{",
            ".md": f"## {name.replace('_', ' ').title()}",
        }[self._extension]

    def body(self) -> str:
        rng = self._rng
        roll = rng.random()
        if roll < 0.09:
            return ""
        indent = " " * (4 * rng.choice((1, 1, 1, 2, 2, 3, 4)))
        if self._extension == ".md":
            indent = ""
        if roll < 0.16:
            words = " ".join(rng.choices(_WORDS, k=rng.randint(2, 16)))
            return f"{indent}{'#' if self._extension == '.py' else '//'} {words}"
        if roll < 0.2:
            return indent + rng.choice(("return result", "}", "continue", "break", "pass", "else:", "try:"))
        target = rng.choice(_WORDS)
        args = ", ".join(
            rng.choice((rng.choice(_WORDS), str(rng.randint(0, 9999)), f'"{rng.choice(_WORDS)}-{rng.randint(0, 99)}"'))
            for _ in range(rng.choice((0, 0, 1, 1, 1, 2, 2, 3, 5)))
        )
        line = f"{indent}{target} = {rng.choice(_WORDS)}.{rng.choice(_CALLS)}_{rng.choice(_WORDS)}({args})"
        if rng.random() < 0.05:  # now and then a long line
            line += "  # " + " ".join(rng.choices(_WORDS, k=rng.randint(8, 20)))
        return line

    def line(self) -> str:
        return self.top_level() if self._rng.random() < 0.05 else self.body()

    def many(self, count: int) -> list[str]:
        return [self.line() for _ in range(count)]

    def distinct(self, count: int, avoid: set[str]) -> list[str]:
        """Changed lines git aligns the same way we do: none shared with ``avoid`` (the removed
        lines of the same edit), and long lines at both ends, so the block cannot slide."""
        block = self.many(count)
        for index, text in enumerate(block):
            at_end = index in (0, count - 1)
            while text in avoid or (at_end and len(text) < 24):
                text = self.body()
            block[index] = text
        return block


def _edits_for(rng: random.Random, lines: _Lines, budget: int) -> tuple[list[str], list[str], list[_Edit]]:
    """An old file, its new version, and the edits between them, changing about ``budget`` lines."""
    old: list[str] = []
    new: list[str] = []
    edits: list[_Edit] = []
    spent = 0
    first = True
    while spent < budget:
        # Unchanged run before the edit: sometimes close (hunks merge), usually far apart.
        gap = rng.randint(1, _MERGE_GAP) if rng.random() < 0.3 else rng.randint(_MERGE_GAP + 1, 160)
        if first:
            gap = rng.randint(0, 60)
            first = False
        same = lines.many(gap)
        old += same
        new += same
        size = min(budget - spent, max(1, int(rng.paretovariate(1.4) * 3)))
        kind = rng.random()
        removed_count = size if kind < 0.2 else 0 if kind < 0.55 else max(1, size // 2)
        added_count = size - removed_count if kind >= 0.2 else 0
        if kind >= 0.55 and added_count == 0:
            added_count = 1
        removed = lines.distinct(removed_count, set())
        edit = _Edit(len(old), len(new), removed, lines.distinct(added_count, set(removed)))
        old += edit.removed
        new += edit.added
        edits.append(edit)
        spent += removed_count + added_count
    tail = lines.many(rng.randint(0, 80))
    old += tail
    new += tail
    return old, new, edits


def _func_line(lines: list[str], before: int) -> str:
    """git's default funcname: the nearest line above index ``before`` that starts an identifier."""
    for index in range(before - 1, -1, -1):
        text = lines[index]
        if text and (text[0].isalpha() or text[0] in "_$"):
            return text.encode()[:_FUNC_BYTES].decode(errors="ignore").rstrip()
    return ""


def _range(start: int, length: int) -> str:
    """A hunk range the way git writes it; ``start`` is 0-based."""
    if length == 0:
        return f"{start},0"
    return f"{start + 1}" if length == 1 else f"{start + 1},{length}"


def _hunks(file: SynthFile) -> list[str]:
    old = file.old or []
    groups: list[list[_Edit]] = []
    for edit in file.edits:
        if groups:
            previous = groups[-1][-1]
            if edit.old_at - (previous.old_at + len(previous.removed)) <= _MERGE_GAP:
                groups[-1].append(edit)
                continue
        groups.append([edit])
    out: list[str] = []
    for group in groups:
        first, last = group[0], group[-1]
        before = min(CONTEXT, first.old_at)
        old_end = last.old_at + len(last.removed)
        after = min(CONTEXT, len(old) - old_end)
        old_start, new_start = first.old_at - before, first.new_at - before
        old_len = old_end + after - old_start
        new_len = last.new_at + len(last.added) + after - new_start
        section = _func_line(old, old_start)
        out.append(
            f"@@ -{_range(old_start, old_len)} +{_range(new_start, new_len)} @@{' ' + section if section else ''}"
        )
        out += [" " + text for text in old[old_start : first.old_at]]
        for index, edit in enumerate(group):
            out += ["-" + text for text in edit.removed]
            out += ["+" + text for text in edit.added]
            if index + 1 < len(group):
                out += [" " + text for text in old[edit.old_at + len(edit.removed) : group[index + 1].old_at]]
        out += [" " + text for text in old[old_end : old_end + after]]
    return out


def render(file: SynthFile, rng: random.Random) -> str:
    """The file's section of ``git diff`` output, from ``diff --git`` through its last hunk."""

    def short_hash() -> str:
        return f"{rng.getrandbits(28):07x}"

    head = [f"diff --git a/{file.old_path} b/{file.new_path}"]
    if file.status == "added":
        head += ["new file mode 100644", f"index 0000000..{short_hash()}", "--- /dev/null", f"+++ b/{file.new_path}"]
        new = file.new or []
        body = [f"@@ -0,0 +{_range(0, len(new))} @@", *("+" + text for text in new)]
        if file.no_newline_at_end:
            body.append("\\ No newline at end of file")
    elif file.status == "deleted":
        head += [
            "deleted file mode 100644",
            f"index {short_hash()}..0000000",
            f"--- a/{file.old_path}",
            "+++ /dev/null",
        ]
        old = file.old or []
        body = [f"@@ -{_range(0, len(old))} +0,0 @@", *("-" + text for text in old)]
    else:
        if file.status == "renamed":
            old, new = file.old or [], file.new or []
            similarity = max(50, min(99, 100 - 100 * file.changed // max(1, len(old) + len(new))))
            head += [f"similarity index {similarity}%", f"rename from {file.old_path}", f"rename to {file.new_path}"]
        head += [f"index {short_hash()}..{short_hash()} 100644", f"--- a/{file.old_path}", f"+++ b/{file.new_path}"]
        body = _hunks(file)
    return "\n".join(head + body) + "\n"


def synth_files(*, files: int, changed_lines: int, seed: int) -> list[SynthFile]:
    """``files`` files changing about ``changed_lines`` lines in all, sizes spread like a real change."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0.0, 1.1) for _ in range(files)]
    scale = changed_lines / sum(weights)
    out: list[SynthFile] = []
    used: set[str] = set()
    for number, weight in enumerate(weights):
        extension = rng.choice(_EXTENSIONS)
        path = f"{rng.choice(_DIRS)}/{rng.choice(_WORDS)}_{rng.choice(_CALLS)}_{number}{extension}"
        assert path not in used
        used.add(path)
        lines = _Lines(rng, extension)
        budget = max(1, min(4_000, round(weight * scale)))
        roll = rng.random()
        if roll < 0.16:
            new = lines.many(budget)
            no_newline = rng.random() < 0.2
            if no_newline and not new[-1]:
                new[-1] = "}"
            out.append(SynthFile("added", path, path, None, new, [_Edit(0, 0, [], new)], no_newline))
        elif roll < 0.19:
            old = lines.many(budget)
            out.append(SynthFile("deleted", path, path, old, None, [_Edit(0, 0, old, [])]))
        else:
            old, new, edits = _edits_for(rng, lines, budget)
            renamed = roll < 0.24 and budget <= 60
            new_path = path.replace(f"_{number}", f"_{number}_renamed") if renamed else path
            out.append(SynthFile("renamed" if renamed else "modified", path, new_path, old, new, edits))
    return out


def synth_diff(*, files: int, changed_lines: int, seed: int) -> str:
    """The whole synthetic ``git diff`` text."""
    rng = random.Random(seed + 1)
    return "".join(render(file, rng) for file in synth_files(files=files, changed_lines=changed_lines, seed=seed))


def count_changed(text: str) -> int:
    """Changed lines of a diff: ``+``/``-`` lines inside hunks (file headers excluded)."""
    changed = 0
    in_hunk = False
    for line in text.split("\n"):
        if line.startswith("diff --git "):
            in_hunk = False
        elif line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line[:1] in ("+", "-"):
            changed += 1
    return changed
