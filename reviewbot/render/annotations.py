"""GitHub Actions workflow commands: one ``::error``/``::warning``/``::notice`` line per finding.

Escaping follows @actions/core (``escapeData`` and ``escapeProperty`` in its command.ts): a
newline in the model's text would otherwise end the command and start a line the runner
reads as a new, attacker-chosen command.
"""

from __future__ import annotations

from reviewbot.engine.diff import Side
from reviewbot.engine.pricing import CostReport, cost_note
from reviewbot.engine.result import Finding, ReviewResult
from reviewbot.render.text import failed_summary
from reviewbot.severity import Severity

_COMMANDS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "notice",
    Severity.INFO: "notice",
}


def escape_data(text: str) -> str:
    """The message part of a command: ``%``, CR and LF escaped."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value: as the message, plus ``:`` and ``,`` which separate properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str | int) -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def annotation(finding: Finding) -> str:
    """The workflow command for one finding."""
    properties: dict[str, str | int] = {"file": finding.path}
    prefix = ""
    if finding.line is not None and finding.side is Side.RIGHT:
        properties["line"] = finding.start_line or finding.line
        properties["endLine"] = finding.line
    elif finding.line is not None:
        # Annotations land on the new file; a removed line is named in the message instead.
        start = finding.start_line or finding.line
        lines = f"line {start}" if start == finding.line else f"lines {start}-{finding.line}"
        prefix = f"On removed {lines} of the old file: "
    properties["title"] = f"{finding.severity}: {' '.join(finding.title.split())}"
    message = prefix + finding.body.strip()
    if finding.suggestion is not None:
        message += "\n\nSuggested change:\n" + finding.suggestion
    return command(_COMMANDS[finding.severity], message, **properties)


def render_annotations(result: ReviewResult, cost: CostReport) -> str:
    lines = [annotation(finding) for finding in result.findings]
    if (failed := failed_summary(result)) is not None:
        kind = "error" if result.all_requests_failed else "warning"
        lines.append(command(kind, failed, title="reviewbot"))
    lines.append(command("notice", cost_note(cost), title="reviewbot cost"))
    return "\n".join(lines) + "\n"
