"""GitHub App installations: their account, whether suspended, and the repositories they cover.

They follow GitHub's ``installation`` and ``installation_repositories`` events (:func:`apply_change`,
in the transaction that records the event's delivery). A body replayed under a new delivery id is a
duplicate only while its delivery is kept, so where GitHub's payload says when a change happened, a
change no newer than what the store knows is left out: a ``suspend`` carries ``suspended_at``, when
its suspension began, and one no later than the last suspension recorded (kept after an unsuspend)
changes nothing. No other event carries a time that orders it: an ``unsuspend`` says
``suspended_at: null``, GitHub does not document when ``updated_at`` changes, and the repository
events say nothing of when; those are applied as they come.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from reviewbot.store.base import StoreBase
from reviewbot.store.database import Tx
from reviewbot.store.records import Installation, InstallationChange
from reviewbot.store.schema import LOCK_INSTALLATION


class InstallationsMixin(StoreBase):
    """The installations' side of :class:`reviewbot.store.store.Store`."""

    def upsert_installation(self, installation_id: int, account: str, repos: Iterable[str] = ()) -> None:
        """Record an installation as ``installation.created`` does: its account and repositories."""
        with self._write() as tx:
            apply_change(tx, InstallationChange(installation_id, "created", account, tuple(repos)), time.time())

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


def apply_change(tx: Tx, change: InstallationChange, now: float) -> bool:
    """Make the installation what ``change`` says, in ``tx``; idempotent, so a redelivery does no harm.

    False, changing nothing, when ``change`` is a suspension no later than the last one recorded.
    """
    installation_id = change.installation_id
    # Two events for one installation take turns (PostgreSQL; SQLite's write lock already does this):
    # the suspension read below must not change before this one is written.
    tx.lock(LOCK_INSTALLATION, str(installation_id))
    match change.change:
        case "created":
            tx.execute(
                "INSERT INTO installations (id, account, suspended, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET account = excluded.account, suspended = excluded.suspended,"
                " updated_at = excluded.updated_at",
                (installation_id, change.account, False, now),
            )
            tx.execute("DELETE FROM installation_repos WHERE installation_id = ?", (installation_id,))
            _add_repos(tx, installation_id, change.added)
        case "deleted":
            tx.execute("DELETE FROM installation_repos WHERE installation_id = ?", (installation_id,))
            tx.execute("DELETE FROM installations WHERE id = ?", (installation_id,))
        case "suspend" | "unsuspend":
            if change.change == "suspend" and _suspension_outdated(tx, change):
                return False
            # The account is taken only for an installation not known yet, as before.
            tx.execute(
                "INSERT INTO installations (id, account, suspended, updated_at, last_suspended_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET suspended = excluded.suspended,"
                " updated_at = excluded.updated_at,"
                " last_suspended_at = COALESCE(excluded.last_suspended_at, installations.last_suspended_at)",
                (installation_id, change.account, change.change == "suspend", now, change.suspended_at),
            )
        case "repositories":
            tx.execute(
                "INSERT INTO installations (id, account, suspended, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (installation_id, change.account, False, now),
            )
            for repo in set(change.removed):
                tx.execute(
                    "DELETE FROM installation_repos WHERE installation_id = ? AND repo = ?", (installation_id, repo)
                )
            _add_repos(tx, installation_id, change.added)
    return True


def _suspension_outdated(tx: Tx, change: InstallationChange) -> bool:
    """Whether the store recorded a suspension of this installation that began no earlier than ``change``'s."""
    if change.suspended_at is None:
        return False
    row = tx.one("SELECT last_suspended_at FROM installations WHERE id = ?", (change.installation_id,))
    last = row["last_suspended_at"] if row is not None else None
    return last is not None and change.suspended_at <= float(last)


def _add_repos(tx: Tx, installation_id: int, repos: Iterable[str]) -> None:
    for repo in set(repos):
        tx.execute(
            "INSERT INTO installation_repos (installation_id, repo) VALUES (?, ?)"
            " ON CONFLICT (installation_id, repo) DO NOTHING",
            (installation_id, repo),
        )
