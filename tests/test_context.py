"""Function context: hunks widened to their enclosing function or class, on real code and plain data."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewbot.engine.context import enclosing_block, extend_file, extend_files, opens_block, split_lines
from reviewbot.engine.diff import DiffFile, parse_diff
from reviewbot.engine.plan import Budget, PromptOptions, make_plan
from reviewbot.engine.prompt import ReviewContext

DATA = Path(__file__).parent / "data"


def fixture_file(case: str, path: str) -> tuple[DiffFile, str]:
    """One file of a real diff, and its text at the diff's head commit."""
    diff = parse_diff((DATA / "diffs" / f"{case}.diff").read_bytes())
    file = next(file for file in diff.files if file.path == path)
    return file, (DATA / "heads" / case / path).read_text(encoding="utf-8")


def numbers(lines: tuple[object, ...]) -> list[int]:
    return [line.new_no for line in lines]  # type: ignore[attr-defined]


def test_python_hunks_are_widened_to_their_functions_with_decorators() -> None:
    file, head = fixture_file("flask-73a47a0db1a1", "examples/minitwit/minitwit.py")
    wider = extend_file(file, head, max_tokens=1_000)
    assert wider is not None
    imports, timeline, user_timeline = wider.hunks
    # The imports sit at module level: no function encloses them.
    assert (imports.context_before, imports.context_after) == ((), ())
    # timeline() runs from its @app.route line (90) to its last line (105).
    assert numbers(timeline.context_before) == [90, 91, 92, 93, 94]
    assert timeline.context_before[0].text == "@app.route('/')"
    assert numbers(timeline.context_after) == [101, 102, 103, 104, 105]
    assert timeline.context_after[-1].text == "        [session['user_id'], session['user_id'], PER_PAGE]))"
    assert numbers(user_timeline.context_before) == [117, 118, 119, 120]
    assert numbers(user_timeline.context_after) == list(range(128, 135))
    # The diff's own lines are untouched: context never becomes commentable.
    assert [hunk.lines for hunk in wider.hunks] == [hunk.lines for hunk in file.hunks]


def test_rust_hunks_are_widened_to_the_fn_and_its_closing_brace() -> None:
    file, head = fixture_file("ripgrep-392bb0944a7a", "crates/core/main.rs")
    wider = extend_file(file, head, max_tokens=10_000)
    assert wider is not None
    uses, main, try_main, search_parallel = wider.hunks
    assert (uses.context_before, uses.context_after, main.context_before, main.context_after) == ((), (), (), ())
    assert try_main.context_before[0].text == "fn try_main(args: Args) -> Result<()> {"
    assert numbers(try_main.context_before) == list(range(52, 62))
    assert try_main.context_after == ()  # the hunk already ends with the fn's closing brace
    assert search_parallel.context_before[0].text == "fn search_parallel(args: &Args) -> Result<bool> {"
    assert search_parallel.context_after[-1].text == "}"
    assert numbers(search_parallel.context_after) == list(range(153, 218))


def test_the_token_cap_keeps_the_signature_then_the_nearest_lines() -> None:
    file, head = fixture_file("ripgrep-392bb0944a7a", "crates/core/main.rs")
    capped = extend_file(file, head, max_tokens=60)
    assert capped is not None
    hunk = capped.hunks[3]
    # The fn line first, then one line above and one below the hunk in turn, until 60 tokens.
    assert numbers(hunk.context_before) == [141, 144, 145]
    assert numbers(hunk.context_after) == [153]  # 154 is next in turn, and past the cap
    nothing = extend_file(file, head, max_tokens=0)
    assert nothing is not None
    assert all(not hunk.context_before and not hunk.context_after for hunk in nothing.hunks)


def test_the_model_sees_context_lines_marked_and_gaps_shown() -> None:
    file, head = fixture_file("ripgrep-392bb0944a7a", "crates/core/main.rs")
    capped = extend_file(file, head, max_tokens=60)
    assert capped is not None
    plan = make_plan([capped], Budget(32_000, 2_000), PromptOptions(ReviewContext(), function_context=True))
    (request,) = plan.requests
    system, user = (message["content"] for message in request.messages)
    assert '"12 ~code" lines show unchanged line 12' in system
    assert "141 ~fn search_parallel(args: &Args) -> Result<bool> {\n…\n144 ~\n145 ~    let quit_after_match" in user
    assert "152      let mut searcher_err = None;\n153 ~    args.walker_parallel()?.run(|| {" in user
    plain = make_plan([file], Budget(32_000, 2_000), PromptOptions(ReviewContext()))
    assert "~" not in plain.requests[0].messages[0]["content"]


