"""The first prune of a large SQLite database, and the webhook's commits meanwhile.

A SQLite file holds 200,000 deliveries and 200,000 finished jobs (done, dropped and failed) from two
months ago, 2,000 of the deliveries having taken a ``/review`` command, and 50 queued jobs. One
thread runs the worker's :class:`~reviewbot.service.retention.Pruner` as ``reviewbot serve`` runs it
(30 days' retention, 200 rows of each table per transaction, 50 ms between batches) on the same
:class:`~reviewbot.store.store.Store` as another thread, which records one delivery with its job
every 10 ms, as the webhook's group commit does, until the prune is done. SQLite has one writer, so
every commit that lands while a batch holds the write lock waits for it.

The figure is the p99 of those commits ÷ 50 ms (the budget of a webhook's answer, as in
``webhook_ack.py``); target ≤ 1.0. Printed beside: the p99 of the same commits with no prune, the
same prune with no pause between batches, and ``list_jobs`` before and after.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import tempfile
import threading
import time
from pathlib import Path

from _report import Result, best_of, emit
from reviewbot.service.retention import PRUNE_BATCH_SIZE, Pruner
from reviewbot.store.bulk import insert_rows
from reviewbot.store.records import Delivery, JobRequest
from reviewbot.store.store import Store, open_store

OLD_ROWS = 200_000
COMMANDS = 2_000
QUEUED = 50
DAY = 86_400.0
COMMIT_EVERY = 0.010
BUDGET_SECONDS = 0.050
_ids = itertools.count()


def fill(store: Store) -> None:
    """The old rows, written directly (a bench has no months to wait)."""
    at = time.time() - 60 * DAY
    states = ("done", "dropped", "failed")
    jobs = [
        ("review", f"octo/repo{n % 500}", n, 1, "a" * 40, "b" * 40, False, "push", 1, states[n % 3], at, at, at)
        for n in range(OLD_ROWS)
    ]
    every = OLD_ROWS // COMMANDS
    deliveries = [
        (f"old-{n}", "pull_request", "synchronize", 1, "octo/repo", at, n if n % every == 0 else None)
        for n in range(OLD_ROWS)
    ]
    with store.write() as tx:
        insert_rows(
            tx,
            "INSERT INTO jobs (kind, repo, pr_number, installation_id, head_sha, base_sha, full_review, trigger,"
            " attempts, state, not_before, created_at, updated_at) VALUES",
            jobs,
        )
        insert_rows(
            tx,
            "INSERT INTO deliveries (id, event, action, installation_id, repo, received_at, command_comment_id) VALUES",
            deliveries,
        )
    for _ in range(QUEUED):
        record(store)


def record(store: Store) -> float:
    """Record one new delivery with its job, as the webhook does; the seconds its commit took."""
    n = next(_ids)
    job = JobRequest(
        installation_id=1,
        repo="octo/live",
        pr_number=n,
        head_sha=f"{n:040x}",
        base_sha="b" * 40,
        full_review=False,
        trigger="pull_request.synchronize",
    )
    started = time.perf_counter()
    store.record_deliveries([Delivery(f"new-{n}", "pull_request", "synchronize", 1, "octo/live", job)])
    return time.perf_counter() - started


def commits_while(store: Store, busy: threading.Event, least: int = 300) -> list[float]:
    """Commit every :data:`COMMIT_EVERY` while ``busy`` is set, and at least ``least`` times."""
    took: list[float] = []
    while busy.is_set() or len(took) < least:
        took.append(record(store))
        time.sleep(COMMIT_EVERY)
    return took


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def prune_under_load(path: Path, pause: float) -> tuple[list[float], float, int]:
    """The commits while the first prune of a freshly filled database runs; its seconds and batches."""
    store = open_store(f"sqlite:///{path}")
    fill(store)
    busy = threading.Event()
    busy.set()
    took: list[float] = []
    committer = threading.Thread(target=lambda: took.extend(commits_while(store, busy, least=0)))
    committer.start()
    started = time.perf_counter()
    pruner = Pruner(store, 30, pause=pause)
    pruned = asyncio.run(pruner.run_if_due())
    seconds = time.perf_counter() - started
    busy.clear()
    committer.join()
    store.close()
    assert pruned is not None
    assert (pruned.deliveries, pruned.jobs) == (OLD_ROWS - COMMANDS, OLD_ROWS), pruned
    return took, seconds, -(-OLD_ROWS // PRUNE_BATCH_SIZE)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'idle.db'}")
        fill(store)
        idle = commits_while(store, threading.Event())
        listed_before = best_of(3, store.list_jobs)
        store.prune_batch(time.time() - 30 * DAY, OLD_ROWS)
        listed_after = best_of(3, store.list_jobs)
        store.close()

        paced, seconds, batches = prune_under_load(Path(folder) / "paced.db", pause=0.05)
        unpaced, unpaced_seconds, _ = prune_under_load(Path(folder) / "unpaced.db", pause=0.0)

    print(f"{OLD_ROWS:,} old deliveries ({COMMANDS:,} of them commands, kept) and {OLD_ROWS:,} old finished jobs")
    print(f"list_jobs: {listed_before * 1000:.0f} ms before the prune, {listed_after * 1000:.1f} ms after")
    print(f"a delivery's commit, p99: {p99(idle) * 1000:.1f} ms with no prune ({len(idle)} commits)")
    print(
        f"  during the prune, 50 ms between batches: {p99(paced) * 1000:.1f} ms, max {max(paced) * 1000:.1f} ms"
        f" ({len(paced)} commits; the prune took {seconds:.1f} s in about {batches} batches)"
    )
    print(
        f"  during the prune, no pause: {p99(unpaced) * 1000:.1f} ms, max {max(unpaced) * 1000:.1f} ms"
        f" ({len(unpaced)} commits; the prune took {unpaced_seconds:.1f} s)"
    )
    emit(
        Result(
            name="retention",
            metric="p99 commit during a prune ÷ 50 ms",
            figure=p99(paced) / BUDGET_SECONDS,
            target=1.0,
            note=f"{p99(idle) * 1000:.1f} ms with no prune",
        )
    )


if __name__ == "__main__":
    main()
