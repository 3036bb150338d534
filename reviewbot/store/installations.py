"""GitHub App installations: their account, whether suspended, and the repositories they cover.

They follow GitHub's ``installation`` and ``installation_repositories`` events (:func:`apply_change`,
in the transaction that records the event's delivery), as they come. Only the account is read (by
``reviewbot costs``, to name an installation); nothing acts on ``suspended`` or the repositories:
GitHub itself stops sending a suspended installation's webhooks and refuses its tokens. So an old
event replayed under a new delivery id once its delivery is pruned, when it is no longer known as a
duplicate, can make these tables out of date but cannot start or stop a review.
"""

from __future__ import annotations

from collections.abc import Iterable

from reviewbot.store.base import StoreBase
from reviewbot.store.database import Tx
from reviewbot.store.records import Installation, InstallationChange


class InstallationsMixin(StoreBase):
    """The installations' side of :class:`reviewbot.store.store.Store`."""

    def installation(self, installation_id: int) -> Installation | None:
        with self._read() as tx:
            row = tx.one("SELECT id, account, suspended FROM installations WHERE id = ?", (installation_id,))
        if row is None:
            return None
        return Installation(int(row["id"]), str(row["account"]), bool(row["suspended"]))


def apply_change(tx: Tx, change: InstallationChange, now: float) -> None:
    """Make the installation what ``change`` says, in ``tx``; idempotent, so a redelivery does no harm.

    On PostgreSQL, only under the installation's advisory lock
    (:meth:`~reviewbot.store.deliveries.DeliveriesMixin.record_installation_delivery`).
    """
    installation_id = change.installation_id
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
            # The account is taken only for an installation not known yet.
            tx.execute(
                "INSERT INTO installations (id, account, suspended, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET suspended = excluded.suspended, updated_at = excluded.updated_at",
                (installation_id, change.account, change.change == "suspend", now),
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


def _add_repos(tx: Tx, installation_id: int, repos: Iterable[str]) -> None:
    for repo in set(repos):
        tx.execute(
            "INSERT INTO installation_repos (installation_id, repo) VALUES (?, ?)"
            " ON CONFLICT (installation_id, repo) DO NOTHING",
            (installation_id, repo),
        )
