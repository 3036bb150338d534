"""The on-disk case format: what is written is read back byte for byte, and a bad set is refused
with the file, the line and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures_path import FIXTURE_DIFFS
from reviewbot.engine.diff import Side
from reviewbot.errors import InputError
from reviewbot.eval.cases import CASES_FILE, Case, Label, Source, load_set, write_set

SMALL = (FIXTURE_DIFFS / "flask-557a053e3b2b.diff").read_bytes()
CRLF = (FIXTURE_DIFFS / "ripgrep-6b61271bbbf6.diff").read_bytes()
DOC = "docs/patterns/errorpages.rst"
SOURCE = Source("pallets/flask", "557a053e3b2b43ec2a54298c952ce67fd0d27936", None, "BSD-3-Clause", "manual")


def case(case_id: str = "flask-1", diff: bytes = SMALL, labels: tuple[Label, ...] | None = None) -> Case:
    if labels is None:
        labels = (Label("docs/patterns/errorpages.rst", Side.RIGHT, 61, 62, "manual", "a note moved"),)
    return Case(case_id, "Change the error pages doc", "", diff, labels, SOURCE)


def write_lines(folder: Path, *records: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "diffs").mkdir(exist_ok=True)
    (folder / "diffs" / "a.diff").write_bytes(SMALL)
    (folder / CASES_FILE).write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")


def record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "a",
        "title": "t",
        "description": "",
        "diff": "diffs/a.diff",
        "labels": [
            {"path": "docs/patterns/errorpages.rst", "side": "LEFT", "start_line": 81, "end_line": 82, "kind": "k"}
        ],
        "source": {"repository": "pallets/flask"},
    }
    base.update(changes)
    return base


def test_a_written_set_reads_back_the_same_with_its_bytes(tmp_path: Path) -> None:
    clean = Case("rg-clean", "Add a file", "with CRLF lines", CRLF, (), SOURCE)
    assert write_set(tmp_path / "set", [case(), clean]) == 2
    loaded = load_set(str(tmp_path / "set"))
    assert loaded.cases == (case(), clean)
    assert loaded.labels == 1
    assert b"\r\n" in loaded.cases[1].diff  # CRLF and any byte survive as they were
    # The cases file itself can be named too.
    assert load_set(str(tmp_path / "set" / CASES_FILE)).cases == loaded.cases


def test_writing_again_replaces_the_set(tmp_path: Path) -> None:
    write_set(tmp_path, [case("one"), case("two")])
    write_set(tmp_path, [case("three")])
    assert [c.id for c in load_set(str(tmp_path)).cases] == ["three"]
    assert sorted(p.name for p in (tmp_path / "diffs").iterdir()) == ["three.diff"]


def test_a_left_label_on_removed_lines_is_accepted(tmp_path: Path) -> None:
    write_lines(tmp_path, record())
    (label,) = load_set(str(tmp_path)).cases[0].labels
    assert (label.side, label.start_line, label.end_line, label.description) == (Side.LEFT, 81, 82, "")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "a b"}, "line 1: id: String should match pattern"),
        ({"labels": [{"path": "x"}]}, "line 1: labels.0.side: Field required"),
        ({"surprise": 1}, "line 1: surprise: Extra inputs are not permitted"),
        ({"diff": "../outside.diff"}, "line 1: the diff '../outside.diff' is outside the set's folder"),
        ({"diff": "diffs/missing.diff"}, "line 1: cannot read the diff diffs/missing.diff: No such file"),
        (
            {"labels": [{"path": "README.md", "side": "RIGHT", "start_line": 1, "end_line": 1, "kind": "k"}]},
            "the label on README.md names a file the diff does not change",
        ),
        (
            {"labels": [{"path": DOC, "side": "LEFT", "start_line": 58, "end_line": 60, "kind": "k"}]},
            "lines 58-60 (LEFT) covers no line the diff shows on that side",
        ),
        (
            {"labels": [{"path": DOC, "side": "RIGHT", "start_line": 9, "end_line": 2, "kind": "k"}]},
            "end_line 2 is before start_line 9",
        ),
    ],
)
def test_a_bad_case_is_refused_with_its_line_and_problem(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    write_lines(tmp_path, record(**changes))
    with pytest.raises(InputError) as raised:
        load_set(str(tmp_path))
    assert f"{tmp_path / CASES_FILE}" in str(raised.value)
    assert message in str(raised.value)


def test_ids_are_unique_in_a_set(tmp_path: Path) -> None:
    write_lines(tmp_path, record(), record())
    with pytest.raises(InputError, match=r"line 2: the id 'a' is used twice"):
        load_set(str(tmp_path))


def test_a_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    write_lines(tmp_path, record())
    with (tmp_path / CASES_FILE).open("a", encoding="utf-8") as file:
        file.write("\n{not json\n")
    with pytest.raises(InputError, match=r"line 3 is not JSON"):
        load_set(str(tmp_path))


def test_a_missing_set_says_what_to_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"does not exist; name a case folder"):
        load_set(str(tmp_path / "nowhere"))
    with pytest.raises(InputError, match=r"has no cases.jsonl; build one with `reviewbot eval build`"):
        load_set(str(tmp_path))
    (tmp_path / CASES_FILE).write_text("\n", "utf-8")
    with pytest.raises(InputError, match=r"holds no case"):
        load_set(str(tmp_path))


def test_a_set_is_never_written_over_a_folder_that_holds_no_set(tmp_path: Path) -> None:
    (tmp_path / "diffs").mkdir()
    (tmp_path / "diffs" / "mine.diff").write_text("not yours", "utf-8")
    with pytest.raises(InputError, match="holds no case set"):
        write_set(tmp_path, [case("one")])
    assert (tmp_path / "diffs" / "mine.diff").read_text("utf-8") == "not yours"
