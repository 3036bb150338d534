"""What only PostgreSQL shows: many connections and processes on one queue, migrations racing,
connections lost and errors reported without the password.

The rest of the store's behaviour is tested on PostgreSQL too: test_store.py and test_worker.py run
every test on both backends.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from databases import hold_open, query
from reviewbot.errors import ConfigError, StoreError
from reviewbot.store.records import Delivery, InstallationChange, JobRequest, Recorded
from reviewbot.store.schema import SCHEMA_VERSION
from reviewbot.store.store import Store, open_store
from stored import has_delivery, record_delivery

REPO = "octo/widgets"
CHILD = Path(__file__).with_name("store_child.py")


def request(pr: int, head: str = "a" * 40) -> JobRequest:
    return JobRequest(
        installation_id=42,
        repo=REPO,
        pr_number=pr,
        head_sha=head,
        base_sha="b" * 40,
        full_review=False,
        trigger="pull_request.synchronize",
    )


def enqueue(store: Store, count: int) -> list[int]:
    """``count`` jobs, one per pull request, recorded in one transaction; their ids."""
    deliveries = [Delivery(f"d{pr}", "pull_request", "opened", 42, REPO, request(pr)) for pr in range(1, count + 1)]
    assert all(store.record_deliveries(deliveries))
    return [job.id for job in store.list_jobs()]


def run_together(*commands: list[str], timeout: float = 60) -> list[Any]:
    """Run ``store_child.py`` once per command, let them all go at the same moment, and return
    what each printed last (as JSON)."""
    processes = [
        subprocess.Popen(
            [sys.executable, str(CHILD), *command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line == "ready\n", line + process.communicate(timeout=timeout)[1]
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            assert process.returncode == 0, err
            results.append(json.loads(out.splitlines()[-1]))
        return results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
            process.wait()


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    opened = open_store(postgres_url)
    yield opened
    opened.close()


# -- the queue under contention --------------------------------------------------------------


def test_eight_threads_on_two_pools_never_claim_the_same_job(postgres_url: str, store: Store) -> None:
    job_ids = enqueue(store, 300)
    other = open_store(postgres_url)
    claimed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claim(on: Store, worker_id: str) -> None:
        start.wait(10)
        while (job := on.claim_job(worker_id, 600)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claim, args=((store, other)[n % 2], f"w{n}")) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    other.close()
    assert sorted(claimed) == job_ids
    assert store.job_counts()["running"] == 300


def test_threads_sweeping_and_claiming_at_once_return_each_abandoned_job_once_and_run_none(
    postgres_url: str, store: Store
) -> None:
    job_ids = enqueue(store, 90)
    now = time.time()
    for _ in range(60):  # their last attempt (of one), whose workers died: the leases run out below
        assert store.claim_job("dead", 60, now=now, max_attempts=1) is not None
    later = now + 61
    other = open_store(postgres_url)
    told: list[int] = []
    ran: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def work(on: Store, worker_id: str) -> None:
        start.wait(10)
        while True:  # a worker's loop, entered between its sweep and its claim
            job = on.claim_job(worker_id, 600, now=later, max_attempts=1)
            abandoned = on.fail_abandoned(1, now=later)
            with lock:
                told.extend(each.id for each in abandoned)
                ran.extend([job.id] if job is not None else [])
            if job is None and not abandoned:
                return

    threads = [threading.Thread(target=work, args=((store, other)[n % 2], f"w{n}")) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    other.close()
    assert sorted(told) == job_ids[:60]
    assert sorted(ran) == job_ids[60:]
    assert store.job_counts()["failed"] == 60


@pytest.mark.timeout(60)
def test_two_processes_claiming_from_one_queue_never_get_the_same_job(postgres_url: str, store: Store) -> None:
    job_ids = enqueue(store, 400)
    first, second = run_together(["claim", postgres_url, "p1"], ["claim", postgres_url, "p2"])
    assert first
    assert second
    assert not set(first) & set(second)
    assert sorted(first + second) == job_ids
    owners = {job.id: job.lease_owner for job in store.list_jobs()}
    assert {owners[job_id] for job_id in first} == {"p1"}
    assert {owners[job_id] for job_id in second} == {"p2"}


def test_identical_deliveries_from_many_connections_make_one_delivery_and_one_job(postgres_url: str) -> None:
    stores = [open_store(postgres_url) for _ in range(4)]
    try:
        for pr in range(1, 6):  # a race lost once can be won by luck; five rounds
            start = threading.Barrier(12)
            results: list[bool] = []

            def deliver(
                on: Store,
                delivery_id: str,
                pr: int = pr,
                start: threading.Barrier = start,
                results: list[bool] = results,
            ) -> None:
                start.wait(10)
                results.append(record_delivery(on, delivery_id, "pull_request", "opened", 42, REPO, request(pr)))

            threads = [
                # Half send one delivery id (a redelivery racing the original), half their own id
                # for the same pull request (pushes racing each other, before any job exists).
                threading.Thread(target=deliver, args=(stores[n % 4], f"same-{pr}" if n < 6 else f"own-{pr}-{n}"))
                for n in range(12)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            assert sorted(results) == [False] * 5 + [True] * 7
            [job] = stores[0].list_jobs(pr_number=pr)
            assert job.state == "queued"
    finally:
        for store in stores:
            store.close()


@pytest.mark.timeout(60)
def test_three_processes_pushing_to_the_same_pull_requests_leave_one_queued_job_each(
    postgres_url: str, store: Store
) -> None:
    new = run_together(*(["deliver", postgres_url, prefix, "40"] for prefix in "abc"))
    assert new == [40, 40, 40]
    jobs = store.list_jobs()
    assert sorted(job.pr_number for job in jobs) == list(range(1, 41))
    assert {job.state for job in jobs} == {"queued"}


def test_a_push_racing_a_claim_queues_a_new_job_instead_of_changing_the_claimed_one(postgres_url: str) -> None:
    """A claim in progress has locked the queued job and set it running, not yet committed. The
    push must not fold its head into that job (the worker would never review it): it waits for
    the lock, sees the job running, and queues a new one."""
    name = f"reviewbot-test-{uuid.uuid4().hex[:8]}"
    store = open_store(f"{postgres_url}&application_name={name}")
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(1, "a" * 40))
    pushed: list[bool] = []

    def push() -> None:
        pushed.append(record_delivery(store, "d2", "pull_request", "synchronize", 42, REPO, request(1, "c" * 40)))

    pusher = threading.Thread(target=push)
    waiting = (
        "SELECT COUNT(*) FROM pg_locks JOIN pg_stat_activity USING (pid) WHERE NOT granted AND application_name = ?"
    )
    with psycopg.connect(postgres_url) as claimer:  # a worker's claim, held open
        claimer.execute("SELECT id FROM jobs WHERE state = 'queued' FOR UPDATE SKIP LOCKED")
        claimer.execute("UPDATE jobs SET state = 'running', lease_owner = 'w1', lease_until = 1e12")
        pusher.start()
        deadline = time.monotonic() + 10
        while query(postgres_url, waiting, (name,)) == [(0,)]:
            assert time.monotonic() < deadline, "the push never waited for the claim"
            time.sleep(0.01)
        claimer.commit()
    pusher.join(10)
    assert pushed == [True]
    jobs = [(job.head_sha[0], job.state, job.lease_owner) for job in store.list_jobs()]
    store.close()
    assert jobs == [("a", "running", "w1"), ("c", "queued", None)]


def test_two_replicas_changing_one_installations_repositories_at_once_take_turns(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica 0 records an ``installation_repositories`` event (octo/b removed, octo/a added) and holds
    its transaction open once octo/b is deleted, until replica 1, recording the installation's
    ``deleted``, waits on it. Without turns, replica 1's DELETE of every repository would lock octo/a
    and wait for octo/b, and replica 0's insert of octo/a then wait for replica 1: a deadlock, and a
    genuine delivery lost with the transaction PostgreSQL aborts."""
    name = f"reviewbot-test-{uuid.uuid4().hex[:8]}"
    stores = [open_store(f"{postgres_url}&application_name={name}-{n}") for n in range(2)]
    with stores[0].write() as tx:  # in this order, so the DELETE of every repository meets octo/a first
        tx.execute("INSERT INTO installations (id, account, suspended, updated_at) VALUES (5, 'octo', FALSE, 0)")
        for repo in ("octo/a", "octo/b"):
            tx.execute("INSERT INTO installation_repos (installation_id, repo) VALUES (5, ?)", (repo,))
    stopped = hold_open(
        monkeypatch,
        postgres_url,
        thread="replica-0",
        after=lambda sql, params: sql.startswith("DELETE FROM installation_repos"),
        until_waiting=f"{name}-1",
    )
    changes = [
        InstallationChange(5, "repositories", "octo", added=("octo/a",), removed=("octo/b",)),
        InstallationChange(5, "deleted", "octo"),
    ]
    results: list[Recorded | StoreError] = [StoreError("never ran")] * 2

    def record(n: int) -> None:
        if n == 1:
            stopped.wait(10)
        try:
            results[n] = stores[n].record_installation_delivery(
                Delivery(f"i-{n}", "installation", None, 5, None), changes[n]
            )
        except StoreError as exc:
            results[n] = exc

    threads = [threading.Thread(target=record, args=(n,), name=f"replica-{n}") for n in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for store in stores:
            store.close()

    assert stopped.is_set()  # the two transactions overlapped
    assert results == ["recorded", "recorded"]
    assert query(postgres_url, "SELECT COUNT(*) FROM installation_repos") == [(0,)]


# -- migrations --------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_four_processes_opening_a_new_database_at_once_migrate_it_once(postgres_url: str) -> None:
    versions = run_together(*(["open", postgres_url] for _ in range(4)))
    assert versions == [SCHEMA_VERSION] * 4
    rows = query(postgres_url, "SELECT version FROM schema_version ORDER BY version")
    assert rows == [(version,) for version in range(1, SCHEMA_VERSION + 1)]


def test_opening_again_changes_nothing(postgres_url: str) -> None:
    for _ in range(3):
        open_store(postgres_url).close()
    count_tables = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
    tables = query(postgres_url, count_tables)
    store = open_store(postgres_url)
    assert (store.schema_version(), store.migrated_from) == (SCHEMA_VERSION, SCHEMA_VERSION)
    store.close()
    assert query(postgres_url, "SELECT COUNT(*) FROM schema_version") == [(SCHEMA_VERSION,)]
    assert query(postgres_url, count_tables) == tables


# -- connections and errors ----------------------------------------------------------------------


def test_the_postgres_scheme_is_accepted_too(postgres_url: str) -> None:
    store = open_store(postgres_url.replace("postgresql://", "postgres://", 1))
    assert store.schema_version() == SCHEMA_VERSION
    assert store.location.startswith("postgresql://")
    store.close()


def test_an_unreachable_server_is_a_config_error_that_never_shows_the_password() -> None:
    with pytest.raises(ConfigError, match="REVIEWBOT_DATABASE_URL") as raised:
        open_store("postgresql://reviewbot:hunter2-secret@127.0.0.1:1/reviewbot?connect_timeout=2")
    assert "hunter2-secret" not in str(raised.value)
    assert "postgresql://reviewbot@127.0.0.1:1/reviewbot" in str(raised.value)


def test_a_missing_database_is_a_config_error_naming_it(postgres_server: str) -> None:
    url = postgres_server.replace("://", "://:hunter2-secret@", 1) if "@" not in postgres_server else postgres_server
    url = url.rsplit("/", 1)[0] + "/reviewbot_no_such_database"
    with pytest.raises(ConfigError, match="reviewbot_no_such_database") as raised:
        open_store(url)
    assert "hunter2-secret" not in str(raised.value)


def test_a_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="REVIEWBOT_DATABASE_URL is not a valid PostgreSQL URL"):
        open_store("postgresql://localhost/reviewbot?no_such_option=1")


