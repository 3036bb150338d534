"""The diff parser: real git diffs from the shared fixtures, then hand-written awkward cases."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from fixtures_path import FIXTURE_DIFFS
from reviewbot.engine.diff import Diff, DiffFile, DiffLine, FileStatus, Hunk, Side, parse_diff
from reviewbot.errors import DiffError


def _load_manifest() -> dict[str, list[str]]:
    entries = json.loads((FIXTURE_DIFFS / "manifest.json").read_text(encoding="utf-8"))
    return {entry["id"]: list(entry["features"]) for entry in entries}


MANIFEST = _load_manifest()
CASES = sorted(MANIFEST)


def _cases_with(feature: str) -> list[str]:
    cases = [case for case in CASES if feature in MANIFEST[case]]
    assert cases, f"no fixture diff has the feature {feature!r}"
    return cases


def _fixture_path(case: str) -> Path:
    return FIXTURE_DIFFS / f"{case}.diff"


@cache
def _fixture(case: str) -> Diff:
    return parse_diff(_fixture_path(case).read_bytes())


def assert_numbered_consecutively(hunk: Hunk) -> None:
    """Each side counts up by one from the header's start, and the counts match the header."""
    old_no, new_no = hunk.old_start, hunk.new_start
    for line in hunk.lines:
        if line.kind == "-":
            assert (line.old_no, line.new_no) == (old_no, None), line
            old_no += 1
        elif line.kind == "+":
            assert (line.old_no, line.new_no) == (None, new_no), line
            new_no += 1
        else:
            assert line.kind == " ", line
            assert (line.old_no, line.new_no) == (old_no, new_no), line
            old_no += 1
            new_no += 1
        assert "\n" not in line.text, line
    assert sum(1 for line in hunk.lines if line.kind in "- ") == hunk.old_length
    assert sum(1 for line in hunk.lines if line.kind in "+ ") == hunk.new_length
    assert old_no == hunk.old_start + hunk.old_length
    assert new_no == hunk.new_start + hunk.new_length


def _only_file(text: bytes | str) -> DiffFile:
    diff = parse_diff(text)
    assert len(diff.files) == 1
    return diff.files[0]


def _lines(file: DiffFile) -> list[tuple[str, str, int | None, int | None]]:
    return [(line.kind, line.text, line.old_no, line.new_no) for hunk in file.hunks for line in hunk.lines]


# --- Real diffs -------------------------------------------------------------------------------


def test_every_fixture_diff_is_listed_in_the_manifest() -> None:
    assert sorted(path.stem for path in FIXTURE_DIFFS.glob("*.diff")) == CASES


@pytest.mark.parametrize("case", CASES)
def test_parses_each_fixture_diff_into_one_file_per_git_header(case: str) -> None:
    raw = _fixture_path(case).read_bytes()
    headers = sum(1 for line in raw.split(b"\n") if line.startswith(b"diff --git "))
    assert len(_fixture(case).files) == headers


@pytest.mark.parametrize("case", CASES)
def test_numbers_every_hunk_line_of_each_fixture_consecutively_from_its_header(case: str) -> None:
    for file in _fixture(case).files:
        for hunk in file.hunks:
            assert_numbered_consecutively(hunk)


@pytest.mark.parametrize("case", CASES)
def test_gives_every_fixture_file_a_path_without_side_prefix_or_quotes(case: str) -> None:
    for file in _fixture(case).files:
        assert file.old_path is not None or file.new_path is not None
        for path in (file.old_path, file.new_path):
            assert path is None or (path and not path.startswith(('"', "a/", "b/")) and path != "/dev/null")


@pytest.mark.parametrize("case", _cases_with("pure-rename"))
def test_reports_a_pure_rename_as_renamed_with_full_similarity_and_no_hunks(case: str) -> None:
    renames = [file for file in _fixture(case).files if file.status is FileStatus.RENAMED and not file.hunks]
    assert renames
    for file in renames:
        assert file.similarity == 100
        assert file.old_path is not None
        assert file.new_path is not None
        assert file.old_path != file.new_path


@pytest.mark.parametrize("case", _cases_with("rename"))
def test_reports_a_rename_with_both_names(case: str) -> None:
    renames = [file for file in _fixture(case).files if file.status is FileStatus.RENAMED]
    assert renames
    for file in renames:
        assert file.old_path is not None
        assert file.new_path is not None
        assert file.old_path != file.new_path
        assert file.similarity is not None
        assert 0 < file.similarity <= 100


