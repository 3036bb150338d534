"""Opening the database ``REVIEWBOT_DATABASE_URL`` names: SQLite, or PostgreSQL.

Above both backends; :mod:`reviewbot.store.postgres` (and psycopg) is imported only for a
``postgresql://`` URL.
"""

from __future__ import annotations

from typing import Final

from reviewbot.errors import ConfigError
from reviewbot.store.database import Database
from reviewbot.store.sqlite import SQLITE_PREFIX, SQLiteDatabase

POSTGRES_PREFIXES: Final = ("postgresql://", "postgres://")


def connect(database_url: str) -> Database:
    """The database at ``database_url``; :class:`ConfigError` naming REVIEWBOT_DATABASE_URL if
    the URL is not one we take or, for PostgreSQL, the server cannot be reached.

    Accepted: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite://:memory:`` and
    ``postgresql://user:password@host:5432/dbname`` (or ``postgres://…``, any libpq URL).
    """
    if database_url.startswith(POSTGRES_PREFIXES):
        from reviewbot.store.postgres import PostgresDatabase

        return PostgresDatabase(database_url)
    if not database_url.startswith(SQLITE_PREFIX):
        raise ConfigError(
            "REVIEWBOT_DATABASE_URL: the URL is not supported; "
            "use sqlite:///path/to/file.db or postgresql://user@host:5432/dbname"
        )
    rest = database_url[len(SQLITE_PREFIX) :]
    if rest in (":memory:", "/:memory:"):
        return SQLiteDatabase(":memory:")
    if not rest.startswith("/") or rest == "/":
        raise ConfigError(
            f"REVIEWBOT_DATABASE_URL: {database_url!r} names no file; "
            "use sqlite:///relative.db or sqlite:////absolute/path.db"
        )
    return SQLiteDatabase(rest[1:])
