"""Retention: deliveries and finished jobs past ``REVIEWBOT_RETENTION_DAYS`` are deleted, a bounded
batch at a time, by one worker an hour; everything else is kept.

Every test taking ``store`` or ``database_url`` runs on SQLite and on PostgreSQL. Time is injected
(``now``, the pruner's clock): no test waits for the schedule.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from reviewbot.engine.price_layers import Prices
from reviewbot.engine.result import ModelCall
from reviewbot.engine.usage import Usage
from reviewbot.errors import ConfigError
from reviewbot.money import ledger
from reviewbot.service import metrics
from reviewbot.service.retention import Pruner, pruner_for
from reviewbot.service.worker import JobOutcome, Worker
from reviewbot.settings import Settings, load_settings
from reviewbot.store.records import Job, JobRequest, JobState, Pruned, Turn
from reviewbot.store.retention import PRUNE_DELIVERIES, PRUNE_JOBS
from reviewbot.store.store import Store, open_store
from stored import has_delivery, record_delivery

REPO = "octo/widgets"
DAY = 86_400.0
T0 = 1_750_000_000.0  # "now" in these tests
RETENTION_DAYS = 30
CUTOFF = T0 - RETENTION_DAYS * DAY
OLD = CUTOFF - DAY
RECENT = CUTOFF + DAY


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


def request(pr: int, *, comment_id: int | None = None) -> JobRequest:
    return JobRequest(
        installation_id=42,
        repo=REPO,
        pr_number=pr,
        head_sha=f"{pr:040x}",
        base_sha="b" * 40,
        full_review=True,
        trigger="pull_request.opened",
        comment_id=comment_id,
    )


def add_job(store: Store, pr: int, state: JobState, at: float) -> int:
    """A job of pull request ``pr``, from a delivery received at ``at``, that reached ``state`` then.
    Jobs are added one after another: no other job may be queued when one is added."""
    assert record_delivery(store, f"delivery-{pr}", "pull_request", "opened", 42, REPO, request(pr), now=at)
    if state != "queued":
        job = store.claim_job("worker", 60, now=at)
        assert job is not None
        assert job.pr_number == pr
        if state in ("done", "dropped"):
            assert store.finish_job(job.id, "worker", state, now=at)
        elif state == "failed":
            assert store.retry_job(job.id, "worker", "boom", 0, max_attempts=1, now=at) == "failed"
    return store.list_jobs(pr_number=pr)[-1].id


def job_ids(store: Store) -> list[int]:
    return [job.id for job in store.list_jobs()]


# -- what the store prunes ------------------------------------------------------------------------


def test_a_prune_deletes_old_deliveries_and_old_finished_jobs_and_nothing_else(store: Store) -> None:
    done, dropped, failed = (
        add_job(store, 1, "done", OLD),
        add_job(store, 2, "dropped", OLD),
        add_job(store, 3, "failed", OLD),
    )
    recent = add_job(store, 4, "done", RECENT)
    running = add_job(store, 5, "running", OLD)  # its lease ran out long ago: the sweep's to fail, not ours
    queued = add_job(store, 6, "queued", OLD)
    assert record_delivery(store, "ping-old", "ping", None, None, None, now=OLD)
    assert record_delivery(store, "ping-recent", "ping", None, None, None, now=RECENT)
    assert record_delivery(store, "command", "issue_comment", "created", 42, REPO, request(7, comment_id=99), now=OLD)
    command_job = store.list_jobs(pr_number=7)[-1].id
    store.record_review(REPO, 1, f"{1:040x}", 501, ["fingerprint"], now=OLD)
    usage = Usage(1_000, 100, 0, 1, 0.25, 0)
    assert ledger.record_calls(
        store, store.list_jobs(pr_number=1)[0], [ModelCall(0, "m", usage, 1.0, "ok", None)], Prices(), now=OLD
    )
    store.keep_result(done, f"{1:040x}", "{}", now=OLD)  # left behind by a worker that died

    pruned = store.prune_batch(CUTOFF, 100, now=T0)

    assert pruned == Pruned(deliveries=6, jobs=3, kept_results=1)  # delivery-1, 2, 3, 5, 6 and ping-old
    assert job_ids(store) == [recent, running, queued, command_job]
    assert {job.state for job in store.list_jobs()} == {"done", "running", "queued"}
    for gone in (done, dropped, failed):
        assert store.get_job(gone) is None
    kept = ["delivery-4", "ping-recent", "command"]
    assert [d for d in ["delivery-1", "delivery-5", "delivery-6", "ping-old", *kept] if has_delivery(store, d)] == kept
    assert store.review_for(REPO, 1, f"{1:040x}") == 501
    assert store.known_fingerprints(REPO, 1) == {"fingerprint"}
    assert [(entry.job_id, entry.cost_usd) for entry in ledger.entries(store)] == [(done, 0.25)]  # a plain number now
    assert store.kept_result(done, f"{1:040x}") is None
    # The command's comment is still taken: its body, replayed under a new id, queues nothing.
    assert not record_delivery(store, "replay", "issue_comment", "created", 42, REPO, request(7, comment_id=99), now=T0)
    assert store.prune_batch(CUTOFF, 100, now=T0) == Pruned()


def test_a_redelivery_within_the_retention_is_still_a_duplicate(store: Store) -> None:
    assert record_delivery(store, "inside", "pull_request", "opened", 42, REPO, request(1), now=CUTOFF + 1)
    assert record_delivery(store, "outside", "pull_request", "opened", 42, REPO, request(2), now=CUTOFF - 1)

    assert store.prune_batch(CUTOFF, 100, now=T0) == Pruned(deliveries=1)

    assert not record_delivery(store, "inside", "pull_request", "opened", 42, REPO, request(1), now=T0)
    assert not has_delivery(store, "outside")
    assert [job.pr_number for job in store.list_jobs()] == [1, 2]  # queued jobs stay, however old


def test_the_newest_job_is_kept_so_that_its_id_is_never_given_again(store: Store) -> None:
    # SQLite gives a new row the largest id + 1; ids are written into posted reviews and the ledger.
    add_job(store, 1, "done", OLD)
    newest = add_job(store, 2, "done", OLD)

    assert store.prune_batch(CUTOFF, 100, now=T0).jobs == 1

    assert job_ids(store) == [newest]
    record_delivery(store, "next", "pull_request", "opened", 42, REPO, request(3), now=T0)
    assert job_ids(store)[-1] > newest


def test_a_batch_deletes_at_most_its_size_of_each(store: Store) -> None:
    finished = [add_job(store, pr, "done", OLD + pr) for pr in range(25)]
    add_job(store, 100, "queued", T0)

    batches = [store.prune_batch(CUTOFF, 10, now=T0) for _ in range(4)]

    assert [(batch.deliveries, batch.jobs) for batch in batches] == [(10, 10), (10, 10), (5, 5), (0, 0)]
    assert not set(finished) & set(job_ids(store))


def test_a_database_of_the_release_before_is_indexed_for_pruning_and_pruned(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reviewbot.store import store as store_module

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 6)
    old = open_store(database_url)
    with old.write() as tx:  # as that release wrote them: its deliveries have no body_sha256
        for pr, state in [(1, "done"), (2, "queued")]:
            tx.execute(
                "INSERT INTO deliveries (id, event, action, installation_id, repo, received_at)"
                " VALUES (?, 'pull_request', 'opened', 42, ?, ?)",
                (f"delivery-{pr}", REPO, OLD),
            )
            tx.execute(
                "INSERT INTO jobs (kind, installation_id, repo, pr_number, head_sha, base_sha, full_review, trigger,"
                " state, not_before, created_at, updated_at)"
                " VALUES ('review', 42, ?, ?, ?, ?, TRUE, 'pull_request.opened', ?, ?, ?, ?)",
                (REPO, pr, f"{pr:040x}", "b" * 40, state, OLD, OLD, OLD),
            )
    old.close()
    monkeypatch.undo()

    upgraded = open_store(database_url)
    try:
        assert upgraded.migrated_from == 6
        assert upgraded.prune_batch(CUTOFF, 100, now=T0) == Pruned(deliveries=2, jobs=1)
    finally:
        upgraded.close()


def explain(database_url: str, statement: str, params: tuple[object, ...]) -> str:
    """The plan of ``statement`` (``?`` markers); on PostgreSQL with sequential scans priced out,
    so that an empty table still shows whether an index can serve it."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as lite:
            rows = lite.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
        return "\n".join(str(row[-1]) for row in rows)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        rows = conn.execute(f"EXPLAIN {statement.replace('?', '%s')}", params).fetchall()
    return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize(
    ("statement", "index"),
    [(PRUNE_DELIVERIES, "deliveries_by_time"), (PRUNE_JOBS, "jobs_finished_by_update")],
)
def test_the_prune_statements_find_their_rows_through_an_index(database_url: str, statement: str, index: str) -> None:
    open_store(database_url).close()
    plan = explain(database_url, statement, (CUTOFF, 10))
    assert index in plan, plan
    assert "SCAN deliveries\n" not in plan + "\n"
    assert "SCAN jobs\n" not in plan + "\n"


