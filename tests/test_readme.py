"""The README cannot rot: its settings table is generated from the settings themselves."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pydantic import AliasChoices

from reviewbot.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        variable = alias.choices[0] if isinstance(alias, AliasChoices) else f"REVIEWBOT_{name.upper()}"
        default = field.get_default(call_default_factory=True)
        shown = "—" if default in (None, [], {}, "") else f"`{getattr(default, 'value', default)}`"
        rows.append(f"| `{variable}` | {shown} | {field.description} |")
    return "\n".join(rows)


def test_the_settings_table_matches_the_settings() -> None:
    text = README.read_text("utf-8")
    current = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert current == settings_table(), "run `python tests/test_readme.py` to update the README"


def test_the_readme_shows_the_commands_ci_runs() -> None:
    text = README.read_text("utf-8")
    for marker in ("<!-- ci:quickstart -->", "<!-- ci:tests -->"):
        block = re.search(re.escape(marker) + r"\n```sh\n(.*?)```", text, re.DOTALL)
        assert block is not None, marker
    assert "reviewbot review examples/leeway.diff --dry-run" in text


if __name__ == "__main__":
    text = README.read_text("utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}", encoding="utf-8")
    sys.exit(0)
