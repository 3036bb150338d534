"""Round trip with a real git: every line number the parser reports points at exactly that text.

Each seed builds a small repository (CRLF files, files without a final newline, unicode names,
names with spaces, quotes and tabs, lines that look like diff syntax, a binary file), commits it,
makes random edits, renames, deletions, mode changes and new files, and parses
``git diff -M --full-index HEAD``. The parser must agree with git's own ``--name-status`` and
``--numstat``, every commentable line must hold the text the diff shows, and applying the hunks
to the old file must give the new file. A failure names its seed, so it can be replayed.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from reviewbot.engine.diff import Diff, DiffFile, FileStatus, Hunk, parse_diff

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git executable")

SEEDS = range(12)

# Names git writes plain, with a trailing tab (spaces), or C-quoted (non-ASCII, quote, backslash,
# tab, newline). Not covered: a name holding " b/" ("diff --git a/x b/y b/x b/y" is ambiguous and
# unidiff splits it wrongly); see the report that came with these tests.
NAMES = [
    "README.md",
    "plain.txt",
    "guía.md",
    "docs/guía.md",
    "my file.txt",
    "dir with space/notes.md",
    "src/módulo.py",
    'quote"name.txt',
    "back\\slash.txt",
    "tab\tname.txt",
    "new\nline.txt",
    "日本語/説明.txt",
    "trailing space .txt",
    "ends with space ",
    "-dash.txt",
    "a/b/deep.txt",
]

# Hunk lines whose text looks like diff syntax once git puts a "+", "-" or " " in front.
TRICKY_LINES = [
    b"",
    b" ",
    b"--- a/x",
    b"+++ b/x",
    b"-- ",
    b"++",
    b"@@ -1 +1 @@",
    b"\\ No newline at end of file",
    b"diff --git a/x b/x",
    b"index 0000000..1111111 100644",
    b"new file mode 100644",
    b"rename from x",
    b"Binary files a/x and b/x differ",
    b"tab\there",
    "café naïve ☃ 日本".encode(),
    b"latin-1 caf\xe9",
    b"broken \xe2\x82",
    b"lone\rcarriage return",
    b"trailing cr\r",
]


@dataclass
class _File:
    lines: list[bytes]
    eols: list[bytes]  # one per line
    final_newline: bool
    binary: bool = False
    binary_data: bytes = b""

    def content(self) -> bytes:
        if self.binary:
            return self.binary_data
        if not self.lines:
            return b""
        parts = [line + eol for line, eol in zip(self.lines, self.eols, strict=True)]
        if not self.final_newline:
            parts[-1] = self.lines[-1]
        return b"".join(parts)


def _git_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    return env


def _git(repo: Path, *args: str) -> bytes:
    done = subprocess.run(["git", *args], cwd=repo, env=_git_env(), capture_output=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace')}"
    return done.stdout


def _text_lines(content: bytes) -> list[str]:
    """A file's lines as a review shows them: UTF-8 with U+FFFD, one trailing CR dropped."""
    text = content.decode("utf-8", errors="replace")
    if not text:
        return []
    parts = text.split("\n")
    if text.endswith("\n"):
        parts.pop()
    return [part.removesuffix("\r") for part in parts]


def _random_line(rng: random.Random) -> bytes:
    if rng.random() < 0.2:
        return rng.choice(TRICKY_LINES)
    words = rng.choices(["alpha", "beta", "gamma", "delta", "return", "x = 1", "{", "}", "ü"], k=rng.randint(1, 4))
    return f"{' '.join(words)} {rng.randint(0, 10**6)}".encode()


def _random_eol(rng: random.Random, style: str) -> bytes:
    if style == "mixed":
        return rng.choice([b"\n", b"\r\n"])
    return b"\r\n" if style == "crlf" else b"\n"


def _new_file(rng: random.Random) -> _File:
    if rng.random() < 0.05:
        return _File([], [], final_newline=True)  # empty file
    style = rng.choice(["lf", "lf", "crlf", "mixed"])
    count = rng.randint(1, 30)
    lines = [_random_line(rng) for _ in range(count)]
    return _File(lines, [_random_eol(rng, style) for _ in lines], final_newline=rng.random() < 0.75)


def _new_binary(rng: random.Random) -> _File:
    data = bytes(rng.randrange(256) for _ in range(200)) + b"\x00"
    return _File([], [], final_newline=True, binary=True, binary_data=data)


