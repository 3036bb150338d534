"""What every part of the store stands on: its database, and the transactions its methods run in.

What differs between the two backends lives in :class:`reviewbot.store.database.Dialect`; every
check-then-write step of the store runs in a write transaction that is safe across threads *and*
processes: SQLite's ``BEGIN IMMEDIATE`` takes the database write lock up front, and on PostgreSQL
the rows read are locked with ``FOR UPDATE`` (``SKIP LOCKED`` for the queue's claim), and a pull
request without a queued job yet, or whose job a claim is about to start, and the unique keys of the
deliveries a transaction records, with advisory locks.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from reviewbot.store.database import Database, Tx


class StoreBase:
    """The database the parts of :class:`reviewbot.store.store.Store` share, and its transactions."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def _write(self) -> AbstractContextManager[Tx]:
        """A write transaction, safe against every other writer (see the module docstring)."""
        return self._db.write()

    def _read(self) -> AbstractContextManager[Tx]:
        """Statements in autocommit mode; each one sees a consistent snapshot."""
        return self._db.read()

    def write(self) -> AbstractContextManager[Tx]:
        """A write transaction (:meth:`_write`) for modules that keep their own tables, like the ledger."""
        return self._write()

    def read(self) -> AbstractContextManager[Tx]:
        """Autocommit reads (:meth:`_read`) for modules that keep their own tables, like the ledger."""
        return self._read()
