"""The durable store: migrations, delivery dedup, job coalescing, leases, retries, reviews.

Every test taking ``store`` or ``database_url`` runs on SQLite and on PostgreSQL; what only
PostgreSQL can show (many processes at once) is in test_postgres.py.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databases import query
from reviewbot.errors import ConfigError, StoreError
from reviewbot.store import sqlite
from reviewbot.store.records import Delivery, Installation, InstallationChange, JobRequest
from reviewbot.store.schema import SCHEMA_VERSION
from reviewbot.store.store import Store, open_store
from stored import has_delivery, install, installation_repos, record_delivery

REPO = "octo/widgets"


def request(
    head: str = "a" * 40, *, pr: int = 7, full: bool = False, trigger: str = "pull_request.synchronize"
) -> JobRequest:
    return JobRequest(
        installation_id=42,
        repo=REPO,
        pr_number=pr,
        head_sha=head,
        base_sha="b" * 40,
        full_review=full,
        trigger=trigger,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "reviewbot.db"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


# -- opening ---------------------------------------------------------------------------------


def test_a_relative_url_opens_a_file_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///relative.db")
    store.close()
    assert (tmp_path / "relative.db").is_file()


def test_an_absolute_url_has_four_slashes(db_path: Path) -> None:
    assert str(db_path).startswith("/")
    store = open_store(f"sqlite:///{db_path}")
    store.close()
    assert db_path.is_file()


def test_an_in_memory_store_works_from_several_threads() -> None:
    store = open_store("sqlite://:memory:")
    threads = [
        threading.Thread(target=record_delivery, args=(store, f"d{n}", "pull_request", "opened", 42, REPO, request()))
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(store.list_jobs()) == 1
    store.close()


@pytest.mark.parametrize("url", ["mysql://localhost/reviewbot", "sqlite://", "sqlite:///", "reviewbot.db"])
def test_an_unsupported_url_is_a_config_error_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigError, match="REVIEWBOT_DATABASE_URL"):
        open_store(url)


def test_a_file_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REVIEWBOT_DATABASE_URL"):
        open_store(f"sqlite:///{tmp_path}/missing/dir/reviewbot.db")


def test_migrations_run_once_and_reopening_keeps_the_data(database_url: str) -> None:
    first = open_store(database_url)
    assert (first.schema_version(), first.migrated_from) == (SCHEMA_VERSION, 0)
    record_delivery(first, "d1", "pull_request", "opened", 42, REPO, request())
    first.close()
    second = open_store(database_url)
    assert (second.schema_version(), second.migrated_from) == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert has_delivery(second, "d1")
    assert len(second.list_jobs()) == 1
    second.close()
    versions = query(database_url, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(version,) for version in range(1, SCHEMA_VERSION + 1)]


def test_a_database_from_a_newer_release_is_refused(database_url: str) -> None:
    open_store(database_url).close()
    query(database_url, "INSERT INTO schema_version (version, applied_at) VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match="newer"):
        open_store(database_url)


def test_the_database_is_in_wal_mode(db_path: Path) -> None:
    open_store(f"sqlite:///{db_path}").close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_closed_store_raises_store_error(store: Store) -> None:
    store.ping()
    store.close()
    with pytest.raises(StoreError):
        store.ping()
    with pytest.raises(StoreError):
        record_delivery(store, "d1", "ping", None, None, None)


# -- deliveries and coalescing ---------------------------------------------------------------


def test_a_redelivered_id_is_recognised_and_queues_nothing(store: Store) -> None:
    assert record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request())
    assert not record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request("c" * 40))
    jobs = store.list_jobs()
    assert [job.head_sha for job in jobs] == ["a" * 40]


def test_a_delivery_without_a_job_is_still_recorded(store: Store) -> None:
    assert record_delivery(store, "d1", "star", "created", None, REPO)
    assert has_delivery(store, "d1")
    assert store.list_jobs() == []


def test_a_newer_push_updates_the_queued_job_instead_of_adding_one(store: Store) -> None:
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request("a" * 40, full=True))
    record_delivery(store, "d2", "pull_request", "synchronize", 42, REPO, request("c" * 40, full=False))
    [job] = store.list_jobs()
    assert job.head_sha == "c" * 40
    assert job.full_review is True
    assert job.trigger == "pull_request.synchronize"
    assert job.state == "queued"


def test_a_command_stays_a_command_when_a_push_coalesces_into_it(store: Store) -> None:
    record_delivery(store, "d1", "issue_comment", "created", 42, REPO, request("", full=True, trigger="command"))
    record_delivery(store, "d2", "pull_request", "synchronize", 42, REPO, request("c" * 40))
    [job] = store.list_jobs()
    assert (job.trigger, job.head_sha, job.full_review) == ("command", "c" * 40, True)


def test_other_pull_requests_get_their_own_jobs(store: Store) -> None:
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(pr=1))
    record_delivery(store, "d2", "pull_request", "opened", 42, REPO, request(pr=2))
    assert sorted(job.pr_number for job in store.list_jobs()) == [1, 2]


def test_a_push_while_a_job_runs_queues_a_second_job(store: Store) -> None:
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request("a" * 40))
    running = store.claim_job("w1", 60)
    assert running is not None
    record_delivery(store, "d2", "pull_request", "synchronize", 42, REPO, request("c" * 40))
    states = [(job.head_sha[0], job.state) for job in store.list_jobs()]
    assert states == [("a", "running"), ("c", "queued")]
    queued = store.list_jobs()[-1]
    assert store.newer_job_exists(REPO, 7, "a" * 40, after_job_id=running.id)
    assert not store.newer_job_exists(REPO, 7, "c" * 40, after_job_id=queued.id)


def test_an_older_job_sent_back_to_the_queue_is_not_newer_work(store: Store) -> None:
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request("a" * 40))
    old = store.claim_job("w1", 60)
    assert old is not None
    record_delivery(store, "d2", "pull_request", "synchronize", 42, REPO, request("c" * 40))
    store.retry_job(old.id, "w1", "boom", 0, 5)
    new = store.list_jobs()[-1]
    assert not store.newer_job_exists(REPO, 7, "c" * 40, after_job_id=new.id)
    assert store.newer_job_exists(REPO, 7, "a" * 40, after_job_id=old.id)


def test_eight_threads_recording_the_same_delivery_make_one_delivery_and_one_job(database_url: str) -> None:
    stores = [open_store(database_url) for _ in range(2)]
    start = threading.Barrier(8)
    results: list[bool] = []

    def deliver(store: Store) -> None:
        start.wait(5)
        results.append(record_delivery(store, "same", "pull_request", "opened", 42, REPO, request()))

    threads = [threading.Thread(target=deliver, args=(stores[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [False] * 7 + [True]
    assert len(stores[0].list_jobs()) == 1
    for store in stores:
        store.close()


def test_concurrent_pushes_to_one_pull_request_coalesce_into_one_job(store: Store) -> None:
    start = threading.Barrier(6)

    def deliver(n: int) -> None:
        start.wait(5)
        record_delivery(store, f"d{n}", "pull_request", "synchronize", 42, REPO, request(f"{n}" * 40))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(store.list_jobs()) == 1


def test_a_group_is_recorded_and_coalesced_as_the_same_deliveries_one_at_a_time(store: Store) -> None:
    """record_deliveries of a whole group (the webhook's group commit) against the same deliveries
    one per transaction, in two repositories set up alike: the same answers and the same jobs."""
    a, b = "octo/one-by-one", "octo/all-at-once"

    def job(
        repo: str, pr: int, head: str, *, full: bool = False, trigger: str = "pull_request.synchronize"
    ) -> JobRequest:
        return JobRequest(
            installation_id=42,
            repo=repo,
            pr_number=pr,
            head_sha=head,
            base_sha="b" * 40,
            full_review=full,
            trigger=trigger,
        )

    def command(repo: str, n: str, pr: int, comment: int) -> Delivery:
        """A review command of comment ``comment`` (GitHub's comment ids are unique across repositories)."""
        request = JobRequest(
            installation_id=42,
            repo=repo,
            pr_number=pr,
            head_sha="",
            base_sha="",
            full_review=True,
            trigger="command",
            comment_id=comment + (1000 if repo == b else 0),
        )
        return Delivery(f"{repo}-{n}", "issue_comment", "created", 42, repo, request)

    # Before: PR 4's job is running, PR 5's was sent back once (attempts 1, an error), PR 3's is queued.
    for pr in (4, 5):
        for repo in (a, b):
            assert record_delivery(
                store, f"{repo}-setup-{pr}", "pull_request", "opened", 42, repo, job(repo, pr, f"{pr}" * 40)
            )
    claimed = [store.claim_job("w1", 60) for _ in range(4)]
    for running in claimed:
        assert running is not None
        if running.pr_number == 5:
            assert store.retry_job(running.id, "w1", "boom", 0, 5)
    for repo in (a, b):
        assert record_delivery(store, f"{repo}-setup-3", "pull_request", "opened", 42, repo, job(repo, 3, "3" * 40))
        assert store.record_deliveries([command(repo, "setup-7", 7, 1)]) == ["recorded"]

    def deliveries(repo: str) -> list[Delivery]:
        def push(n: str, pr: int, head: str) -> Delivery:
            return Delivery(f"{repo}-{n}", "pull_request", "synchronize", 42, repo, job(repo, pr, head))

        return [
            Delivery(f"{repo}-1", "pull_request", "opened", 42, repo, job(repo, 1, "a" * 40, full=True, trigger="o")),
            push("2", 1, "c" * 40),  # folds into the job just queued
            Delivery(f"{repo}-3", "issue_comment", "created", 42, repo, job(repo, 2, "", full=True, trigger="command")),
            push("4", 2, "d" * 40),  # the command stays a command
            push("2", 1, "e" * 40),  # a redelivery: nothing
            Delivery(f"{repo}-5", "star", "created", None, repo),
            push("6", 3, "f" * 40),  # into the job queued before
            push("7", 4, "g" * 40),  # PR 4's job runs: a second one
            push("8", 5, "5" * 40),  # the same head: attempts and error kept
            push("9", 5, "h" * 40),  # a new head: they restart
            push("setup-3", 3, "i" * 40),  # recorded before: nothing
            push("10", 6, "j" * 40),
            push("11", 6, "k" * 40),
            command(repo, "12", 7, 1),  # comment 1's command was taken before: nothing
            command(repo, "13", 8, 2),
            command(repo, "14", 8, 2),  # comment 2's again, under another delivery id: nothing
            command(repo, "13", 8, 3),  # a known delivery id, whatever its comment: nothing
        ]

    one_by_one = [store.record_deliveries([delivery])[0] for delivery in deliveries(a)]
    all_at_once = store.record_deliveries(deliveries(b))

    def jobs(repo: str) -> list[tuple[object, ...]]:
        return [
            (j.pr_number, j.head_sha, j.base_sha, j.full_review, j.trigger, j.state, j.attempts, j.last_error)
            for j in store.list_jobs(repo=repo)
        ]

    assert (
        all_at_once
        == one_by_one
        == [
            *["recorded"] * 4,
            "redelivery",
            *["recorded"] * 5,
            "redelivery",
            *["recorded"] * 2,
            *("replay", "recorded", "replay", "redelivery"),
        ]
    )
    assert jobs(b) == jobs(a)
    assert jobs(a) == [
        (4, "4" * 40, "b" * 40, False, "pull_request.synchronize", "running", 1, None),
        (5, "h" * 40, "b" * 40, False, "pull_request.synchronize", "queued", 0, None),
        (3, "f" * 40, "b" * 40, False, "pull_request.synchronize", "queued", 0, None),
        (7, "", "", True, "command", "queued", 0, None),
        (1, "c" * 40, "b" * 40, True, "pull_request.synchronize", "queued", 0, None),
        (2, "d" * 40, "b" * 40, True, "command", "queued", 0, None),
        (4, "g" * 40, "b" * 40, False, "pull_request.synchronize", "queued", 0, None),
        (6, "k" * 40, "b" * 40, False, "pull_request.synchronize", "queued", 0, None),
        (8, "", "", True, "command", "queued", 0, None),
    ]
    replays = {f"{repo}-{n}" for repo in (a, b) for n in ("12", "14")}  # no record: their comment's was taken
    assert all(has_delivery(store, d.id) != (d.id in replays) for repo in (a, b) for d in deliveries(repo))


def test_a_push_of_the_same_head_keeps_the_attempts_of_a_job_sent_back(store: Store) -> None:
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request("a" * 40))
    running = store.claim_job("w1", 60)
    assert running is not None
    assert store.retry_job(running.id, "w1", "boom", 0, 5)
    store.record_deliveries([Delivery("d2", "pull_request", "synchronize", 42, REPO, request("a" * 40))])
    [job] = store.list_jobs()
    assert (job.state, job.attempts, job.last_error) == ("queued", 1, "boom")


# -- claiming, leases, retries ---------------------------------------------------------------


def test_claiming_takes_the_oldest_due_job_and_counts_an_attempt(store: Store) -> None:
    now = time.time()
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(pr=1), now=now)
    record_delivery(store, "d2", "pull_request", "opened", 42, REPO, request(pr=2), now=now)
    job = store.claim_job("w1", 60, now=now)
    assert job is not None
    assert (job.pr_number, job.state, job.attempts, job.lease_owner) == (1, "running", 1, "w1")
    assert job.lease_until == pytest.approx(now + 60)
    second = store.claim_job("w2", 60, now=now)
    assert second is not None
    assert second.pr_number == 2
    assert store.claim_job("w3", 60, now=now) is None