def _edit(rng: random.Random, file: _File) -> None:
    if file.binary:
        data = bytearray(file.binary_data)
        data[rng.randrange(len(data) - 1)] ^= 0xFF
        file.binary_data = bytes(data)
        return
    style = rng.choice(["lf", "crlf", "mixed"])
    for _ in range(rng.randint(1, 4)):
        size = len(file.lines)
        start = rng.randint(0, size)
        op = rng.choice(["insert", "delete", "replace"])
        if op != "insert" and size:
            start = min(start, size - 1)
            del_count = rng.randint(1, min(3, size - start))
            del file.lines[start : start + del_count]
            del file.eols[start : start + del_count]
        if op != "delete":
            added = [_random_line(rng) for _ in range(rng.randint(1, 4))]
            file.lines[start:start] = added
            file.eols[start:start] = [_random_eol(rng, style) for _ in added]
    if rng.random() < 0.15:
        file.final_newline = not file.final_newline
    if file.lines and rng.random() < 0.1:
        index = rng.randrange(len(file.lines))
        file.eols[index] = b"\n" if file.eols[index] == b"\r\n" else b"\r\n"


def _write(repo: Path, name: str, file: _File, executable: bool = False) -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(file.content())
    path.chmod(0o755 if executable else 0o644)


def _commit_base(repo: Path, rng: random.Random) -> dict[str, _File]:
    """Commit a random tree; returns it."""
    _git(repo, "init", "-q", "-b", "main")
    for key, value in [("user.name", "Round Trip"), ("user.email", "rt@example.com"), ("core.autocrlf", "false")]:
        _git(repo, "config", key, value)

    names = rng.sample(NAMES, k=rng.randint(5, 10))
    files = {name: _new_file(rng) for name in names}
    if rng.random() < 0.4:
        files["image.bin"] = _new_binary(rng)
    for name, file in sorted(files.items()):
        _write(repo, name, file)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    return files


def _change(repo: Path, rng: random.Random, files: dict[str, _File]) -> None:
    """Delete, rename, chmod, edit and add files on disk and in the index; updates ``files``."""
    free = [name for name in NAMES if name not in files]
    rng.shuffle(free)
    for name in sorted(files):
        roll = rng.random()
        if roll < 0.15:
            (repo / name).unlink()
            del files[name]
        elif roll < 0.35 and free:
            target = free.pop()
            (repo / target).parent.mkdir(parents=True, exist_ok=True)
            _git(repo, "mv", "--", name, target)
            files[target] = files.pop(name)
            if rng.random() < 0.6:
                _edit(rng, files[target])
                _write(repo, target, files[target])
        elif roll < 0.45:
            if rng.random() < 0.5:
                _edit(rng, files[name])
            _write(repo, name, files[name], executable=True)
        elif roll < 0.85:
            _edit(rng, files[name])
            _write(repo, name, files[name])
    for _ in range(rng.randint(0, 2)):
        if free:
            name = free.pop()
            files[name] = _new_file(rng)
            _write(repo, name, files[name])
    _git(repo, "add", "-A")


def _name_status(repo: Path) -> list[tuple[str, str | None, str | None]]:
    """git's own view of which files changed, with raw (unquoted) names thanks to -z."""
    fields = _git(repo, "diff", "-M", "--name-status", "-z", "HEAD").decode("utf-8").split("\0")
    fields.pop()  # the output ends with a NUL
    out: list[tuple[str, str | None, str | None]] = []
    while fields:
        status = fields.pop(0)
        if status[0] in "RC":
            out.append((status, fields.pop(0), fields.pop(0)))
        elif status == "A":
            out.append((status, None, fields.pop(0)))
        elif status == "D":
            out.append((status, fields.pop(0), None))
        else:
            path = fields.pop(0)
            out.append((status, path, path))
    return out


def _numstat(repo: Path) -> list[tuple[int, int] | None]:
    """Added and removed line counts per file, None for a binary file, in diff order."""
    fields = _git(repo, "diff", "-M", "--numstat", "-z", "HEAD").decode("utf-8").split("\0")
    fields.pop()
    out: list[tuple[int, int] | None] = []
    while fields:
        added, removed, path = fields.pop(0).split("\t", 2)
        if not path:  # a rename: the old and new names follow as their own fields
            del fields[:2]
        out.append(None if added == "-" else (int(added), int(removed)))
    return out


