"""The README cannot rot: its settings table is generated from the settings themselves, and its
table of the GitHub Action's inputs from ``action.yml``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml
from pydantic import AliasChoices

from reviewbot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
INPUTS_START, INPUTS_END = "<!-- action-inputs:start -->", "<!-- action-inputs:end -->"


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


TABLES = ((START, END, settings_table), (INPUTS_START, INPUTS_END, action_inputs_table))


def between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def test_the_settings_table_matches_the_settings() -> None:
    current = between(README.read_text("utf-8"), START, END)
    assert current == settings_table(), "run `python tests/test_readme.py` to update the README"


def test_the_action_inputs_table_matches_action_yml() -> None:
    current = between(README.read_text("utf-8"), INPUTS_START, INPUTS_END)
    assert current == action_inputs_table(), "run `python tests/test_readme.py` to update the README"


def test_the_readme_shows_the_commands_ci_runs() -> None:
    text = README.read_text("utf-8")
    for marker in ("<!-- ci:quickstart -->", "<!-- ci:tests -->"):
        block = re.search(re.escape(marker) + r"\n```sh\n(.*?)```", text, re.DOTALL)
        assert block is not None, marker
    assert "reviewbot review examples/leeway.diff --dry-run" in text


if __name__ == "__main__":
    text = README.read_text("utf-8")
    for start, end, table in TABLES:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{table()}\n{end}{tail}"
    README.write_text(text, encoding="utf-8")
    sys.exit(0)
