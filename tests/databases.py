"""The databases tests run against: SQLite files, and a fresh schema of a real PostgreSQL per test.

The PostgreSQL server is ``REVIEWBOT_TEST_POSTGRES_URL`` (default: the local one CI starts). When it
cannot be reached the PostgreSQL variants are skipped, or fail with ``REVIEWBOT_REQUIRE_POSTGRES=1``
(as in CI).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from reviewbot.store import postgres
from reviewbot.store.database import Tx

POSTGRES_URL = os.environ.get("REVIEWBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("REVIEWBOT_REQUIRE_POSTGRES") == "1"


@functools.cache
def postgres_problem() -> str | None:
    """Why the test server cannot be used, or None when it can (asked once per session)."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at REVIEWBOT_TEST_POSTGRES_URL is not reachable: {' '.join(str(exc).split())}"
    return None


def in_schema(url: str, schema: str) -> str:
    """``url`` with ``schema`` as the only schema on its search path (libpq's ``options``)."""
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def postgres_schema(server_url: str = POSTGRES_URL) -> Iterator[str]:
    """A new, empty schema on the server, dropped afterwards; yields a URL that uses it.

    Cheaper than a database per test (a few milliseconds), and a store cannot tell the difference.
    """
    name = f"reviewbot_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield in_schema(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def query(database_url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (``?`` markers) on the database behind a store URL, outside the store."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as lite:
            return list(lite.execute(statement, params).fetchall())
    with psycopg.connect(database_url, autocommit=True) as conn:
        cursor = conn.execute(statement.replace("?", "%s"), params)
        return list(cursor.fetchall()) if cursor.description is not None else []


def hold_open(
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    *,
    thread: str,
    after: Callable[[str, tuple[Any, ...]], bool],
    until_waiting: str,
) -> threading.Event:
    """Hold a store transaction open while another one starts: the transaction of the thread named
    ``thread`` stops after its first statement ``after(sql, params)`` picks, until a connection whose
    ``application_name`` is ``until_waiting`` waits for a lock (at most 10 s). The event it returns is
    set when it stops, for the other side to start on."""
    stopped = threading.Event()
    waits = "SELECT COUNT(*) FROM pg_locks JOIN pg_stat_activity USING (pid) WHERE NOT granted AND application_name = ?"

    class HeldOpen(Tx):
        def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
            changed = super().execute(sql, params)
            if threading.current_thread().name == thread and not stopped.is_set() and after(sql, params):
                stopped.set()
                deadline = time.monotonic() + 10
                while query(postgres_url, waits, (until_waiting,)) == [(0,)]:
                    assert time.monotonic() < deadline, f"{until_waiting} never waited for {thread}"
                    time.sleep(0.01)
            return changed

    monkeypatch.setattr(postgres, "Tx", HeldOpen)
    return stopped
