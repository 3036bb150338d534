"""The PostgreSQL backend of the store: the only module that imports psycopg.

Connections come from a :class:`psycopg_pool.ConnectionPool` rather than one per thread: the web
handler's and the worker's thread pools together run up to ~70 threads, and several replicas of
that would exhaust the server's ``max_connections`` (100 by default). The pool bounds a process to
:data:`POOL_MAX_SIZE` connections, checks a connection before handing it out (so a restarted server
costs no failed webhook), and replaces broken ones. Connections are in autocommit mode: reads run
as single statements, and a write transaction is opened explicitly with the dialect's ``BEGIN``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from reviewbot.errors import ConfigError, StoreError
from reviewbot.store.database import POSTGRES, Database, Tx

log = logging.getLogger("reviewbot.store")

POOL_MAX_SIZE: Final = 10
#: Seconds a thread waits for a free pooled connection before its call fails with StoreError.
POOL_TIMEOUT_SECONDS: Final = 30.0
CONNECT_TIMEOUT_SECONDS: Final = 10

_Connection = psycopg.Connection[DictRow]


class PostgresDatabase(Database):
    """A PostgreSQL database reached through ``url`` (any libpq URL or connection string)."""

    def __init__(self, url: str, *, max_size: int = POOL_MAX_SIZE) -> None:
        self.dialect = POSTGRES
        self.url = url
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise ConfigError(
                "REVIEWBOT_DATABASE_URL is not a valid PostgreSQL URL "
                f"({_one_line(exc)}); use postgresql://user:password@host:5432/dbname"
            ) from None
        password = params.get("password")
        self._password = str(password) if password else None
        self.location = _describe(params)
        defaults: dict[str, str | int] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": "reviewbot"}
        conninfo = make_conninfo(url, **{key: value for key, value in defaults.items() if key not in params})
        # Connect once up front so that a wrong host, database or password is one clear
        # message at start-up instead of a pool retrying in the background.
        try:
            with psycopg.connect(conninfo, autocommit=True):
                pass
        except psycopg.Error as exc:
            raise ConfigError(
                f"REVIEWBOT_DATABASE_URL: cannot connect to {self.location}: {self._message(exc)}"
            ) from None
        self._pool: ConnectionPool[_Connection] = ConnectionPool(
            conninfo,
            connection_class=_Connection,
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=1,
            max_size=max_size,
            open=False,
            check=ConnectionPool.check_connection,
            name="reviewbot",
            timeout=POOL_TIMEOUT_SECONDS,
        )
        self._pool.open()
        self._closed = False

    def _message(self, exc: psycopg.Error) -> str:
        """The error in one line, without the password even if the server quoted it."""
        return _redact(_one_line(exc), self._password)

    @contextmanager
    def _connection(self) -> Iterator[_Connection]:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            conn = self._pool.getconn()
        except psycopg.Error as exc:  # PoolTimeout, PoolClosed, or the server is gone
            raise StoreError(f"no connection to {self.location}: {self._message(exc)}") from exc
        try:
            yield conn
        finally:
            # A connection handed back mid-transaction is rolled back, a broken one replaced.
            self._pool.putconn(conn)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._connection() as conn:
            try:
                conn.execute(self.dialect.begin_write)
                yield Tx(conn.execute, self.dialect)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
                    try:
                        conn.execute("ROLLBACK")
                    except psycopg.Error:
                        log.warning("rollback failed", exc_info=True)
                if isinstance(exc, psycopg.Error):
                    raise StoreError(self._message(exc)) from exc
                raise

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._connection() as conn:
            try:
                yield Tx(conn.execute, self.dialect)
            except psycopg.Error as exc:
                raise StoreError(self._message(exc)) from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()


def _describe(params: Mapping[str, object]) -> str:
    """``postgresql://user@host:port/dbname`` from parsed parameters, never with the password."""
    user = f"{params['user']}@" if params.get("user") else ""
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    dbname = f"/{params['dbname']}" if params.get("dbname") else ""
    return f"postgresql://{user}{host}{port}{dbname}"


def _one_line(exc: psycopg.Error) -> str:
    return " ".join(str(exc).split())


def _redact(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text