def test_a_job_whose_lease_expired_is_taken_over(store: Store) -> None:
    now = time.time()
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(), now=now)
    first = store.claim_job("dead-worker", 60, now=now)
    assert first is not None
    assert store.claim_job("w2", 60, now=now + 59) is None
    taken = store.claim_job("w2", 60, now=now + 61)
    assert taken is not None
    assert (taken.id, taken.lease_owner, taken.attempts) == (first.id, "w2", 2)
    assert not store.heartbeat(first.id, "dead-worker", 60)
    assert not store.finish_job(first.id, "dead-worker", "done")
    assert store.finish_job(taken.id, "w2", "done")


def test_a_heartbeat_extends_the_lease(store: Store) -> None:
    now = time.time()
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(), now=now)
    job = store.claim_job("w1", 60, now=now)
    assert job is not None
    assert store.heartbeat(job.id, "w1", 60, now=now + 50)
    assert store.claim_job("w2", 60, now=now + 100) is None
    assert store.claim_job("w2", 60, now=now + 111) is not None


def test_an_expired_job_out_of_attempts_is_not_run_again_but_failed_by_the_sweep_that_returns_it(store: Store) -> None:
    now = time.time()
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(), now=now)
    job = store.claim_job("w1", 60, now=now, max_attempts=2)
    assert job is not None
    assert store.fail_abandoned(2, now=now + 61) == []  # one attempt left: taken over instead
    again = store.claim_job("w2", 60, now=now + 61, max_attempts=2)
    assert again is not None
    assert (again.id, again.attempts) == (job.id, 2)
    assert store.claim_job("w3", 60, now=now + 122, max_attempts=2) is None
    [abandoned] = store.fail_abandoned(2, now=now + 122)
    assert (abandoned.id, abandoned.attempts) == (job.id, 2)
    failed = store.get_job(job.id)
    assert failed is not None
    assert failed.state == "failed"
    assert failed.last_error is not None
    assert "lease expired" in failed.last_error
    assert store.fail_abandoned(2, now=now + 123) == []  # said once


