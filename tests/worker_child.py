"""A worker process run as ``reviewbot worker`` runs one, with a scripted handler (run as a script).

    python tests/worker_child.py DATABASE_URL GRACE_SECONDS

The job of pull request 1 takes 0.3 s; every other job runs until it is cancelled.
"""

from __future__ import annotations

import asyncio
import sys

from reviewbot.service.server import run_until_signalled
from reviewbot.service.worker import JobOutcome, Worker
from reviewbot.store.records import Job
from reviewbot.store.store import open_store


async def handler(job: Job) -> JobOutcome:
    await asyncio.sleep(0.3 if job.pr_number == 1 else 3600)
    return JobOutcome.done(f"reviewed by pid {job.lease_owner}")


def main(url: str, grace: str) -> None:
    store = open_store(url)
    worker = Worker(
        store, handler, worker_id="child", lease_seconds=600, max_attempts=3, poll_interval=0.05, concurrency=2
    )
    try:
        asyncio.run(run_until_signalled(worker, store, grace=float(grace)))
    finally:
        store.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
