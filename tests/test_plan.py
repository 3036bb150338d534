from __future__ import annotations

from collections import Counter

import pytest

from fixtures_path import FIXTURE_DIFFS
from reviewbot.engine.diff import Diff, parse_diff
from reviewbot.engine.filters import FilterRules, select_files
from reviewbot.engine.plan import Budget, Cap, Plan, PromptOptions, make_plan
from reviewbot.engine.prompt import ReviewContext
from reviewbot.errors import ConfigError

ALL_DIFFS = sorted(FIXTURE_DIFFS.glob("*.diff"))


def plan_for(diff: Diff, context_window: int, caps: tuple[Cap, ...] = ()) -> Plan:
    files, _ = select_files(diff, FilterRules())
    return make_plan(files, Budget(context_window, 1024, caps), PromptOptions(ReviewContext()))


def line_keys(diff: Diff) -> Counter[tuple[str, int, int]]:
    files, _ = select_files(diff, FilterRules())
    return Counter(
        (file.path, id(hunk), index) for file in files for hunk in file.hunks for index in range(len(hunk.lines))
    )


def planned_keys(plan: Plan) -> Counter[tuple[str, int, int]]:
    keys: Counter[tuple[str, int, int]] = Counter()
    for request in plan.requests:
        for chunk in request.chunks:
            offset = next(
                i for i in range(len(chunk.hunk.lines)) if chunk.hunk.lines[i : i + len(chunk.lines)] == chunk.lines
            )
            keys.update((chunk.file.path, id(chunk.hunk), offset + i) for i in range(len(chunk.lines)))
    return keys


@pytest.mark.parametrize("context_window", [2_400, 6_000, 32_768])
@pytest.mark.parametrize("path", ALL_DIFFS, ids=lambda p: p.stem)
def test_every_reviewable_line_goes_into_exactly_one_request(path: object, context_window: int) -> None:
    assert hasattr(path, "read_bytes")
    diff = parse_diff(path.read_bytes())
    plan = plan_for(diff, context_window)
    assert planned_keys(plan) == line_keys(diff)
    assert plan.not_reviewed == ()
    for request in plan.requests:
        assert request.estimated_tokens <= plan.budget.per_request


def test_keeps_a_files_hunks_together_when_they_fit() -> None:
    diff = parse_diff((FIXTURE_DIFFS / "ripgrep-392bb0944a7a.diff").read_bytes())
    plan = plan_for(diff, 8_000)
    homes: dict[str, set[int]] = {}
    for request in plan.requests:
        for chunk in request.chunks:
            homes.setdefault(chunk.file.path, set()).add(request.index)
    assert all(len(requests) == 1 for requests in homes.values())


def test_splits_a_hunk_bigger_than_the_budget_on_line_boundaries() -> None:
    diff = parse_diff((FIXTURE_DIFFS / "ripgrep-d1fa295bb21a.diff").read_bytes())
    plan = plan_for(diff, 2_400)
    parts = [chunk for request in plan.requests for chunk in request.chunks if chunk.parts > 1]
    assert parts
    assert "(part 1 of" in parts[0].text
    assert [chunk.part for chunk in parts[: parts[0].parts]] == list(range(1, parts[0].parts + 1))


def test_lists_what_a_cap_left_out_with_the_reason() -> None:
    diff = parse_diff((FIXTURE_DIFFS / "ripgrep-e8a30cb89341.diff").read_bytes())
    cap = Cap(6_000, float, "the cap of 6,000 prompt tokens")
    plan = plan_for(diff, 4_000, (cap,))
    assert plan.requests
    assert plan.estimated_tokens <= 6_000
    assert plan.not_reviewed
    assert {item.reason for item in plan.not_reviewed} == {"the cap of 6,000 prompt tokens was reached"}
    reviewed = sum(len(chunk.lines) for request in plan.requests for chunk in request.chunks)
    assert reviewed < sum(line_keys(diff).values())


def test_refuses_a_context_window_too_small_for_the_instructions() -> None:
    diff = parse_diff((FIXTURE_DIFFS / "ripgrep-b04a68a78246.diff").read_bytes())
    with pytest.raises(ConfigError, match="REVIEWBOT_CONTEXT_WINDOW"):
        plan_for(diff, 1_200)


def test_an_empty_diff_plans_no_requests() -> None:
    assert plan_for(Diff(files=()), 32_768).requests == ()


def test_numbers_lines_so_the_model_never_counts() -> None:
    diff = parse_diff((FIXTURE_DIFFS / "ripgrep-b04a68a78246.diff").read_bytes())
    user = plan_for(diff, 32_768).requests[0].messages[1]["content"]
    for line in diff.files[0].hunks[0].lines:
        expected = f"L{line.old_no} -{line.text}" if line.kind == "-" else f"{line.new_no} {line.kind}{line.text}"
        assert expected in user.splitlines()


@pytest.mark.usefixtures("clean_environment")
def test_a_small_window_keeps_a_quarter_of_itself_for_the_answer_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reviewbot.engine.review import ReviewOptions
    from reviewbot.settings import load_settings

    assert load_settings().max_output_tokens == 4_096
    assert load_settings(context_window=6_000).max_output_tokens == 1_500
    small = ReviewOptions.from_settings(load_settings(context_window=6_000))
    # 6,000 − 4,096 would leave ~1.9k per request; a quarter leaves ~4.2k.
    assert small.budget().per_request > 4_000
    monkeypatch.setenv("REVIEWBOT_MAX_OUTPUT_TOKENS", "4096")
    assert load_settings(context_window=6_000).max_output_tokens == 4_096


def test_a_line_longer_than_the_window_is_cut_with_a_marker_and_the_request_fits() -> None:
    long_line = "data = [" + ", ".join(str(number) for number in range(40_000)) + "]"
    text = (
        "diff --git a/gen.py b/gen.py\n--- a/gen.py\n+++ b/gen.py\n@@ -1 +1,3 @@\n"
        f" import os\n+{long_line}\n+print(data)\n"
    )
    plan = plan_for(parse_diff(text), 6_000)
    (request,) = plan.requests
    assert request.estimated_tokens < 6_000
    content = request.messages[1]["content"]
    assert f"2 +{long_line[:800]} …[{len(long_line) - 800:,} more characters cut]\n" in content
    assert "3 +print(data)" in content


def test_the_model_reads_one_numbering_and_a_files_status_only_when_it_is_not_a_plain_change() -> None:
    diff = parse_diff(
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -10,3 +10,3 @@ def handler(event):\n"
        "     start()\n-    run(event)\n+    run(event, retries=3)\n     stop()\n"
        "diff --git a/new.py b/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x = 1\n"
    )
    user = plan_for(diff, 32_768).requests[0].messages[1]["content"]
    assert (
        "File: app.py\n@@ def handler(event):\n10      start()\nL11 -    run(event)\n11 +    run(event, retries=3)\n"
        in user
    )
    assert "File: new.py (added)\n@@\n1 +x = 1\n" in user
    # The hunk header's own numbers would be a second count to read lines by; the lines carry theirs.
    assert "@@ -" not in user
