"""Retention: deleting the rows that are past use, a bounded batch at a time, and taking turns at
periodic tasks across processes (:mod:`reviewbot.service.retention` runs both, hourly).

What each table keeps, and why:

- ``deliveries``: deleted once received before the retention's start. A delivery's id is kept to
  recognise a redelivery, which GitHub allows for a few days only (3 on GitHub.com, 7 on GitHub
  Enterprise Server), and its ``body_sha256`` to recognise its signed body replayed under a new
  delivery id. Past the retention such a replay is taken as new: a pull request's head already
  reviewed is not reviewed again, and an installation event changes only what nothing acts on
  (:mod:`reviewbot.store.installations`). A delivery that took a review command is kept for good:
  its ``command_comment_id`` (and its body's hash) is what refuses that signed comment replayed
  under a new delivery id, which would pay for another review, and a replay can come at any time
  (one small row per ``/review`` comment).
- ``jobs``: the finished ones (done, dropped, failed) last updated before the retention's start;
  never a queued or running one, and never the newest job, whose id SQLite would give to the next
  job (a ``/review`` job's id is written in the review it posts, and every job's in the ledger).
- ``kept_results``: past :data:`~reviewbot.store.results.KEPT_RESULT_SECONDS`, whatever became of
  its job (a job that ends forgets its own; these are left by workers that died).
- ``reviews``, ``fingerprints``: never; they keep a head from being reviewed twice and a finding
  from being posted again on its pull request.
- ``model_calls``: never; it is the money record (``reviewbot costs``, the monthly budgets). Its
  ``job_id`` may then name a deleted job: a plain number that nothing joins on.
- ``installations``, ``installation_repos``: what is installed now, kept up to date by events.
- ``schema_version``, ``maintenance``: one row per migration, and per periodic task.
"""

from __future__ import annotations

import time
from typing import Final

from reviewbot.store.base import StoreBase
from reviewbot.store.records import Pruned, Turn
from reviewbot.store.results import KEPT_RESULT_SECONDS
from reviewbot.store.schema import LOCK_PRUNE, LOCK_TURN

#: The oldest deliveries received before ``?`` that took no command, at most ``?`` of them
#: (through the index ``deliveries_by_time``).
PRUNE_DELIVERIES: Final = (
    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries"
    " WHERE command_comment_id IS NULL AND received_at < ? ORDER BY received_at LIMIT ?)"
)
#: Finished jobs last updated before ``?``, at most ``?`` of them, never the newest job (through the
#: index ``jobs_finished_by_update``, a state at a time: no ORDER BY, which would sort every match).
PRUNE_JOBS: Final = (
    "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('done', 'dropped', 'failed')"
    " AND updated_at < ? AND id < (SELECT MAX(id) FROM jobs) LIMIT ?)"
)
#: Kept results older than ``?``: one per job in hand at most, so no limit is needed.
PRUNE_KEPT_RESULTS: Final = "DELETE FROM kept_results WHERE kept_at < ?"


class RetentionMixin(StoreBase):
    """The retention side of :class:`reviewbot.store.store.Store`."""

    def prune_batch(self, before: float, limit: int, *, now: float | None = None) -> Pruned:
        """Delete, in one transaction, up to ``limit`` deliveries received before ``before`` and up
        to ``limit`` finished jobs last updated before it, with the kept results past
        their day (see the module docstring for what stays). Call again while a count is ``limit``.
        """
        now = time.time() if now is None else now
        with self._write() as tx:
            # Two prunes never delete at once (PostgreSQL; SQLite's write lock already excludes them):
            # one that outlasts its turn takes turns with the next one, batch by batch.
            tx.lock(LOCK_PRUNE, "prune")
            deliveries = tx.execute(PRUNE_DELIVERIES, (before, limit))
            jobs = tx.execute(PRUNE_JOBS, (before, limit))
            kept_results = tx.execute(PRUNE_KEPT_RESULTS, (now - KEPT_RESULT_SECONDS,))
        return Pruned(deliveries, jobs, kept_results)

    def take_turn(self, task: str, every: float, *, now: float | None = None) -> Turn:
        """Take the turn at ``task`` if it is due, making the next one due ``every`` seconds later,
        so that of all the processes on this database one runs it per period.

        The first ask for a task finds it due. Whoever asks while the turn is not due is told when it is.
        """
        now = time.time() if now is None else now
        with self._write() as tx:
            # The read and the write below take turns across processes (PostgreSQL; SQLite's write
            # lock already does this): with no row yet, a row lock would have nothing to hold.
            tx.lock(LOCK_TURN, task)
            row = tx.one("SELECT next_at FROM maintenance WHERE task = ?", (task,))
            if row is not None and float(row["next_at"]) > now:
                return Turn(taken=False, next_at=float(row["next_at"]))
            tx.execute(
                "INSERT INTO maintenance (task, next_at) VALUES (?, ?)"
                " ON CONFLICT (task) DO UPDATE SET next_at = excluded.next_at",
                (task, now + every),
            )
        return Turn(taken=True, next_at=now + every)