def test_a_lease_that_expires_after_the_sweep_leaves_its_job_to_the_next_sweep_not_to_the_claim(store: Store) -> None:
    # The worker sweeps, then claims: a last attempt whose lease runs out in between is not the
    # claim's to fail (no one would say so), but the next sweep's, which returns it to be told.
    now = time.time()
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(), now=now)
    job = store.claim_job("dead", 60, now=now, max_attempts=1)
    assert job is not None
    assert store.fail_abandoned(1, now=now + 59) == []
    assert store.claim_job("w2", 60, now=now + 61, max_attempts=1) is None
    running = store.get_job(job.id)
    assert running is not None
    assert (running.state, running.lease_owner, running.attempts) == ("running", "dead", 1)
    assert [abandoned.id for abandoned in store.fail_abandoned(1, now=now + 61)] == [job.id]
    assert store.job_counts()["failed"] == 1


def test_a_retried_job_waits_for_its_backoff_and_then_fails_after_max_attempts(store: Store) -> None:
    now = time.time()
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(), now=now)
    job = store.claim_job("w1", 60, now=now)
    assert job is not None
    assert store.retry_job(job.id, "w1", "rate limited", 30, 2, now=now) == "queued"
    assert store.claim_job("w1", 60, now=now + 29) is None
    again = store.claim_job("w1", 60, now=now + 31)
    assert again is not None
    assert (again.attempts, again.last_error) == (2, "rate limited")
    assert store.retry_job(again.id, "w1", "still rate limited", 30, 2, now=now + 31) == "failed"
    final = store.get_job(job.id)
    assert final is not None
    assert (final.state, final.last_error) == ("failed", "still rate limited")
    assert store.claim_job("w1", 60, now=now + 1000) is None