# -- one pruner at a time ---------------------------------------------------------------------------


def test_one_store_at_a_time_takes_the_hourly_turn(database_url: str, store: Store) -> None:
    other = open_store(database_url)
    try:
        assert store.take_turn("prune", 3600, now=T0) == Turn(taken=True, next_at=T0 + 3600)
        assert other.take_turn("prune", 3600, now=T0 + 10) == Turn(taken=False, next_at=T0 + 3600)
        assert other.take_turn("prune", 3600, now=T0 + 3600) == Turn(taken=True, next_at=T0 + 7200)
        assert store.take_turn("prune", 3600, now=T0 + 3601) == Turn(taken=False, next_at=T0 + 7200)
    finally:
        other.close()


def test_eight_threads_on_two_stores_asking_at_once_give_the_turn_to_one(database_url: str, store: Store) -> None:
    other = open_store(database_url)
    start = threading.Barrier(8)
    turns: list[bool] = []

    def ask(on: Store) -> None:
        start.wait(10)
        turns.append(on.take_turn("prune", 3600, now=T0).taken)

    threads = [threading.Thread(target=ask, args=((store, other)[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    other.close()
    assert sorted(turns) == [False] * 7 + [True]


# -- the pruner -----------------------------------------------------------------------------------


class Clock:
    """The pruner's clock, moved by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pruner(store: Store, clock: Clock, *, batch_size: int = 1000) -> Pruner:
    return Pruner(store, RETENTION_DAYS, batch_size=batch_size, pause=0.0, clock=clock)


def test_the_pruner_prunes_in_batches_and_says_so_in_one_line(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    for pr in range(25):
        add_job(store, pr, "done", OLD)
    add_job(store, 100, "queued", T0)
    before = metrics.REGISTRY.get_sample_value("reviewbot_pruned_rows_total", {"table": "jobs"}) or 0.0

    with caplog.at_level(logging.INFO, "reviewbot.retention"):
        pruned = asyncio.run(pruner(store, Clock(), batch_size=10).run_if_due())

    assert pruned == Pruned(deliveries=25, jobs=25)
    lines = [record.getMessage() for record in caplog.records if record.name == "reviewbot.retention"]
    assert len(lines) == 1
    assert lines[0].startswith(
        "pruned 25 deliveries, 25 finished jobs and 0 kept results older than 30 days in 3 batches"
    )
    after = metrics.REGISTRY.get_sample_value("reviewbot_pruned_rows_total", {"table": "jobs"})
    assert after == before + 25


def test_the_pruner_runs_once_an_hour_by_its_clock(store: Store) -> None:
    clock = Clock()
    hourly = pruner(store, clock)
    add_job(store, 1, "done", OLD)
    add_job(store, 2, "queued", T0)

    assert asyncio.run(hourly.run_if_due()) == Pruned(deliveries=1, jobs=1)
    assert record_delivery(store, "late", "ping", None, None, None, now=OLD)
    clock.now = T0 + 3599
    assert not hourly.due()
    assert asyncio.run(hourly.run_if_due()) is None
    assert has_delivery(store, "late")
    clock.now = T0 + 3600
    assert hourly.due()
    assert asyncio.run(hourly.run_if_due()) == Pruned(deliveries=1)


def test_of_two_replicas_one_prunes_and_the_other_waits_for_the_next_turn(database_url: str, store: Store) -> None:
    other = open_store(database_url)
    try:
        clock = Clock()
        first, second = pruner(store, clock), pruner(other, clock)
        assert asyncio.run(first.run_if_due()) == Pruned()
        assert asyncio.run(second.run_if_due()) is None
        assert not second.due()  # it asks again when the turn is due, not at every poll
        clock.now = T0 + 3600
        assert asyncio.run(second.run_if_due()) == Pruned()
    finally:
        other.close()


def test_a_prune_the_store_refuses_is_one_error_line_and_no_crash(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    closed = open_store(database_url)
    closed.close()
    with caplog.at_level(logging.ERROR, "reviewbot.retention"):
        assert asyncio.run(pruner(closed, Clock()).run_if_due()) is None
    assert [record.getMessage() for record in caplog.records] == ["cannot prune old rows: the store is closed"]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the condition did not hold within {timeout} s")
        await asyncio.sleep(0.01)


def test_the_worker_prunes_when_it_starts_and_again_an_hour_later(store: Store) -> None:
    clock = Clock()
    assert record_delivery(store, "first", "ping", None, None, None, now=OLD)

    async def handler(job: Job) -> JobOutcome:
        return JobOutcome.done()

    async def scenario() -> None:
        worker = Worker(
            store,
            handler,
            worker_id="w",
            lease_seconds=5,
            max_attempts=3,
            poll_interval=0.05,
            pruner=pruner(store, clock),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            await until(lambda: not has_delivery(store, "first"))
            assert record_delivery(store, "second", "ping", None, None, None, now=OLD)
            clock.now = T0 + 3600
            worker.wake()
            await until(lambda: not has_delivery(store, "second"))
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


# -- the setting ------------------------------------------------------------------------------------


def test_retention_is_thirty_days_unless_set() -> None:
    assert Settings().retention_days == 30


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("3", "3 days is less than the 7 days GitHub lets a delivery be redelivered in; set 7 or more, or 0"),
        ("-1", "-1 days is less than the 7 days"),
        ("a month", "Input should be a valid integer"),
    ],
)
def test_a_bad_retention_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("REVIEWBOT_RETENTION_DAYS", value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("REVIEWBOT_RETENTION_DAYS: ")
    assert says in message
    assert "\n" not in message


def test_a_retention_of_zero_keeps_everything(store: Store) -> None:
    assert pruner_for(Settings(retention_days=0), store) is None
    assert pruner_for(Settings(retention_days=7), store) is not None


def test_an_hour_with_nothing_to_prune_says_so_only_at_debug_level(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    add_job(store, 100, "done", T0)  # finished, but not old

    with caplog.at_level(logging.INFO, "reviewbot.retention"):
        assert asyncio.run(pruner(store, Clock()).run_if_due()) == Pruned()

    assert [record.getMessage() for record in caplog.records if record.name == "reviewbot.retention"] == []
