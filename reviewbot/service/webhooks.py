"""GitHub webhook deliveries: signature check and routing of events to what the service does.

A handler is a small function of the payload (and :class:`WebhookOptions`) that returns:

- a :class:`~reviewbot.store.records.JobRequest` to queue a review,
- an :class:`InstallationChange` to apply to the store (nothing queued),
- ``None`` when the event is handled and needs nothing more (``ping``),
- :class:`Ignored` with the reason otherwise.

Handlers do no I/O, so each is testable with a payload alone. Registration follows gidgethub's
``Router`` and Probot's ``app.on``::

    @router.register("pull_request", action="opened")
    @router.register("pull_request", action="reopened")
    def review_whole_pull_request(payload, options): ...

    outcome = router.dispatch("pull_request", payload, options)

A handler registered without an action takes every action of its event that has no handler of
its own.

A body is decoded by its router (:meth:`Router.decode`) into only the fields the router's handlers
read (:class:`~reviewbot.service.payload.PayloadFields` for the default router), each checked as
GitHub sends it: the rest of the JSON is checked but never built, which makes a pull request
delivery (~30 KB, mostly URLs and user objects) about twice as quick to decode as a full parse.
A handler that reads a new field must add it there.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import msgspec

from reviewbot.service.payload import PayloadFields, explain
from reviewbot.settings import Settings
from reviewbot.store.records import COMMAND_TRIGGER, InstallationChange, JobRequest

_SIGNATURE_PREFIX: Final = "sha256="
_HEX_DIGEST: Final = re.compile("[0-9a-f]{64}")  # GitHub sends the hex digest in lower case
# X-GitHub-Delivery is "a globally unique identifier (GUID) to identify the event" (GitHub's
# "Webhook events and payloads", GitHub Enterprise Server's too), sent as 8-4-4-4-12 hex digits in
# lower case. That form alone is taken, in either case: braces, a URN or no dashes would only give
# one GUID more spellings, and GitHub sends none of them.
_GUID: Final = re.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# X-GitHub-Event is not signed either, and is kept with the delivery and named in its log lines.
# GitHub's event names are lower-case words joined by underscores (projects_v2_item has a digit).
_EVENT_NAME: Final = re.compile("[a-z][a-z0-9_]{0,63}")
#: Who may ask for a review with a comment: the repository's owner, its organisation's members,
#: and collaborators (GitHub's ``author_association`` of the comment).
COMMAND_ASSOCIATIONS: Final = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})

Payload: TypeAlias = Mapping[str, Any]


def delivery_id(header: str) -> str | None:
    """The id of a delivery whose ``X-GitHub-Delivery`` is ``header``: the GUID in lower case, so
    a redelivery (GitHub keeps the GUID) finds the delivery it repeats whatever the case; None when
    the header is not a GUID. The header is not signed: anyone who reaches the webhook chooses it."""
    return header.lower() if _GUID.fullmatch(header) is not None else None


def event_name(header: str) -> str | None:
    """The event an ``X-GitHub-Event`` header names; None when it is no event name GitHub could send."""
    return header if _EVENT_NAME.fullmatch(header) is not None else None


class SignatureCheck:
    """A delivery's ``X-Hub-Signature-256``, checked against its body as the body streams in:
    :meth:`update` with each piece, then :meth:`matches` once it is whole."""

    __slots__ = ("_expected", "_mac")

    def __init__(self, secret: bytes, expected: bytes) -> None:
        self._expected = expected
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)

    @classmethod
    def from_header(cls, secret: bytes, header: str | None) -> SignatureCheck | None:
        """The check of a delivery signed with ``header``; None when no body can match it: no
        header, or one that is not ``sha256=`` and 64 hex digits, or an empty secret. The legacy
        SHA-1 ``X-Hub-Signature`` is never consulted."""
        value = header.strip() if header is not None else ""
        if not secret or not value.startswith(_SIGNATURE_PREFIX):
            return None
        digits = value[len(_SIGNATURE_PREFIX) :]
        if _HEX_DIGEST.fullmatch(digits) is None:
            return None
        return cls(secret, bytes.fromhex(digits))

    def update(self, piece: bytes) -> None:
        self._mac.update(piece)

    def matches(self) -> bool:
        """Whether the body fed so far is what was signed, compared in constant time."""
        return hmac.compare_digest(self._mac.digest(), self._expected)


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body`` (for tests and tools)."""
    return _SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


class PayloadError(ValueError):
    """A signed payload lacks a field its event always has."""


@dataclass(frozen=True, slots=True)
class Ignored:
    """The delivery needs nothing from us, and why."""

    reason: str


Outcome: TypeAlias = JobRequest | InstallationChange | Ignored | None


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """The settings the handlers read."""

    app_slug: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookOptions:
        return cls(app_slug=settings.github_app_slug)


