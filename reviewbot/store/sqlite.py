"""The SQLite backend of the store: the only module that imports ``sqlite3`` (and ``fcntl``).

``BEGIN IMMEDIATE`` takes the database write lock up front, so every write transaction already
excludes every other writer, in this process and any other. Writers take turns before that, in
their process and then across processes (an ``flock`` beside the file), so that a waiting writer
is not left asleep in SQLite's busy handler. One connection per thread for a file; a ``:memory:``
database is private to its connection, so there all threads share one connection behind a lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Final

from reviewbot.errors import StoreError
from reviewbot.store.database import SQLITE, Database, Tx

if sys.platform != "win32":  # no flock there: SQLite's busy handler orders the processes alone
    import fcntl

log = logging.getLogger("reviewbot.store")

BUSY_TIMEOUT_SECONDS: Final = 10.0
SQLITE_PREFIX: Final = "sqlite://"


class _WriterTurns:
    """Writers of every process on one SQLite file take turns on an ``flock`` of ``FILE-lock``.

    Two processes write to one file as a rule (the server's worker and its recorder process, or
    ``serve`` and ``reviewbot worker``). Left to SQLite, a writer that finds the database locked
    sleeps in its busy handler in steps of up to 100 ms, and is not woken when the lock frees;
    here it tries again within 5 ms. The turn is taken after the process's own (a thread lock),
    so only one thread of a process ever waits here.
    """

    #: Pauses between attempts; the last one repeats until BUSY_TIMEOUT_SECONDS.
    _PAUSES: Final = (0.0005, 0.001, 0.002, 0.005)

    def __init__(self, database_path: str) -> None:
        self._path = f"{database_path}-lock"
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        fd = self._open()
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        attempt = 0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another process has been writing to the database for {BUSY_TIMEOUT_SECONDS:.0f} s"
                    ) from None
                time.sleep(self._PAUSES[min(attempt, len(self._PAUSES) - 1)])
                attempt += 1
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        # A forked child shares the parent's open file, and so its flock: it opens its own.
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StoreError(f"cannot open {self._path}: {exc.strerror}") from exc
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


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
        # Writers of this process take turns here, then with other processes' (see _WriterTurns),
        # rather than in SQLite's busy handler.
        self._write_lock = threading.Lock()
        self._turns = None if self._memory or sys.platform == "win32" else _WriterTurns(path)
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
        turn = self._turns.turn() if self._turns is not None else nullcontext()
        with self._write_lock, turn, self._guard():
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
        if self._turns is not None:
            with self._write_lock:  # not under a writer that holds its turn
                self._turns.close()
