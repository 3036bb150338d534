"""Model answers → candidate findings, read as leniently as is safe.

Models wrap JSON in prose or code fences, send a bare list, or say "warning" for a severity.
What can be read without guessing is kept; what cannot is counted and dropped, and a reply
with no JSON at all asks for one repair round (see :mod:`reviewbot.engine.review`).

The answer is found by its JSON structure alone. Text inside its strings quotes the pull
request, so no tag or phrase there (``</think>``, a code fence) can cut it short.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reviewbot.engine.diff import Side
from reviewbot.engine.result import Category
from reviewbot.severity import Severity

_VALUE_START = re.compile(r"[{\[]")
_ITEM_KEYS = ("findings", "comments", "issues", "review")

_SEVERITY_SYNONYMS = {
    "blocker": Severity.CRITICAL,
    "severe": Severity.CRITICAL,
    "error": Severity.HIGH,
    "major": Severity.HIGH,
    "important": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "minor": Severity.LOW,
    "suggestion": Severity.LOW,
    "nit": Severity.INFO,
    "nitpick": Severity.INFO,
    "note": Severity.INFO,
    "trivial": Severity.INFO,
}
_CATEGORY_SYNONYMS = {
    "correctness": Category.CORRECTNESS,
    "logic": Category.CORRECTNESS,
    "error-handling": Category.CORRECTNESS,
    "error handling": Category.CORRECTNESS,
    "reliability": Category.CORRECTNESS,
    "concurrency": Category.BUG,
    "perf": Category.PERFORMANCE,
    "readability": Category.MAINTAINABILITY,
    "design": Category.MAINTAINABILITY,
    "naming": Category.STYLE,
    "formatting": Category.STYLE,
    "documentation": Category.MAINTAINABILITY,
}


class CandidateFinding(BaseModel):
    """One finding as the model proposed it, before it is checked against the diff."""

    # No blanket whitespace stripping: a suggestion's indentation is part of the code.
    model_config = ConfigDict(extra="ignore")

    path: str = Field(min_length=1)
    line: int = Field(ge=1)
    start_line: int | None = None
    side: Side = Side.RIGHT
    severity: Severity = Severity.MEDIUM
    category: Category = Category.MAINTAINABILITY
    title: str = ""
    body: str = ""
    quote: str = ""
    suggestion: str | None = None

    @field_validator("start_line", mode="before")
    @classmethod
    def _blank_start(cls, value: object) -> object:
        return None if value in ("", 0, "0") else value

    @field_validator("side", mode="before")
    @classmethod
    def _side(cls, value: object) -> object:
        if isinstance(value, str):
            upper = value.strip().upper()
            return {"NEW": "RIGHT", "OLD": "LEFT", "": "RIGHT"}.get(upper, upper)
        return Side.RIGHT if value is None else value

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: object) -> object:
        if isinstance(value, str):
            lower = value.strip().lower()
            return _SEVERITY_SYNONYMS.get(lower, lower)
        return Severity.MEDIUM if value is None else value

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: object) -> object:
        if isinstance(value, str):
            lower = value.strip().lower()
            if lower in Category._value2member_map_:
                return lower
            return _CATEGORY_SYNONYMS.get(lower, Category.MAINTAINABILITY)
        return Category.MAINTAINABILITY

    @field_validator("path", "title", "body", "quote", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return "" if value is None else value.strip() if isinstance(value, str) else value

    @field_validator("suggestion", mode="before")
    @classmethod
    def _suggestion(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """The readable findings of one reply, and what could not be read."""

    findings: tuple[CandidateFinding, ...]
    dropped: int
    problem: str | None  # set when the reply held no readable JSON at all


def parse_reply(text: str) -> ParsedReply:
    """Read findings from a model reply: strict JSON, or the answer's JSON among prose, fences or reasoning."""
    payload = _extract_json(text)
    if payload is None:
        return ParsedReply((), 0, _describe_unreadable(text))
    items = _finding_items(payload)
    if items is None:
        return ParsedReply((), 0, 'the JSON has no "findings" list')
    findings: list[CandidateFinding] = []
    dropped = 0
    for item in items:
        try:
            finding = CandidateFinding.model_validate(item)
        except ValidationError:
            dropped += 1
            continue
        if not (finding.title or finding.body):
            dropped += 1
            continue
        findings.append(finding)
    return ParsedReply(tuple(findings), dropped, None)


def _extract_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _answer_among(text)


def _answer_among(text: str) -> Any:
    """The answer among the JSON values in ``text``, chosen by shape; of equals, the last.

    Each value is skipped whole once read, so what its strings quote is never taken for
    structure. Reasoning and drafts come before the answer, hence the last. With no complete
    list of findings (an answer cut off by the token limit), the complete findings are kept.
    """
    decoder = json.JSONDecoder()
    best: tuple[int, Any] | None = None
    loose: list[Any] = []
    position = 0
    while (start := _VALUE_START.search(text, position)) is not None:
        try:
            value, position = decoder.raw_decode(text, start.start())
        except ValueError:
            position = start.start() + 1
            continue
        except RecursionError:  # nesting deeper than the decoder goes: no answer, and no use going on
            break
        rank = _rank(value)
        if rank == 0:
            loose.append(value)
        elif rank is not None and (best is None or rank >= best[0]):
            best = (rank, value)
    if best is not None:
        return best[1]
    return loose or None


def _rank(value: Any) -> int | None:
    """How much ``value`` looks like an answer: 2 the object we ask for, 1 a bare list of
    objects, 0 a single finding, None not an answer at all (``[3, 4]`` in prose, say)."""
    if isinstance(value, dict):
        if any(isinstance(value.get(key), list) for key in _ITEM_KEYS):
            return 2
        return 0 if "path" in value and "line" in value else None
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return 1
    return None


def _finding_items(payload: Any) -> list[Any] | None:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in _ITEM_KEYS:
            value = payload.get(key)
            if isinstance(value, list):
                return value
        if "path" in payload and "line" in payload:
            return [payload]
    return None


def _describe_unreadable(text: str) -> str:
    if not text.strip():
        return "the reply was empty"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    except RecursionError:
        return "invalid JSON (nested too deeply)"
    return "no JSON object found"