Handler: TypeAlias = Callable[[Payload, WebhookOptions], Outcome]


class Router:
    """Maps ``(event, action)`` to one handler each; decodes bodies into ``fields`` (a TypedDict
    of what the handlers read), or into whole objects without one."""

    def __init__(self, fields: type[Mapping[str, Any]] | None = None) -> None:
        self._handlers: dict[tuple[str, str | None], Handler] = {}
        self._decoder = msgspec.json.Decoder(fields if fields is not None else dict[str, Any])

    def decode(self, body: bytes) -> Payload:
        """The JSON object of ``body``, as far as the handlers read it.

        Raises :class:`PayloadError` naming the problem if ``body`` is not JSON, not an object, is
        nested too deeply, or has a field of another shape than GitHub's (an object where a string
        belongs, a number out of range, a repository name that is not ``owner/name``), by its JSON path.
        """
        try:
            payload: Payload = self._decoder.decode(body)
        except msgspec.ValidationError as exc:  # before DecodeError, its base class
            raise PayloadError(f"the body is not a webhook payload: {explain(str(exc))}") from exc
        except msgspec.DecodeError as exc:
            raise PayloadError(f"the body is not JSON: {exc}") from exc
        except RecursionError as exc:  # msgspec stops at the interpreter's recursion limit
            raise PayloadError("the body is not a webhook payload: it is nested too deeply") from exc
        return payload

    def register(self, event: str, action: str | None = None) -> Callable[[Handler], Handler]:
        """Decorator: ``handler`` answers ``event`` deliveries with this ``action`` (any if None)."""

        def decorate(handler: Handler) -> Handler:
            key = (event, action)
            if key in self._handlers:
                raise ValueError(f"{event}.{action or '*'} already has a handler")
            self._handlers[key] = handler
            return handler

        return decorate

    @property
    def events(self) -> frozenset[str]:
        """The events some handler is registered for."""
        return frozenset(event for event, _ in self._handlers)

    def handles(self, event: str, action: str | None = None) -> bool:
        return (event, action) in self._handlers or (event, None) in self._handlers

    def dispatch(self, event: str, payload: Payload, options: WebhookOptions | None = None) -> Outcome:
        """Run the handler for this event and the payload's ``action``.

        Raises :class:`PayloadError` when the payload lacks a field the handler needs.
        """
        action = payload.get("action")
        action = action if isinstance(action, str) else None
        handler = self._handlers.get((event, action)) or self._handlers.get((event, None))
        if handler is None:
            name = f"{event}.{action}" if action else event
            return Ignored(f"{name} is not handled")
        try:
            return handler(payload, options or WebhookOptions())
        except (KeyError, TypeError, AttributeError) as exc:
            raise PayloadError(f"{event} payload is missing {exc}") from exc


@dataclass(frozen=True, slots=True)
class DeliveryFacts:
    """What is recorded of every delivery besides its id and event."""

    action: str | None
    installation_id: int | None
    repo: str | None


def delivery_facts(payload: Payload) -> DeliveryFacts:
    action = payload.get("action")
    installation = payload.get("installation")
    repository = payload.get("repository")
    installation_id = installation.get("id") if isinstance(installation, Mapping) else None
    repo = repository.get("full_name") if isinstance(repository, Mapping) else None
    return DeliveryFacts(
        action=action if isinstance(action, str) else None,
        installation_id=installation_id if isinstance(installation_id, int) else None,
        repo=repo if isinstance(repo, str) else None,
    )


router = Router(PayloadFields)


# -- pull_request -----------------------------------------------------------------------------


@router.register("pull_request", action="opened")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="ready_for_review")
def review_whole_pull_request(payload: Payload, options: WebhookOptions) -> Outcome:
    """A pull request to review from scratch."""
    return _pull_request_job(payload, options, full_review=True)


@router.register("pull_request", action="synchronize")
def review_new_commits(payload: Payload, options: WebhookOptions) -> Outcome:
    """New commits were pushed: review what changed since the last reviewed head."""
    return _pull_request_job(payload, options, full_review=False)


@router.register("pull_request", action="edited")
def review_after_base_change(payload: Payload, options: WebhookOptions) -> Outcome:
    """Only a change of base branch changes the diff; title and body edits do not."""
    changes = payload.get("changes")
    if not isinstance(changes, Mapping) or "base" not in changes:
        return Ignored("pull request edited without a change of base branch")
    return _pull_request_job(payload, options, full_review=True)


