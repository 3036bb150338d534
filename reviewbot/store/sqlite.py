"""The SQLite backend of the store: the only module that imports ``sqlite3``.

``BEGIN IMMEDIATE`` takes the database write lock up front, so every write transaction already
excludes every other writer, in this process and any other. The writers of this process take
turns on a thread lock before that, so only one of them at a time can meet another process's
write in SQLite's busy handler. One connection per thread for a file; a ``:memory:`` database is
private to its connection, so there all threads share one connection behind a lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Final

from reviewbot.errors import StoreError
from reviewbot.store.database import SQLITE, Database, Tx

log = logging.getLogger("reviewbot.store")

BUSY_TIMEOUT_SECONDS: Final = 10.0
SQLITE_PREFIX: Final = "sqlite://"


class SQLiteDatabase(Database):
    """A SQLite file in WAL mode with ``synchronous=FULL``, or a ``:memory:`` database."""

    def __init__(self, path: str) -> None:
        self.dialect = SQLITE
        self.location = repr(path)
        self.path = path
        self._memory = path == ":memory:"
        self.url = None if self._memory else f"{SQLITE_PREFIX}/{os.path.abspath(path)}"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._registry = threading.Lock()
        self._shared_lock: threading.RLock | None = threading.RLock() if self._memory else None
        # Writers of this process take turns here rather than in SQLite's busy handler, which
        # sleeps in steps of up to 100 ms and is not woken when the lock frees.
        self._write_lock = threading.Lock()
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        if not self._memory:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed")
        if self._memory:
            shared = self._connections[0] if self._connections else None
            if shared is None:
                shared = self._connect()
                self._connections.append(shared)
            return shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._registry:
                self._connections.append(conn)
        return conn

    def _guard(self) -> AbstractContextManager[object]:
        return self._shared_lock if self._shared_lock is not None else nullcontext()

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._write_lock, self._guard():
            try:
                conn = self._connection()
                conn.execute(self.dialect.begin_write)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open a transaction: {exc}") from exc
            try:
                yield Tx(conn.execute, self.dialect)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.warning("rollback failed", exc_info=True)
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(str(exc)) from exc
                raise

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._guard():
            try:
                yield Tx(self._connection().execute, self.dialect)
            except sqlite3.Error as exc:
                raise StoreError(str(exc)) from exc

    def close(self) -> None:
        self._closed = True
        with self._registry:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:
                log.warning("closing a database connection failed", exc_info=True)