def test_takes_rename_names_from_the_rename_lines() -> None:
    (file,) = _fixture("flask-111e5bd3129d").files
    assert (file.old_path, file.new_path) == ("pre-commit.yaml", ".github/workflows/pre-commit.yaml")
    assert file.path == ".github/workflows/pre-commit.yaml"


@pytest.mark.parametrize("case", _cases_with("binary"))
def test_reports_a_binary_file_as_binary_without_hunks(case: str) -> None:
    binaries = [file for file in _fixture(case).files if file.status is FileStatus.BINARY]
    assert binaries
    assert all(not file.hunks for file in binaries)


# An added or deleted binary file or submodule keeps that status; its missing side still shows.
_STATUSES_WITHOUT_OTHER_SIDE = {FileStatus.BINARY, FileStatus.SUBMODULE}


@pytest.mark.parametrize("case", _cases_with("deleted"))
def test_reports_a_deleted_file_with_only_an_old_path_and_removed_lines(case: str) -> None:
    files = _fixture(case).files
    deleted = [file for file in files if file.status is FileStatus.DELETED]
    assert deleted
    for file in files:
        assert (file.status is FileStatus.DELETED) == (
            file.new_path is None and file.status not in _STATUSES_WITHOUT_OTHER_SIDE
        )
    for file in deleted:
        assert file.new_path is None
        assert file.old_path is not None
        assert file.path == file.old_path
        assert all(line.kind == "-" and line.side is Side.LEFT for hunk in file.hunks for line in hunk.lines)


@pytest.mark.parametrize("case", _cases_with("added"))
def test_reports_an_added_file_with_only_a_new_path_and_added_lines(case: str) -> None:
    files = _fixture(case).files
    added = [file for file in files if file.status is FileStatus.ADDED]
    assert any(file.old_path is None for file in files)
    for file in files:
        assert (file.status is FileStatus.ADDED) == (
            file.old_path is None and file.status not in _STATUSES_WITHOUT_OTHER_SIDE
        )
    for file in added:
        assert file.old_path is None
        assert file.new_path is not None
        assert file.new_mode is not None
        for hunk in file.hunks:
            assert (hunk.old_start, hunk.old_length, hunk.new_start) == (0, 0, 1)
            assert all(line.kind == "+" and line.side is Side.RIGHT for line in hunk.lines)


@pytest.mark.parametrize("case", _cases_with("mode-change"))
def test_reports_a_pure_mode_change_with_both_modes(case: str) -> None:
    changed = [file for file in _fixture(case).files if file.status is FileStatus.MODE_CHANGED]
    assert changed
    for file in changed:
        assert (file.old_mode, file.new_mode) == ("100644", "100755")
        assert file.old_path == file.new_path
        assert not file.hunks


@pytest.mark.parametrize("case", _cases_with("submodule"))
def test_reports_a_submodule_as_a_submodule(case: str) -> None:
    submodules = [file for file in _fixture(case).files if file.status is FileStatus.SUBMODULE]
    assert submodules
    for file in submodules:
        assert file.new_mode == "160000"
        assert all(line.text.startswith("Subproject commit ") for hunk in file.hunks for line in hunk.lines)


@pytest.mark.parametrize("case", _cases_with("no-newline"))
def test_keeps_the_line_before_a_no_newline_marker_and_drops_the_marker(case: str) -> None:
    raw = _fixture_path(case).read_bytes().decode("utf-8", errors="replace").split("\n")
    before_markers = [raw[i - 1] for i, line in enumerate(raw) if line.startswith("\\ No newline at end of file")]
    assert before_markers
    parsed = {(line.kind, line.text) for file in _fixture(case).files for hunk in file.hunks for line in hunk.lines}
    for line in before_markers:
        assert (line[0], line[1:].removesuffix("\r")) in parsed
    assert not any(text.startswith(" No newline") for _, text in parsed)


@pytest.mark.parametrize("case", _cases_with("crlf"))
def test_strips_the_carriage_return_of_crlf_lines_in_fixtures(case: str) -> None:
    raw = _fixture_path(case).read_bytes().decode("utf-8", errors="replace").split("\n")
    crlf_added = [
        line[1:-1] for line in raw if line.startswith("+") and not line.startswith("+++ ") and line.endswith("\r")
    ]
    assert crlf_added
    texts = [line.text for file in _fixture(case).files for hunk in file.hunks for line in hunk.lines]
    assert not any(text.endswith("\r") for text in texts)
    assert set(crlf_added) <= set(texts)


