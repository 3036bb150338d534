"""``action.yml`` hands every input to ``reviewbot action``, and no input can reach a shell script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reviewbot.service.action import COMMAND_INPUTS, SETTING_INPUTS, input_variable, settings_from_inputs
from reviewbot.settings import Settings

ACTION: dict[str, Any] = yaml.safe_load((Path(__file__).resolve().parents[1] / "action.yml").read_text("utf-8"))
STEPS: list[dict[str, Any]] = ACTION["runs"]["steps"]


def review_step() -> dict[str, Any]:
    (step,) = [step for step in STEPS if step.get("id") == "review"]
    return step


def test_it_is_a_composite_action_that_runs_one_command() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert review_step()["run"].strip().endswith('/bin/reviewbot" action')


def test_every_input_reaches_the_command_as_its_input_variable() -> None:
    env = review_step()["env"]
    for name in ACTION["inputs"]:
        assert env[input_variable(name)] == f"${{{{ inputs.{name} }}}}", name
    assert set(ACTION["inputs"]) == set(SETTING_INPUTS) | set(COMMAND_INPUTS)


def test_every_setting_input_names_a_real_setting() -> None:
    assert set(SETTING_INPUTS.values()) <= set(Settings.model_fields)


def test_no_expression_is_expanded_inside_a_script() -> None:
    # An expression in `run:` is pasted into the script before it runs: a script injection.
    for step in STEPS:
        assert "${{" not in step.get("run", ""), step.get("name")


def test_outputs_come_from_the_review_step() -> None:
    assert {name: spec["value"] for name, spec in ACTION["outputs"].items()} == {
        name: f"${{{{ steps.review.outputs.{name} }}}}" for name in ("findings", "cost-usd", "review-url")
    }


def test_each_input_sets_its_setting() -> None:
    from reviewbot.service.action import ActionRun

    run = ActionRun.from_environment({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": "event.json"})
    given = {
        "api-key": "sk-x",
        "base-url": "http://127.0.0.1:9/v1",
        "model": "m",
        "input-price": "0.1",
        "output-price": "0.4",
        "context-window": "8192",
        "max-cost": "0.5",
        "min-severity": "high",
        "max-findings": "7",
        "max-comments": "9",
        "include": "src/**\nlib/**",
        "exclude": "*.md, docs/**",
        "extra-instructions": "Be brief.",
        "review-drafts": "true",
    }
    assert set(given) == set(SETTING_INPUTS)
    settings = settings_from_inputs({input_variable(name): value for name, value in given.items()}, run)
    read = settings.model_dump()
    assert read["api_key"].get_secret_value() == "sk-x"
    assert (read["model"], read["input_price"], read["output_price"]) == ("m", 0.1, 0.4)
    assert (read["context_window"], read["max_cost"], read["max_findings"], read["max_comments"]) == (8192, 0.5, 7, 9)
    assert read["min_severity"].value == "high"
    assert read["include"] == ["src/**", "lib/**"]
    assert read["exclude"] == ["*.md", "docs/**"]
    assert (read["extra_instructions"], read["review_drafts"]) == ("Be brief.", True)
    assert read["github_api_url"] == "https://api.github.com"
