"""GitHub-flavoured Markdown: the review as a PR comment or review body, and the dry-run plan.

Paths go in code spans and code in fences sized past any backticks inside them, so a name or
a line of code cannot break out of its formatting. The model's prose is Markdown already and
is passed through, neutralised (:mod:`reviewbot.render.model_text`): a report pasted into a
pull request must not notify anyone the model named.
"""

from __future__ import annotations

import re

from reviewbot.engine.diff import Side
from reviewbot.engine.pricing import CostReport, cost_note, format_usd
from reviewbot.engine.result import Finding, ReviewResult
from reviewbot.engine.review import Prepared
from reviewbot.render.json_out import plan_costs
from reviewbot.render.model_text import neutralise, neutralise_line
from reviewbot.render.text import (
    LISTED_PER_REASON,
    failed_summary,
    line_span,
    plural,
    repairs_summary,
    severity_counts,
    skipped_by_reason,
)

_BACKTICKS = re.compile(r"`+")


def code_span(text: str) -> str:
    """``text`` as an inline code span, with a delimiter longer than any backtick run inside."""
    text = " ".join(text.splitlines())
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if longest or text.startswith(" ") or text.endswith(" ") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fence(text: str, info: str = "", indent: str = "") -> list[str]:
    """A fenced code block around ``text``, its fence longer than any backtick run in it."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return [f"{indent}{ticks}{info}", *(f"{indent}{line}" for line in text.splitlines()), f"{indent}{ticks}"]


def _cell(text: str) -> str:
    """Text safe inside a table cell: no newlines, and pipes escaped (GitHub wants that even in code)."""
    return " ".join(text.splitlines()).replace("|", "\\|")


def render_markdown(result: ReviewResult, cost: CostReport) -> str:
    """The review as a Markdown comment."""
    anchored = [finding for finding in result.findings if finding.anchored]
    notes = [finding for finding in result.findings if not finding.anchored]
    lines = ["## reviewbot review", ""]
    if result.findings:
        lines.append(
            f"**{plural(len(result.findings), 'finding')}** ({severity_counts(result.findings)}) "
            f"from {code_span(result.model)}."
        )
    elif result.all_requests_failed:
        lines.append(f"Nothing was reviewed: every request to {code_span(result.model)} failed.")
    else:
        lines.append(f"No findings from {code_span(result.model)}.")
    for heading, findings in (("### Findings", anchored), ("### File-level notes", notes)):
        if findings:
            lines += ["", heading]
            for finding in findings:
                lines += ["", *_finding(finding)]
    if (failed := failed_summary(result)) is not None:
        lines += ["", f"> [!WARNING]\n> {' '.join(failed.splitlines())}"]
    lines += _left_out(result)
    if (repairs := repairs_summary(result.repairs)) is not None:
        lines += ["", f"<sub>Anchoring: {repairs}.</sub>"]
    lines += ["", "---", "", cost_note(cost)]
    return "\n".join(lines) + "\n"


def _finding(finding: Finding) -> list[str]:
    span = line_span(finding)
    where = code_span(finding.path if span is None else f"{finding.path}:{span}")
    if span is not None and finding.side is Side.LEFT:
        where += " (removed lines)"
    title = neutralise_line(finding.title)
    lines = [f"- **{finding.severity.upper()}** · {finding.category} · {where} — {title}"]
    body = neutralise(finding.body.strip())
    if body:
        lines += ["", *(f"  {line}".rstrip() for line in body.splitlines())]
    if finding.suggestion is not None:
        # GitHub applies a suggestion block to new-file lines only.
        if finding.anchored and finding.side is Side.RIGHT:
            lines += ["", *fence(finding.suggestion, "suggestion", "  ")]
        else:
            lines += ["", "  Suggested change:", "", *fence(finding.suggestion, "", "  ")]
    return lines


def _left_out(result: ReviewResult) -> list[str]:
    if not result.skipped and not result.not_reviewed:
        return []
    parts = []
    if result.skipped:
        parts.append(plural(len(result.skipped), "file") + " skipped")
    if result.not_reviewed:
        parts.append(plural(len(result.not_reviewed), "range") + " not reviewed")
    lines = ["", "<details>", f"<summary>{', '.join(parts)}</summary>", ""]
    if result.skipped:
        lines += ["**Skipped**", ""]
        for reason, paths in skipped_by_reason(result.skipped):
            if len(paths) > LISTED_PER_REASON:
                shown = ", ".join(code_span(path) for path in paths[:LISTED_PER_REASON])
                lines.append(
                    f"- {len(paths):,} files — {reason} ({shown}, and {len(paths) - LISTED_PER_REASON:,} more)"
                )
            else:
                lines += [f"- {code_span(path)} — {reason}" for path in paths]
        lines.append("")
    if result.not_reviewed:
        lines += ["**Not reviewed**", ""]
        for gap in result.not_reviewed:
            span = str(gap.start_line) if gap.start_line == gap.end_line else f"{gap.start_line}-{gap.end_line}"
            lines.append(f"- {code_span(f'{gap.path}:{span}')} — {gap.reason}")
        lines.append("")
    lines.append("</details>")
    return lines


def render_plan_markdown(prepared: Prepared) -> str:
    """The dry-run plan: a table of files and a table of requests with estimated tokens and costs."""
    plan = prepared.plan
    costs = plan_costs(prepared)
    skipped = {skipped.path: skipped.reason for skipped in prepared.skipped}
    lines = [
        "## reviewbot dry run",
        "",
        f"Nothing was sent to {code_span(prepared.options.model)}. "
        f"{plural(len(plan.requests), 'request')} would review {len(prepared.reviewable)} of "
        f"{plural(len(prepared.diff.files), 'file')}.",
        "",
        "### Files",
        "",
        "| File | Status | Added | Removed | Review |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for file in prepared.diff.files:
        reason = skipped.get(file.path)
        review = f"skipped: {reason}" if reason is not None else "reviewed"
        lines.append(
            f"| {_cell(code_span(file.path))} | {file.status} | {file.added} | {file.removed} | {_cell(review)} |"
        )
    labels = list(costs.total)
    lines += [
        "",
        "### Requests",
        "",
        "| # | Files | Est. input tokens | Est. output tokens | " + " | ".join(_cell(label) for label in labels) + " |",
        "| ---: | --- | ---: | ---: |" + " ---: |" * len(labels),
    ]
    for request, request_costs in zip(plan.requests, costs.requests, strict=True):
        files = ", ".join(code_span(path) for path in request.paths)
        lines.append(
            f"| {request.index + 1} | {_cell(files)} | {request.estimated_tokens:,} | {costs.output_tokens:,} | "
            + " | ".join(format_usd(request_costs[label]) for label in labels)
            + " |"
        )
    lines.append(
        f"| **Total** | | **{plan.estimated_tokens:,}** | **{costs.output_tokens * len(plan.requests):,}** | "
        + " | ".join(f"**{format_usd(costs.total[label])}**" for label in labels)
        + " |"
    )
    if plan.not_reviewed:
        lines += ["", "### Not reviewed", ""]
        for gap in plan.not_reviewed:
            lines.append(f"- {code_span(f'{gap.path}:{gap.start_line}-{gap.end_line}')} — {gap.reason}")
    budget = plan.budget
    lines += [
        "",
        f"Budget: a {budget.context_window:,}-token context window, {budget.max_output_tokens:,} tokens kept for "
        f"the answer, {budget.per_request:,} per request. Token counts are estimates; {_priced(prepared)}.",
    ]
    for request in plan.requests:
        lines += ["", "<details>", f"<summary>Messages of request {request.index + 1}</summary>", ""]
        for message in request.messages:
            lines += [f"**{message['role']}**", "", *fence(message["content"], "text"), ""]
        lines.append("</details>")
    return "\n".join(lines) + "\n"


def _priced(prepared: Prepared) -> str:
    """Where the estimate's price of the model comes from, as the review's cost note will say it."""
    quote = prepared.options.prices.quote(prepared.options.model)
    if quote is None:
        return f"the price of {code_span(prepared.options.model)} is unknown"
    return f"costs are priced {quote.describe()}"
