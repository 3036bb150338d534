"""Webhook deliveries: recorded once each, with the job each asks for or the installation change it makes.

GitHub redelivers with the same id; and it signs a delivery's body but not its id, so the same signed
body can come again under any id. So no two deliveries share an id, a body (its SHA-256), or the
review command of one comment: whichever comes second is a duplicate, checked in the transaction that
records the first, even when both are in it, and told apart as GitHub's redelivery or someone's
replay (:data:`~reviewbot.store.records.Recorded`). A body is known as long as its delivery is kept
(:mod:`reviewbot.store.retention`); a delivery that took a command is kept for good.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from reviewbot.store.base import StoreBase
from reviewbot.store.bulk import MAX_PARAMS, chunks, insert_rows, marks, select_in
from reviewbot.store.database import Tx
from reviewbot.store.installations import apply_change
from reviewbot.store.queue import enqueue, enqueue_together
from reviewbot.store.records import Delivery, InstallationChange, JobRequest, Recorded
from reviewbot.store.schema import LOCK_DELIVERY, LOCK_INSTALLATION, LOCK_PULL_REQUEST

_INSERT: Final = (
    "INSERT INTO deliveries (id, event, action, installation_id, repo, received_at, command_comment_id, body_sha256)"
)


def _command_comment(delivery: Delivery) -> int | None:
    """The comment whose review command ``delivery`` takes, if it takes one."""
    return delivery.job.comment_id if delivery.job is not None else None


#: The columns besides the id that no two deliveries share (each has a unique index): the column, what
#: finds the values recorded among some (``{}`` for their markers), and a delivery's value (None holds it
#: to nothing there). A delivery that has one of another's is a replay, whatever its id.
_TAKEN_ONCE: Final[tuple[tuple[str, str, Callable[[Delivery], object]], ...]] = (
    (
        "command_comment_id",
        "SELECT command_comment_id FROM deliveries WHERE command_comment_id IN ({})",
        _command_comment,
    ),
    ("body_sha256", "SELECT body_sha256 FROM deliveries WHERE body_sha256 IN ({})", lambda d: d.body_sha256),
)


def _row(delivery: Delivery, now: float) -> tuple[Any, ...]:
    """The columns of :data:`_INSERT` for ``delivery``."""
    return (
        delivery.id,
        delivery.event,
        delivery.action,
        delivery.installation_id,
        delivery.repo,
        now,
        _command_comment(delivery),
        delivery.body_sha256,
    )


def _lock_keys(tx: Tx, deliveries: Sequence[Delivery]) -> None:
    """Take turns with every other transaction recording a delivery with any of the same unique keys.

    On PostgreSQL an ``INSERT … ON CONFLICT DO NOTHING`` waits for another transaction's unfinished
    insert of the same key, and a group inserts in arrival order: two replicas recording the same two
    replayed bodies in opposite orders would each hold one and wait for the other, until PostgreSQL
    aborted one of them, and the genuine deliveries in it. So every key a unique index covers is
    locked first, all of them in one order (:meth:`Tx.lock`), and an insert then never waits on
    another transaction recording deliveries. (A retry after the deadlock instead would still stall
    both replicas' only writer thread for ``deadlock_timeout``, a second by default, each time a
    stranger sent the two bodies again.) A hash collision only makes two keys wait for each other.
    """
    tx.lock(LOCK_DELIVERY, *(key for delivery in deliveries for key in _keys(delivery)))


def _keys(delivery: Delivery) -> Iterator[str]:
    """Names for ``delivery``'s values in the columns no two deliveries share: its id and :data:`_TAKEN_ONCE`."""
    yield f"id:{delivery.id}"
    for column, _, value in _TAKEN_ONCE:
        found = value(delivery)
        if found is not None:
            yield f"{column}:{found}"


def _insert(tx: Tx, delivery: Delivery, now: float) -> Recorded:
    """Insert ``delivery`` unless it shares an id, a command comment or a body with one recorded;
    on PostgreSQL, only once its keys are locked (:func:`_lock_keys`)."""
    row = _row(delivery, now)
    # No conflict target: a conflict on any of the unique indexes leaves the delivery out.
    if tx.execute(f"{_INSERT} VALUES {marks(1, len(row))} ON CONFLICT DO NOTHING", row) == 1:
        return "recorded"
    # The delivery it met is committed (its keys were locked until then) or in this transaction: a
    # read sees it. Only duplicates pay for this read.
    found = tx.one("SELECT body_sha256 FROM deliveries WHERE id = ?", (delivery.id,))
    return "replay" if found is None else _same_id(delivery, found["body_sha256"])


def _same_id(delivery: Delivery, recorded_body: str | None) -> Recorded:
    """What ``delivery`` is when a delivery with its id is recorded, with ``recorded_body``: GitHub's
    redelivery, unless it carries another body (one GitHub signed for another delivery)."""
    if recorded_body is None or delivery.body_sha256 is None or delivery.body_sha256 == recorded_body:
        return "redelivery"
    return "replay"


