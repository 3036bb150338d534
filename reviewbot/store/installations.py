"""GitHub App installations: their account, whether suspended, and the repositories they cover."""

from __future__ import annotations

import time
from collections.abc import Iterable

from reviewbot.store.base import StoreBase
from reviewbot.store.database import Tx
from reviewbot.store.records import Installation


class InstallationsMixin(StoreBase):
    """The installations' side of :class:`reviewbot.store.store.Store`."""

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
    def _add_repos(tx: Tx, installation_id: int, repos: Iterable[str]) -> None:
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
