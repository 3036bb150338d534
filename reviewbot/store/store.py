"""Durable state of the GitHub App: webhook deliveries, the job queue, posted reviews, installations.

Everything the web process accepts is written here before GitHub gets its answer, and the
worker takes its jobs from here, so a crash between the two loses nothing.

The backend is SQLite (a file, the default) or PostgreSQL (``REVIEWBOT_DATABASE_URL=postgresql://…``,
for several replicas), with the same schema and the same SQL: standard types only (TEXT, INTEGER,
BIGINT, BOOLEAN, DOUBLE PRECISION), timestamps as epoch seconds, ``INSERT … ON CONFLICT``, no
``RETURNING`` (SQLite before 3.35 lacks it). What differs between the two lives in
:class:`reviewbot.store.database.Dialect`; every check-then-write step below runs in a write transaction
that is safe across threads *and* processes: SQLite's ``BEGIN IMMEDIATE`` takes the database write
lock up front, and on PostgreSQL the rows read are locked with ``FOR UPDATE`` (``SKIP LOCKED`` for
the queue's claim) and a pull request without a queued job yet with an advisory lock.

Times are ``time.time()`` seconds. The time-sensitive methods take ``now`` so tests need not sleep.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any, Final, Literal, TypeVar

from reviewbot.errors import ConfigError, StoreError
from reviewbot.store.database import Database, Row, Tx, connect

log = logging.getLogger("reviewbot.store")

_T = TypeVar("_T")

JobState = Literal["queued", "running", "done", "failed", "dropped"]
JOB_STATES: Final[tuple[JobState, ...]] = ("queued", "running", "done", "failed", "dropped")
#: A command's trigger; it survives coalescing so a `/review` is never downgraded to a push.
COMMAND_TRIGGER: Final = "command"
# First keys of the PostgreSQL advisory locks the store takes ("rb" and a number), so that another
# application's advisory locks in the same database are unlikely to collide with ours.
LOCK_MIGRATIONS: Final = 0x7262_0001
LOCK_PULL_REQUEST: Final = 0x7262_0002
# The name the transaction type had when it lived here (benchmarks and the ledger use it).
_Tx = Tx

# Each entry is one schema version (1, 2, …); never edit an entry once released, append a new one.
# `{auto_id}` is filled in from the dialect.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            action TEXT,
            installation_id BIGINT,
            repo TEXT,
            received_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE jobs (
            id {auto_id},
            kind TEXT NOT NULL,
            installation_id BIGINT NOT NULL,
            repo TEXT NOT NULL,
            pr_number INTEGER NOT NULL,
            head_sha TEXT NOT NULL,
            base_sha TEXT NOT NULL,
            full_review BOOLEAN NOT NULL,
            trigger TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'dropped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before DOUBLE PRECISION NOT NULL,
            lease_owner TEXT,
            lease_until DOUBLE PRECISION,
            last_error TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX jobs_by_state ON jobs (state, not_before)",
        "CREATE INDEX jobs_by_pull_request ON jobs (repo, pr_number, state)",
        """CREATE TABLE reviews (
            repo TEXT NOT NULL,
            pr_number INTEGER NOT NULL,
            head_sha TEXT NOT NULL,
            review_id BIGINT NOT NULL,
            posted_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (repo, pr_number, head_sha)
        )""",
        """CREATE TABLE fingerprints (
            repo TEXT NOT NULL,
            pr_number INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            PRIMARY KEY (repo, pr_number, fingerprint)
        )""",
        """CREATE TABLE installations (
            id BIGINT PRIMARY KEY,
            account TEXT NOT NULL,
            suspended BOOLEAN NOT NULL DEFAULT FALSE,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE installation_repos (
            installation_id BIGINT NOT NULL,
            repo TEXT NOT NULL,
            PRIMARY KEY (installation_id, repo)
        )""",
    ),
    # 2: the cost ledger (reviewbot.ledger), one row per model request. cost_usd NULL = unknown.
    (
        """CREATE TABLE model_calls (
            id {auto_id},
            job_id BIGINT,
            installation_id BIGINT NOT NULL,
            repo TEXT NOT NULL,
            pr_number INTEGER NOT NULL,
            head_sha TEXT NOT NULL,
            request_index INTEGER NOT NULL,
            model TEXT NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            reasoning_tokens BIGINT NOT NULL,
            cost_usd DOUBLE PRECISION,
            cost_source TEXT NOT NULL CHECK (cost_source IN ('endpoint', 'price table', 'unknown')),
            seconds DOUBLE PRECISION NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT,
            at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX model_calls_by_time ON model_calls (at)",
        "CREATE INDEX model_calls_by_installation ON model_calls (installation_id, at)",
        "CREATE INDEX model_calls_by_repo ON model_calls (repo, at)",
    ),
)