def _expected_status(code: str, old: bytes | None, new: bytes | None) -> FileStatus:
    if code == "R100":
        return FileStatus.RENAMED
    binary = any(side is not None and b"\0" in side for side in (old, new))
    if binary and old != new:
        return FileStatus.BINARY
    statuses = {"A": FileStatus.ADDED, "D": FileStatus.DELETED, "R": FileStatus.RENAMED}
    if code[0] in statuses:
        return statuses[code[0]]
    return FileStatus.MODE_CHANGED if old == new else FileStatus.MODIFIED


def _assert_consecutive(hunk: Hunk) -> None:
    old_no, new_no = hunk.old_start, hunk.new_start
    for line in hunk.lines:
        assert line.old_no == (old_no if line.kind in "- " else None), line
        assert line.new_no == (new_no if line.kind in "+ " else None), line
        old_no += line.kind in "- "
        new_no += line.kind in "+ "
    assert (old_no - hunk.old_start, new_no - hunk.new_start) == (hunk.old_length, hunk.new_length)


def _apply(old_lines: list[str], file: DiffFile) -> list[str]:
    """Rebuild the new file from the old one and the parsed hunks alone."""
    out: list[str] = []
    taken = 0  # old lines consumed so far
    for hunk in file.hunks:
        # An empty old side names the line after which the hunk goes, not the hunk's first line.
        first = hunk.old_start if hunk.old_length == 0 else hunk.old_start - 1
        out += old_lines[taken:first]
        taken = first
        for line in hunk.lines:
            if line.kind != "+":
                assert old_lines[taken] == line.text
                taken += 1
            if line.kind != "-":
                out.append(line.text)
    return out + old_lines[taken:]


def _check_file(repo: Path, file: DiffFile, status: str, counts: tuple[int, int] | None) -> None:
    old = _git(repo, "show", f"HEAD:{file.old_path}") if file.old_path is not None else None
    new = (repo / file.new_path).read_bytes() if file.new_path is not None else None
    assert file.status is _expected_status(status, old, new), file
    if counts is not None:
        assert (file.added, file.removed) == counts, file
    old_lines = _text_lines(old) if old is not None else []
    new_lines = _text_lines(new) if new is not None else []
    for hunk in file.hunks:
        _assert_consecutive(hunk)
        for line in hunk.lines:
            if line.kind in "+ ":  # RIGHT side
                assert line.new_no is not None
                assert new_lines[line.new_no - 1] == line.text, (file.path, line)
            if line.kind in "- ":  # LEFT side (and the old number of a context line)
                assert line.old_no is not None
                assert old_lines[line.old_no - 1] == line.text, (file.path, line)
    if file.status is not FileStatus.BINARY:
        assert _apply(old_lines, file) == new_lines, file.path


def _round_trip(repo: Path, seed: int) -> Diff:
    rng = random.Random(seed)
    _change(repo, rng, _commit_base(repo, rng))
    diff = parse_diff(_git(repo, "diff", "-M", "--full-index", "HEAD"))
    expected = _name_status(repo)
    assert [(file.old_path, file.new_path) for file in diff.files] == [(old, new) for _, old, new in expected]
    for file, (status, _, _), counts in zip(diff.files, expected, _numstat(repo), strict=True):
        _check_file(repo, file, status, counts)
    return diff


@pytest.mark.parametrize("seed", SEEDS)
def test_every_commentable_line_of_a_random_git_diff_points_at_its_text(tmp_path: Path, seed: int) -> None:
    diff = _round_trip(tmp_path, seed)
    assert diff.files, f"seed {seed} changed nothing"


def test_the_random_diffs_cover_the_awkward_cases(tmp_path: Path) -> None:
    """Guards the generator: across the seeds, every case these tests mean to cover shows up."""
    statuses: set[FileStatus] = set()
    raw = b""
    for seed in SEEDS:
        repo = tmp_path / str(seed)
        repo.mkdir()
        diff = _round_trip(repo, seed)
        statuses |= {file.status for file in diff.files}
        raw += _git(repo, "diff", "-M", "--full-index", "HEAD")
    assert statuses >= {
        FileStatus.ADDED,
        FileStatus.DELETED,
        FileStatus.MODIFIED,
        FileStatus.RENAMED,
        FileStatus.MODE_CHANGED,
    }
    for needle in [b"\r\n", b"\\ No newline at end of file", b'"a/', b"\t\n", b"rename from", b"\\303"]:
        assert needle in raw, needle
