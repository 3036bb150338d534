"""Plain text for people in a terminal, with ANSI colour only when asked for.

Everything the model wrote and every path from the diff is untrusted: control characters
(an escape sequence could rewrite the terminal) are shown as ``\\x1b``-style text, so output
without colour never carries an ANSI code, whatever the model said.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Iterable

from reviewbot.engine.diff import Side
from reviewbot.engine.plan import Plan
from reviewbot.engine.pricing import CostReport, cost_note, format_usd
from reviewbot.engine.result import Finding, Repairs, ReviewResult, SkippedFile
from reviewbot.engine.review import Prepared
from reviewbot.engine.usage import Usage
from reviewbot.render.json_out import PlanCosts, plan_costs
from reviewbot.severity import Severity

WIDTH = 100
_INDENT = "      "

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_SEVERITY_STYLE = {
    Severity.CRITICAL: "\x1b[1;31m",
    Severity.HIGH: "\x1b[31m",
    Severity.MEDIUM: "\x1b[33m",
    Severity.LOW: "\x1b[36m",
    Severity.INFO: _DIM,
}
# C0 controls but tab and newline, DEL, and the C1 controls (0x9b is a one-byte CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_REPAIR_WORDS = (
    ("moved", "moved"),
    ("trimmed", "trimmed to one hunk"),
    ("to_file_level", "kept as file notes"),
    ("dropped", "dropped"),
    ("merged", "merged as duplicates"),
    ("capped", "left out by the findings cap"),
    ("below_threshold", "below the minimum severity"),
    ("invalid_json", "replies needed a JSON repair"),
    ("on_context", "on context lines outside the diff, kept as file notes"),
)


def clean(text: str) -> str:
    """``text`` with control characters spelled out, so it cannot drive the terminal."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def line_span(finding: Finding) -> str | None:
    """``12`` or ``10-12`` on the finding's side; None for a file-level note."""
    if finding.line is None:
        return None
    if finding.start_line is not None and finding.start_line != finding.line:
        return f"{finding.start_line}-{finding.line}"
    return str(finding.line)


def location(finding: Finding) -> str:
    """``path:10-12``, ``path:7 (LEFT)`` for removed lines, or ``path (file-level)``."""
    span = line_span(finding)
    if span is None:
        return f"{finding.path} (file-level)"
    marker = " (LEFT)" if finding.side is Side.LEFT else ""
    return f"{finding.path}:{span}{marker}"


def severity_counts(findings: Iterable[Finding]) -> str:
    """``1 high, 2 medium``, most severe first."""
    counts = Counter(finding.severity for finding in findings)
    return ", ".join(f"{counts[severity]} {severity}" for severity in Severity if counts[severity])


def failed_summary(result: ReviewResult) -> str | None:
    """``3 of 14 parts could not be reviewed: <reasons>``, or None when every request succeeded."""
    if not result.failed:
        return None
    reasons = "; ".join(dict.fromkeys(failure.reason for failure in result.failed))
    total = max(result.requests_planned, len(result.failed))
    return f"{len(result.failed)} of {total} parts could not be reviewed: {reasons}"


def repairs_summary(repairs: Repairs) -> str | None:
    """``2 moved, 1 kept as file notes``, or None when nothing needed repair."""
    parts = [f"{getattr(repairs, name)} {words}" for name, words in _REPAIR_WORDS if getattr(repairs, name)]
    return ", ".join(parts) if parts else None


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color and text else text


def render_text(result: ReviewResult, cost: CostReport, *, color: bool = False) -> str:
    """The review as people read it in a terminal."""
    style = _Style(color)
    lines: list[str] = []
    if result.findings:
        files = list(dict.fromkeys(finding.path for finding in result.findings))
        lines.append(
            f"{plural(len(result.findings), 'finding')} in {plural(len(files), 'file')} "
            f"({severity_counts(result.findings)})"
        )
        for path in files:
            lines += ["", style(_BOLD, clean(path))]
            for finding in result.findings:
                if finding.path == path:
                    lines += _finding_lines(finding, style)
    elif result.all_requests_failed:
        lines.append("Nothing was reviewed: every model request failed.")
    else:
        lines.append("No findings.")
    lines += _left_out_lines(result)
    lines += ["", clean(cost_note(cost))]
    return "\n".join(lines) + "\n"


def _finding_lines(finding: Finding, style: _Style) -> list[str]:
    label = style(_SEVERITY_STYLE[finding.severity], f"{finding.severity.upper():<8}")
    title = clean(" ".join(finding.title.split()))
    lines = [f"  {label} {clean(location(finding))}  {style(_BOLD, title)} [{finding.category}]"]
    lines += _wrap(finding.body)
    if finding.code:
        lines += [style(_DIM, f"{_INDENT}│ {clean(line)}") for line in finding.code.splitlines()]
    if finding.suggestion is not None:
        lines.append(f"{_INDENT}Suggested change:")
        lines += [f"{_INDENT}+ {clean(line)}" for line in finding.suggestion.splitlines() or [""]]
    return lines


def _wrap(body: str) -> list[str]:
    """Wrap prose to the terminal width; keep indented lines (code) as they are."""
    lines: list[str] = []
    for raw in clean(body.strip()).splitlines():
        if not raw.strip() or raw[0] in " \t":
            lines.append(f"{_INDENT}{raw}".rstrip())
            continue
        lines += textwrap.wrap(
            raw,
            width=WIDTH,
            initial_indent=_INDENT,
            subsequent_indent=_INDENT,
            break_long_words=False,
            break_on_hyphens=False,
        )
    return lines