SCHEMA_VERSION: Final = len(_MIGRATIONS)


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


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook delivery to record, with the job it asks for, if any."""

    id: str
    event: str
    action: str | None
    installation_id: int | None
    repo: str | None
    job: JobRequest | None = None


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


#: Parameters per statement at most: SQLite before 3.32 allows 999.
_MAX_PARAMS: Final = 999
#: How coalescing inserts queued jobs: these columns, then state, not_before, created_at, updated_at.
_INSERT_QUEUED: Final = (
    "INSERT INTO jobs (kind, repo, pr_number, installation_id, head_sha, base_sha, full_review, trigger,"
    " attempts, last_error, state, not_before, created_at, updated_at) VALUES"
)
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


def _update_queued(tx: _Tx, job_id: int, job: _QueuedJob, now: float) -> None:
    tx.execute(
        "UPDATE jobs SET installation_id = ?, head_sha = ?, base_sha = ?, full_review = ?, trigger = ?,"
        " attempts = ?, last_error = ?, updated_at = ? WHERE id = ?",
        (*job.columns(), now, job_id),
    )


@functools.cache
def _marks(count: int, width: int = 1) -> str:
    """``?, ?, ?`` (``count`` markers), or with ``width`` > 1 ``(?, ?), (?, ?), …`` (``count`` rows)."""
    if width == 1:
        return ", ".join(["?"] * count)
    return ", ".join([f"({_marks(width)})"] * count)


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _padded(values: Sequence[_T]) -> Sequence[_T]:
    """``values`` (not empty) padded to a power of two with its last one, for an ``IN (…)`` list:
    then a few statements serve every group size, and SQLite prepares each once."""
    size = 1 << (len(values) - 1).bit_length()
    return values if size == len(values) else [*values, *[values[-1]] * (size - len(values))]


def _select_in(tx: _Tx, sql: str, values: Sequence[Any]) -> Iterator[Row]:
    """The rows of ``sql``, whose ``{}`` is filled with one marker per value (in chunks)."""
    for chunk in _chunks(values, 512):
        padded = _padded(chunk)
        yield from tx.all(sql.format(_marks(len(padded))), tuple(padded))


def _insert_rows(tx: _Tx, insert: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``insert`` (``INSERT INTO t (…) VALUES``) with ``rows``, as many to a statement as fit."""
    if not rows:
        return
    width = len(rows[0])
    for chunk in _chunks(rows, _MAX_PARAMS // width):
        tx.execute(f"{insert} {_marks(len(chunk), width)}", tuple(itertools.chain.from_iterable(chunk)))


def open_store(database_url: str) -> Store:
    """Open (creating and migrating as needed) the store at ``database_url``.

    Accepted: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite://:memory:`` and
    ``postgresql://user:password@host:5432/dbname`` (or ``postgres://…``).
    """
    return Store(connect(database_url))


class Store:
    """The state of the service; every method is synchronous and thread-safe."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._dialect = database.dialect
        #: Where the database is, for messages (no password).
        self.location = database.location
        #: How another process opens this database (may hold a password); None if it cannot.
        self.database_url = database.url
        #: The schema version the database had before it was opened (0: it was empty).
        self.migrated_from = 0
        try:
            self.migrated_from = self._migrate()
        except StoreError as exc:
            self.close()
            raise ConfigError(f"REVIEWBOT_DATABASE_URL: cannot use the database {self.location}: {exc}") from None

    # -- transactions ----------------------------------------------------------------------

    def _write(self) -> AbstractContextManager[_Tx]:
        """A write transaction, safe against every other writer (see the module docstring)."""
        return self._db.write()

    def _read(self) -> AbstractContextManager[_Tx]:
        """Statements in autocommit mode; each one sees a consistent snapshot."""
        return self._db.read()

    def write(self) -> AbstractContextManager[_Tx]:
        """A write transaction (:meth:`_write`) for modules that keep their own tables, like the ledger."""
        return self._write()

    def read(self) -> AbstractContextManager[_Tx]:
        """Autocommit reads (:meth:`_read`) for modules that keep their own tables, like the ledger."""
        return self._read()

    def _migrate(self) -> int:
        """Bring the schema up to :data:`SCHEMA_VERSION`; return the version it had."""
        with self._write() as tx:
            # Replicas starting together would otherwise all find the same old version and
            # all apply the same migrations (PostgreSQL; SQLite's write lock already excludes
            # them). The second one waits here and then finds nothing left to do.
            tx.lock(LOCK_MIGRATIONS, "schema")
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            row = tx.one("SELECT MAX(version) AS version FROM schema_version")
            current = int(row["version"]) if row is not None and row["version"] is not None else 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"its schema version {current} is newer than this reviewbot knows ({SCHEMA_VERSION})")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version - 1]:
                    tx.execute(statement.replace("{auto_id}", self._dialect.auto_id))
                tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time()))
                log.info("database migrated to schema version %d", version)
        return current

    def schema_version(self) -> int:
        with self._read() as tx:
            row = tx.one("SELECT MAX(version) AS version FROM schema_version")
        return int(row["version"]) if row is not None and row["version"] is not None else 0

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers (for ``/readyz``)."""
        with self._read() as tx:
            tx.one("SELECT 1")

    def close(self) -> None:
        """Close every connection; later calls raise :class:`StoreError`."""
        self._db.close()

    # -- deliveries and the queue ----------------------------------------------------------

    def has_delivery(self, delivery_id: str) -> bool:
        with self._read() as tx:
            return tx.one("SELECT 1 FROM deliveries WHERE id = ?", (delivery_id,)) is not None

    def record_delivery(
        self,
        delivery_id: str,
        event: str,
        action: str | None,
        installation_id: int | None,
        repo: str | None,
        job: JobRequest | None = None,
        *,
        now: float | None = None,
    ) -> bool:
        """Record a delivery and enqueue its job in one transaction.

        Returns False, changing nothing, when the delivery id is already known (GitHub keeps the id
        when a delivery is redelivered). A review job coalesces with a *queued* review job of the
        same pull request: that one takes the newer head and base, ``full_review`` becomes the OR
        of both, a command trigger is kept, and the attempts restart when the head changes. A job
        already *running* for the PR is left alone and a new one is queued (the running one finds
        its head stale).
        """
        delivery = Delivery(delivery_id, event, action, installation_id, repo, job)
        return self.record_deliveries([delivery], now=now)[0]

    def record_deliveries(self, deliveries: Sequence[Delivery], *, now: float | None = None) -> list[bool]:
        """:meth:`record_delivery` for several at once, in one transaction (one fsync for all).

        The webhook receiver groups the deliveries that arrive together this way, so a burst
        costs one commit instead of one each.
        """
        now = time.time() if now is None else now
        added: list[bool] = []
        with self._write() as tx:
            if tx.dialect.serial_writes:  # SQLite: its write lock already serialises all of this
                return self._record_together(tx, deliveries, now)
            # Coalescing reads a pull request's queued job and then updates it or inserts one, so
            # two writers for one pull request must take turns. On PostgreSQL a row lock is not
            # enough (with no queued job yet there is no row to lock, and both would insert), and
            # a unique index on queued jobs per pull request cannot hold (retry_job legitimately
            # sends a running job back beside a newer queued one). So: a transaction-scoped
            # advisory lock per pull request, released at commit, taken before anything else and
            # in sorted order so two batches cannot deadlock on each other. A hash collision only
            # makes two pull requests wait for each other. SQLite's write lock already does this.
            pulls = {(d.job.kind, d.job.repo, d.job.pr_number) for d in deliveries if d.job is not None}
            for kind, repo, pr_number in sorted(pulls):
                tx.lock(LOCK_PULL_REQUEST, f"{kind}:{repo}#{pr_number}")
            for delivery in deliveries:
                inserted = tx.execute(
                    "INSERT INTO deliveries (id, event, action, installation_id, repo, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    (delivery.id, delivery.event, delivery.action, delivery.installation_id, delivery.repo, now),
                )
                added.append(inserted == 1)
                if inserted == 1 and delivery.job is not None:
                    self._enqueue(tx, delivery.job, now)
        return added

    def _record_together(self, tx: _Tx, deliveries: Sequence[Delivery], now: float) -> list[bool]:
        """:meth:`record_deliveries` in a few statements for the whole group, whatever its size.

        Only where a write transaction excludes every other writer (SQLite): what the SELECTs find
        cannot change before the INSERTs. A group then costs one statement per table read or
        written instead of two or three per delivery, and the write lock is held that much shorter.
        """
        ids = list(dict.fromkeys(delivery.id for delivery in deliveries))
        known = {str(row["id"]) for row in _select_in(tx, "SELECT id FROM deliveries WHERE id IN ({})", ids)}
        added: list[bool] = []
        rows: list[tuple[Any, ...]] = []
        jobs: list[JobRequest] = []
        for delivery in deliveries:
            new = delivery.id not in known
            added.append(new)
            if new:
                known.add(delivery.id)  # the same id twice in one group: the second is a redelivery
                rows.append(
                    (delivery.id, delivery.event, delivery.action, delivery.installation_id, delivery.repo, now)
                )
                if delivery.job is not None:
                    jobs.append(delivery.job)
        _insert_rows(tx, "INSERT INTO deliveries (id, event, action, installation_id, repo, received_at) VALUES", rows)
        for chunk in _chunks(jobs, _MAX_PARAMS // 2):
            self._enqueue_together(tx, chunk, now)
        return added

    def _enqueue_together(self, tx: _Tx, jobs: Sequence[JobRequest], now: float) -> None:
        """:meth:`_enqueue` for several jobs: one SELECT for all their pull requests, one INSERT."""
        if not jobs:
            return
        repos = _padded(sorted({job.repo for job in jobs}))
        numbers = _padded(sorted({job.pr_number for job in jobs}))
        # Every repository × number pair: a few rows of other pull requests may come back, unused.
        found = tx.all(
            f"SELECT {_QUEUED_COLUMNS} FROM jobs WHERE state = 'queued'"  # noqa: S608 (markers only)
            f" AND repo IN ({_marks(len(repos))}) AND pr_number IN ({_marks(len(numbers))}) ORDER BY id",
            (*repos, *numbers),
        )
        queued = {
            (str(row["kind"]), str(row["repo"]), int(row["pr_number"])): _QueuedJob.from_row(row) for row in found
        }
        new: dict[tuple[str, str, int], _QueuedJob] = {}  # the newest queued job wins, as in _enqueue
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
        _insert_rows(
            tx,
            _INSERT_QUEUED,
            [(*key, *job.columns(), "queued", now, now, now) for key, job in new.items()],
        )
        for job_id, queued_job in changed.items():
            _update_queued(tx, job_id, queued_job, now)

    def _enqueue(self, tx: _Tx, job: JobRequest, now: float) -> None:
        # FOR UPDATE: a worker's claim (which passes over locked rows) cannot take the job between
        # this read and the update below, so a push is never folded into a job already running.
        row = tx.one(
            f"SELECT {_QUEUED_COLUMNS} FROM jobs"  # noqa: S608 (a constant)
            " WHERE kind = ? AND repo = ? AND pr_number = ? AND state = 'queued' ORDER BY id DESC LIMIT 1{for_update}",
            (job.kind, job.repo, job.pr_number),
        )
        if row is None:
            _insert_rows(
                tx,
                _INSERT_QUEUED,
                [(job.kind, job.repo, job.pr_number, *_QueuedJob.of(job).columns(), "queued", now, now, now)],
            )
            return
        queued = _QueuedJob.from_row(row)
        queued.absorb(job)
        assert queued.id is not None
        _update_queued(tx, queued.id, queued, now)

    def claim_job(
        self, worker_id: str, lease_seconds: float, now: float | None = None, *, max_attempts: int | None = None
    ) -> Job | None:
        """Take the oldest job that is due: queued with ``not_before <= now``, or running with an
        expired lease (its worker died). It becomes running, leased to ``worker_id`` until
        ``now + lease_seconds``, with one more attempt counted.

        With ``max_attempts``, expired jobs that already had that many attempts are marked failed
        instead of being run again, so a job that kills its worker cannot loop forever.

        Many workers in many processes may claim at once: on PostgreSQL each locks the row it
        picks with ``FOR UPDATE SKIP LOCKED``, so the others pass over it to the next due job
        instead of waiting (READ COMMITTED re-checks a row another claimer changed meanwhile, so a
        job just taken no longer matches). On SQLite the write lock makes claims take turns.
        """
        now = time.time() if now is None else now
        with self._write() as tx:
            if max_attempts is not None:
                tx.execute(
                    "UPDATE jobs SET state = 'failed', lease_until = NULL, updated_at = ?,"
                    " last_error = 'the worker stopped heartbeating (lease expired) on its last attempt'"
                    " WHERE id IN (SELECT id FROM jobs"
                    " WHERE state = 'running' AND lease_until < ? AND attempts >= ?{skip_locked})",
                    (now, now, max_attempts),
                )
            row = tx.one(
                "SELECT id FROM jobs WHERE (state = 'queued' AND not_before <= ?)"
                " OR (state = 'running' AND lease_until < ?) ORDER BY id LIMIT 1{skip_locked}",
                (now, now),
            )
            if row is None:
                return None
            tx.execute(
                "UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1,"
                " updated_at = ? WHERE id = ?",
                (worker_id, now + lease_seconds, now, row["id"]),
            )
            claimed = tx.one("SELECT * FROM jobs WHERE id = ?", (row["id"],))
        assert claimed is not None
        return Job._from_row(claimed)

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
        self, job_id: int, worker_id: str, state: Literal["done", "dropped"] = "done", note: str | None = None
    ) -> bool:
        """End a job as done or dropped (``note`` says why); False when the lease was lost."""
        if state not in ("done", "dropped"):
            raise ValueError(f"a job finishes as 'done' or 'dropped', not {state!r}")
        with self._write() as tx:
            changed = tx.execute(
                "UPDATE jobs SET state = ?, last_error = ?, lease_until = NULL, updated_at = ?"
                " WHERE id = ? AND lease_owner = ? AND state = 'running'",
                (state, note, time.time(), job_id, worker_id),
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

    # -- reviews ---------------------------------------------------------------------------

    def record_review(
        self,
        repo: str,
        pr_number: int,
        head_sha: str,
        review_id: int,
        fingerprints: Iterable[str],
        *,
        now: float | None = None,
    ) -> None:
        """Remember the review posted for a head, and the fingerprints of its findings."""
        now = time.time() if now is None else now
        with self._write() as tx:
            tx.execute(
                "INSERT INTO reviews (repo, pr_number, head_sha, review_id, posted_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (repo, pr_number, head_sha) DO UPDATE SET"
                " review_id = excluded.review_id, posted_at = excluded.posted_at",
                (repo, pr_number, head_sha, review_id, now),
            )
            for fingerprint in set(fingerprints):
                tx.execute(
                    "INSERT INTO fingerprints (repo, pr_number, fingerprint) VALUES (?, ?, ?)"
                    " ON CONFLICT (repo, pr_number, fingerprint) DO NOTHING",
                    (repo, pr_number, fingerprint),
                )

    def review_for(self, repo: str, pr_number: int, head_sha: str) -> int | None:
        with self._read() as tx:
            row = tx.one(
                "SELECT review_id FROM reviews WHERE repo = ? AND pr_number = ? AND head_sha = ?",
                (repo, pr_number, head_sha),
            )
        return int(row["review_id"]) if row is not None else None

    def last_reviewed_head(self, repo: str, pr_number: int) -> str | None:
        with self._read() as tx:
            row = tx.one(
                "SELECT head_sha FROM reviews WHERE repo = ? AND pr_number = ?"
                " ORDER BY posted_at DESC, review_id DESC LIMIT 1",
                (repo, pr_number),
            )
        return str(row["head_sha"]) if row is not None else None

    def known_fingerprints(self, repo: str, pr_number: int) -> set[str]:
        with self._read() as tx:
            rows = tx.all("SELECT fingerprint FROM fingerprints WHERE repo = ? AND pr_number = ?", (repo, pr_number))
        return {str(row["fingerprint"]) for row in rows}

    # -- installations ---------------------------------------------------------------------

    def upsert_installation(
        self, installation_id: int, account: str, repos: Iterable[str] | None = None, *, suspended: bool = False
    ) -> None:
        """Create or refresh an installation; ``repos``, when given, replaces its repository list."""
        now = time.time()
        with self._write() as tx:
            tx.execute(
                "INSERT INTO installations (id, account, suspended, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET account = excluded.account, suspended = excluded.suspended,"
                " updated_at = excluded.updated_at",
                (installation_id, account, suspended, now),
            )
            if repos is not None:
                tx.execute("DELETE FROM installation_repos WHERE installation_id = ?", (installation_id,))
                self._add_repos(tx, installation_id, repos)

    def remove_installation(self, installation_id: int) -> None:
        with self._write() as tx:
            tx.execute("DELETE FROM installation_repos WHERE installation_id = ?", (installation_id,))
            tx.execute("DELETE FROM installations WHERE id = ?", (installation_id,))

    def set_installation_suspended(self, installation_id: int, suspended: bool) -> bool:
        """Mark an installation (un)suspended; False when it is not known."""
        with self._write() as tx:
            changed = tx.execute(
                "UPDATE installations SET suspended = ?, updated_at = ? WHERE id = ?",
                (suspended, time.time(), installation_id),
            )
        return changed == 1

    def set_installation_repos(self, installation_id: int, added: Iterable[str], removed: Iterable[str]) -> None:
        with self._write() as tx:
            for repo in set(removed):
                tx.execute(
                    "DELETE FROM installation_repos WHERE installation_id = ? AND repo = ?", (installation_id, repo)
                )
            self._add_repos(tx, installation_id, added)

    @staticmethod
    def _add_repos(tx: _Tx, installation_id: int, repos: Iterable[str]) -> None:
        for repo in set(repos):
            tx.execute(
                "INSERT INTO installation_repos (installation_id, repo) VALUES (?, ?)"
                " ON CONFLICT (installation_id, repo) DO NOTHING",
                (installation_id, repo),
            )

    def installation(self, installation_id: int) -> Installation | None:
        with self._read() as tx:
            row = tx.one("SELECT id, account, suspended FROM installations WHERE id = ?", (installation_id,))
        if row is None:
            return None
        return Installation(int(row["id"]), str(row["account"]), bool(row["suspended"]))

    def installation_repos(self, installation_id: int) -> set[str]:
        with self._read() as tx:
            rows = tx.all("SELECT repo FROM installation_repos WHERE installation_id = ?", (installation_id,))
        return {str(row["repo"]) for row in rows}
