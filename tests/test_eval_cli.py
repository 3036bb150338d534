"""`reviewbot eval run` end to end against scripted models on the loopback endpoint: the report's
recall, precision, intervals and costs are what the script did."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply
from reviewbot.cli import main
from scripted_reviewer import ANSWER_USD, CASES, INPUT_PRICE, OUTPUT_PRICE, far_from_labels, on_labels, write_cases

pytestmark = pytest.mark.usefixtures("clean_environment")

Z = 1.959963984540054
HALF = {"lib", "version"}  # the cases the half-model reviews well: 3 of the 6 labels
LABELS = sum(len(case.labels) for case in CASES)
FLOOD_EXTRAS = sum(len(far_from_labels(case, 5)) for case in CASES)
SCRIPTS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
    "flags-all": on_labels,
    "flags-none": lambda case: [],
    "flags-half": lambda case: on_labels(case) if case.id in HALF else [],
    "floods": lambda case: on_labels(case) + far_from_labels(case, 5),
}


def wilson(successes: int, trials: int) -> tuple[float, float]:
    p = successes / trials
    centre = (p + Z * Z / (2 * trials)) / (1 + Z * Z / trials)
    half = Z / (1 + Z * Z / trials) * math.sqrt(p * (1 - p) / trials + Z * Z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.fixture
def endpoint(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """Four scripted models behind one endpoint, told apart by the model a request names."""
    monkeypatch.setenv("REVIEWBOT_API_KEY", "sk-eval-test")
    by_title = {case.title: case for case in CASES}

    def answer(body: dict[str, Any]) -> Reply:
        from scripted_reviewer import USAGE

        user = body["messages"][1]["content"]
        title = next(line.removeprefix("Title: ") for line in user.splitlines() if line.startswith("Title: "))
        findings = SCRIPTS[body["model"]](by_title[title])
        return Reply.json({"findings": findings}, usage=USAGE)

    fake_openai.set_default(answer)
    return fake_openai


def spec(endpoint: FakeOpenAI, name: str) -> str:
    return f"{name}@{endpoint.base_url},input_price={INPUT_PRICE},output_price={OUTPUT_PRICE}"


def eval_run(
    capsys: pytest.CaptureFixture[str], folder: Path, endpoint: FakeOpenAI, *args: str, models: tuple[str, ...] = ()
) -> tuple[int, str, str]:
    specs = [argument for name in models for argument in ("--model", spec(endpoint, name))]
    code = main(["eval", "run", str(folder), *specs, "--cache", str(folder.parent / "cache"), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_report_shows_what_each_scripted_model_did(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_cases(tmp_path / "set")
    code, out, _ = eval_run(capsys, folder, endpoint, "--format", "json", models=tuple(SCRIPTS))
    assert code == 0
    report = json.loads(out)
    assert report["schema"] == "reviewbot.eval.report/1"
    assert (report["cases"], report["labels"], report["tolerance"]) == (len(CASES), LABELS, 3)
    models = {model["label"]: model for model in report["models"]}
    assert list(models) == list(SCRIPTS)

    every, nothing, half, flood = (models[name] for name in SCRIPTS)
    assert (every["caught"], every["recall"], every["findings"], every["hits"], every["precision"]) == (6, 1, 6, 6, 1)
    assert every["recall_ci"] == pytest.approx(wilson(6, 6))
    assert every["recall_ci"][1] == 1.0
    assert (every["false_alarms"], every["false_alarms_per_case"]) == (0, 0)

    assert (nothing["caught"], nothing["recall"], nothing["findings"], nothing["precision"]) == (0, 0, 0, None)
    assert nothing["recall_ci"] == pytest.approx(wilson(0, 6))
    assert nothing["recall_ci"][0] == 0.0
    assert nothing["precision_ci"] is None

    assert (half["caught"], half["recall"], half["precision"]) == (3, 0.5, 1)
    assert half["recall_ci"] == pytest.approx(wilson(3, 6))
    assert [case["id"] for case in half["cases"] if any(label["caught"] for label in case["labels"])] == [
        "lib",
        "version",
    ]

    assert FLOOD_EXTRAS >= 10  # the flood says a lot that is far from every label
    assert (flood["caught"], flood["findings"], flood["hits"]) == (6, 6 + FLOOD_EXTRAS, 6)
    assert flood["precision"] == pytest.approx(6 / (6 + FLOOD_EXTRAS))
    assert flood["precision_ci"] == pytest.approx(wilson(6, 6 + FLOOD_EXTRAS))
    assert flood["false_alarms_per_case"] == pytest.approx(FLOOD_EXTRAS / len(CASES))

    for model in models.values():
        # One answer per case, each 1,000 + 100 tokens: cost is Σ usage × price.
        assert model["usage"] == {
            "requests": len(CASES),
            "input_tokens": 1000 * len(CASES),
            "output_tokens": 100 * len(CASES),
            "reasoning_tokens": 0,
            "cached_tokens": 0,
            "estimated_requests": 0,
        }
        assert model["cost_usd"] == pytest.approx(len(CASES) * ANSWER_USD)
        assert model["usd_per_review"] == pytest.approx(ANSWER_USD)
        assert model["answers"] == {"sent": len(CASES), "cached": 0}
    assert every["usd_per_caught"] == pytest.approx(len(CASES) * ANSWER_USD / 6)
    assert nothing["usd_per_caught"] is None
    assert report["spent_usd"] == pytest.approx(4 * len(CASES) * ANSWER_USD)

    comparisons = {item["model"]: item for item in report["comparisons"]}
    assert all(item["baseline"] == "flags-all" for item in comparisons.values())
    assert comparisons["flags-none"]["difference"] == -1
    assert comparisons["flags-none"]["difference_ci"] == [-1, -1]  # every resample loses every label
    assert comparisons["floods"]["difference_ci"] == [0, 0]
    low, high = comparisons["flags-half"]["difference_ci"]
    assert comparisons["flags-half"]["difference"] == -0.5
    assert -1 <= low < -0.5 < high <= 0
    assert comparisons["flags-half"]["cost_ratio"] == pytest.approx(1)


def test_the_markdown_report_reads_as_the_figures(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_cases(tmp_path / "set")
    code, out, _ = eval_run(capsys, folder, endpoint, models=("flags-all", "flags-none", "flags-half"))
    assert code == 0
    assert "5 cases with 6 labelled bugs. A finding catches a bug when it is on the bug's file within 3 lines" in out
    low, _ = wilson(6, 6)
    assert f"| `flags-all` | **100%** ({low * 100:.0f}–100%), 6 of 6 | **100%** " in out
    assert "| `flags-none` | **0%** (0–39%), 0 of 6 | — (0 of 0) | 0.0 | 5,000 / 500 | $0.001200 | — |" in out
    assert "- `flags-none`: recall 0% vs 100% (difference −100 points, 95% CI −100…−100) at the same cost." in out
    assert "- `flags-half`: recall 50% vs 100% (difference −50 points, 95% CI" in out
    assert "Answers: 15 from the endpoints, 0 from the cache; this run spent $0.0180." in out


def test_a_rerun_is_answered_by_the_cache_with_the_same_figures(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_cases(tmp_path / "set")
    _, first, _ = eval_run(capsys, folder, endpoint, "--format", "json", models=("flags-half", "floods"))
    assert len(endpoint.requests) == 2 * len(CASES)
    endpoint.reset()
    _, again, _ = eval_run(capsys, folder, endpoint, "--format", "json", models=("flags-half", "floods"))
    assert endpoint.requests == []
    before, after = json.loads(first), json.loads(again)
    assert after["spent_usd"] == 0
    for old, new in zip(before["models"], after["models"], strict=True):
        assert new["answers"] == {"sent": 0, "cached": len(CASES)}
        for key in ("recall", "recall_ci", "precision", "precision_ci", "usage", "cost_usd", "cases"):
            assert new[key] == old[key]


def test_dry_run_prints_the_plan_and_sends_nothing(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_cases(tmp_path / "set")
    code, out, _ = eval_run(capsys, folder, endpoint, "--dry-run", models=("flags-all", "floods"))
    assert code == 0
    assert "(dry run: nothing sent)" in out
    assert "5 cases with 6 labelled bugs." in out
    assert "| `flags-all` | 5 | 0 | 5 |" in out
    assert "Estimated cost of the run: $0." in out
    code, out, _ = eval_run(capsys, folder, endpoint, "--dry-run", "--format", "json", models=("flags-all",))
    plan = json.loads(out)
    assert plan["schema"] == "reviewbot.eval.plan/1"
    assert plan["models"][0]["requests"] == 5
    assert plan["estimated_cost_usd"] == plan["models"][0]["estimated_cost_usd"] > 0
    assert endpoint.requests == []


def test_max_cost_below_the_estimate_refuses_before_sending(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_cases(tmp_path / "set")
    code, out, err = eval_run(capsys, folder, endpoint, "--max-cost", "0.001", models=("flags-all",))
    assert code == 2
    assert out == ""
    assert err.startswith("reviewbot: the run is estimated at $")
    assert "over --max-cost $0.001000; nothing was sent" in err
    assert endpoint.requests == []
    code, _, _ = eval_run(capsys, folder, endpoint, "--max-cost", "1", models=("flags-all",))
    assert code == 0
    assert len(endpoint.requests) == len(CASES)


def test_the_report_can_go_to_a_file(endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_cases(tmp_path / "set")
    code, out, _ = eval_run(capsys, folder, endpoint, "-o", str(tmp_path / "report.md"), models=("flags-all",))
    assert (code, out) == (0, "")
    assert "| `flags-all` |" in (tmp_path / "report.md").read_text("utf-8")
    code, _, err = eval_run(capsys, folder, endpoint, "-o", str(tmp_path / "no" / "r.md"), models=("flags-all",))
    assert code == 2
    assert "the folder" in err
    assert len(endpoint.requests) == len(CASES)  # nothing was sent for the run that could not write


def test_a_model_that_answers_nothing_exits_3(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_cases(tmp_path / "set")
    endpoint.set_default(lambda body: Reply.status(503))
    code, out, err = eval_run(capsys, folder, endpoint, "--retries", "0", models=("flags-all",))
    assert code == 3
    assert "every request of flags-all failed" in err
    assert "5 requests of `flags-all` failed after retries" in out
    assert "their bugs count as missed" in out


def test_a_missing_set_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "run", str(tmp_path / "nothing-here")]) == 2
    assert "does not exist; name a case folder" in capsys.readouterr().err


def test_one_case_shows_one_latency_and_no_comparison(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_cases(tmp_path / "set", CASES[:1])
    code, out, _ = eval_run(capsys, folder, endpoint, models=("flags-all",))
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("| `flags-all`")]
    assert re.search(r"\| \$0\.000600 \| \d+\.\d \|$", row)  # a median, and no spread of one review
    assert "Against" not in out
