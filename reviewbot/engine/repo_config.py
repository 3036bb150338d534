"""Per-repository settings from ``.github/reviewbot.toml``, read from the base branch.

Reading them from the base branch means a pull request cannot change the rules it is reviewed
by. A file that does not parse, or a value that is wrong, never stops a review: the defaults
apply and the problems are listed in the review body.

    enabled = true
    include = ["src/**"]
    exclude = ["docs/**", "**/*.snap"]
    min_severity = "medium"
    max_comments = 10
    review_drafts = false
    extra_instructions = "We target Python 3.9: flag newer syntax."
    model = "qwen3-coder-30b"          # only models the operator allows
    monthly_budget = 20.0              # USD a calendar month; may only lower the operator's
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reviewbot.engine.filters import FilterRules
from reviewbot.engine.pricing import format_usd
from reviewbot.engine.review import ReviewOptions
from reviewbot.severity import Severity

CONFIG_PATH = ".github/reviewbot.toml"
_MAX_INSTRUCTIONS = 2_000


@dataclass(frozen=True, slots=True)
class RepoConfig:
    """What a repository asked for; None means "as the operator set it"."""

    enabled: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_severity: Severity | None = None
    max_comments: int | None = None
    review_drafts: bool | None = None
    extra_instructions: str = ""
    model: str | None = None
    monthly_budget: float | None = None  # USD per calendar month, never above the operator's per-repo budget
    context: str | None = None  # "diff" or "function" (REVIEWBOT_CONTEXT for this repository)
    problems: tuple[str, ...] = ()


def parse_repo_config(
    raw: bytes | None, allowed_models: Sequence[str], *, repo_budget: float | None = None
) -> RepoConfig:
    """Read the file's bytes (None when the repository has none) into a :class:`RepoConfig`.

    ``repo_budget`` is the operator's monthly budget per repository: ``monthly_budget`` may
    only lower it; a higher one is a problem and is ignored.
    """
    if raw is None:
        return RepoConfig()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return RepoConfig(problems=(f"{CONFIG_PATH} could not be read ({exc}); the defaults apply",))
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in data.items():
        reader = _READERS.get(key)
        if reader is None:
            problems.append(f"{CONFIG_PATH}: unknown setting {key!r} was ignored")
            continue
        try:
            values[key] = reader(value, allowed_models)
        except ValueError as exc:
            problems.append(f"{CONFIG_PATH}: {key} {exc}; the default applies")
    budget = values.get("monthly_budget")
    if budget is not None and repo_budget is not None and budget > repo_budget:
        del values["monthly_budget"]
        problems.append(
            f"{CONFIG_PATH}: monthly_budget {format_usd(budget)} is above the operator's budget of"
            f" {format_usd(repo_budget)} per repository (REVIEWBOT_MONTHLY_BUDGET_PER_REPO), which a repository"
            " may only lower; the operator's budget applies"
        )
    return dataclasses.replace(RepoConfig(**values), problems=tuple(problems))


def apply_repo_config(options: ReviewOptions, config: RepoConfig) -> ReviewOptions:
    """The operator's options narrowed by the repository's own settings."""
    rules = options.rules
    if config.include or config.exclude:
        rules = FilterRules(
            include=rules.include + config.include,
            exclude=rules.exclude + config.exclude,
            max_file_lines=rules.max_file_lines,
        )
    repo_notes = f"From the repository's own settings: {config.extra_instructions}" if config.extra_instructions else ""
    instructions = "\n\n".join(part for part in (options.extra_instructions, repo_notes) if part)
    return dataclasses.replace(
        options,
        rules=rules,
        min_severity=config.min_severity or options.min_severity,
        extra_instructions=instructions,
        model=config.model or options.model,
        context=config.context or options.context,
    )


def _bool(value: object, _: Sequence[str]) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


def _globs(value: object, _: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError("must be a list of glob strings")
    return tuple(item.strip() for item in value)


def _severity(value: object, _: Sequence[str]) -> Severity:
    choices = ", ".join(severity.value for severity in Severity)
    if not isinstance(value, str) or value.lower() not in Severity._value2member_map_:
        raise ValueError(f"must be one of {choices}, not {value!r}")
    return Severity(value.lower())


def _positive(value: object, _: Sequence[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValueError(f"must be a whole number from 1 to 100, not {value!r}")
    return value


def _instructions(value: object, _: Sequence[str]) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if len(value) > _MAX_INSTRUCTIONS:
        raise ValueError(f"is longer than {_MAX_INSTRUCTIONS:,} characters")
    return value.strip()


def _model(value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a model name")
    if value not in allowed:
        listed = ", ".join(allowed) if allowed else "none"
        raise ValueError(f"{value!r} is not among the models the operator allows ({listed})")
    return value


def _budget(value: object, _: Sequence[str]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"must be a positive amount of USD, not {value!r}")
    return float(value)


def _context(value: object, _: Sequence[str]) -> str:
    if value not in ("diff", "function"):
        raise ValueError(f'must be "diff" or "function", not {value!r}')
    return str(value)


_READERS = {
    "enabled": _bool,
    "include": _globs,
    "exclude": _globs,
    "min_severity": _severity,
    "max_comments": _positive,
    "review_drafts": _bool,
    "extra_instructions": _instructions,
    "model": _model,
    "monthly_budget": _budget,
    "context": _context,
}