class DeliveriesMixin(StoreBase):
    """The deliveries' side of :class:`reviewbot.store.store.Store`."""

    def record_deliveries(self, deliveries: Sequence[Delivery], *, now: float | None = None) -> list[Recorded]:
        """Record deliveries and enqueue their jobs, in one transaction (one fsync for all): what became of each.

        The webhook receiver groups the deliveries that arrive together this way, so a burst costs one
        commit instead of one each.

        A delivery is left out, changing nothing, when its id is already known (GitHub keeps the id
        when a delivery is redelivered), when its body is (:attr:`Delivery.body_sha256`), or when its
        job is the command of a comment another delivery already took (:attr:`JobRequest.comment_id`):
        GitHub signs a delivery's body but not its id, so the same signed body can come again under
        any id. The same goes for a delivery like one before it in ``deliveries``. Each left out is
        told apart as a ``redelivery`` or a ``replay`` (:data:`~reviewbot.store.records.Recorded`).

        A review job coalesces with a *queued* review job of the same pull request: that one takes
        the newer head and base, ``full_review`` becomes the OR of both, a command trigger is kept,
        and the attempts restart when the head changes. A job already *running* for the PR is left
        alone and a new one is queued: it waits for the running one to end
        (:meth:`~reviewbot.store.queue.QueueMixin.claim_job`), which finds its head stale if the new
        one is for another head.
        """
        now = time.time() if now is None else now
        added: list[Recorded] = []
        with self._write() as tx:
            if tx.dialect.serial_writes:  # SQLite: its write lock already serialises all of this
                return self._record_together(tx, deliveries, now)
            # Coalescing reads a pull request's queued job and then updates it or inserts one, so
            # two writers for one pull request must take turns. On PostgreSQL a row lock is not
            # enough (with no queued job yet there is no row to lock, and both would insert), and
            # a unique index on queued jobs per pull request cannot hold (retry_job legitimately
            # sends a running job back beside a newer queued one). So: a transaction-scoped
            # advisory lock per pull request, released at commit, taken before anything else and
            # in one order, and then the deliveries' keys (:func:`_lock_keys`), so that two groups
            # cannot deadlock on each other. A hash collision only makes two pull requests wait for
            # each other. SQLite's write lock already does this.
            tx.lock(LOCK_PULL_REQUEST, *(f"{d.job.kind}:{d.job.repo}#{d.job.pr_number}" for d in deliveries if d.job))
            _lock_keys(tx, deliveries)
            for delivery in deliveries:
                added.append(_insert(tx, delivery, now))
                if added[-1] == "recorded" and delivery.job is not None:
                    enqueue(tx, delivery.job, now)
        return added

    def record_installation_delivery(
        self, delivery: Delivery, change: InstallationChange, *, now: float | None = None
    ) -> Recorded:
        """Record a delivery and make the installation change it carries, in one transaction.

        A duplicate changes nothing, as in :meth:`record_deliveries`.
        """
        now = time.time() if now is None else now
        with self._write() as tx:
            # The changes of one installation take turns (PostgreSQL; SQLite's write lock already does
            # this): each deletes and inserts several of its repositories' rows, and two at once could
            # each lock a row the other then waits for. Before the deliveries' keys, as every
            # transaction takes its advisory locks in the order of their namespaces.
            tx.lock(LOCK_INSTALLATION, str(change.installation_id))
            _lock_keys(tx, [delivery])
            recorded = _insert(tx, delivery, now)
            if recorded == "recorded":
                apply_change(tx, change, now)
            return recorded

    def _record_together(self, tx: Tx, deliveries: Sequence[Delivery], now: float) -> list[Recorded]:
        """:meth:`record_deliveries` in a few statements for the whole group, whatever its size.

        Only where a write transaction excludes every other writer (SQLite): what the SELECTs find
        cannot change before the INSERTs. A group then costs one statement per table read or
        written instead of two or three per delivery, and the write lock is held that much shorter.
        """
        ids = list(dict.fromkeys(delivery.id for delivery in deliveries))
        known = {row["id"]: row["body_sha256"] for row in select_in(tx, _BODIES_OF, ids)}
        taken = {column: _taken(tx, column, sql, map(value, deliveries)) for column, sql, value in _TAKEN_ONCE}
        added: list[Recorded] = []
        rows: list[tuple[Any, ...]] = []
        jobs: list[JobRequest] = []
        for delivery in deliveries:
            values = [(column, value(delivery)) for column, _, value in _TAKEN_ONCE]
            if delivery.id in known:
                added.append(_same_id(delivery, known[delivery.id]))
            elif any(found is not None and found in taken[column] for column, found in values):
                added.append("replay")
            else:
                added.append("recorded")
                # The same id, command comment or body twice in one group: the second is a duplicate.
                known[delivery.id] = delivery.body_sha256
                for column, found in values:
                    taken[column].add(found)
                rows.append(_row(delivery, now))
                if delivery.job is not None:
                    jobs.append(delivery.job)
        insert_rows(tx, f"{_INSERT} VALUES", rows)
        for chunk in chunks(jobs, MAX_PARAMS // 2):
            enqueue_together(tx, chunk, now)
        return added


_BODIES_OF: Final = "SELECT id, body_sha256 FROM deliveries WHERE id IN ({})"


def _taken(tx: Tx, column: str, sql: str, values: Iterable[object]) -> set[object]:
    """Which of ``values`` a recorded delivery has in ``column``, found with ``sql`` (see :data:`_TAKEN_ONCE`)."""
    wanted = list(dict.fromkeys(value for value in values if value is not None))
    return {row[column] for row in select_in(tx, sql, wanted)}
