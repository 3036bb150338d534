"""SARIF 2.1.0 in the subset GitHub code scanning ingests.

Follows https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning:
every result has a location with a repository-relative ``artifactLocation.uri`` (GitHub
rejects the whole upload when one result has none), a stable ``ruleId`` per category, and
``partialFingerprints`` so uploads of the same finding dedupe. ``security-severity`` is read
from the rule by GitHub, so the security rule carries the highest one of its results; each
result carries its own as well.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from reviewbot import __version__
from reviewbot.engine.diff import Side
from reviewbot.engine.result import Category, Finding, ReviewResult
from reviewbot.severity import Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
FINGERPRINT_KEY = "reviewbot/v1"

_LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub maps these scores to its critical / high / medium / low security severities.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: 9.0,
    Severity.HIGH: 7.0,
    Severity.MEDIUM: 5.0,
    Severity.LOW: 3.0,
    Severity.INFO: 1.0,
}
_RULE_DESCRIPTIONS = {
    Category.BUG: "A bug: code that does not do what it is meant to",
    Category.SECURITY: "A security problem",
    Category.CORRECTNESS: "A correctness problem: wrong results in some cases",
    Category.PERFORMANCE: "A performance problem",
    Category.MAINTAINABILITY: "A maintainability problem",
    Category.STYLE: "A style issue",
}


def rule_id(category: Category) -> str:
    return f"reviewbot/{category}"


def artifact_uri(path: str) -> str:
    """A repository-relative path as a URI reference: spaces and non-ASCII percent-encoded (UTF-8)."""
    return quote(path, safe="/")


def fingerprint(finding: Finding) -> str:
    """A hash of what the finding is about, not where: line numbers shift between pushes."""
    code = "\n".join(line.strip() for line in (finding.code or "").splitlines())
    payload = "\0".join((finding.path, " ".join(finding.title.split()), code))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def result_to_sarif(result: ReviewResult) -> dict[str, Any]:
    categories = list(dict.fromkeys(finding.category for finding in result.findings))
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "reviewbot",
                        "version": __version__,
                        "rules": [_rule(category, result.findings) for category in categories],
                    }
                },
                "invocations": [_invocation(result)],
                "results": [_result(finding, categories.index(finding.category)) for finding in result.findings],
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _invocation(result: ReviewResult) -> dict[str, Any]:
    """Whether the review ran: with every request failed it did not, and an upload of its empty
    results must not read as "no problems here". Each failed part is a notification."""
    invocation: dict[str, Any] = {"executionSuccessful": not result.all_requests_failed}
    if result.failed:
        level = "error" if result.all_requests_failed else "warning"
        invocation["toolExecutionNotifications"] = [
            {
                "level": level,
                "message": {
                    "text": f"part {failure.index + 1} of {result.requests_planned} was not reviewed: {failure.reason}"
                },
            }
            for failure in result.failed
        ]
    return invocation


def _rule(category: Category, findings: tuple[Finding, ...]) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id(category),
        "name": category.capitalize(),
        "shortDescription": {"text": _RULE_DESCRIPTIONS[category]},
    }
    if category is Category.SECURITY:
        worst = min(finding.severity.rank for finding in findings if finding.category is category)
        rule["properties"] = {
            "tags": ["security"],
            "security-severity": f"{_SECURITY_SEVERITY[list(Severity)[worst]]:.1f}",
        }
    return rule


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(finding.path)}}
    # Regions are new-file lines. A removed line has no place in the new file and a note has
    # no line, so those point at the file as a whole and say where in the message.
    if finding.line is not None and finding.side is Side.RIGHT:
        physical["region"] = {"startLine": finding.start_line or finding.line, "endLine": finding.line}
    sarif: dict[str, Any] = {
        "ruleId": rule_id(finding.category),
        "ruleIndex": rule_index,
        "level": _LEVELS[finding.severity],
        "message": {"text": _message(finding)},
        "locations": [{"physicalLocation": physical}],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding)},
        "properties": {"severity": str(finding.severity)},
    }
    if finding.category is Category.SECURITY:
        sarif["properties"]["security-severity"] = f"{_SECURITY_SEVERITY[finding.severity]:.1f}"
    return sarif


def _message(finding: Finding) -> str:
    parts = [" ".join(finding.title.split())]
    if finding.line is not None and finding.side is Side.LEFT:
        start = finding.start_line or finding.line
        lines = f"line {start}" if start == finding.line else f"lines {start}-{finding.line}"
        parts.append(f"On removed {lines} of the old file.")
    if finding.body.strip():
        parts.append(finding.body.strip())
    if finding.suggestion is not None:
        parts.append("Suggested change:\n" + finding.suggestion)
    return "\n\n".join(parts)


def render_sarif(result: ReviewResult) -> str:
    return json.dumps(result_to_sarif(result), indent=2, ensure_ascii=False) + "\n"
