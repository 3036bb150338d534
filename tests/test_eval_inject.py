"""Injected bugs: each mutation plants its kind of bug in code only, and an injected case changes
one added line of a real diff, deterministically, labelled on that line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures_path import FIXTURE_DIFFS
from reviewbot.cli import main
from reviewbot.engine.diff import Side, parse_diff
from reviewbot.eval.cases import Source, load_set, write_set
from reviewbot.eval.code_text import masked
from reviewbot.eval.inject import candidates, inject
from reviewbot.eval.mutations import mutations

SOURCE = Source("pallets/flask", "564bb27efa8624e3d8b79b5f5b5ee7b3d8c7a3d1", None, "BSD-3-Clause", "injected")
TESTING = (FIXTURE_DIFFS / "flask-564bb27efa86.diff").read_bytes()


@pytest.mark.parametrize(
    ("line", "language", "names", "expected"),
    [
        ("if user is None:", "python", (), [("inverted-condition", "if user is not None:")]),
        ("if ready:", "python", (), [("inverted-condition", "if not ready:")]),
        ("elif not ready:", "python", (), [("inverted-condition", "elif ready:")]),
        ("while a and b:", "python", (), [("inverted-condition", "while not (a and b):")]),
        ("if (ready) {", "js", (), [("inverted-condition", "if (!ready) {")]),
        ("if (a === b) {", "js", (), [("inverted-condition", "if (a !== b) {")]),
        ("} else if done() {", "go", (), [("inverted-condition", "} else if !done() {")]),
        ("if let Some(x) = y {", "rust", (), []),
        ("    if count < limit {", "rust", (), [("off-by-one", "    if count <= limit {")]),
        ("for i in 0..n {", "rust", (), [("off-by-one", "for i in 0..=n {")]),
        ("let s = &v[1..=k];", "rust", (), [("off-by-one", "let s = &v[1..k];")]),
        ("total = size - 1", "python", (), [("off-by-one", "total = size")]),
        ("send(conn, payload)", "python", (), [("swapped-arguments", "send(payload, conn)")]),
        ("biggest = max(a, b)", "python", (), []),
        ("def send(conn, payload):", "python", (), []),
        ("Err(_, ref e) => e,", "rust", (), []),
        ("data = await fetch(url)", "python", (), [("dropped-await", "data = fetch(url)")]),
        ("    return compute(x)", "python", (), [("dropped-return", "    compute(x)")]),
        ("    return Err(e);", "rust", (), []),  # the compiler would find that one
        ("const n = user?.name;", "js", (), [("dropped-null-check", "const n = user.name;")]),
        (
            "if (node && node.next) {",
            "js",
            (),
            [("inverted-condition", "if (!(node && node.next)) {"), ("dropped-null-check", "if (node.next) {")],
        ),
        ("let v = opt.unwrap_or(0);", "rust", (), [("dropped-null-check", "let v = opt.unwrap();")]),
        (
            "if err != nil && retry {",
            "go",
            (),
            [("inverted-condition", "if err == nil && retry {"), ("dropped-null-check", "if retry {")],
        ),
        (
            "total = count + offset",
            "python",
            ("count", "counter", "offset", "total", "zebra"),
            [("wrong-variable", "total = counter + offset")],  # a name alike, never one unlike (zebra)
        ),
        ('x = "a == b"  # i < n', "python", (), []),  # strings and comments are not code
        ("let c = 'x'; let s: &'a str = y;", "rust", (), []),
        ('msg = f"{a} < {b}" if a == b else None', "python", (), [("inverted-condition", None)]),
    ],
)
def test_each_mutation_plants_its_bug_in_the_code(
    line: str, language: str, names: tuple[str, ...], expected: list[tuple[str, str | None]]
) -> None:
    found = [(mutation.kind, mutation.apply(line)) for mutation in mutations(line, language, names)]
    assert [kind for kind, _ in found] == [kind for kind, _ in expected]
    for (_, mutated), (_, wanted) in zip(found, expected, strict=True):
        if wanted is not None:
            assert mutated == wanted


def test_masking_keeps_positions_and_hides_strings_and_comments() -> None:
    line = "call(\"x < y\", 'it\\'s')  # a == b"
    hidden = masked(line, "python")
    assert len(hidden) == len(line)
    assert hidden.startswith('call("')
    assert "<" not in hidden
    assert "==" not in hidden
    assert masked("let t = `a ${b}`; // c", "js").count("\x00") == len("a ${b}") + len("// c")


def test_an_injected_case_changes_one_added_line_and_labels_it(tmp_path: Path) -> None:
    (case,) = inject(TESTING, name="flask-564bb27efa86", source=SOURCE, seed=1)
    before = TESTING.split(b"\n")
    after = case.diff.split(b"\n")
    changed = [index for index, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
    assert len(changed) == 1
    assert after[changed[0]].startswith(b"+")
    (label,) = case.labels
    assert (label.path, label.side, label.start_line == label.end_line) == ("src/flask/testing.py", Side.RIGHT, True)
    # The label is on the mutated line, by the diff's own numbering.
    (file,) = (file for file in parse_diff(case.diff).files if file.path == label.path)
    numbered = {line.new_no: line.text for hunk in file.hunks for line in hunk.lines if line.kind == "+"}
    assert numbered[label.start_line].encode() == after[changed[0]][1:]
    assert (case.id, case.title, case.description) == (
        "flask-564bb27efa86-1",
        "Change CHANGES.rst and 1 other file",
        "",
    )
    write_set(tmp_path, [case])  # the loader checks the label sits on a line of the diff
    assert load_set(str(tmp_path)).cases == (case,)


def test_injection_is_deterministic_and_spreads_over_kinds_and_lines() -> None:
    first = inject(TESTING, name="flask-564bb27efa86", source=SOURCE, seed=1, count=3)
    assert first == inject(TESTING, name="flask-564bb27efa86", source=SOURCE, seed=1, count=3)
    assert len(first) == 3
    assert len({case.labels[0].kind for case in first}) == 3
    assert len({case.labels[0].start_line for case in first}) == 3
    others = [inject(TESTING, name="flask-564bb27efa86", source=SOURCE, seed=seed, count=3) for seed in range(2, 8)]
    assert any(cases != first for cases in others)


def test_a_diff_without_code_to_mutate_gives_no_case() -> None:
    docs = (FIXTURE_DIFFS / "flask-557a053e3b2b.diff").read_bytes()
    assert inject(docs, name="docs", source=SOURCE, count=2) == []


TESTS_AND_CRLF = (
    b"diff --git a/tests/test_app.py b/tests/test_app.py\n"
    b"--- a/tests/test_app.py\n"
    b"+++ b/tests/test_app.py\n"
    b"@@ -1,1 +1,2 @@\n"
    b" import app\n"
    b"+assert app.run(a, b)\n"
    b"diff --git a/src/app.py b/src/app.py\n"
    b"--- a/src/app.py\n"
    b"+++ b/src/app.py\n"
    b"@@ -1,3 +1,4 @@\r\n"
    b' """caf\xe9\r\n'
    b' """\r\n'
    b"+if ready:\r\n"
    b" \tpass\r\n"
)


