"""The README cannot rot: its settings table, the GitHub Action's inputs table (from ``action.yml``)
and the `reviewbot prices` example are generated from the code."""

from __future__ import annotations

import io
import os
import re
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices

from reviewbot.cli import main
from reviewbot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
INPUTS_START, INPUTS_END = "<!-- action-inputs:start -->", "<!-- action-inputs:end -->"
PRICES_START, PRICES_END = "<!-- prices-example:start -->", "<!-- prices-example:end -->"
_DAY = re.compile(r" on \d{4}-\d{2}-\d{2},")


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        variable = alias.choices[0] if isinstance(alias, AliasChoices) else f"REVIEWBOT_{name.upper()}"
        default = field.get_default(call_default_factory=True)
        shown = "—" if default in (None, [], {}, "") else f"`{getattr(default, 'value', default)}`"
        rows.append(f"| `{variable}` | {shown} | {field.description} |")
    return "\n".join(rows)


def action_inputs_table() -> str:
    action = yaml.safe_load((ROOT / "action.yml").read_text("utf-8"))
    rows = ["| input | default | meaning |", "|---|---|---|"]
    for name, spec in action["inputs"].items():
        default = str(spec.get("default", ""))
        shown = f"`{default}`" if default else "—"
        rows.append(f"| `{name}` | {shown} | {' '.join(spec['description'].split())} |")
    return "\n".join(rows)


def prices_example() -> str:
    """What `reviewbot prices` prints with no settings (run with none in the environment)."""
    printed = io.StringIO()
    with redirect_stdout(printed):
        main(["prices"])
    return f"```text\n$ reviewbot prices\n{printed.getvalue()}```"


def section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def replaced(text: str, start: str, end: str, body: str) -> str:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def test_the_settings_table_matches_the_settings() -> None:
    current = section(README.read_text("utf-8"), START, END)
    assert current == settings_table(), "run `python tests/test_readme.py` to update the README"


def test_the_action_inputs_table_matches_action_yml() -> None:
    current = section(README.read_text("utf-8"), INPUTS_START, INPUTS_END)
    assert current == action_inputs_table(), "run `python tests/test_readme.py` to update the README"


@pytest.mark.usefixtures("clean_environment")
def test_the_prices_example_is_what_the_command_prints() -> None:
    current = section(README.read_text("utf-8"), PRICES_START, PRICES_END)
    assert _DAY.sub(" on DAY,", current) == _DAY.sub(" on DAY,", prices_example()), (
        "run `python tests/test_readme.py` to update the README"
    )


def test_the_cost_section_says_where_prices_come_from_and_how_to_correct_one() -> None:
    costs = README.read_text("utf-8").split("## What it costs", 1)[1].split("\n## ", 1)[0]
    for layer in ("usage.cost", "REVIEWBOT_INPUT_PRICE", "REVIEWBOT_PRICES", "reviewbot/data/prices.toml"):
        assert layer in costs
    for name in ("genai-prices", "REVIEWBOT_PRICE_PROVIDER", "REVIEWBOT_COMPARE_WITH", "reviewbot prices", "estimate"):
        assert name in costs
    assert "To correct a price" in costs


def test_the_readme_shows_the_commands_ci_runs() -> None:
    text = README.read_text("utf-8")
    for marker in ("<!-- ci:quickstart -->", "<!-- ci:tests -->"):
        block = re.search(re.escape(marker) + r"\n```sh\n(.*?)```", text, re.DOTALL)
        assert block is not None, marker
    assert "reviewbot review examples/leeway.diff --dry-run" in text


if __name__ == "__main__":
    for name in [name for name in os.environ if name.startswith(("REVIEWBOT_", "OPENAI_"))]:
        del os.environ[name]
    text = README.read_text("utf-8")
    text = replaced(text, START, END, settings_table())
    text = replaced(text, INPUTS_START, INPUTS_END, action_inputs_table())
    README.write_text(replaced(text, PRICES_START, PRICES_END, prices_example()), encoding="utf-8")
    sys.exit(0)
