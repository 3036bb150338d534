"""The hourly prune: the worker deletes the deliveries and finished jobs older than
``REVIEWBOT_RETENTION_DAYS`` (what is kept, and why, is in :mod:`reviewbot.store.retention`).

    pruner = pruner_for(settings, store)    # None with REVIEWBOT_RETENTION_DAYS=0: keep everything
    await pruner.run_if_due(stop)           # the worker's loop calls this; nothing to do until due

Of all the workers on one database, one prunes per hour: whichever asks first once the turn is due
(:meth:`~reviewbot.store.retention.RetentionMixin.take_turn`, shared through the database, so
replicas do not each prune and a restart does not prune again). A prune deletes at most
``batch_size`` rows of each table per transaction and pauses between them, so even the first prune
of a large database never holds SQLite's one write lock for long: the webhook's group commit takes
it between batches. It logs one line, and counts in ``reviewbot_pruned_rows_total``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from reviewbot.errors import StoreError
from reviewbot.service import metrics
from reviewbot.settings import Settings
from reviewbot.store.records import Pruned
from reviewbot.store.store import Store

log = logging.getLogger("reviewbot.retention")

PRUNE_TASK: Final = "prune"
PRUNE_EVERY_SECONDS: Final = 3600.0
#: Rows of each table per transaction: a few milliseconds of SQLite's write lock on a small machine
#: (bench/retention.py: 500 put the p99 of the webhook's commits during a large prune near 50 ms).
PRUNE_BATCH_SIZE: Final = 200
#: Between two batches. This process's SQLite writers take turns on a lock that is not fair: without
#: a pause the webhook's commit could wait behind batch after batch of a first prune.
PRUNE_PAUSE_SECONDS: Final = 0.05
_DAY: Final = 86_400.0


def pruner_for(settings: Settings, store: Store) -> Pruner | None:
    """The pruner of ``REVIEWBOT_RETENTION_DAYS``, or None when it is 0 (keep everything)."""
    return Pruner(store, settings.retention_days) if settings.retention_days > 0 else None


class Pruner:
    """Deletes what is older than ``retention_days`` from ``store``, every ``every`` seconds of
    ``clock`` at most, across every process on the store's database."""

    def __init__(
        self,
        store: Store,
        retention_days: int,
        *,
        every: float = PRUNE_EVERY_SECONDS,
        batch_size: int = PRUNE_BATCH_SIZE,
        pause: float = PRUNE_PAUSE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retention_days <= 0 or every <= 0 or batch_size < 1 or pause < 0:
            raise ValueError("retention_days, every and batch_size must be positive, pause not negative")
        self._store = store
        self._retention_days = retention_days
        self._every = every
        self._batch_size = batch_size
        self._pause = pause
        self._clock = clock
        self._next_at = float("-inf")  # the first call asks for the turn

    def due(self) -> bool:
        """Whether :meth:`run_if_due` would ask the database for the turn now (asking nothing)."""
        return self._clock() >= self._next_at

    async def run_if_due(self, stop: asyncio.Event | None = None) -> Pruned | None:
        """Prune if it is this process's turn, and return what was deleted; None when it was not
        its turn or the store failed (one error line). A prune ends early, after a batch, once
        ``stop`` is set."""
        now = self._clock()
        if now < self._next_at:
            return None
        # Asked again no sooner than the next turn, or in one period if the store fails now.
        self._next_at = now + self._every
        try:
            turn = await asyncio.to_thread(self._store.take_turn, PRUNE_TASK, self._every, now=now)
            self._next_at = turn.next_at
            if not turn.taken:
                return None
            return await self._prune(now, stop)
        except StoreError as exc:
            log.error("cannot prune old rows: %s", exc)
            return None

    async def _prune(self, now: float, stop: asyncio.Event | None) -> Pruned:
        started = time.monotonic()
        before = now - self._retention_days * _DAY
        pruned, batches, early = Pruned(), 0, False
        while True:
            batch = await asyncio.to_thread(self._store.prune_batch, before, self._batch_size, now=now)
            metrics.observe_prune(batch)
            pruned, batches = pruned + batch, batches + 1
            if max(batch.deliveries, batch.jobs) < self._batch_size:  # none of either left
                break
            if stop is not None and stop.is_set():
                early = True
                break
            await asyncio.sleep(self._pause)
        # Nothing to delete is the usual hour: said at debug level, so the log keeps to what happened.
        log.log(
            logging.INFO if pruned.deliveries or pruned.jobs or pruned.kept_results else logging.DEBUG,
            "pruned %s, %s and %s older than %d days in %s (%.1f s)%s",
            _count(pruned.deliveries, "delivery", "deliveries"),
            _count(pruned.jobs, "finished job", "finished jobs"),
            _count(pruned.kept_results, "kept result", "kept results"),
            self._retention_days,
            _count(batches, "batch", "batches"),
            time.monotonic() - started,
            "; stopped early, the rest goes next time" if early else "",
        )
        return pruned


def _count(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"