def test_retrying_a_job_whose_lease_was_lost_changes_nothing(store: Store) -> None:
    now = time.time()
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(), now=now)
    job = store.claim_job("w1", 60, now=now)
    assert job is not None
    assert store.claim_job("w2", 60, now=now + 61) is not None
    assert store.retry_job(job.id, "w1", "boom", 0, 5, now=now + 62) == "running"
    current = store.get_job(job.id)
    assert current is not None
    assert current.lease_owner == "w2"


def test_a_dropped_job_keeps_its_reason_and_counts_are_by_state(store: Store) -> None:
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(pr=1))
    record_delivery(store, "d2", "pull_request", "opened", 42, REPO, request(pr=2))
    job = store.claim_job("w1", 60)
    assert job is not None
    assert store.finish_job(job.id, "w1", "dropped", "head is stale")
    dropped = store.get_job(job.id)
    assert dropped is not None
    assert (dropped.state, dropped.last_error, dropped.lease_until) == ("dropped", "head is stale", None)
    assert store.job_counts() == {"queued": 1, "running": 0, "done": 0, "failed": 0, "dropped": 1}


def test_released_jobs_are_claimable_at_once_without_losing_an_attempt(store: Store) -> None:
    now = time.time()
    record_delivery(store, "d1", "pull_request", "opened", 42, REPO, request(pr=1), now=now)
    record_delivery(store, "d2", "pull_request", "opened", 42, REPO, request(pr=2), now=now)
    mine = store.claim_job("stopping", 600, now=now)
    other = store.claim_job("w2", 600, now=now)
    assert mine is not None
    assert other is not None
    assert store.release_jobs("stopping", now=now + 1) == 1
    released = store.get_job(mine.id)
    assert released is not None
    assert (released.state, released.attempts, released.lease_owner, released.lease_until) == ("queued", 0, None, None)
    again = store.claim_job("w3", 600, now=now + 1)
    assert again is not None
    assert (again.id, again.attempts) == (mine.id, 1)
    assert not store.heartbeat(mine.id, "stopping", 600)
    untouched = store.get_job(other.id)
    assert untouched is not None
    assert (untouched.state, untouched.lease_owner) == ("running", "w2")


