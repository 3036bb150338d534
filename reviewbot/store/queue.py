"""The job queue: coalescing requests into queued jobs, then claiming, heartbeats, finishing,
retrying and releasing them, and what the queue holds."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from reviewbot.errors import StoreError
from reviewbot.store.base import StoreBase
from reviewbot.store.bulk import insert_rows, marks, padded
from reviewbot.store.database import Row, Tx
from reviewbot.store.records import COMMAND_TRIGGER, JOB_STATES, Job, JobRequest, JobState
from reviewbot.store.schema import LOCK_CLAIM

#: How coalescing inserts queued jobs: these columns, then state, not_before, created_at, updated_at.
_INSERT_QUEUED: Final = (
    "INSERT INTO jobs (kind, repo, pr_number, installation_id, head_sha, base_sha, full_review, trigger,"
    " attempts, last_error, state, not_before, created_at, updated_at) VALUES"
)
#: Why a job whose worker stopped on its last attempt was failed.
ABANDONED: Final = "the worker stopped heartbeating (lease expired) on its last attempt"
#: What coalescing reads of a queued job.
_QUEUED_COLUMNS: Final = (
    "id, kind, repo, pr_number, installation_id, head_sha, base_sha, full_review, trigger, attempts, last_error"
)


@dataclass(slots=True)
class _QueuedJob:
    """A queued job as coalescing sees it: the columns a newer request for its pull request changes.
    ``id`` is None for a job this transaction is about to insert."""

    id: int | None
    installation_id: int
    head_sha: str
    base_sha: str
    full_review: bool
    trigger: str
    attempts: int
    last_error: str | None

    @classmethod
    def of(cls, job: JobRequest) -> _QueuedJob:
        return cls(None, job.installation_id, job.head_sha, job.base_sha, job.full_review, job.trigger, 0, None)

    @classmethod
    def from_row(cls, row: Row) -> _QueuedJob:
        return cls(
            int(row["id"]),
            int(row["installation_id"]),
            str(row["head_sha"]),
            str(row["base_sha"]),
            bool(row["full_review"]),
            str(row["trigger"]),
            int(row["attempts"]),
            row["last_error"],
        )

    def absorb(self, job: JobRequest) -> None:
        """Coalesce ``job`` into this one: the newer head and base, ``full_review`` the OR of both,
        a command trigger kept, and the attempts (and last error) restarted when the head changes."""
        if self.head_sha != job.head_sha:
            self.attempts, self.last_error = 0, None
        self.trigger = COMMAND_TRIGGER if COMMAND_TRIGGER in (self.trigger, job.trigger) else job.trigger
        self.full_review = self.full_review or job.full_review
        self.installation_id, self.head_sha, self.base_sha = job.installation_id, job.head_sha, job.base_sha

    def columns(self) -> tuple[Any, ...]:
        """installation_id, head_sha, base_sha, full_review, trigger, attempts, last_error."""
        return (
            self.installation_id,
            self.head_sha,
            self.base_sha,
            self.full_review,
            self.trigger,
            self.attempts,
            self.last_error,
        )


def _update_queued(tx: Tx, job_id: int, job: _QueuedJob, now: float) -> None:
    tx.execute(
        "UPDATE jobs SET installation_id = ?, head_sha = ?, base_sha = ?, full_review = ?, trigger = ?,"
        " attempts = ?, last_error = ?, updated_at = ? WHERE id = ?",
        (*job.columns(), now, job_id),
    )


def enqueue(tx: Tx, job: JobRequest, now: float) -> None:
    """Queue ``job``, or coalesce it into the queued job of its pull request (:meth:`_QueuedJob.absorb`)."""
    # FOR UPDATE: a worker's claim (which passes over locked rows) cannot take the job between
    # this read and the update below, so a push is never folded into a job already running.
    row = tx.one(
        f"SELECT {_QUEUED_COLUMNS} FROM jobs"  # noqa: S608 (a constant)
        " WHERE kind = ? AND repo = ? AND pr_number = ? AND state = 'queued' ORDER BY id DESC LIMIT 1{for_update}",
        (job.kind, job.repo, job.pr_number),
    )
    if row is None:
        insert_rows(
            tx,
            _INSERT_QUEUED,
            [(job.kind, job.repo, job.pr_number, *_QueuedJob.of(job).columns(), "queued", now, now, now)],
        )
        return
    queued = _QueuedJob.from_row(row)
    queued.absorb(job)
    assert queued.id is not None
    _update_queued(tx, queued.id, queued, now)


def enqueue_together(tx: Tx, jobs: Sequence[JobRequest], now: float) -> None:
    """:func:`enqueue` for several jobs: one SELECT for all their pull requests, one INSERT."""
    if not jobs:
        return
    repos = padded(sorted({job.repo for job in jobs}))
    numbers = padded(sorted({job.pr_number for job in jobs}))
    # Every repository × number pair: a few rows of other pull requests may come back, unused.
    found = tx.all(
        f"SELECT {_QUEUED_COLUMNS} FROM jobs WHERE state = 'queued'"  # noqa: S608 (markers only)
        f" AND repo IN ({marks(len(repos))}) AND pr_number IN ({marks(len(numbers))}) ORDER BY id",
        (*repos, *numbers),
    )
    queued = {(str(row["kind"]), str(row["repo"]), int(row["pr_number"])): _QueuedJob.from_row(row) for row in found}
    new: dict[tuple[str, str, int], _QueuedJob] = {}  # the newest queued job wins, as in enqueue
    changed: dict[int, _QueuedJob] = {}
    for job in jobs:
        key = (job.kind, job.repo, job.pr_number)
        current = new.get(key) or queued.get(key)
        if current is None:
            new[key] = _QueuedJob.of(job)
            continue
        current.absorb(job)
        if current.id is not None:
            changed[current.id] = current
    insert_rows(
        tx,
        _INSERT_QUEUED,
        [(*key, *job.columns(), "queued", now, now, now) for key, job in new.items()],
    )
    for job_id, queued_job in changed.items():
        _update_queued(tx, job_id, queued_job, now)


#: The oldest job a claim may take. The NOT EXISTS reads only running jobs (a few), through an index.
#: ``{attempts_left}`` is where :func:`_due` puts the limit on the attempts of an expired job.
_DUE: Final = (
    "SELECT id, kind, repo, pr_number, state FROM jobs"
    " WHERE (state = 'queued' AND not_before <= ? AND NOT EXISTS (SELECT 1 FROM jobs AS running"
    " WHERE running.state = 'running' AND running.kind = jobs.kind AND running.repo = jobs.repo"
    " AND running.pr_number = jobs.pr_number))"
    " OR (state = 'running' AND lease_until < ?{attempts_left}) ORDER BY id LIMIT 1{skip_locked}"
)


def _due(now: float, max_attempts: int | None) -> tuple[str, tuple[Any, ...]]:
    """:data:`_DUE` and its parameters: with ``max_attempts``, an expired job that had them all is
    passed over (it is :meth:`QueueMixin.fail_abandoned`'s, to fail and return); without, any expired job."""
    if max_attempts is None:
        return _DUE.replace("{attempts_left}", ""), (now, now)
    return _DUE.replace("{attempts_left}", " AND attempts < ?"), (now, now, max_attempts)


def _start(tx: Tx, due: Row, worker_id: str, lease_until: float, now: float) -> bool:
    """Set the job ``due`` running for ``worker_id``; False when another job of its pull request
    started first, so that the claim looks for another one.

    That happens only on PostgreSQL, where another claim may have picked a second queued job of
    the same pull request (one sent back by :meth:`QueueMixin.retry_job` or
    :meth:`QueueMixin.release_jobs` beside a newer one) and not yet committed it. The claims of
    one pull request take turns on an advisory lock, so the second one's UPDATE, a statement
    begun after the first committed, sees its running job. (A job taken over from a dead worker
    stays the one running: no turn needed.)
    """
    if due["state"] == "queued":
        tx.lock(LOCK_CLAIM, f"{due['kind']}:{due['repo']}#{due['pr_number']}")
    started = tx.execute(
        "UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?"
        " WHERE id = ? AND (state = 'running' OR NOT EXISTS (SELECT 1 FROM jobs AS running"
        " WHERE running.state = 'running' AND running.kind = ? AND running.repo = ? AND running.pr_number = ?))",
        (worker_id, lease_until, now, due["id"], due["kind"], due["repo"], due["pr_number"]),
    )
    return started == 1


class QueueMixin(StoreBase):
    """The job queue's side of :class:`reviewbot.store.store.Store`."""

    def claim_job(
        self, worker_id: str, lease_seconds: float, now: float | None = None, *, max_attempts: int | None = None
    ) -> Job | None:
        """Take the oldest job that is due: queued with ``not_before <= now`` while no job of its
        pull request runs, or running with an expired lease (its worker died). It becomes running,
        leased to ``worker_id`` until ``now + lease_seconds``, with one more attempt counted.

        At most one job of a pull request runs at a time, so two reviews of one head never run side
        by side and both post (``opened`` and then ``ready_for_review`` or ``reopened`` queue a
        second job while the first runs). The job queued behind a running one waits, takes in later
        requests for its pull request (:func:`enqueue`), and once the running one has ended, finds
        the head reviewed if it still is the same. A unique index on running jobs per pull request
        is the database's guarantee of this.

        With ``max_attempts``, an expired job that already had that many attempts is passed over
        rather than run again, so a job that kills its worker cannot loop forever. The claim never
        fails it: it stays running, holding its pull request's turn, until :meth:`fail_abandoned`
        fails it and returns it, so that the worker says so. (A claim failing it silently lost the
        job whose lease ran out between the worker's sweep and its claim.)

        Many workers in many processes may claim at once: on PostgreSQL each locks the row it
        picks with ``FOR UPDATE SKIP LOCKED``, so the others pass over it to the next due job
        instead of waiting (READ COMMITTED re-checks a row another claimer changed meanwhile, so a
        job just taken no longer matches). On SQLite the write lock makes claims take turns.
        """
        now = time.time() if now is None else now
        due, params = _due(now, max_attempts)
        with self._write() as tx:
            while True:
                row = tx.one(due, params)
                if row is None:
                    return None
                if _start(tx, row, worker_id, now + lease_seconds, now):
                    break
            claimed = tx.one("SELECT * FROM jobs WHERE id = ?", (row["id"],))
        assert claimed is not None
        return Job._from_row(claimed)

    def fail_abandoned(self, max_attempts: int, now: float | None = None) -> list[Job]:
        """Mark failed the running jobs whose lease expired on their last attempt (their worker died
        every time, so they are not run again), and return them, so that someone says so.

        This is the only place such a job is failed (:meth:`claim_job` passes over it), and each is
        returned once: on PostgreSQL a sweep locks the rows it fails and the others skip them, and
        on SQLite sweeps take turns on the write lock.
        """
        now = time.time() if now is None else now
        abandoned = "SELECT {columns} FROM jobs WHERE state = 'running' AND lease_until < ? AND attempts >= ?"
        # Runs before every claim: a read first, so the usual answer (none) takes no write lock.
        with self._read() as tx:
            if tx.one(abandoned.format(columns="1") + " LIMIT 1", (now, max_attempts)) is None:
                return []
        with self._write() as tx:
            rows = tx.all(abandoned.format(columns="*") + " ORDER BY id{skip_locked}", (now, max_attempts))
            for row in rows:
                tx.execute(
                    "UPDATE jobs SET state = 'failed', lease_until = NULL, updated_at = ?, last_error = ? WHERE id = ?",
                    (now, ABANDONED, row["id"]),
                )
        return [Job._from_row(row) for row in rows]

    def heartbeat(self, job_id: int, worker_id: str, lease_seconds: float, *, now: float | None = None) -> bool:
        """Extend the lease; False when ``worker_id`` no longer holds the job."""
        now = time.time() if now is None else now
        with self._write() as tx:
            changed = tx.execute(
                "UPDATE jobs SET lease_until = ?, updated_at = ?"
                " WHERE id = ? AND lease_owner = ? AND state = 'running'",
                (now + lease_seconds, now, job_id, worker_id),
            )
        return changed == 1

    def finish_job(
        self,
        job_id: int,
        worker_id: str,
        state: Literal["done", "dropped"] = "done",
        note: str | None = None,
        *,
        now: float | None = None,
    ) -> bool:
        """End a job as done or dropped (``note`` says why); False when the lease was lost."""
        if state not in ("done", "dropped"):
            raise ValueError(f"a job finishes as 'done' or 'dropped', not {state!r}")
        now = time.time() if now is None else now
        with self._write() as tx:
            changed = tx.execute(
                "UPDATE jobs SET state = ?, last_error = ?, lease_until = NULL, updated_at = ?"
                " WHERE id = ? AND lease_owner = ? AND state = 'running'",
                (state, note, now, job_id, worker_id),
            )
        return changed == 1

    def retry_job(
        self,
        job_id: int,
        worker_id: str,
        error: str,
        delay_seconds: float,
        max_attempts: int,
        *,
        now: float | None = None,
    ) -> JobState:
        """Queue the job again after ``delay_seconds``, or fail it once ``max_attempts`` were made.

        Returns the job's new state; when ``worker_id`` lost the lease nothing changes and the
        job's current state is returned.
        """
        now = time.time() if now is None else now
        with self._write() as tx:
            # FOR UPDATE: another worker cannot take the job over between this check and the update.
            row = tx.one("SELECT state, attempts, lease_owner FROM jobs WHERE id = ?{for_update}", (job_id,))
            if row is None:
                raise StoreError(f"job {job_id} does not exist")
            if row["state"] != "running" or row["lease_owner"] != worker_id:
                state: JobState = row["state"]
                return state
            if row["attempts"] >= max_attempts:
                tx.execute(
                    "UPDATE jobs SET state = 'failed', last_error = ?, lease_until = NULL, updated_at = ? WHERE id = ?",
                    (error, now, job_id),
                )
                return "failed"
            tx.execute(
                "UPDATE jobs SET state = 'queued', last_error = ?, not_before = ?, lease_owner = NULL,"
                " lease_until = NULL, updated_at = ? WHERE id = ?",
                (error, now + max(0.0, delay_seconds), now, job_id),
            )
            return "queued"

    def release_jobs(self, worker_id: str, *, now: float | None = None) -> int:
        """Give back every job ``worker_id`` holds, claimable at once (a worker shutting down).

        The attempt is not counted: the job was cut off, it did not fail. Returns how many
        jobs were released.
        """
        now = time.time() if now is None else now
        with self._write() as tx:
            return tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = attempts - 1, not_before = ?, lease_owner = NULL,"
                " lease_until = NULL, updated_at = ? WHERE state = 'running' AND lease_owner = ?",
                (now, now, worker_id),
            )

    def newer_job_exists(self, repo: str, pr_number: int, head_sha: str, *, after_job_id: int | None = None) -> bool:
        """Whether a queued or running review job of this pull request is for another head.

        A running job passes its own id as ``after_job_id`` so that only jobs created after it count
        (an older job that was sent back to the queue is not newer work).
        """
        sql = (
            "SELECT 1 FROM jobs WHERE kind = 'review' AND repo = ? AND pr_number = ?"
            " AND state IN ('queued', 'running') AND head_sha <> ?"
        )
        params: tuple[Any, ...] = (repo, pr_number, head_sha)
        if after_job_id is not None:
            sql += " AND id > ?"
            params += (after_job_id,)
        with self._read() as tx:
            return tx.one(sql + " LIMIT 1", params) is not None

    def get_job(self, job_id: int) -> Job | None:
        with self._read() as tx:
            row = tx.one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job._from_row(row) if row is not None else None

    def list_jobs(self, *, repo: str | None = None, pr_number: int | None = None) -> list[Job]:
        """Jobs, oldest first, optionally of one repository or pull request."""
        sql = "SELECT * FROM jobs WHERE 1 = 1"
        params: tuple[Any, ...] = ()
        if repo is not None:
            sql, params = sql + " AND repo = ?", (*params, repo)
        if pr_number is not None:
            sql, params = sql + " AND pr_number = ?", (*params, pr_number)
        with self._read() as tx:
            return [Job._from_row(row) for row in tx.all(sql + " ORDER BY id", params)]

    def job_counts(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state present, zero or not)."""
        counts: dict[JobState, int] = dict.fromkeys(JOB_STATES, 0)
        with self._read() as tx:
            for row in tx.all("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state"):
                counts[row["state"]] = int(row["n"])
        return counts