def test_tests_are_never_mutated_and_every_other_byte_is_kept() -> None:
    assert {candidate.line.path for candidate in candidates(TESTS_AND_CRLF)} == {"src/app.py"}
    (case,) = inject(TESTS_AND_CRLF, name="app", source=SOURCE)
    assert case.diff == TESTS_AND_CRLF.replace(b"+if ready:\r\n", b"+if not ready:\r\n")
    assert (case.labels[0].path, case.labels[0].start_line) == ("src/app.py", 3)


def test_lines_inside_a_docstring_or_a_long_string_are_text() -> None:
    diff = (
        b"diff --git a/src/a.py b/src/a.py\n--- a/src/a.py\n+++ b/src/a.py\n@@ -1,0 +1,4 @@\n"
        b'+"""Send it\n+if the peer is ready: send(a, b)\n+"""\n+send(a, b)\n'
        b"diff --git a/src/b.rs b/src/b.rs\n--- a/src/b.rs\n+++ b/src/b.rs\n@@ -1,0 +1,4 @@\n"
        b'+let help = "one\n+    if x < y { f(a, b) }\n+end";\n+f(a, b);\n'
    )
    assert sorted((c.line.path, c.line.number) for c in candidates(diff)) == [("src/a.py", 4), ("src/b.rs", 4)]


def test_eval_build_inject_writes_cases_with_their_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    diff = FIXTURE_DIFFS / "flask-564bb27efa86.diff"
    out = tmp_path / "planted"
    arguments = ["--per-diff", "2", "--repository", "pallets/flask", "--licence", "BSD-3-Clause", "-o", str(out)]
    assert main(["eval", "build", "--inject", str(diff), *arguments]) == 0
    assert capsys.readouterr().out == f"wrote 2 cases (2 labels) to {out / 'cases.jsonl'}\n"
    cases = load_set(str(out)).cases
    assert [case.id for case in cases] == ["flask-564bb27efa86-1", "flask-564bb27efa86-2"]
    assert {(case.source.repository, case.source.licence, case.source.method) for case in cases} == {
        ("pallets/flask", "BSD-3-Clause", "injected")
    }
    assert "Licence: BSD-3-Clause." in (out / "NOTICE.md").read_text("utf-8")
    docs = FIXTURE_DIFFS / "flask-557a053e3b2b.diff"
    assert main(["eval", "build", "--inject", str(docs), "-o", str(tmp_path / "none")]) == 2
    assert "no added line of source code to plant a bug in" in capsys.readouterr().err