def test_a_job_cannot_finish_as_failed(store: Store) -> None:
    with pytest.raises(ValueError, match="done"):
        store.finish_job(1, "w1", "failed")  # type: ignore[arg-type]


# -- reviews and installations ---------------------------------------------------------------


def test_reviews_are_remembered_per_head_with_their_fingerprints(store: Store) -> None:
    assert store.review_for(REPO, 7, "a" * 40) is None
    assert store.last_reviewed_head(REPO, 7) is None
    store.record_review(REPO, 7, "a" * 40, 1001, ["f1", "f2"], now=100.0)
    store.record_review(REPO, 7, "c" * 40, 1002, ["f2", "f3"], now=200.0)
    store.record_review(REPO, 8, "d" * 40, 1003, ["f9"], now=300.0)
    assert store.review_for(REPO, 7, "a" * 40) == 1001
    assert store.last_reviewed_head(REPO, 7) == "c" * 40
    assert store.known_fingerprints(REPO, 7) == {"f1", "f2", "f3"}
    assert store.known_fingerprints(REPO, 8) == {"f9"}


def test_a_job_keeps_one_result_read_back_only_for_its_head_until_it_forgets_it(store: Store) -> None:
    store.keep_result(1, "a" * 40, '{"first": true}')
    store.keep_result(2, "a" * 40, '{"other job": true}')
    store.keep_result(1, "c" * 40, '{"after a push": true}')

    assert store.kept_result(1, "a" * 40) is None
    assert store.kept_result(1, "c" * 40) == '{"after a push": true}'
    assert store.kept_result(2, "a" * 40) == '{"other job": true}'
    store.forget_result(1)
    assert store.kept_result(1, "c" * 40) is None
    assert store.kept_result(2, "a" * 40) == '{"other job": true}'