# --- Hand-written cases -----------------------------------------------------------------------


def test_reads_a_hunk_header_without_counts_as_one_line_on_each_side() -> None:
    file = _only_file(
        b"diff --git a/one.txt b/one.txt\n"
        b"index 1111111..2222222 100644\n"
        b"--- a/one.txt\n"
        b"+++ b/one.txt\n"
        b"@@ -1 +1 @@\n"
        b"-old\n"
        b"+new\n"
    )
    (hunk,) = file.hunks
    assert (hunk.old_start, hunk.old_length, hunk.new_start, hunk.new_length) == (1, 1, 1, 1)
    assert _lines(file) == [("-", "old", 1, None), ("+", "new", None, 1)]


def test_reads_a_new_one_line_file_whose_header_omits_the_new_count() -> None:
    file = _only_file(
        b"diff --git a/new.txt b/new.txt\n"
        b"new file mode 100644\n"
        b"index 0000000..2222222\n"
        b"--- /dev/null\n"
        b"+++ b/new.txt\n"
        b"@@ -0,0 +1 @@\n"
        b"+only line\n"
    )
    assert file.status is FileStatus.ADDED
    assert (file.old_path, file.new_path, file.new_mode) == (None, "new.txt", "100644")
    assert _lines(file) == [("+", "only line", None, 1)]


def test_keeps_numbers_across_several_hunks_and_keeps_the_section_text() -> None:
    file = _only_file(
        b"diff --git a/m.py b/m.py\n"
        b"index 1111111..2222222 100644\n"
        b"--- a/m.py\n"
        b"+++ b/m.py\n"
        b"@@ -2,2 +2,3 @@ def first():\n"
        b" a\n"
        b"+b\n"
        b" c\n"
        b"@@ -20,3 +21,2 @@ class Second:\n"
        b" x\n"
        b"-y\n"
        b" z\n"
    )
    first, second = file.hunks
    assert (first.section, second.section) == ("def first():", "class Second:")
    assert _lines(file) == [
        (" ", "a", 2, 2),
        ("+", "b", None, 3),
        (" ", "c", 3, 4),
        (" ", "x", 20, 21),
        ("-", "y", 21, None),
        (" ", "z", 22, 22),
    ]
    assert (file.added, file.removed) == (1, 1)
    for hunk in file.hunks:
        assert_numbered_consecutively(hunk)


def test_drops_no_newline_markers_and_keeps_the_lines_they_follow() -> None:
    file = _only_file(
        b"diff --git a/end.txt b/end.txt\n"
        b"index 1111111..2222222 100644\n"
        b"--- a/end.txt\n"
        b"+++ b/end.txt\n"
        b"@@ -1,2 +1,2 @@\n"
        b" keep\n"
        b"-old\n"
        b"\\ No newline at end of file\n"
        b"+new\n"
        b"\\ No newline at end of file\n"
    )
    assert _lines(file) == [(" ", "keep", 1, 1), ("-", "old", 2, None), ("+", "new", None, 2)]


def test_strips_the_carriage_return_of_crlf_lines_but_keeps_a_lone_one_inside() -> None:
    file = _only_file(
        b"diff --git a/dos.txt b/dos.txt\n"
        b"index 1111111..2222222 100644\n"
        b"--- a/dos.txt\n"
        b"+++ b/dos.txt\n"
        b"@@ -1,2 +1,3 @@\n"
        b" one\r\n"
        b"-two\r\n"
        b"+deux\r\n"
        b"+a\rb\r\n"
    )
    assert _lines(file) == [(" ", "one", 1, 1), ("-", "two", 2, None), ("+", "deux", None, 2), ("+", "a\rb", None, 3)]


def test_shows_bytes_that_are_not_utf8_as_replacement_characters_without_moving_lines() -> None:
    file = _only_file(
        b"diff --git a/latin1.txt b/latin1.txt\n"
        b"index 1111111..2222222 100644\n"
        b"--- a/latin1.txt\n"
        b"+++ b/latin1.txt\n"
        b"@@ -1,2 +1,2 @@\n"
        b"-caf\xe9\n"
        b"+caf\xc3\xa9\n"
        b" \xff\xfe tail\n"
    )
    assert _lines(file) == [("-", "caf\ufffd", 1, None), ("+", "café", None, 1), (" ", "\ufffd\ufffd tail", 2, 2)]


