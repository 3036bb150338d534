"""``eval run --variant context=function``: each model twice, diff and function context, side by side."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from reviewbot.cli import main
from reviewbot.eval.cases import load_set
from scripted_reviewer import CASES, INPUT_PRICE, OUTPUT_PRICE, on_labels, reviewer, write_cases

pytestmark = pytest.mark.usefixtures("clean_environment")

DATA = Path(__file__).parent / "data"
MINITWIT = "examples/minitwit/minitwit.py"
HEAD = (DATA / "heads" / "flask-73a47a0db1a1" / MINITWIT).read_bytes()
# The minitwit case carries its head file; the others do not.
CASES_WITH_HEADS = tuple(
    dataclasses.replace(case, heads=((MINITWIT, HEAD),)) if case.id == "minitwit" else case for case in CASES
)


@pytest.fixture
def endpoint(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.setenv("REVIEWBOT_API_KEY", "sk-eval-test")
    fake_openai.set_default(reviewer(CASES_WITH_HEADS, on_labels))
    return fake_openai


def run(endpoint: FakeOpenAI, folder: Path, *extra: str) -> int:
    model = f"fake-model@{endpoint.base_url},input_price={INPUT_PRICE},output_price={OUTPUT_PRICE}"
    return main(["eval", "run", str(folder), "--model", model, "--no-cache", *extra])


def test_head_files_are_written_and_read_back_with_the_case(tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set", CASES_WITH_HEADS)
    assert (folder / "heads" / "minitwit" / f"{MINITWIT}.head").read_bytes() == HEAD
    records = [json.loads(line) for line in (folder / "cases.jsonl").read_text("utf-8").splitlines()]
    assert [record.get("heads") for record in records] == [None, "heads/minitwit", None, None, None]
    assert load_set(str(folder)).cases == CASES_WITH_HEADS


def test_a_heads_folder_outside_the_set_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_cases(tmp_path / "set", CASES_WITH_HEADS)
    cases = folder / "cases.jsonl"
    cases.write_text(cases.read_text("utf-8").replace('"heads/minitwit"', '"../.."'), "utf-8")
    assert main(["eval", "run", str(folder), "--dry-run"]) == 2
    assert "heads '../..' is not a folder inside the set's folder" in capsys.readouterr().err


def test_a_head_file_that_links_out_of_the_set_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY", "utf-8")
    folder = write_cases(tmp_path / "set", CASES_WITH_HEADS)
    planted = folder / "heads" / "minitwit" / "stolen.py.head"
    planted.symlink_to(secret)

    (minitwit,) = [case for case in load_set(str(folder)).cases if case.id == "minitwit"]
    assert [path for path, _ in minitwit.heads] == [MINITWIT]


def test_each_model_runs_with_diff_and_with_function_context_side_by_side(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set", CASES_WITH_HEADS)
    assert run(endpoint, folder, "--variant", "context=function", "-f", "json", "-o", str(tmp_path / "r.json")) == 0
    report = json.loads((tmp_path / "r.json").read_text("utf-8"))
    diff_row, function_row = report["models"]
    assert (diff_row["label"], function_row["label"]) == ("fake-model (context=diff)", "fake-model (context=function)")
    assert (diff_row["context"], function_row["context"]) == ("diff", "function")
    assert diff_row["cases_without_head_files"] == []
    assert function_row["cases_without_head_files"] == ["lib", "version", "types", "contributing"]
    assert diff_row["recall"] == function_row["recall"] == 1.0
    assert report["comparisons"][0]["baseline"] == "fake-model (context=diff)"
    # Only the function row's request for the case with a head file shows the enclosing functions.
    users = [request.body["messages"][1]["content"] for request in endpoint.requests]
    widened = [user for user in users if "91 ~def timeline():" in user]
    assert len(widened) == 1
    assert "118 ~def user_timeline(username):" in widened[0]
    systems = [request.body["messages"][0]["content"] for request in endpoint.requests]
    assert sum('"12 ~code" lines' in system for system in systems) == 1
    # The other cases sent the same request in both rows: each of theirs twice, minitwit's two once each.
    assert len(users) == 2 * (len(set(users)) - 2) + 2


def test_the_report_says_which_cases_fell_back_to_the_diff(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_cases(tmp_path / "set", CASES_WITH_HEADS)
    assert run(endpoint, folder, "--variant", "context=function") == 0
    out = capsys.readouterr().out
    assert "| `fake-model (context=diff)` |" in out
    assert "| `fake-model (context=function)` |" in out
    assert (
        "`fake-model (context=function)`: 4 of 5 cases carry no head files (`lib`, `version`, `types`, "
        "`contributing`), so function context could not be added" in out
    )


def test_an_unknown_variant_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_cases(tmp_path / "set")
    assert main(["eval", "run", str(folder), "--variant", "context=file", "--dry-run"]) == 2
    assert "--variant 'context=file' is not one this run can compare; use one of context=diff, context=function" in (
        capsys.readouterr().err
    )
