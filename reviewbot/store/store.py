"""Durable state of the GitHub App: webhook deliveries, the job queue, posted reviews, installations.

Everything the web process accepts is written here before GitHub gets its answer, and the
worker takes its jobs from here, so a crash between the two loses nothing.

The backend is SQLite (a file, the default) or PostgreSQL (``REVIEWBOT_DATABASE_URL=postgresql://…``,
for several replicas), with the same schema and the same SQL (:mod:`reviewbot.store.schema`), each
write safe across threads and processes (:mod:`reviewbot.store.base`). :class:`Store` puts together
one part per job: :mod:`~reviewbot.store.deliveries`, :mod:`~reviewbot.store.queue`,
:mod:`~reviewbot.store.reviews`, :mod:`~reviewbot.store.installations`,
:mod:`~reviewbot.store.results` and :mod:`~reviewbot.store.retention` (which also says what each
table keeps, and for how long); what they hand out and take in is in :mod:`reviewbot.store.records`.

Times are ``time.time()`` seconds. The time-sensitive methods take ``now`` so tests need not sleep.
"""

from __future__ import annotations

import logging
import time

from reviewbot.errors import ConfigError, StoreError
from reviewbot.store.connect import connect
from reviewbot.store.database import Database
from reviewbot.store.deliveries import DeliveriesMixin
from reviewbot.store.installations import InstallationsMixin
from reviewbot.store.queue import QueueMixin
from reviewbot.store.results import KeptResultsMixin
from reviewbot.store.retention import RetentionMixin
from reviewbot.store.reviews import ReviewsMixin
from reviewbot.store.schema import LOCK_MIGRATIONS, MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger("reviewbot.store")


def open_store(database_url: str) -> Store:
    """Open (creating and migrating as needed) the store at ``database_url``.

    Accepted: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite://:memory:`` and
    ``postgresql://user:password@host:5432/dbname`` (or ``postgres://…``).
    """
    return Store(connect(database_url))


class Store(DeliveriesMixin, QueueMixin, ReviewsMixin, InstallationsMixin, KeptResultsMixin, RetentionMixin):
    """The state of the service; every method is synchronous and thread-safe."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._dialect = database.dialect
        #: Where the database is, for messages (no password).
        self.location = database.location
        #: How another process opens this database (may hold a password); None if it cannot.
        self.database_url = database.url
        #: The schema version the database had before it was opened (0: it was empty).
        self.migrated_from = 0
        try:
            self.migrated_from = self._migrate()
        except StoreError as exc:
            self.close()
            raise ConfigError(f"REVIEWBOT_DATABASE_URL: cannot use the database {self.location}: {exc}") from None

    def _migrate(self) -> int:
        """Bring the schema up to :data:`SCHEMA_VERSION`; return the version it had."""
        with self._write() as tx:
            # Replicas starting together would otherwise all find the same old version and
            # all apply the same migrations (PostgreSQL; SQLite's write lock already excludes
            # them). The second one waits here and then finds nothing left to do.
            tx.lock(LOCK_MIGRATIONS, "schema")
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            row = tx.one("SELECT MAX(version) AS version FROM schema_version")
            current = int(row["version"]) if row is not None and row["version"] is not None else 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"its schema version {current} is newer than this reviewbot knows ({SCHEMA_VERSION})")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    tx.execute(statement.replace("{auto_id}", self._dialect.auto_id))
                tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time()))
                log.info("database migrated to schema version %d", version)
        return current

    def schema_version(self) -> int:
        with self._read() as tx:
            row = tx.one("SELECT MAX(version) AS version FROM schema_version")
        return int(row["version"]) if row is not None and row["version"] is not None else 0

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers (for ``/readyz``)."""
        with self._read() as tx:
            tx.one("SELECT 1")

    def close(self) -> None:
        """Close every connection; later calls raise :class:`StoreError`."""
        self._db.close()