def test_connections_the_server_dropped_are_replaced_without_an_error(postgres_url: str) -> None:
    name = f"reviewbot-test-{uuid.uuid4().hex[:8]}"
    store = open_store(f"{postgres_url}&application_name={name}")
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(1))
    killed = query(
        postgres_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
        (name,),
    )
    assert killed
    assert has_delivery(store, "d1")  # the pool checked the connection and made a new one
    store.close()


def test_a_failed_statement_is_a_store_error_and_the_transaction_is_rolled_back(
    postgres_url: str, store: Store
) -> None:
    query(postgres_url, "ALTER TABLE jobs ADD CONSTRAINT no_pull_request_13 CHECK (pr_number <> 13)")
    with pytest.raises(StoreError, match="no_pull_request_13"):
        store.record_deliveries(
            [
                Delivery("d1", "pull_request", "opened", 42, REPO, request(1)),
                Delivery("d13", "pull_request", "opened", 42, REPO, request(13)),
            ]
        )
    assert not has_delivery(store, "d1")
    assert record_delivery(store, "d2", "pull_request", "opened", 42, REPO, request(2))
    assert [job.pr_number for job in store.list_jobs()] == [2]


def test_a_closed_store_gives_its_connections_back(postgres_url: str) -> None:
    name = f"reviewbot-test-{uuid.uuid4().hex[:8]}"
    store = open_store(f"{postgres_url}&application_name={name}")
    store.ping()
    store.close()
    open_connections = "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = ?"
    assert query(postgres_url, open_connections, (name,)) == [(0,)]
    with pytest.raises(StoreError, match="closed"):
        store.ping()


def test_psycopg_is_only_imported_for_a_postgres_url() -> None:
    code = (
        "import sys; from reviewbot.store.store import open_store; "
        "open_store('sqlite://:memory:').close(); print('psycopg' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "False"
    assert psycopg  # imported here, by the tests, which is fine
