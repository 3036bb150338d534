"""Turn a review, or the plan of one, into text: pure functions that return strings.

Formats: ``text`` for people in a terminal, ``json`` and ``sarif`` for tools, ``markdown``
for a PR comment, ``github`` for GitHub Actions annotations (workflow commands).
"""

from __future__ import annotations

from reviewbot.engine.pricing import CostReport
from reviewbot.engine.result import ReviewResult
from reviewbot.engine.review import Prepared
from reviewbot.errors import ConfigError
from reviewbot.render.annotations import render_annotations
from reviewbot.render.json_out import plan_to_dict, render_json, render_plan_json, result_to_dict
from reviewbot.render.markdown import render_markdown, render_plan_markdown
from reviewbot.render.sarif import render_sarif, result_to_sarif
from reviewbot.render.text import render_plan_text, render_text

FORMATS = ("text", "json", "markdown", "sarif", "github")
PLAN_FORMATS = ("text", "json", "markdown")

__all__ = [
    "FORMATS",
    "PLAN_FORMATS",
    "plan_to_dict",
    "render_plan",
    "render_result",
    "result_to_dict",
    "result_to_sarif",
]


def render_result(result: ReviewResult, fmt: str, *, cost: CostReport, color: bool = False) -> str:
    """``result`` in format ``fmt``; ``color`` adds ANSI codes to the text format only."""
    if fmt == "text":
        return render_text(result, cost, color=color)
    if fmt == "json":
        return render_json(result, cost)
    if fmt == "markdown":
        return render_markdown(result, cost)
    if fmt == "sarif":
        return render_sarif(result)
    if fmt == "github":
        return render_annotations(result, cost)
    raise ConfigError(_unknown(fmt))


def render_plan(prepared: Prepared, fmt: str, *, color: bool = False) -> str:
    """The dry run: what would be reviewed, skipped and sent, with estimated tokens and costs."""
    if fmt == "text":
        return render_plan_text(prepared, color=color)
    if fmt == "json":
        return render_plan_json(prepared)
    if fmt == "markdown":
        return render_plan_markdown(prepared)
    if fmt in FORMATS:
        raise ConfigError("--dry-run supports --format text, json or markdown")
    raise ConfigError(_unknown(fmt))


def _unknown(fmt: str) -> str:
    return f"--format {fmt!r} is not a format reviewbot knows; use one of {', '.join(FORMATS)}"
