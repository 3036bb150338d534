"""`reviewbot eval run --judge`: a scripted judge on the loopback endpoint says which findings near a
label describe it; the report shows the figures by location and by location and judge, the judge's
cost apart, its answers cached, and its requests under --max-cost."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply
from reviewbot.cli import main
from reviewbot.eval.cases import Case
from reviewbot.eval.judge import SCHEMA_NAME
from scripted_reviewer import (
    ANSWER_USD,
    CASES,
    INPUT_PRICE,
    OUTPUT_PRICE,
    USAGE,
    far_from_labels,
    on_labels,
    title_of,
    write_cases,
)

pytestmark = pytest.mark.usefixtures("clean_environment")

LABELS = sum(len(case.labels) for case in CASES)
RUST_LABELS = sum(1 for case in CASES for label in case.labels if label.path.endswith(".rs"))
JUDGE_PRICES = (10.0, 30.0)
JUDGE_USD = (USAGE.prompt_tokens * JUDGE_PRICES[0] + USAGE.completion_tokens * JUDGE_PRICES[1]) / 1_000_000
SCRIPTS: dict[str, Callable[[Case], list[dict[str, Any]]]] = {
    "flags-all": on_labels,
    "floods": lambda case: on_labels(case) + far_from_labels(case, 5),
}


def judge_says(user: str) -> bool:
    """The scripted judge: yes to findings on Rust files, no to the rest."""
    finding = user.split("Finding:\n", 1)[1]
    path = finding.splitlines()[0].removeprefix("File: ").split(",", 1)[0]
    return path.endswith(".rs")


BY_TITLE = {case.title: case for case in CASES}


def scripted(body: dict[str, Any]) -> Reply:
    """Two scripted reviewers and the scripted judge behind one endpoint."""
    user = body["messages"][1]["content"]
    if body["response_format"]["json_schema"]["name"] == SCHEMA_NAME:
        return Reply.json({"same_bug": judge_says(user)}, usage=USAGE)
    # Each reviewer words its findings its own way, so the judge is asked about each once.
    script = SCRIPTS[body["model"]]
    findings = [{**item, "title": f"{body['model']} sees a bug"} for item in script(BY_TITLE[title_of(user)])]
    return Reply.json({"findings": findings}, usage=USAGE)


@pytest.fixture
def endpoint(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.setenv("REVIEWBOT_API_KEY", "sk-eval-test")
    fake_openai.set_default(scripted)
    return fake_openai


def spec(endpoint: FakeOpenAI, name: str, prices: tuple[float, float] = (INPUT_PRICE, OUTPUT_PRICE)) -> str:
    return f"{name}@{endpoint.base_url},input_price={prices[0]},output_price={prices[1]}"


def eval_run(endpoint: FakeOpenAI, tmp_path: Path, *extra: str) -> list[str]:
    folder = tmp_path / "set"
    if not folder.exists():
        write_cases(folder)
    return [
        "eval",
        "run",
        str(folder),
        "--model",
        spec(endpoint, "flags-all"),
        "--model",
        spec(endpoint, "floods"),
        "--judge",
        spec(endpoint, "judge-model", JUDGE_PRICES) + ",max_retries=0",
        "--cache",
        str(tmp_path / "cache"),
        *extra,
    ]


def judge_requests(endpoint: FakeOpenAI) -> list[dict[str, Any]]:
    return [
        request.body
        for request in endpoint.requests
        if request.body["response_format"]["json_schema"]["name"] == SCHEMA_NAME
    ]


def test_the_judge_is_asked_about_each_finding_near_a_label_and_the_report_shows_both_figures(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(eval_run(endpoint, tmp_path, "--format", "json")) == 0
    report = json.loads(capsys.readouterr().out)

    asked = judge_requests(endpoint)
    assert {body["model"] for body in asked} == {"judge-model"}
    assert report["judge"] == {"label": "judge-model", "model": "judge-model", "base_url": endpoint.base_url}
    for model in report["models"]:
        judged = model["judged"]
        # By location every labelled bug is caught; the judge agrees only on the Rust ones.
        assert (model["caught"], model["labels"]) == (LABELS, LABELS)
        assert (judged["caught"], judged["recall"]) == (RUST_LABELS, RUST_LABELS / LABELS)
        assert judged["hits"] == RUST_LABELS
        assert judged["precision"] == RUST_LABELS / model["findings"]
        # Only findings near a label are judged: the flood's far findings never reach the judge.
        assert judged["verdicts"] == len(asked) // 2
        assert judged["failed"] == 0
        assert judged["cost_usd"] == pytest.approx(judged["verdicts"] * JUDGE_USD)
        assert model["cost_usd"] == pytest.approx(len(CASES) * ANSWER_USD)  # the judge's cost is apart
        assert judged["answers"] == {"sent": judged["verdicts"], "cached": 0}
        for case in model["cases"]:
            for label in case["labels"]:
                assert label["judged_caught"] == label["path"].endswith(".rs")
            assert [finding["judged_hit"] for finding in case["findings"]] == [
                finding["hit"] and finding["path"].endswith(".rs") for finding in case["findings"]
            ]
    assert report["spent_usd"] == pytest.approx(2 * len(CASES) * ANSWER_USD + len(asked) * JUDGE_USD)


def test_the_judge_sees_the_labelled_bug_and_the_finding(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    assert main(eval_run(endpoint, tmp_path, "--format", "json", "-o", str(tmp_path / "report.json"))) == 0
    users = [body["messages"][1]["content"] for body in judge_requests(endpoint)]
    version = next(user for user in users if "File: flask/__init__.py, new lines 13" in user)
    assert "Kind: manual\nDescription: a labelled line" in version
    assert "13 +__version__" in version  # the hunk, as the reviewer saw it
    assert re.search(
        r"Finding:\nFile: flask/__init__.py, line 13\nTitle: (flags-all|floods) sees a bug\nBody: It breaks\.", version
    )


def test_a_rerun_takes_the_judge_answers_from_the_cache_and_sends_nothing(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(eval_run(endpoint, tmp_path, "--format", "json")) == 0
    first = json.loads(capsys.readouterr().out)
    endpoint.reset()

    assert main(eval_run(endpoint, tmp_path, "--format", "json")) == 0
    again = json.loads(capsys.readouterr().out)

    assert endpoint.requests == []
    assert again["spent_usd"] == 0.0
    for before, after in zip(first["models"], again["models"], strict=True):
        verdicts = before["judged"]["verdicts"]
        assert after["judged"]["answers"] == {"sent": 0, "cached": verdicts}
        assert {key: value for key, value in after["judged"].items() if key != "answers"} == {
            key: value for key, value in before["judged"].items() if key != "answers"
        }


def test_the_markdown_report_shows_recall_by_location_and_by_judge(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(eval_run(endpoint, tmp_path)) == 0
    report = capsys.readouterr().out
    assert "By location and judge `judge-model`" in report
    # The README shows this table for flags-all: keep it true.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    shown = readme.split("  By location and judge `judge-model`", 1)[1].split("  ```", 1)[0]
    for line in filter(None, (line.strip() for line in shown.splitlines()[1:])):
        assert line in report.splitlines(), "paste the table printed by this test in the README"
    assert f"| `flags-all` | **50%** (19–81%), {RUST_LABELS} of {LABELS} |" in report
    verdicts = len(judge_requests(endpoint)) // 2
    assert f"| {verdicts} | " in report
    assert "The judge `judge-model`" in report


def test_the_judge_requests_count_under_max_cost(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The reviews fit (5 answers of at most ~$0.005 each), a judge answer's worst case (2,048 tokens at $30) does not.
    assert main(eval_run(endpoint, tmp_path, "--max-cost", "0.05", "--yes")) == 2
    assert "stopped at --max-cost $0.05" in capsys.readouterr().err
    assert judge_requests(endpoint) == []


def test_a_judge_without_prices_is_refused_under_max_cost_before_anything_is_sent(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = eval_run(endpoint, tmp_path, "--max-cost", "5")
    arguments[arguments.index("--judge") + 1] = f"unpriced-judge@{endpoint.base_url}"
    assert main(arguments) == 2
    assert "--max-cost needs the input and output prices of unpriced-judge" in capsys.readouterr().err
    assert endpoint.requests == []


def test_a_failed_judge_request_counts_as_no_and_only_it_is_asked_again(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failures: list[str] = []

    def one_judge_request_fails(body: dict[str, Any]) -> Reply:
        user = body["messages"][1]["content"]
        asked = body["response_format"]["json_schema"]["name"] == SCHEMA_NAME
        if asked and not failures and "File: ignore/src/types.rs" in user and "flags-all sees" in user:
            failures.append(user)
            return Reply.status(500)
        return scripted(body)

    endpoint.set_default(one_judge_request_fails)
    assert main(eval_run(endpoint, tmp_path, "--format", "json")) == 0
    first = json.loads(capsys.readouterr().out)["models"][0]["judged"]
    assert (first["failed"], first["caught"]) == (1, RUST_LABELS - 1)
    endpoint.reset()
    endpoint.set_default(scripted)

    assert main(eval_run(endpoint, tmp_path)) == 0

    assert [body["messages"][1]["content"] for body in judge_requests(endpoint)] == failures
    assert len(endpoint.requests) == 1
    assert f"| `flags-all` | **50%** (19–81%), {RUST_LABELS} of {LABELS} |" in capsys.readouterr().out


def test_the_dry_run_names_the_judge_and_leaves_its_requests_out_of_the_estimate(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(eval_run(endpoint, tmp_path, "--dry-run")) == 0
    assert "The judge `judge-model` is asked about each finding near a labelled bug" in capsys.readouterr().out
    assert main(eval_run(endpoint, tmp_path, "--dry-run", "--format", "json")) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["judge"] == {"label": "judge-model", "model": "judge-model", "base_url": endpoint.base_url}
    assert endpoint.requests == []
