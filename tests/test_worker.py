"""The job loop against a real store (SQLite and PostgreSQL): outcomes, retries, leases, wake-ups, two workers."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from databases import query
from reviewbot.service.worker import (
    JobHandler,
    JobOutcome,
    PermanentJobError,
    TransientJobError,
    Worker,
    backoff_seconds,
)
from reviewbot.store.records import Job, JobRequest
from reviewbot.store.store import Store, open_store
from stored import record_delivery

REPO = "octo/widgets"


@pytest.fixture
def db_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


def enqueue(store: Store, pr: int = 1) -> int:
    job = JobRequest(
        installation_id=42,
        repo=REPO,
        pr_number=pr,
        head_sha=f"{pr:040d}",
        base_sha="b" * 40,
        full_review=True,
        trigger="pull_request.opened",
    )
    record_delivery(store, str(uuid.uuid4()), "pull_request", "opened", 42, REPO, job)
    return store.list_jobs(pr_number=pr)[-1].id


def make_worker(store: Store, handler: JobHandler, **overrides: float | str) -> Worker:
    options: dict[str, float | str] = {
        "worker_id": "w1",
        "lease_seconds": 5.0,
        "max_attempts": 3,
        "poll_interval": 0.05,
        "backoff_base": 0.01,
    }
    options.update(overrides)
    return Worker(
        store,
        handler,
        worker_id=str(options["worker_id"]),
        lease_seconds=float(options["lease_seconds"]),
        max_attempts=int(options["max_attempts"]),
        poll_interval=float(options["poll_interval"]),
        backoff_base=float(options["backoff_base"]),
        concurrency=int(options.get("concurrency", 2)),
    )


async def run_until(workers: list[Worker], condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Run the workers until ``condition`` holds (checked every 10 ms), then stop them."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    try:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"the condition did not hold within {timeout} s")
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)


def state_of(store: Store, job_id: int) -> Job:
    job = store.get_job(job_id)
    assert job is not None
    return job


def finished(store: Store, *job_ids: int) -> Callable[[], bool]:
    return lambda: all(state_of(store, job_id).state in ("done", "dropped", "failed") for job_id in job_ids)


def test_a_job_whose_handler_succeeds_is_done_with_its_note(store: Store) -> None:
    job_id = enqueue(store)
    seen: list[Job] = []

    async def handler(job: Job) -> JobOutcome:
        seen.append(job)
        return JobOutcome.done("posted review 1")

    asyncio.run(run_until([make_worker(store, handler)], finished(store, job_id)))
    job = state_of(store, job_id)
    assert (job.state, job.attempts, job.last_error) == ("done", 1, "posted review 1")
    assert [job.id for job in seen] == [job_id]
    assert seen[0].lease_owner == "w1"


def test_a_dropped_job_keeps_the_reason(store: Store) -> None:
    job_id = enqueue(store)

    async def handler(job: Job) -> JobOutcome:
        return JobOutcome.dropped("head is stale")

    asyncio.run(run_until([make_worker(store, handler)], finished(store, job_id)))
    assert (state_of(store, job_id).state, state_of(store, job_id).last_error) == ("dropped", "head is stale")


def test_a_transient_error_twice_then_success_is_done_after_three_attempts(store: Store) -> None:
    job_id = enqueue(store)
    calls: list[int] = []

    async def handler(job: Job) -> JobOutcome:
        calls.append(job.attempts)
        if len(calls) < 3:
            raise TransientJobError("GitHub answered 502")
        return JobOutcome.done()

    asyncio.run(run_until([make_worker(store, handler, max_attempts=5)], finished(store, job_id)))
    job = state_of(store, job_id)
    assert (job.state, job.attempts) == ("done", 3)
    assert calls == [1, 2, 3]


def test_a_job_that_always_fails_is_failed_with_the_reason_after_max_attempts(store: Store) -> None:
    job_id = enqueue(store)

    async def handler(job: Job) -> JobOutcome:
        raise RuntimeError("boom\nwith a second line")

    asyncio.run(run_until([make_worker(store, handler, max_attempts=3)], finished(store, job_id)))
    job = state_of(store, job_id)
    assert (job.state, job.attempts) == ("failed", 3)
    assert job.last_error is not None
    assert job.last_error.startswith("RuntimeError: boom with a second line (at test_worker.py:")
    assert "\n" not in job.last_error
    assert len(job.last_error) <= 500


def test_a_permanent_error_fails_the_job_at_once_and_on_failed_hears_of_it_once(store: Store) -> None:
    job_id = enqueue(store)
    told: list[tuple[int, BaseException]] = []

    async def handler(job: Job) -> JobOutcome:
        raise PermanentJobError("GitHub refused the review three times")

    async def on_failed(job: Job, error: BaseException) -> None:
        told.append((job.id, error))

    worker = Worker(
        store, handler, worker_id="w1", lease_seconds=5, max_attempts=5, poll_interval=0.05, on_failed=on_failed
    )
    asyncio.run(run_until([worker], finished(store, job_id)))
    job = state_of(store, job_id)
    assert (job.state, job.attempts, job.last_error) == ("failed", 1, "GitHub refused the review three times")
    assert [(told_id, str(error)) for told_id, error in told] == [(job_id, "GitHub refused the review three times")]


def test_on_failed_hears_only_of_the_last_attempt_and_a_failure_in_it_is_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    failing, passing = enqueue(store, 1), enqueue(store, 2)
    told: list[int] = []

    async def handler(job: Job) -> JobOutcome:
        if job.id == failing:
            raise TransientJobError(f"attempt {job.attempts} failed")
        return JobOutcome.done()

    async def on_failed(job: Job, error: BaseException) -> None:
        told.append(job.attempts)
        raise RuntimeError("the note could not be posted")

    worker = Worker(
        store,
        handler,
        worker_id="w1",
        lease_seconds=5,
        max_attempts=3,
        poll_interval=0.05,
        backoff_base=0.01,
        on_failed=on_failed,
    )
    asyncio.run(run_until([worker], finished(store, failing, passing)))
    assert (state_of(store, failing).state, state_of(store, failing).last_error) == ("failed", "attempt 3 failed")
    assert state_of(store, passing).state == "done"
    assert told == [3]
    assert "what follows a failure failed too" in caplog.text


def test_retry_after_from_the_handler_replaces_the_backoff(store: Store) -> None:
    job_id = enqueue(store)

    async def handler(job: Job) -> JobOutcome:
        raise TransientJobError("rate limited", retry_after=120)

    before = time.time()
    asyncio.run(
        run_until(
            [make_worker(store, handler)],
            lambda: state_of(store, job_id).state == "queued" and state_of(store, job_id).attempts == 1,
        )
    )
    job = state_of(store, job_id)
    assert job.last_error == "rate limited"
    assert job.not_before >= before + 120


def test_backoff_doubles_from_thirty_seconds_up_to_fifteen_minutes() -> None:
    assert [backoff_seconds(attempt) for attempt in (1, 2, 3, 4, 5, 6, 7)] == [30, 60, 120, 240, 480, 900, 900]


def test_the_heartbeat_keeps_the_lease_while_the_handler_runs_longer_than_it(store: Store) -> None:
    job_id = enqueue(store)
    stolen: list[Job | None] = []

    async def handler(job: Job) -> JobOutcome:
        await asyncio.sleep(0.7)  # more than twice the lease
        stolen.append(await asyncio.to_thread(store.claim_job, "intruder", 5))
        return JobOutcome.done()

    worker = make_worker(store, handler, lease_seconds=0.3)
    asyncio.run(run_until([worker], finished(store, job_id)))
    assert stolen == [None]
    assert (state_of(store, job_id).state, state_of(store, job_id).attempts) == ("done", 1)


def test_a_worker_that_loses_its_lease_stops_the_job(store: Store) -> None:
    job_id = enqueue(store)
    started = threading.Event()
    cancelled = threading.Event()

    async def handler(job: Job) -> JobOutcome:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return JobOutcome.done()

    def taken_over() -> bool:
        if started.is_set() and state_of(store, job_id).lease_owner == "w1":
            assert store.claim_job("thief", 60, now=time.time() + 1000) is not None
        return cancelled.is_set()

    asyncio.run(run_until([make_worker(store, handler, lease_seconds=0.3)], taken_over))
    job = state_of(store, job_id)
    assert (job.state, job.lease_owner) == ("running", "thief")


def test_wake_starts_a_new_job_without_waiting_for_the_poll(store: Store) -> None:
    done_ids: list[int] = []

    async def handler(job: Job) -> JobOutcome:
        done_ids.append(job.id)
        return JobOutcome.done()

    worker = make_worker(store, handler, poll_interval=60)

    async def main() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.05)  # the worker found nothing and waits for the next poll
        job_id = await asyncio.to_thread(enqueue, store)
        sent = time.monotonic()
        await asyncio.to_thread(worker.wake)  # from another thread, as the web handler may
        while state_of(store, job_id).state != "done":
            assert time.monotonic() - sent < 5, "the worker did not wake"
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        return time.monotonic() - sent

    assert asyncio.run(main()) < 5
    assert len(done_ids) == 1


def test_two_workers_on_one_database_never_run_the_same_job_at_once(db_url: str, store: Store) -> None:
    job_ids = [enqueue(store, pr) for pr in range(1, 13)]
    other = open_store(db_url)
    lock = threading.Lock()
    in_flight: set[int] = set()
    overlaps: list[int] = []
    runs: Counter[int] = Counter()

    async def handler(job: Job) -> JobOutcome:
        with lock:
            if job.id in in_flight:
                overlaps.append(job.id)
            in_flight.add(job.id)
            runs[job.id] += 1
        await asyncio.sleep(0.02)
        with lock:
            in_flight.discard(job.id)
        return JobOutcome.done(job.lease_owner)

    workers = [
        make_worker(store, handler, worker_id="w1", concurrency=3),
        make_worker(other, handler, worker_id="w2", concurrency=3),
    ]
    asyncio.run(run_until(workers, finished(store, *job_ids)))
    other.close()
    assert overlaps == []
    assert set(runs) == set(job_ids)
    assert all(count == 1 for count in runs.values())
    owners = {state_of(store, job_id).last_error for job_id in job_ids}
    assert owners == {"w1", "w2"}


def test_a_job_behind_a_running_one_of_its_pull_request_starts_once_that_one_ends_not_at_the_next_poll(
    store: Store,
) -> None:
    first_id = enqueue(store)
    events: list[tuple[str, int]] = []

    async def main() -> None:
        release = asyncio.Event()

        async def handler(job: Job) -> JobOutcome:
            events.append(("start", job.id))
            if job.id == first_id:
                await release.wait()
            events.append(("end", job.id))
            return JobOutcome.done()

        worker = make_worker(store, handler, poll_interval=60)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        deadline = time.monotonic() + 5
        while not events:
            assert time.monotonic() < deadline, "the first job did not start"
            await asyncio.sleep(0.01)
        second_id = await asyncio.to_thread(enqueue, store)  # the same head again: a job of its own
        assert second_id != first_id
        release.set()
        ended = time.monotonic()
        while state_of(store, second_id).state != "done":
            assert time.monotonic() - ended < 5, "the second job waited for the next poll"
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert events == [("start", first_id), ("end", first_id), ("start", second_id), ("end", second_id)]

    asyncio.run(main())


def fail_abandoned_job(store: Store, job_id: int) -> list[tuple[int, str]]:
    """Run a worker allowing one attempt until job ``job_id`` has ended; the failures ``on_failed``
    was told of, as (job id, error type)."""
    told: list[tuple[int, str]] = []

    async def handler(job: Job) -> JobOutcome:
        raise AssertionError("an abandoned job is not run again")

    async def on_failed(job: Job, error: BaseException) -> None:
        told.append((job.id, type(error).__name__))

    worker = Worker(
        store, handler, worker_id="w1", lease_seconds=5, max_attempts=1, poll_interval=0.05, on_failed=on_failed
    )
    asyncio.run(run_until([worker], finished(store, job_id)))
    return told


def test_a_job_whose_worker_died_on_its_last_attempt_is_failed_and_on_failed_hears_of_it(store: Store) -> None:
    job_id = enqueue(store)
    # Its last attempt (of one), taken long ago by a worker that died: the lease ran out.
    claimed = store.claim_job("dead", lease_seconds=0.0)
    assert claimed is not None
    assert claimed.attempts == 1
    told = fail_abandoned_job(store, job_id)
    job = state_of(store, job_id)
    assert job.state == "failed"
    assert "lease expired" in (job.last_error or "")
    assert told == [(job_id, "JobAbandoned")]


def test_a_last_attempt_whose_lease_runs_out_between_the_sweep_and_the_claim_is_still_told(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = enqueue(store)
    claimed = store.claim_job("dead", lease_seconds=60)  # its last attempt (of one), its lease good for now
    assert claimed is not None
    sweep = store.fail_abandoned
    sweeps: list[list[int]] = []

    def sweep_then_expire(max_attempts: int, now: float | None = None) -> list[Job]:
        abandoned = sweep(max_attempts, now)
        sweeps.append([job.id for job in abandoned])
        if len(sweeps) == 1:  # the lease runs out just after the worker's first sweep looked
            query(db_url, "UPDATE jobs SET lease_until = ? WHERE id = ?", (time.time() - 1, job_id))
        return abandoned

    monkeypatch.setattr(store, "fail_abandoned", sweep_then_expire)
    told = fail_abandoned_job(store, job_id)
    assert sweeps[0] == []
    assert state_of(store, job_id).state == "failed"
    assert told == [(job_id, "JobAbandoned")]
