"""A second process on the same store, for the tests that need more than one (run as a script).

    python tests/store_child.py MODE DATABASE_URL [ARGS…]

Each mode opens the store (which migrates it), prints ``ready``, waits for a line on standard
input so that every process starts the contested part together, and prints its result as JSON:

- ``open``: waits first and then opens the store; prints the schema version.
- ``claim WORKER_ID``: four threads claim jobs until none is left; prints the ids claimed.
- ``deliver PREFIX PRS``: records one delivery per pull request 1…PRS, each with a review job;
  prints how many were new.
- ``die LEASE_SECONDS``: claims one job with that lease, and dies without a word.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from reviewbot.store.records import JobRequest
from reviewbot.store.store import Store, open_store
from stored import record_delivery


def main(mode: str, url: str, *args: str) -> None:
    if mode == "open":  # opening is what is contested
        print("ready", flush=True)
        sys.stdin.readline()
    store = open_store(url)
    if mode != "open":
        print("ready", flush=True)
        sys.stdin.readline()
    if mode == "open":
        result: object = store.schema_version()
    elif mode == "claim":
        result = claim_all(store, args[0])
    elif mode == "deliver":
        result = deliver(store, args[0], int(args[1]))
    elif mode == "die":
        job = store.claim_job("doomed", float(args[0]))
        print(json.dumps(job.id if job else None), flush=True)
        os._exit(9)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    store.close()
    print(json.dumps(result), flush=True)


def claim_all(store: Store, worker_id: str) -> list[int]:
    claimed: list[int] = []
    lock = threading.Lock()

    def claim() -> None:
        while (job := store.claim_job(worker_id, 600)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return claimed


def deliver(store: Store, prefix: str, pulls: int) -> int:
    new = 0
    for pr in range(1, pulls + 1):
        job = JobRequest(
            installation_id=42,
            repo="octo/widgets",
            pr_number=pr,
            head_sha=f"{prefix}{pr}".ljust(40, "0"),
            base_sha="b" * 40,
            full_review=False,
            trigger="pull_request.synchronize",
        )
        new += record_delivery(store, f"{prefix}-{pr}", "pull_request", "synchronize", 42, "octo/widgets", job)
    return new


if __name__ == "__main__":
    main(*sys.argv[1:])