def _pull_request_job(payload: Payload, options: WebhookOptions, *, full_review: bool) -> Outcome:
    pull = payload["pull_request"]
    if _sent_by_bot(payload):
        return Ignored("the sender is a bot")
    if pull["state"] != "open":
        return Ignored("the pull request is closed")
    # A draft is queued all the same: whether it is reviewed depends on the repository's own
    # .github/reviewbot.toml (review_drafts), which only the worker reads.
    installation_id = _installation_id(payload)
    if installation_id is None:
        return Ignored("the delivery names no installation (not a GitHub App delivery)")
    return JobRequest(
        installation_id=installation_id,
        repo=payload["repository"]["full_name"],
        pr_number=int(pull["number"]),
        head_sha=pull["head"]["sha"],
        base_sha=pull["base"]["sha"],
        full_review=full_review,
        trigger=f"pull_request.{payload['action']}",
    )


# -- review commands --------------------------------------------------------------------------


def is_review_command(body: str, app_slug: str | None) -> bool:
    """Whether some line of ``body`` starts with ``/review`` or ``@<app_slug> review``.

    Case does not matter; the word must end there (``/reviewers`` is not a command), and a quoted
    line (``> /review``) is not a command either.
    """
    patterns = [r"/review"]
    if app_slug:
        patterns.append(rf"@{re.escape(app_slug)}\s+review")
    command = re.compile(rf"^[ \t]*(?:{'|'.join(patterns)})(?=\s|$)", re.IGNORECASE | re.MULTILINE)
    return command.search(body) is not None


@router.register("issue_comment", action="created")
def review_on_command(payload: Payload, options: WebhookOptions) -> Outcome:
    """``/review`` or ``@<app-slug> review`` in a comment on a pull request.

    The payload carries the issue, not the pull request, so its head is unknown here: the job gets
    ``head_sha=""`` and ``base_sha=""``, and the worker fetches the pull request and reviews its
    head as it is when the job runs.

    A comment asks once: the job carries the comment's id, and the store answers another delivery
    of it (GitHub's redelivery, or the signed body replayed under a made-up delivery id) as a
    duplicate. Editing a comment asks for nothing (``issue_comment.edited`` has no handler); a new
    comment asks again.
    """
    issue = payload["issue"]
    comment = payload["comment"]
    if "pull_request" not in issue:
        return Ignored("the comment is on an issue, not a pull request")
    if not is_review_command(comment.get("body") or "", options.app_slug):
        return Ignored("the comment is not a review command")
    if _sent_by_bot(payload):
        return Ignored("the sender is a bot")
    association = comment.get("author_association")
    if association not in COMMAND_ASSOCIATIONS:
        return Ignored(f"review commands are taken from owners, members and collaborators, not {association}")
    if issue.get("state") == "closed":
        return Ignored("the pull request is closed")
    installation_id = _installation_id(payload)
    if installation_id is None:
        return Ignored("the delivery names no installation (not a GitHub App delivery)")
    return JobRequest(
        installation_id=installation_id,
        repo=payload["repository"]["full_name"],
        pr_number=int(issue["number"]),
        head_sha="",
        base_sha="",
        full_review=True,
        trigger=COMMAND_TRIGGER,
        comment_id=int(comment["id"]),
    )


# -- installations ----------------------------------------------------------------------------


@router.register("installation", action="created")
@router.register("installation", action="deleted")
@router.register("installation", action="suspend")
@router.register("installation", action="unsuspend")
def installation_changed(payload: Payload, options: WebhookOptions) -> Outcome:
    installation = payload["installation"]
    repos = tuple(repo["full_name"] for repo in payload.get("repositories") or ())
    return InstallationChange(
        installation_id=int(installation["id"]),
        change=payload["action"],
        account=_account(installation),
        added=repos,
    )


@router.register("installation_repositories", action="added")
@router.register("installation_repositories", action="removed")
def installation_repositories_changed(payload: Payload, options: WebhookOptions) -> Outcome:
    installation = payload["installation"]
    return InstallationChange(
        installation_id=int(installation["id"]),
        change="repositories",
        account=_account(installation),
        added=tuple(repo["full_name"] for repo in payload.get("repositories_added") or ()),
        removed=tuple(repo["full_name"] for repo in payload.get("repositories_removed") or ()),
    )


@router.register("ping")
def pong(payload: Payload, options: WebhookOptions) -> Outcome:
    """GitHub's check that the webhook URL answers; nothing to do."""
    return None


# -- helpers ----------------------------------------------------------------------------------


def _sent_by_bot(payload: Payload) -> bool:
    sender = payload.get("sender")
    return isinstance(sender, Mapping) and sender.get("type") == "Bot"


def _installation_id(payload: Payload) -> int | None:
    installation = payload.get("installation")
    value = installation.get("id") if isinstance(installation, Mapping) else None
    return value if isinstance(value, int) else None


def _account(installation: Mapping[str, Any]) -> str:
    account = installation.get("account")
    if isinstance(account, Mapping):
        for key in ("login", "slug", "name"):
            if isinstance(account.get(key), str):
                return str(account[key])
    return ""