def test_a_head_text_that_is_not_the_diffs_new_file_is_not_used() -> None:
    file, head = fixture_file("flask-73a47a0db1a1", "examples/minitwit/minitwit.py")
    stale = head.replace("    followed = False\n", "    followd = False\n", 1)
    assert extend_file(file, stale, max_tokens=1_000) is None
    files, without = extend_files([file], {file.path: stale}, 1_000)
    assert files == (file,)
    assert without == (file.path,)
    assert extend_files([file], {}, 1_000) == ((file,), (file.path,))  # no head text at all


def test_two_hunks_in_one_function_show_each_line_once() -> None:
    head = "def f(x):\n" + "".join(f"    a{n} = {n}\n" for n in range(1, 20)) + "    return x\n"
    diff = parse_diff(
        "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n"
        "@@ -5,1 +5,1 @@\n-    a4 = 0\n+    a4 = 4\n"
        "@@ -9,1 +9,1 @@\n-    a8 = 0\n+    a8 = 8\n"
    )
    wider = extend_file(diff.files[0], head, max_tokens=1_000)
    assert wider is not None
    first, second = wider.hunks
    assert numbers(first.context_before) == [1, 2, 3, 4]
    assert numbers(first.context_after) == [6, 7, 8]
    assert numbers(second.context_before) == []
    assert numbers(second.context_after) == list(range(10, 22))


@pytest.mark.parametrize(
    ("source", "line", "block"),
    [
        # Go: the func line to its closing brace.
        ("package m\n\nfunc (s *S) Run(n int) error {\n\tif n > 0 {\n\t\treturn nil\n\t}\n\treturn n\n}\n", 5, (3, 8)),
        # Java: a method signature ending in "{"; the class around it is not the nearest block.
        (
            "class A {\n    public int size(List<String> xs) {\n        return xs.size();\n    }\n}\n",
            3,
            (2, 4),
        ),
        # JavaScript: an arrow function bound to a name, and its closing "};".
        ("const add = (a, b) => {\n  return a + b;\n};\nadd(1, 2);\n", 2, (1, 3)),
        # Python: a black-style signature continued by ") -> int:" at the def's indent.
        ("class C:\n    def f(\n        self,\n    ) -> int:\n        return 1\n\nx = 1\n", 5, (2, 5)),
        # A closing brace belongs to its block.
        ("fn f() {\n    g();\n}\n", 3, (1, 3)),
        # A statement block is not a function: the fn around it is.
        ("fn f() {\n    if x {\n        y();\n    }\n}\n", 3, (1, 5)),
        # Module-level code has no enclosing block.
        ("import os\n\ndef f():\n    pass\n\nx = os.sep\n", 6, None),
        # A line just after a Python function is not inside it.
        ("def f():\n    pass\nprint(1)\n", 3, None),
    ],
)
def test_the_enclosing_block_rule(source: str, line: int, block: tuple[int, int] | None) -> None:
    assert enclosing_block(split_lines(source), line) == block


@pytest.mark.parametrize(
    ("line", "opens"),
    [
        ("pub(crate) async fn fetch(&self) -> Result<()> {", True),
        ("export default function App() {", True),
        ("impl<T: Display> Show for Wrapper<T> {", True),
        ("    private static void main(String[] args) {", True),
        ("    if (ready(x)) {", False),
        ("    } else if (x) {", False),
        ("    result = call(function (err) {", False),
        ("    let total = items.iter().map(|x| x.len()).sum();", False),
    ],
)
def test_what_opens_a_block(line: str, opens: bool) -> None:
    assert opens_block(line) is opens


def test_a_head_file_is_split_as_a_diff_numbers_its_lines() -> None:
    assert split_lines("a\r\nb\x0cc\nd") == ["a", "b\x0cc", "d"]
    assert split_lines("a\n") == ["a"]
