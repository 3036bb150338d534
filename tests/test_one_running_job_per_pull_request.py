"""At most one running job per pull request: the claim's rule, the unique index behind it, the
migration that brings it to an existing database, and claims racing for one pull request.

The tests taking ``store`` or ``database_url`` run on SQLite and on PostgreSQL; the races only
PostgreSQL can have (claims in several transactions at once) are at the end.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from databases import query
from reviewbot.errors import StoreError
from reviewbot.store.database import lock_key
from reviewbot.store.records import Delivery, Job
from reviewbot.store.schema import LOCK_CLAIM
from reviewbot.store.store import Store, open_store
from stored import record_delivery
from test_postgres import REPO, request

#: The schema version that brought the rule (and its index).
ONE_RUNNING_VERSION = 3


def deliver(store: Store, pr: int = 7, head: str = "a" * 40, *, now: float | None = None) -> Job:
    """A delivery with a new id for ``pr`` (``opened`` and then ``reopened``, say); the job it leaves queued."""
    record_delivery(store, str(uuid.uuid4()), "pull_request", "opened", 42, REPO, request(pr, head), now=now)
    return store.list_jobs(pr_number=pr)[-1]


def claimed(store: Store, worker_id: str, now: float, **options: int) -> Job:
    job = store.claim_job(worker_id, 60, now=now, **options)
    assert job is not None
    return job


def states(store: Store, pr: int = 7) -> list[tuple[str, str | None]]:
    return [(job.state, job.lease_owner) for job in store.list_jobs(pr_number=pr)]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


# -- the claim's rule -----------------------------------------------------------------------------


def test_a_job_queued_behind_a_running_one_of_its_pull_request_waits_until_that_one_ends(store: Store) -> None:
    now = time.time()
    first = deliver(store, now=now)
    assert claimed(store, "w1", now).id == first.id
    second = deliver(store, now=now)  # the same head again, while the first runs: a job of its own
    other = deliver(store, pr=8, now=now)
    assert second.id != first.id
    assert claimed(store, "w2", now).id == other.id  # passed over the second, not stopped by it
    assert store.claim_job("w2", 60, now=now) is None
    assert states(store) == [("running", "w1"), ("queued", None)]
    assert store.finish_job(first.id, "w1", "done", "posted review 1")
    assert claimed(store, "w2", now).id == second.id


@pytest.mark.parametrize("ending", ["dropped", "retried", "released"])
def test_any_end_of_the_running_job_lets_the_next_one_of_its_pull_request_run(store: Store, ending: str) -> None:
    now = time.time()
    first = deliver(store, now=now)
    claimed(store, "w1", now)
    second = deliver(store, head="c" * 40, now=now)  # a push
    assert store.claim_job("w2", 60, now=now) is None
    if ending == "dropped":
        assert store.finish_job(first.id, "w1", "dropped", "head moved on")
    elif ending == "retried":
        assert store.retry_job(first.id, "w1", "rate limited", 30, 5, now=now) == "queued"
    else:
        assert store.release_jobs("w1", now=now + 30) == 1  # due again only after the claim below
    assert claimed(store, "w2", now).id == second.id
    assert store.claim_job("w3", 60, now=now + 40) is None  # a first one sent back, due again, waits in turn


def test_of_two_queued_jobs_of_a_pull_request_the_oldest_due_runs_and_the_other_waits(store: Store) -> None:
    now = time.time()
    first = deliver(store, now=now)
    claimed(store, "w1", now)
    second = deliver(store, head="c" * 40, now=now)
    assert store.retry_job(first.id, "w1", "boom", 0, 5, now=now) == "queued"  # beside the newer one
    assert claimed(store, "w2", now).id == first.id
    assert store.claim_job("w3", 60, now=now) is None
    assert store.finish_job(first.id, "w2", "dropped", "head moved on")
    assert claimed(store, "w3", now).id == second.id


def test_the_job_of_a_dead_worker_is_taken_over_before_the_one_queued_behind_it(store: Store) -> None:
    now = time.time()
    first = deliver(store, now=now)
    claimed(store, "dead", now)
    deliver(store, now=now)
    assert store.claim_job("w2", 60, now=now + 59) is None
    assert claimed(store, "w2", now + 61).id == first.id
    assert store.claim_job("w3", 60, now=now + 61) is None
    assert states(store) == [("running", "w2"), ("queued", None)]


def test_a_dead_workers_job_out_of_attempts_holds_the_one_behind_it_until_the_sweep_fails_it(store: Store) -> None:
    now = time.time()
    first = deliver(store, now=now)
    claimed(store, "dead", now, max_attempts=1)
    second = deliver(store, now=now)
    assert store.claim_job("w2", 60, now=now + 61, max_attempts=1) is None  # the sweep's to fail, and say so
    assert [job.id for job in store.fail_abandoned(1, now=now + 61)] == [first.id]
    assert claimed(store, "w2", now + 61, max_attempts=1).id == second.id
    assert states(store) == [("failed", "dead"), ("running", "w2")]


def test_the_database_refuses_a_second_running_job_for_a_pull_request(store: Store, database_url: str) -> None:
    now = time.time()
    first = deliver(store, now=now)
    claimed(store, "w1", now)
    second = deliver(store, now=now)
    deliver(store, pr=8, now=now)
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        query(database_url, "UPDATE jobs SET state = 'running' WHERE id = ?", (second.id,))
    query(database_url, "UPDATE jobs SET state = 'running' WHERE pr_number = 8")  # another pull request
    assert [(job.id, job.state) for job in store.list_jobs()][:2] == [(first.id, "running"), (second.id, "queued")]
    assert [job.state for job in store.list_jobs(pr_number=8)] == ["running"]


# -- the migration --------------------------------------------------------------------------------


def test_a_database_with_two_running_jobs_for_a_pull_request_keeps_the_oldest_running(database_url: str) -> None:
    """An older release ran two jobs of PR 7 at once when it stopped: the upgrade sends the younger
    back to the queue, its attempt not counted, and leaves every other job as it was."""
    store = open_store(database_url)
    now = time.time()
    first = deliver(store, now=now)
    claimed(store, "old-1", now)
    second = deliver(store, now=now)
    other = deliver(store, pr=8, now=now)
    claimed(store, "old-1", now)
    queued = deliver(store, pr=9, now=now)
    store.close()
    # Back to the older schema: undo this migration and the ones after it.
    query(database_url, "DROP INDEX deliveries_one_per_body")
    query(database_url, "ALTER TABLE deliveries DROP COLUMN body_sha256")
    query(database_url, "DROP TABLE maintenance")
    query(database_url, "DROP INDEX jobs_finished_by_update")
    query(database_url, "DROP INDEX deliveries_by_time")
    query(database_url, "DROP INDEX jobs_one_running_per_pull_request")
    query(database_url, "DROP TABLE kept_results")
    query(database_url, "ALTER TABLE model_calls DROP COLUMN cached_tokens")
    query(database_url, "ALTER TABLE model_calls DROP COLUMN price_source")
    query(database_url, "DROP INDEX deliveries_one_per_command_comment")
    query(database_url, "ALTER TABLE deliveries DROP COLUMN command_comment_id")
    query(database_url, "DELETE FROM schema_version WHERE version >= ?", (ONE_RUNNING_VERSION,))
    query(
        database_url,
        "UPDATE jobs SET state = 'running', lease_owner = 'old-2', attempts = 1 WHERE id = ?",
        (second.id,),
    )

    upgraded = open_store(database_url)
    try:
        assert upgraded.migrated_from == ONE_RUNNING_VERSION - 1
        jobs = {job.id: (job.state, job.lease_owner, job.attempts) for job in upgraded.list_jobs()}
        assert jobs == {
            first.id: ("running", "old-1", 1),
            second.id: ("queued", None, 0),
            other.id: ("running", "old-1", 1),
            queued.id: ("queued", None, 0),
        }
        assert not upgraded.heartbeat(second.id, "old-2", 60)  # its worker stops it at the next heartbeat
        assert claimed(upgraded, "new", now).id == queued.id
        assert upgraded.claim_job("new", 60, now=now) is None  # PR 7's second job waits for the first
    finally:
        upgraded.close()


# -- claims racing (PostgreSQL) -------------------------------------------------------------------


def test_a_claim_that_loses_the_race_for_a_pull_request_takes_the_next_job_instead_of_failing(
    postgres_url: str,
) -> None:
    """PR 7 has two queued jobs (the older one sent back beside a newer one). Another worker's
    claim has set the older one running and not yet committed; this claim, which read the newer
    one as free, waits for that commit, finds PR 7 running and takes PR 8's job instead: no error
    from the unique index, and never two running jobs of PR 7."""
    name = f"reviewbot-test-{uuid.uuid4().hex[:8]}"
    store = open_store(f"{postgres_url}&application_name={name}")
    now = time.time()
    first = deliver(store, now=now)
    claimed(store, "w1", now)
    second = deliver(store, head="c" * 40, now=now)
    assert store.retry_job(first.id, "w1", "boom", 0, 5, now=now) == "queued"
    other = deliver(store, pr=8, now=now)
    results: list[Job | None] = []
    errors: list[StoreError] = []

    def claim() -> None:
        try:
            results.append(store.claim_job("w2", 60, now=now))
        except StoreError as exc:
            errors.append(exc)

    claimer = threading.Thread(target=claim)
    waiting = (
        "SELECT COUNT(*) FROM pg_locks JOIN pg_stat_activity USING (pid) WHERE NOT granted AND application_name = ?"
    )
    with psycopg.connect(postgres_url) as racing:  # the other claim, as claim_job makes it, held open
        racing.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (first.id,))
        racing.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLAIM, lock_key(f"review:{REPO}#7")))
        racing.execute(
            "UPDATE jobs SET state = 'running', lease_owner = 'w3', lease_until = %s WHERE id = %s",
            (now + 60, first.id),
        )
        claimer.start()
        deadline = time.monotonic() + 10
        while query(postgres_url, waiting, (name,)) == [(0,)]:
            assert time.monotonic() < deadline, "the claim never waited for the other one"
            time.sleep(0.01)
        racing.commit()
    claimer.join(10)
    try:
        assert errors == []
        [taken] = results
        assert taken is not None
        assert taken.id == other.id
        assert [(job.id, job.state, job.lease_owner) for job in store.list_jobs(pr_number=7)] == [
            (first.id, "running", "w3"),
            (second.id, "queued", None),
        ]
    finally:
        store.close()


def test_eight_threads_on_two_pools_run_one_job_of_each_pull_request_with_two_queued(postgres_url: str) -> None:
    stores = [open_store(postgres_url) for _ in range(2)]
    pulls = range(1, 41)
    now = time.time()

    def deliveries(head: str) -> list[Delivery]:
        return [Delivery(str(uuid.uuid4()), "pull_request", "opened", 42, REPO, request(pr, head)) for pr in pulls]

    stores[0].record_deliveries(deliveries("a" * 40), now=now)
    firsts = [claimed(stores[0], "w0", now) for _ in pulls]
    stores[0].record_deliveries(deliveries("c" * 40), now=now)
    for job in firsts:  # each sent back beside its pull request's newer job: two queued apiece
        assert stores[0].retry_job(job.id, "w0", "boom", 0, 5, now=now) == "queued"
    taken: list[Job] = []
    errors: list[StoreError] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claim(on: Store, worker_id: str) -> None:
        start.wait(10)
        try:
            while (job := on.claim_job(worker_id, 600, now=now)) is not None:
                with lock:
                    taken.append(job)
        except StoreError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(stores[n % 2], f"w{n + 1}")) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert errors == []
        assert sorted(job.pr_number for job in taken) == list(pulls)
        assert stores[0].job_counts()["running"] == len(pulls)
    finally:
        for store in stores:
            store.close()