def test_a_result_left_behind_by_a_job_that_never_ended_goes_after_a_day(store: Store) -> None:
    now = time.time()
    store.keep_result(1, "a" * 40, "left behind", now=now - 2 * 24 * 3600)
    store.keep_result(2, "a" * 40, "recent", now=now - 3600)

    store.keep_result(3, "a" * 40, "new", now=now)

    assert store.kept_result(1, "a" * 40) is None
    assert store.kept_result(2, "a" * 40) == "recent"


def test_installations_and_their_repositories_are_tracked(store: Store) -> None:
    ids = iter(range(100))

    def change(kind: Any, **fields: Any) -> bool:
        delivery = Delivery(f"i-{next(ids)}", "installation", None, 5, None)
        return store.record_installation_delivery(delivery, InstallationChange(5, kind, "octo", **fields)) == "recorded"

    install(store, 5, "octo", ["octo/a", "octo/b"])
    assert change("repositories", added=("octo/c",), removed=("octo/a",))
    assert installation_repos(store, 5) == {"octo/b", "octo/c"}
    assert change("suspend")
    assert store.installation(5) == Installation(5, "octo", suspended=True)
    assert change("unsuspend")
    assert store.installation(5) == Installation(5, "octo", suspended=False)
    assert change("deleted")
    assert store.installation(5) is None
    assert installation_repos(store, 5) == set()


# -- writers in several processes (SQLite) -------------------------------------------------------


def other_process_writing(path: Path) -> sqlite3.Connection:
    """A connection of its own (as another process has) holding the database's write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_writer_waits_while_another_process_writes_and_goes_on_once_it_is_done(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'turns.db'}")
    other = other_process_writing(tmp_path / "turns.db")
    done = threading.Event()

    def write() -> None:
        store.record_deliveries([Delivery("turns-1", "ping", None, None, None)])
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(0.2)  # the other write is still open
    other.execute("COMMIT")
    assert done.wait(5)
    writer.join()
    other.close()
    assert has_delivery(store, "turns-1")
    store.close()


def test_a_writer_gives_up_with_a_store_error_when_another_process_never_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_SECONDS", 0.1)
    store = open_store(f"sqlite:///{tmp_path / 'stuck.db'}")
    other = other_process_writing(tmp_path / "stuck.db")
    try:
        with pytest.raises(StoreError, match="database is locked"):
            store.record_deliveries([Delivery("stuck-1", "ping", None, None, None)])
    finally:
        other.close()
    store.record_deliveries([Delivery("stuck-1", "ping", None, None, None)])  # its turn came
    assert has_delivery(store, "stuck-1")
    store.close()
