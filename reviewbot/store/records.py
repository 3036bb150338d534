"""What the store hands out and takes in: jobs and their states, deliveries, installations and their changes."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final, Literal

from reviewbot.store.database import Row

JobState = Literal["queued", "running", "done", "failed", "dropped"]
JOB_STATES: Final[tuple[JobState, ...]] = ("queued", "running", "done", "failed", "dropped")
#: A command's trigger; it survives coalescing so a `/review` is never downgraded to a push.
COMMAND_TRIGGER: Final = "command"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRequest:
    """A job to enqueue. ``head_sha`` is "" when the delivery did not say (a `/review` command):
    the worker then reviews whatever the pull request's head is when the job runs."""

    kind: str = "review"
    installation_id: int
    repo: str
    pr_number: int
    head_sha: str
    base_sha: str
    full_review: bool
    trigger: str
    #: The comment whose command asked for this job. GitHub signs a delivery's body but not its
    #: ``X-GitHub-Delivery`` header, so a replayed body comes under a new delivery id: the store
    #: takes one command per comment (kept with its delivery; the job does not keep it).
    comment_id: int | None = None


@dataclass(frozen=True, slots=True)
class InstallationChange:
    """What an ``installation`` or ``installation_repositories`` event changes in the store."""

    installation_id: int
    change: Literal["created", "deleted", "suspend", "unsuspend", "repositories"]
    account: str = ""
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


#: What became of a delivery the store was asked to record: ``recorded``, or left out as a duplicate.
#: A ``redelivery`` has the id of a delivery recorded before and its body (GitHub redelivers under the
#: same id); a ``replay`` carries a signed body, or the review command of a comment, recorded before
#: with another delivery (GitHub signs the body, not the id: someone sent a copy under an id of their
#: own). A delivery recorded without its body's hash (before schema 8) is held to its id alone.
Recorded = Literal["recorded", "redelivery", "replay"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook delivery to record, with the job it asks for, if any."""

    id: str
    event: str
    action: str | None
    installation_id: int | None
    repo: str | None
    job: JobRequest | None = None
    #: The SHA-256 of its body in hex. GitHub signs the body, not the delivery id, so the same signed
    #: body can come again under any id: the store takes one delivery per body (None: held to its id).
    body_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """One row of the ``jobs`` table."""

    id: int
    kind: str
    installation_id: int
    repo: str
    pr_number: int
    head_sha: str
    base_sha: str
    full_review: bool
    trigger: str
    state: JobState
    attempts: int
    not_before: float
    lease_owner: str | None
    lease_until: float | None
    last_error: str | None
    created_at: float
    updated_at: float

    @classmethod
    def _from_row(cls, row: Row) -> Job:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["full_review"] = bool(values["full_review"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Installation:
    id: int
    account: str
    suspended: bool


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows a prune deleted, by table (:mod:`reviewbot.store.retention`)."""

    deliveries: int = 0
    jobs: int = 0
    kept_results: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(
            self.deliveries + other.deliveries, self.jobs + other.jobs, self.kept_results + other.kept_results
        )


@dataclass(frozen=True, slots=True)
class Turn:
    """The answer to asking for a periodic task's turn: whether this caller took it, and when
    the next turn is due (after this one, if it was taken)."""

    taken: bool
    next_at: float