#: Files of one skip reason named one by one; past this, one line says how many.
LISTED_PER_REASON = 3


def skipped_by_reason(skipped: Iterable[SkippedFile]) -> list[tuple[str, list[str]]]:
    """The skipped files' paths grouped by reason, reasons in the order they first appear."""
    groups: dict[str, list[str]] = {}
    for item in skipped:
        groups.setdefault(item.reason, []).append(item.path)
    return list(groups.items())


def skipped_summary(reason: str, paths: list[str]) -> str:
    """One reason's files in a line: ``lock file: uv.lock`` or ``… : 730 files (a, b, c, and 727 more)``."""
    if len(paths) <= LISTED_PER_REASON:
        return f"{reason}: {', '.join(paths)}"
    shown = ", ".join(paths[:LISTED_PER_REASON])
    return f"{reason}: {len(paths):,} files ({shown}, and {len(paths) - LISTED_PER_REASON:,} more)"


def _left_out_lines(result: ReviewResult) -> list[str]:
    lines: list[str] = []
    if result.skipped:
        lines += ["", "Skipped:"]
        for reason, paths in skipped_by_reason(result.skipped):
            lines += textwrap.wrap(
                clean(skipped_summary(reason, paths)), width=WIDTH, initial_indent="  ", subsequent_indent="    "
            )
    if result.not_reviewed:
        lines += ["", "Not reviewed:"]
        lines += [
            clean(f"  {gap.path}:{_range(gap.start_line, gap.end_line)} — {gap.reason}") for gap in result.not_reviewed
        ]
    if (failed := failed_summary(result)) is not None:
        lines += ["", clean(failed)]
    if (repairs := repairs_summary(result.repairs)) is not None:
        lines += ["", f"anchoring: {repairs}"]
    return lines


def _range(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def render_plan_text(prepared: Prepared, *, color: bool = False) -> str:
    """What a review would send, for a dry run in a terminal."""
    style = _Style(color)
    plan = prepared.plan
    costs = plan_costs(prepared)
    skipped = {skipped.path: skipped.reason for skipped in prepared.skipped}
    groups = skipped_by_reason(prepared.skipped)
    # A reason with many files (an include glob on a big diff) is one line, not hundreds.
    crowded = {reason for reason, paths in groups if len(paths) > LISTED_PER_REASON}
    lines = [f"Dry run: nothing was sent to {clean(prepared.options.model)}.", ""]
    lines.append(style(_BOLD, f"Files ({len(prepared.reviewable)} to review, {len(skipped)} skipped):"))
    for file in prepared.diff.files:
        reason = skipped.get(file.path)
        if reason in crowded:
            continue
        change = f"+{file.added} -{file.removed}"
        note = f"  skipped: {reason}" if reason is not None else ""
        lines.append(clean(f"  {file.status:<12} {file.path}  {change}{note}"))
    lines += [clean(f"  skipped, {skipped_summary(reason, paths)}") for reason, paths in groups if reason in crowded]
    lines += ["", style(_BOLD, f"Requests ({len(plan.requests)}):")]
    for request, request_costs in zip(plan.requests, costs.requests, strict=True):
        lines.append(
            clean(f"  #{request.index + 1}  {', '.join(request.paths)}")
            + f"  ~{request.estimated_tokens:,} input + ~{costs.output_tokens:,} output tokens"
            + f"  {_costs(request_costs)}"
        )
    if plan.not_reviewed:
        lines += ["", "Not reviewed:"]
        lines += [
            clean(f"  {gap.path}:{_range(gap.start_line, gap.end_line)} — {gap.reason}") for gap in plan.not_reviewed
        ]
    lines += ["", *_plan_totals(plan, costs)]
    if prepared.options.context == "function":
        widened = sum(1 for file in prepared.reviewable if any(h.context_before or h.context_after for h in file.hunks))
        lines.append(
            f"Context: function: {plural(widened, 'file')} widened to their enclosing functions or classes "
            f"(at most {prepared.options.context_max_tokens:,} tokens a hunk)."
        )
    lines.append(_price_line(prepared))
    lines += ["", "Use --format json to see the exact messages each request would send."]
    return "\n".join(lines) + "\n"


def _price_line(prepared: Prepared) -> str:
    """Where the model's price comes from, or which setting would give it one."""
    model = clean(prepared.options.model)
    quote = prepared.options.prices.quote(prepared.options.model)
    missing = quote.missing(Usage(1, 1)) if quote is not None else ("input", "output")
    where = "`reviewbot prices` shows where prices come from."
    if not missing:
        assert quote is not None
        return f"{model} is priced {quote.describe()}; {where}"
    names = " and ".join(f"REVIEWBOT_{side.upper()}_PRICE" for side in missing)
    return f"The {' and '.join(missing)} price of {model} is unknown: set {names} (USD per million tokens); {where}"


def _plan_totals(plan: Plan, costs: PlanCosts) -> list[str]:
    budget = plan.budget
    return [
        f"Estimated total: {plural(len(plan.requests), 'request')}, ~{plan.estimated_tokens:,} input + "
        f"~{costs.output_tokens * len(plan.requests):,} output tokens; {_costs(costs.total)}",
        f"Budget: a {budget.context_window:,}-token context window, {budget.max_output_tokens:,} kept for the "
        f"answer, {budget.per_request:,} per request.",
    ]


def _costs(costs: dict[str, float | None]) -> str:
    return ", ".join(clean(f"{label} {format_usd(usd)}") for label, usd in costs.items())
