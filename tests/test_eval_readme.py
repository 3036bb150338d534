"""The README's example eval report is what the starter set gives three scripted models today."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply, TokenUsage
from reviewbot.cli import main
from reviewbot.engine.prompt import render_lines
from reviewbot.eval.cases import STARTER, Case, load_set
from scripted_reviewer import far_from_labels, on_labels, shows_file

README = Path(__file__).resolve().parents[1] / "README.md"
CASES = load_set(STARTER).cases
EVERY_OTHER = {case.id for case in sorted(CASES, key=lambda case: case.id)[::2]}
EVERY_THIRD = {case.id for case in sorted(CASES, key=lambda case: case.id)[::3]}
SHOWN = {
    case.id: [text for file in case.parsed().files for hunk in file.hunks for text in render_lines(hunk.lines)]
    for case in CASES
}
# (name, input and output price in USD per million tokens, what it flags)
MODELS: tuple[tuple[str, float, float, Any], ...] = (
    ("finds-all", 3.0, 15.0, on_labels),
    ("finds-half", 0.2, 0.8, lambda case: on_labels(case) if case.id in EVERY_OTHER else []),
    ("noisy", 0.1, 0.3, lambda case: (on_labels(case) if case.id in EVERY_THIRD else []) + far_from_labels(case, 2)),
)

pytestmark = pytest.mark.usefixtures("clean_environment")


def the_case(user: str) -> Case:
    """The case a request shows: its title, and every line of its diff (cases of one commit share a title)."""
    title = next(line.removeprefix("Title: ") for line in user.splitlines() if line.startswith("Title: "))
    return next(case for case in CASES if case.title == title and all(text in user for text in SHOWN[case.id]))


def answer(body: dict[str, Any]) -> Reply:
    user = body["messages"][1]["content"]
    script = next(flags for name, _, _, flags in MODELS if name == body["model"])
    findings = [item for item in script(the_case(user)) if shows_file(user, item["path"])]
    return Reply.json({"findings": findings}, usage=TokenUsage(1200, 150))


def without_latency(text: str) -> str:
    """The report with its latency column blanked: loopback timings vary with the machine's load."""
    return re.sub(r"\| [\d.]+, [\d.]+ \|$", "| … |", text, flags=re.MULTILINE)


def test_the_readme_shows_the_report_the_starter_set_gives(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REVIEWBOT_API_KEY", "sk-readme")
    fake_openai.set_default(answer)
    specs = [
        argument
        for name, input_price, output_price, _ in MODELS
        for argument in (
            "--model",
            f"{name}@{fake_openai.base_url},input_price={input_price},output_price={output_price}",
        )
    ]
    assert main(["eval", "run", STARTER, *specs, "--cache", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    shown = README.read_text("utf-8").split("### Choosing a model", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    expected = report.split("\n\nAnswers:", 1)[0] + "\n"
    assert without_latency(shown) == without_latency(expected), "paste the report printed by this test in the README"
