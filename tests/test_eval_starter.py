"""The set that ships in the package: it loads, says where each case came from with the projects'
licences beside it, keeps tests out of its cases, and plans a run without a key."""

from __future__ import annotations

import json
import re

import pytest

from reviewbot.cli import main
from reviewbot.engine.context import extend_files, matches, split_lines
from reviewbot.eval.cases import STARTER, load_set, starter_folder
from reviewbot.eval.paths import is_test_path

pytestmark = pytest.mark.usefixtures("clean_environment")

STARTER_SET = load_set(STARTER)
LICENCES = {
    "pallets/flask": "BSD-3-Clause",
    "BurntSushi/ripgrep": "MIT OR Unlicense",
    "sharkdp/bat": "Apache-2.0 OR MIT",
}


def test_the_starter_set_is_about_sixty_labelled_cases_from_both_builders() -> None:
    cases = STARTER_SET.cases
    assert 55 <= len(cases) <= 70
    assert all(case.labels for case in cases)
    methods = {case.source.method for case in cases}
    assert methods == {"injected", "history"}
    assert sum(len(case.diff) for case in cases) < 400_000  # small on disk


def test_every_case_names_its_commit_and_licence_and_the_licence_texts_ship_with_it() -> None:
    folder = starter_folder()
    notice = (folder / "NOTICE.md").read_text("utf-8")
    for case in STARTER_SET.cases:
        assert case.source.licence == LICENCES[case.source.repository]
        assert case.source.commit is not None
        assert re.fullmatch(r"[0-9a-f]{40}", case.source.commit)
        assert f"- `{case.id}` ({case.source.method}): {case.source.commit}" in notice
    for repository in {case.source.repository for case in STARTER_SET.cases}:
        licences = list((folder / "LICENSES" / repository.replace("/", "-")).iterdir())
        assert licences
        assert all(path.stat().st_size > 100 for path in licences)


def test_no_case_shows_a_test_file_and_history_cases_are_source_only() -> None:
    for case in STARTER_SET.cases:
        paths = [file.path for file in case.parsed().files]
        assert all(not is_test_path(label.path) for label in case.labels)
        if case.source.method == "history":
            assert not any(is_test_path(path) for path in paths), case.id
            assert (case.title.startswith("Change "), case.description) == (True, "")


def test_a_dry_run_of_the_starter_set_prints_the_plan_per_model(capsys: pytest.CaptureFixture[str]) -> None:
    priced = "gpt-4o-mini@https://api.openai.com/v1"
    assert main(["eval", "run", STARTER, "--dry-run", "--model", "qwen3-coder-30b", "--model", priced]) == 0
    out = capsys.readouterr().out
    cases, labels = len(STARTER_SET.cases), STARTER_SET.labels
    assert "## reviewbot eval: `reviewbot:starter` (dry run: nothing sent)" in out
    assert f"\n{cases} cases with {labels} labelled bugs.\n" in out
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    assert rows[0].startswith(f"| `qwen3-coder-30b` | {cases} | 0 | {cases} |")
    assert rows[0].endswith("| unknown: add input_price= and output_price= |")  # no published input price
    assert rows[1].startswith(f"| `gpt-4o-mini` | {cases} | 0 | {cases} |")
    assert re.search(r"\| \$0\.\d+ \|$", rows[1])
    assert main(["eval", "run", STARTER, "--dry-run", "--format", "json", "--model", priced]) == 0
    plan = json.loads(capsys.readouterr().out)
    (model,) = plan["models"]
    assert (plan["cases"], model["requests"]) == (cases, cases)
    assert model["estimated_input_tokens"] > 50 * cases
    assert model["estimated_cost_usd"] == pytest.approx(
        (model["estimated_input_tokens"] * 0.15 + model["estimated_output_tokens"] * 0.60) / 1_000_000
    )


def test_every_starter_case_carries_head_files_that_hold_its_diff() -> None:
    widened = 0
    for case in STARTER_SET.cases:
        heads = case.head_texts()
        files = case.parsed().files
        assert heads, case.id
        for file in files:
            if file.path in heads:
                assert matches(file, split_lines(heads[file.path])), (case.id, file.path)
        # The planted or undone bug sits in a file with its head text.
        assert {label.path for label in case.labels} <= set(heads), case.id
        extended, without = extend_files(files, heads, 1_000)
        assert without == ()
        widened += any(hunk.context_before or hunk.context_after for file in extended for hunk in file.hunks)
    assert widened >= len(STARTER_SET.cases) * 2 // 3