def test_accepts_text_as_well_as_bytes() -> None:
    text = "diff --git a/t.txt b/t.txt\n--- a/t.txt\n+++ b/t.txt\n@@ -1 +1 @@\n-é\n+ü\n"
    assert parse_diff(text) == parse_diff(text.encode("utf-8"))


def test_unquotes_a_path_git_quoted_for_its_non_ascii_bytes() -> None:
    file = _only_file(
        b'diff --git "a/docs/gu\\303\\255a.md" "b/docs/gu\\303\\255a.md"\n'
        b"index 1111111..2222222 100644\n"
        b'--- "a/docs/gu\\303\\255a.md"\n'
        b'+++ "b/docs/gu\\303\\255a.md"\n'
        b"@@ -1 +1 @@\n"
        b"-hola\n"
        b"+adi\xc3\xb3s\n"
    )
    assert (file.old_path, file.new_path, file.status) == ("docs/guía.md", "docs/guía.md", FileStatus.MODIFIED)
    assert _lines(file) == [("-", "hola", 1, None), ("+", "adiós", None, 1)]


def test_unquotes_the_path_of_an_added_file_with_a_quote_in_its_name() -> None:
    file = _only_file(
        b'diff --git "a/say \\"hi\\".txt" "b/say \\"hi\\".txt"\n'
        b"new file mode 100644\n"
        b"index 0000000..2222222\n"
        b"--- /dev/null\n"
        b'+++ "b/say \\"hi\\".txt"\n'
        b"@@ -0,0 +1 @@\n"
        b"+hi\n"
    )
    assert (file.old_path, file.new_path, file.status) == (None, 'say "hi".txt', FileStatus.ADDED)


def test_reads_a_path_with_spaces_that_git_ends_with_a_tab() -> None:
    file = _only_file(
        b"diff --git a/my dir/my file.txt b/my dir/my file.txt\n"
        b"index 1111111..2222222 100644\n"
        b"--- a/my dir/my file.txt\t\n"
        b"+++ b/my dir/my file.txt\t\n"
        b"@@ -1 +1 @@\n"
        b"-x\n"
        b"+y\n"
    )
    assert (file.old_path, file.new_path, file.status) == (
        "my dir/my file.txt",
        "my dir/my file.txt",
        FileStatus.MODIFIED,
    )
    assert file.path == "my dir/my file.txt"


def test_reports_a_rename_with_edits_using_the_rename_lines() -> None:
    file = _only_file(
        b"diff --git a/old name.txt b/new name.txt\n"
        b"similarity index 90%\n"
        b"rename from old name.txt\n"
        b"rename to new name.txt\n"
        b"index 1111111..2222222 100644\n"
        b"--- a/old name.txt\t\n"
        b"+++ b/new name.txt\t\n"
        b"@@ -3,2 +3,2 @@\n"
        b" same\n"
        b"-before\n"
        b"+after\n"
    )
    assert file.status is FileStatus.RENAMED
    assert (file.old_path, file.new_path, file.similarity) == ("old name.txt", "new name.txt", 90)
    assert _lines(file) == [(" ", "same", 3, 3), ("-", "before", 4, None), ("+", "after", None, 4)]


def test_reports_a_pure_rename_to_a_quoted_name() -> None:
    file = _only_file(
        b'diff --git a/plain.md "b/gu\\303\\255a.md"\n'
        b"similarity index 100%\n"
        b"rename from plain.md\n"
        b'rename to "gu\\303\\255a.md"\n'
    )
    assert file.status is FileStatus.RENAMED
    assert (file.old_path, file.new_path, file.similarity, file.hunks) == ("plain.md", "guía.md", 100, ())


def test_reports_a_copy_as_copied_rather_than_renamed() -> None:
    file = _only_file(
        b"diff --git a/a.txt b/b.txt\n"
        b"similarity index 90%\n"
        b"copy from a.txt\n"
        b"copy to b.txt\n"
        b"index 1111111..2222222 100644\n"
        b"--- a/a.txt\n"
        b"+++ b/b.txt\n"
        b"@@ -1,2 +1,2 @@\n"
        b" one\n"
        b"-two\n"
        b"+three\n"
    )
    assert file.status is FileStatus.COPIED
    assert (file.old_path, file.new_path, file.similarity) == ("a.txt", "b.txt", 90)
    assert _lines(file) == [(" ", "one", 1, 1), ("-", "two", 2, None), ("+", "three", None, 2)]


