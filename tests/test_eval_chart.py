"""`reviewbot eval run --chart FILE`: recall against dollars per review, one point per model with its
interval, as SVG or PNG; a clear one-line error when the `eval` extra is not installed."""

from __future__ import annotations

import asyncio
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply
from reviewbot.cli import main
from reviewbot.eval.cache import AnswerCache
from reviewbot.eval.cases import load_set
from reviewbot.eval.chart import Point, write_chart
from reviewbot.eval.metrics import score_run
from reviewbot.eval.models import models_under_test
from reviewbot.eval.plan import plan_run
from reviewbot.eval.runner import run_plan
from reviewbot.eval.stats import wilson
from scripted_reviewer import CASES, USAGE, on_labels, title_of, write_cases

pytestmark = pytest.mark.usefixtures("clean_environment")

SVG = "{http://www.w3.org/2000/svg}"
HALF = {"lib", "version"}  # 3 of the 6 labels
# (name, input and output price in USD per million tokens, cases whose labels it flags)
MODELS: tuple[tuple[str, float, float, set[str]], ...] = (
    ("flags-all", 3.0, 15.0, {case.id for case in CASES}),
    ("flags-half", 0.2, 0.8, HALF),
    ("flags-none", 0.1, 0.3, set()),
)


@pytest.fixture
def endpoint(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.setenv("REVIEWBOT_API_KEY", "sk-eval-test")
    by_title = {case.title: case for case in CASES}

    def answer(body: dict[str, Any]) -> Reply:
        case = by_title[title_of(body["messages"][1]["content"])]
        flagged = next(cases for name, _, _, cases in MODELS if name == body["model"])
        return Reply.json({"findings": on_labels(case) if case.id in flagged else []}, usage=USAGE)

    fake_openai.set_default(answer)
    return fake_openai


def eval_run(endpoint: FakeOpenAI, tmp_path: Path, chart: Path) -> list[str]:
    models = [
        argument
        for name, input_price, output_price, _ in MODELS
        for argument in ("--model", f"{name}@{endpoint.base_url},input_price={input_price},output_price={output_price}")
    ]
    folder = write_cases(tmp_path / "set")
    return ["eval", "run", str(folder), *models, "--cache", str(tmp_path / "cache"), "--chart", str(chart)]


def test_the_svg_chart_holds_one_point_per_model_with_its_interval(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "recall-vs-cost.svg"
    assert main(eval_run(endpoint, tmp_path, chart)) == 0
    assert f"Chart: {chart}" in capsys.readouterr().out

    root = ElementTree.parse(chart).getroot()  # noqa: S314 - the chart this test just drew
    assert root.tag == f"{SVG}svg"
    points = [group for group in root.iter(f"{SVG}g") if group.get("id", "").startswith("point-")]
    bars = [group for group in root.iter(f"{SVG}g") if group.get("id", "").startswith("interval-")]
    assert len(points) == len(bars) == len(MODELS)
    texts = {"".join(text.itertext()).strip() for text in root.iter(f"{SVG}text")}
    assert {name for name, _, _, _ in MODELS} <= texts
    assert {"recall (95% CI)", "USD per review"} <= texts


def test_the_points_are_each_models_cost_per_review_and_recall_interval(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    specs = [f"{name}@{endpoint.base_url},input_price={i},output_price={o}" for name, i, o, _ in MODELS]
    cache = AnswerCache(tmp_path / "cache")
    plan = plan_run(load_set(str(write_cases(tmp_path / "set"))), models_under_test(specs), cache)
    scores = score_run(asyncio.run(run_plan(plan, cache)).models)

    points = write_chart(scores, tmp_path / "chart.svg", "reviewbot:starter")

    labels = sum(len(case.labels) for case in CASES)
    caught = {"flags-all": labels, "flags-half": 3, "flags-none": 0}
    expected = []
    for name, input_price, output_price, _ in MODELS:
        # Each review of the set is one answer of 1,000 tokens in and 100 out.
        usd = (USAGE.prompt_tokens * input_price + USAGE.completion_tokens * output_price) / 1_000_000
        interval = wilson(caught[name], labels)
        assert interval is not None
        expected.append(Point(name, usd, caught[name] / labels, interval.low, interval.high))
    assert [point.label for point in points] == [point.label for point in expected]
    for point, wanted in zip(points, expected, strict=True):
        assert point.usd_per_review == pytest.approx(wanted.usd_per_review)
        assert (point.recall, point.low, point.high) == (wanted.recall, wanted.low, wanted.high)


def test_a_png_chart_is_a_png(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    chart = tmp_path / "recall-vs-cost.png"
    assert main(eval_run(endpoint, tmp_path, chart)) == 0
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_another_chart_format_is_refused_before_anything_is_sent(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(eval_run(endpoint, tmp_path, tmp_path / "chart.pdf")) == 2
    assert capsys.readouterr().err == f"reviewbot: --chart {tmp_path / 'chart.pdf'}: name a .svg or .png file\n"
    assert endpoint.requests == []


def test_without_the_eval_extra_the_chart_asks_for_it_in_one_line(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes `import matplotlib` fail as it does when the package is absent.
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    assert main(eval_run(endpoint, tmp_path, tmp_path / "chart.svg")) == 2

    err = capsys.readouterr().err
    assert err == "reviewbot: --chart needs matplotlib: pip install 'reviewbot[eval]'\n"
    assert endpoint.requests == []
