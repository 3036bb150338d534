"""``reviewbot action``: review the pull request of a GitHub Actions run with the workflow's token.

GitHub starts the action on a ``pull_request`` (or ``pull_request_target``) event and describes
the run in its default environment variables: the event's payload in ``GITHUB_EVENT_PATH``, the
repository in ``GITHUB_REPOSITORY``, the REST API in ``GITHUB_API_URL`` (``…/api/v3`` on GitHub
Enterprise Server), and the files that take the step's outputs and its job summary
(``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``). The review goes through the same pipeline as the App
and ``reviewbot review --pr --post``: one review per head commit, incremental after our own
earlier review (read from its head marker, so no database is needed), the rules from the base
branch, drafts skipped unless configured.

Pull requests from forks run without the repository's secrets and with a read-only token
(https://docs.github.com/en/actions/security-for-github-actions/security-guides/using-secrets-in-github-actions):
without a model key there is nothing to do; with one, the review is shown in the log and the job
summary but not posted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from reviewbot.engine.pricing import CostReport, cost_note, review_cost
from reviewbot.engine.result import Finding
from reviewbot.errors import ConfigError, GitHubAuthError, ReviewbotError
from reviewbot.github.client import GitHubClient
from reviewbot.render.markdown import code_span
from reviewbot.render.model_text import neutralise_line
from reviewbot.repos import REPO_FULL_NAME
from reviewbot.service.pipeline import ModelFactory, Reviewed, ReviewPipeline, ReviewRequest
from reviewbot.settings import Settings, load_settings

#: The events whose payload names a pull request the action can review.
EVENTS: Final = ("pull_request", "pull_request_target")
#: The login the workflow's own ``GITHUB_TOKEN`` posts as; it may not read ``GET /user``.
ACTIONS_LOGIN: Final = "github-actions[bot]"
#: Dependabot's pull requests run like a fork's: no secrets, a read-only token.
DEPENDABOT: Final = "dependabot[bot]"


@dataclass(frozen=True, slots=True)
class ActionRun:
    """What the runner says about this run, read from its environment."""

    event_name: str
    event_path: Path
    api_url: str
    actor: str
    output_path: Path | None
    summary_path: Path | None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ActionRun:
        missing = [name for name in ("GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH") if not environ.get(name)]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} not set: `reviewbot action` runs inside a GitHub Actions job; "
                "use `reviewbot review --pr` elsewhere"
            )
        return cls(
            event_name=environ["GITHUB_EVENT_NAME"],
            event_path=Path(environ["GITHUB_EVENT_PATH"]),
            api_url=environ.get("GITHUB_API_URL") or "https://api.github.com",
            actor=environ.get("GITHUB_ACTOR", ""),
            output_path=_path(environ.get("GITHUB_OUTPUT")),
            summary_path=_path(environ.get("GITHUB_STEP_SUMMARY")),
        )


@dataclass(frozen=True, slots=True)
class PullRequestEvent:
    """The fields of a ``pull_request`` event's payload that the action uses."""

    action: str
    repo: str  # the base repository, where the review goes
    number: int
    head_repo: str | None  # None when the fork was deleted
    author: str

    @property
    def from_fork(self) -> bool:
        return self.head_repo != self.repo

    @classmethod
    def read(cls, run: ActionRun) -> PullRequestEvent:
        if run.event_name not in EVENTS:
            raise ConfigError(
                f"`reviewbot action` reviews pull requests; this run is a {run.event_name!r} event "
                "(trigger the workflow with `on: pull_request`)"
            )
        try:
            payload = json.loads(run.event_path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"GITHUB_EVENT_PATH={run.event_path} cannot be read: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigError(f"GITHUB_EVENT_PATH={run.event_path} is not a JSON event payload: {exc}") from exc
        return cls.parse(payload)

    @classmethod
    def parse(cls, payload: object) -> PullRequestEvent:
        pull = _field(payload, "pull_request", dict)
        number = _field(pull, "number", int)
        if isinstance(number, bool) or number < 1:
            raise ConfigError("the event's pull_request.number is not a pull request number")
        repo = _field(_field(_field(pull, "base", dict), "repo", dict), "full_name", str)
        if not REPO_FULL_NAME.match(repo):
            raise ConfigError(f"the event's pull_request.base.repo.full_name {repo!r} is not OWNER/NAME")
        head_repo = _field(pull, "head", dict).get("repo")
        head_name = head_repo.get("full_name") if isinstance(head_repo, dict) else None
        user = pull.get("user")
        return cls(
            action=str(payload.get("action", "")) if isinstance(payload, dict) else "",
            repo=repo,
            number=number,
            head_repo=head_name if isinstance(head_name, str) else None,
            author=str(user.get("login", "")) if isinstance(user, dict) else "",
        )


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """How the run ended; the command line turns it into log lines and an exit code."""

    reviewed: Reviewed | None
    cost: CostReport | None
    skipped: str | None = None  # why nothing was reviewed, when nothing was
    not_posted: str | None = None  # why a review was made but not posted
    review_url: str | None = None

    @property
    def findings(self) -> int:
        result = self.reviewed.result if self.reviewed is not None else None
        return len(result.findings) if result is not None else 0


async def run_action(
    settings: Settings, run: ActionRun, event: PullRequestEvent, *, model: ModelFactory | None = None
) -> ActionOutcome:
    """Review the event's pull request, write the step's outputs and summary, and say how it went."""
    if event.action == "closed":
        return _finish(run, ActionOutcome(None, None, skipped="the pull request was closed; nothing to review"))
    # On pull_request a fork's run gets no secrets and a read-only token; pull_request_target runs
    # in the base repository with both (and reviewbot checks out nothing of the fork).
    fork_run = event.from_fork and run.event_name == "pull_request"
    without_secrets = fork_run or DEPENDABOT in (run.actor, event.author)
    if without_secrets and settings.api_key is None:
        why = "comes from a fork" if event.from_fork else "was opened by Dependabot"
        skipped = (
            f"pull request #{event.number} {why}: GitHub gives its workflow no secrets and a read-only token, "
            "so there is no model key to review it with; nothing was done"
        )
        return _finish(run, ActionOutcome(None, None, skipped=skipped))
    if settings.github_token is None:
        raise ConfigError("no GitHub token: pass `github-token` (it defaults to the workflow's GITHUB_TOKEN)")
    post = not without_secrets
    try:
        reviewed = await _review(settings, ReviewRequest(event.repo, event.number, post=post), model)
    except ReviewbotError as exc:
        # The step fails; its outputs and summary still say what happened.
        _finish(run, ActionOutcome(None, None, skipped=f"the review could not be done: {exc}"))
        raise
    cost = None
    if reviewed.result is not None and reviewed.prepared is not None:
        cost = review_cost(reviewed.result, reviewed.prepared.options.prices)
    outcome = ActionOutcome(
        reviewed,
        cost,
        skipped=reviewed.note if reviewed.prepared is None else None,
        not_posted=None if post else "the pull request comes from a fork, whose workflow token cannot write",
        review_url=_review_url(reviewed),
    )
    return _finish(run, outcome)


async def _review(settings: Settings, request: ReviewRequest, model: ModelFactory | None) -> Reviewed:
    assert settings.github_token is not None
    token = settings.github_token.get_secret_value()
    async with GitHubClient.with_token(token, settings.github_api_url, integration_login=ACTIONS_LOGIN) as github:
        try:
            return await ReviewPipeline(settings, github, None, model=model).run(request)
        except GitHubAuthError as exc:
            raise ConfigError(
                f"{exc}; the job's token needs `permissions:` `contents: read` and `pull-requests: write`"
            ) from exc


def settings_from_inputs(environ: Mapping[str, str], run: ActionRun) -> Settings:
    """The settings: ``REVIEWBOT_*`` variables, with the action's inputs on top. A bad input is
    named as the input the workflow gave, not as the setting behind it."""
    overrides = input_overrides(environ)
    if "REVIEWBOT_GITHUB_API_URL" not in environ:
        overrides["github_api_url"] = run.api_url  # the runner's own API, GitHub Enterprise Server's too
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        message = str(exc)
        for name, setting in SETTING_INPUTS.items():
            if setting in overrides:
                message = message.replace(f"REVIEWBOT_{setting.upper()}", f"input {name}")
        raise ConfigError(message) from None


def input_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings the action's inputs set: ``INPUT_*`` variables that are not empty, by setting name."""
    overrides = {
        # A YAML block lists globs one per line; the settings take them comma-separated.
        setting: ",".join(value.split("\n")) if setting in ("include", "exclude") else value.strip()
        for name, setting in SETTING_INPUTS.items()
        if (value := environ.get(input_variable(name), "")).strip()
    }
    token = environ.get(input_variable("github-token"), "").strip()
    if token:
        overrides["github_token"] = token
    return overrides


def input_variable(name: str) -> str:
    """The environment variable ``action.yml`` hands input ``name`` over in."""
    return "INPUT_" + name.upper().replace("-", "_")


#: The action's inputs that are settings, by input name → setting name (the README's settings table).
SETTING_INPUTS: Final = {
    "api-key": "api_key",
    "base-url": "base_url",
    "model": "model",
    "input-price": "input_price",
    "output-price": "output_price",
    "context-window": "context_window",
    "max-cost": "max_cost",
    "min-severity": "min_severity",
    "max-findings": "max_findings",
    "max-comments": "max_comments",
    "include": "include",
    "exclude": "exclude",
    "extra-instructions": "extra_instructions",
    "review-drafts": "review_drafts",
}
#: The action's inputs that the command itself reads.
COMMAND_INPUTS: Final = ("github-token", "fail-on", "sarif")


def _finish(run: ActionRun, outcome: ActionOutcome) -> ActionOutcome:
    cost = outcome.cost
    outputs = {
        "findings": str(outcome.findings),
        "cost-usd": _plain_usd(cost.usd) if cost is not None and cost.usd is not None else "",
        "review-url": outcome.review_url or "",
    }
    if run.output_path is not None:
        append_outputs(run.output_path, outputs)
    if run.summary_path is not None:
        with run.summary_path.open("a", encoding="utf-8") as summary:
            summary.write(_summary(outcome))
    return outcome


def append_outputs(path: Path, outputs: Mapping[str, str]) -> None:
    """Append step outputs in the runner's ``name<<DELIMITER`` form, which holds any value safely.

    https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/workflow-commands-for-github-actions#multiline-strings
    """
    with path.open("a", encoding="utf-8") as out:
        for name, value in outputs.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def _summary(outcome: ActionOutcome) -> str:
    lines = ["### reviewbot", ""]
    if outcome.skipped is not None:
        lines.append(outcome.skipped[0].upper() + outcome.skipped[1:] + ".")
    else:
        reviewed = outcome.reviewed
        assert reviewed is not None
        if outcome.review_url:
            lines.append(f"[Review]({outcome.review_url}) with {outcome.findings} finding(s).")
        elif outcome.not_posted:
            lines.append(f"{outcome.findings} finding(s); not posted: {outcome.not_posted}.")
        else:
            lines.append(f"Not posted: {reviewed.note}.")
        if outcome.not_posted and reviewed.result is not None:
            lines += ["", *(_finding_line(finding) for finding in reviewed.result.findings)]
    if outcome.cost is not None:
        lines += ["", cost_note(outcome.cost)]
    return "\n".join(lines) + "\n\n"


def _finding_line(finding: Finding) -> str:
    # The summary is Markdown on GitHub: the model's title gets the same care as in a review.
    where = code_span(f"{finding.path}:{finding.line}")
    return f"- **{finding.severity.value}** {where} {neutralise_line(finding.title)}"


def _review_url(reviewed: Reviewed) -> str | None:
    if reviewed.review_id is None or reviewed.pull is None:
        return None
    return f"{reviewed.pull.html_url}#pullrequestreview-{reviewed.review_id}"


def _plain_usd(usd: float) -> str:
    """Dollars as a plain decimal number (``0.00042``), never in exponent form."""
    return format(Decimal(repr(usd)).normalize(), "f")


def _field(container: object, name: str, kind: type[Any]) -> Any:
    value = container.get(name) if isinstance(container, dict) else None
    if not isinstance(value, kind):
        raise ConfigError(f"the event payload has no {name!r} of the expected kind; is this a pull_request event?")
    return value


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