def test_reports_an_empty_added_file_without_hunks() -> None:
    diff = parse_diff(
        b"diff --git a/empty b/empty\n"
        b"new file mode 100644\n"
        b"index 0000000..e69de29\n"
        b"diff --git a/gone b/gone\n"
        b"deleted file mode 100755\n"
        b"index e69de29..0000000\n"
    )
    added, deleted = diff.files
    assert (added.status, added.old_path, added.new_path, added.hunks) == (FileStatus.ADDED, None, "empty", ())
    assert (deleted.status, deleted.old_path, deleted.new_path) == (FileStatus.DELETED, "gone", None)
    assert deleted.old_mode == "100755"


def test_ignores_a_blank_line_after_the_last_hunk() -> None:
    file = _only_file(
        b"diff --git a/a.txt b/a.txt\nindex 1111111..2222222 100644\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-x\n+y\n\n"
    )
    assert _lines(file) == [("-", "x", 1, None), ("+", "y", None, 1)]
    assert [line.number for hunk in file.hunks for line in hunk.lines] == [1, 1]


def test_puts_removed_lines_on_the_left_and_the_others_on_the_right() -> None:
    removed = DiffLine("-", "x", 7, None)
    added = DiffLine("+", "y", None, 9)
    context = DiffLine(" ", "z", 8, 10)
    assert (removed.side, removed.number) == (Side.LEFT, 7)
    assert (added.side, added.number) == (Side.RIGHT, 9)
    assert (context.side, context.number) == (Side.RIGHT, 10)


def test_rejects_input_that_is_not_a_diff() -> None:
    with pytest.raises(DiffError, match="hello, this is not a diff"):
        parse_diff(b"\nhello, this is not a diff\nat all\n")


def test_rejects_a_hunk_line_without_a_diff_marker_naming_the_line() -> None:
    with pytest.raises(DiffError, match=r"line 7\b.*\*garbage\*"):
        parse_diff(b"diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,2 +1,2 @@\n-x\n+y\n*garbage*\n")


def test_rejects_a_hunk_shorter_than_its_header_at_the_end_naming_the_line() -> None:
    with pytest.raises(DiffError, match=r"line 7\b.*shorter"):
        parse_diff(b"diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,3 +1,3 @@\n-x\n+y\n z\n")


def test_rejects_a_hunk_shorter_than_its_header_before_the_next_file_naming_the_line() -> None:
    with pytest.raises(DiffError, match=r"line 7\b.*diff --git a/b b/b"):
        parse_diff(b"diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,3 +1,3 @@\n-x\n+y\ndiff --git a/b b/b\n")


@pytest.mark.parametrize("blank", [b"", "", b"\n", "  \n\t\n", b"\r\n\r\n"])
def test_reads_empty_or_blank_input_as_a_diff_without_files(blank: bytes | str) -> None:
    assert parse_diff(blank) == Diff(files=())


def test_reads_a_path_that_itself_contains_space_b_slash() -> None:
    text = (
        "diff --git a/Plan b/notes.md b/Plan b/notes.md\n"
        "index 1111111..2222222 100644\n"
        "--- a/Plan b/notes.md\t\n"
        "+++ b/Plan b/notes.md\t\n"
        "@@ -1 +1 @@\n"
        "-x\n"
        "+see Plan b/notes.md\n"
    )
    (file,) = parse_diff(text).files
    assert (file.old_path, file.new_path) == ("Plan b/notes.md", "Plan b/notes.md")
    assert file.hunks[0].lines[1].text == "see Plan b/notes.md"


def test_a_combined_diff_of_a_merge_is_refused_with_what_to_run_instead() -> None:
    combined = (
        "diff --cc src/app.py\nindex 1111111,2222222..3333333\n--- a/src/app.py\n+++ b/src/app.py\n"
        "@@@ -1,3 -1,3 +1,4 @@@\n  a = 1\n- b = 2\n -c = 3\n++d = 4\n  e = 5\n"
    )
    with pytest.raises(
        DiffError, match=r"line 1 .*combined diff of a merge.*'diff --cc src/app.py'.*git diff MAIN\.\.\.BRANCH"
    ):
        parse_diff(combined)
    # After an ordinary file, the combined part is named by its line.
    ordinary = "diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -1 +1 @@\n-x\n+y\n"
    with pytest.raises(DiffError, match=r"line 7 "):
        parse_diff(ordinary + combined)
