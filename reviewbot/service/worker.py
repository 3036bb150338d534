"""The job loop: take jobs from the store, run them, and record how each ended.

    worker = Worker(store, service.handle, worker_id="host-1234", lease_seconds=600, max_attempts=5)
    stop = asyncio.Event()
    await worker.run(stop)          # until stop is set; the web handler calls worker.wake()

Each job runs under a lease that a heartbeat extends every third of its length, so a job whose
worker died is taken over once the lease runs out, and a worker that lost its lease stops the job.
The handler's :class:`JobOutcome` ends the job as done or dropped; a :class:`TransientJobError`
(or any other exception, which may be a bug) sends it back to the queue with exponential backoff
until ``max_attempts`` were made, and then it is failed with the reason kept in ``last_error``.
A :class:`PermanentJobError` fails it at once. Once a job is failed, ``on_failed`` is told (the
review service posts a note on the pull request). Store calls run in threads, so SQLite never
blocks the event loop. With a :class:`~reviewbot.service.retention.Pruner`, the loop also starts the
hourly prune of old rows when it is due, beside the jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal

from reviewbot import logs
from reviewbot.errors import StoreError
from reviewbot.render.text import plural
from reviewbot.service import metrics
from reviewbot.service.retention import Pruner
from reviewbot.store.records import Job
from reviewbot.store.store import Store

log = logging.getLogger("reviewbot.worker")

BACKOFF_BASE_SECONDS: Final = 30.0
BACKOFF_CAP_SECONDS: Final = 15 * 60.0
MAX_ERROR_CHARS: Final = 500


class JobAbandoned(Exception):
    """A job failed because its worker stopped (the lease expired) on each of its attempts."""


class TransientJobError(Exception):
    """The job failed for a reason that may pass (rate limit, 5xx, timeout); try it again later.

    ``retry_after`` (seconds), when known, replaces the exponential backoff.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentJobError(Exception):
    """The job failed for a reason another attempt cannot change (a configuration error, a review
    GitHub refuses in every form): fail it now rather than spend the remaining attempts."""


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a handler ended a job: ``done``, or ``dropped`` (nothing to do) with the reason."""

    state: Literal["done", "dropped"]
    note: str | None = None

    @classmethod
    def done(cls, note: str | None = None) -> JobOutcome:
        return cls("done", note)

    @classmethod
    def dropped(cls, reason: str) -> JobOutcome:
        return cls("dropped", reason)


JobHandler = Callable[[Job], Awaitable[JobOutcome]]
#: Told about a job the worker gave up on, with the error of its last attempt.
FailureHandler = Callable[[Job, BaseException], Awaitable[None]]


def backoff_seconds(attempt: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS) -> float:
    """``base × 2^(attempt-1)``, at most ``cap``: 30 s, 60 s, 120 s, … 15 min by default."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))


class Worker:
    """Runs up to ``concurrency`` jobs at once from ``store`` through ``handler``."""

    def __init__(
        self,
        store: Store,
        handler: JobHandler,
        *,
        worker_id: str,
        lease_seconds: float,
        max_attempts: int,
        poll_interval: float = 1.0,
        concurrency: int = 2,
        backoff_base: float = BACKOFF_BASE_SECONDS,
        backoff_cap: float = BACKOFF_CAP_SECONDS,
        on_failed: FailureHandler | None = None,
        pruner: Pruner | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if lease_seconds <= 0 or poll_interval <= 0:
            raise ValueError("lease_seconds and poll_interval must be positive")
        self._store = store
        self._handler = handler
        self.worker_id = worker_id
        self._lease = lease_seconds
        self._max_attempts = max_attempts
        self._poll = poll_interval
        self._concurrency = concurrency
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._on_failed = on_failed
        self._pruner = pruner
        self._pruning: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None

    def wake(self) -> None:
        """Look for jobs now instead of at the next poll; safe to call from any thread."""
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wakeup.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wakeup.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run jobs until ``stop`` is set; then wait for the jobs in hand to end.

        Cancelling ``run`` cancels the jobs in hand; their leases run out and another worker
        takes them over.
        """
        self._loop = asyncio.get_running_loop()
        self._wakeup = wakeup = asyncio.Event()
        slots = asyncio.Semaphore(self._concurrency)
        in_hand: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                self._prune_when_due(stop)
                await slots.acquire()
                job = await self._claim() if not stop.is_set() else None
                if job is None:
                    slots.release()
                    await _first_of(stop.wait(), wakeup.wait(), timeout=self._poll)
                    wakeup.clear()
                    continue
                task = asyncio.create_task(self._run_job(job), name=f"job-{job.id}")
                in_hand.add(task)
                task.add_done_callback(in_hand.discard)
                task.add_done_callback(lambda _: slots.release())
                # A job of the same pull request may have waited for this one to end: look at once.
                task.add_done_callback(lambda _: self.wake())
            if in_hand:
                await asyncio.gather(*in_hand, return_exceptions=True)
            if self._pruning is not None:
                await self._pruning  # it ends after the batch in hand, stop being set
        finally:
            for task in in_hand:
                task.cancel()
            if self._pruning is not None:
                self._pruning.cancel()
            self._wakeup = None

    def _prune_when_due(self, stop: asyncio.Event) -> None:
        """Start the prune of old rows in the background when it is due, unless one still runs."""
        pruner = self._pruner
        if pruner is None or not pruner.due() or (self._pruning is not None and not self._pruning.done()):
            return

        async def prune() -> None:
            try:
                await pruner.run_if_due(stop)
            except Exception:  # a bug: the worker goes on reviewing
                log.exception("pruning old rows failed")

        self._pruning = asyncio.create_task(prune(), name="reviewbot-prune")

    async def _claim(self) -> Job | None:
        try:
            # The sweep alone fails abandoned jobs: one whose lease runs out after it looked is passed
            # over by the claim below and found by the next sweep, so each is told of exactly once.
            abandoned = await asyncio.to_thread(self._store.fail_abandoned, self._max_attempts)
            for job in abandoned:
                await self._abandoned(job)
            return await asyncio.to_thread(
                self._store.claim_job, self.worker_id, self._lease, max_attempts=self._max_attempts
            )
        except StoreError as exc:
            log.error("cannot claim a job: %s", exc)
            return None

    async def _abandoned(self, job: Job) -> None:
        """A job whose worker stopped on every attempt (it ran out of memory, say) was failed: say so
        in the log, and let ``on_failed`` tell the pull request."""
        log.error("job %s %s: failed: its worker stopped on every one of its attempts", job.id, _label(job))
        metrics.observe_review("failed", 0.0)
        if self._on_failed is None:
            return
        try:
            await self._on_failed(job, JobAbandoned(f"job {job.id}: its worker stopped on every attempt"))
        except Exception:
            log.exception("job %s %s: failed, and what follows a failure failed too", job.id, _label(job))

    async def _run_job(self, job: Job) -> None:
        label = _label(job)
        started = time.monotonic()
        logs.bind(job=job.id, repo=job.repo, pr=job.pr_number, head=job.head_sha or None)  # this task's lines
        work = asyncio.ensure_future(self._handler(job))
        try:
            lost = await self._supervise(job, work)
        except asyncio.CancelledError:
            work.cancel()
            raise
        if lost:
            log.warning("job %s %s: lease lost to another worker; stopped", job.id, label)
            metrics.observe_review("lost", time.monotonic() - started)
            return
        ended: metrics.ReviewOutcome
        try:
            outcome = work.result()
        except PermanentJobError as exc:
            ended = await self._retry(job, label, _shorten(str(exc) or type(exc).__name__), 0.0, attempts=0)
        except TransientJobError as exc:
            delay = exc.retry_after if exc.retry_after is not None else self._backoff(job.attempts)
            ended = await self._retry(job, label, _shorten(str(exc) or type(exc).__name__), delay)
        except Exception as exc:
            log.debug("job %s raised", job.id, exc_info=True)
            ended = await self._retry(job, label, _describe(exc), self._backoff(job.attempts))
        else:
            await self._finish(job, label, outcome)
            ended = outcome.state
        error = work.exception()
        if ended == "failed" and error is not None and self._on_failed is not None:
            try:
                await self._on_failed(job, error)
            except Exception:
                log.exception("job %s %s: failed, and what follows a failure failed too", job.id, label)
        metrics.observe_review(ended, time.monotonic() - started)

    async def _supervise(self, job: Job, work: asyncio.Future[JobOutcome]) -> bool:
        """Wait for ``work``, extending the lease every third of it; True if the lease was lost."""
        interval = self._lease / 3
        held_until = time.monotonic() + self._lease
        while True:
            done, _ = await asyncio.wait({work}, timeout=interval)
            if done:
                return False
            try:
                held = await asyncio.to_thread(self._store.heartbeat, job.id, self.worker_id, self._lease)
            except StoreError as exc:
                log.warning("job %s: heartbeat failed: %s", job.id, exc)
                # Past the lease another worker may take the job: stop rather than risk posting twice.
                held = time.monotonic() + interval < held_until
            else:
                if held:
                    held_until = time.monotonic() + self._lease
            if not held:
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
                return True

    async def _finish(self, job: Job, label: str, outcome: JobOutcome) -> None:
        try:
            held = await asyncio.to_thread(self._store.finish_job, job.id, self.worker_id, outcome.state, outcome.note)
        except StoreError as exc:
            log.error("job %s %s: %s but not recorded: %s", job.id, label, outcome.state, exc)
            return
        suffix = f": {outcome.note}" if outcome.note else ""
        if held:
            log.info("job %s %s: %s%s", job.id, label, outcome.state, suffix)
        else:
            log.warning("job %s %s: %s%s, but the lease was lost meanwhile", job.id, label, outcome.state, suffix)

    async def _retry(
        self, job: Job, label: str, error: str, delay: float, *, attempts: int | None = None
    ) -> metrics.ReviewOutcome:
        """Requeue the job or fail it (at once with ``attempts=0``); how the attempt ended."""
        delay = max(0.0, delay)
        allowed = self._max_attempts if attempts is None else attempts
        try:
            state = await asyncio.to_thread(self._store.retry_job, job.id, self.worker_id, error, delay, allowed)
        except StoreError as exc:
            log.error("job %s %s: failed (%s) and could not be requeued: %s", job.id, label, error, exc)
            # Still running in the store: once its lease runs out it is taken over, or, after its last
            # attempt, failed and told of by a sweep.
            return "retried"
        if state == "failed":
            log.error("job %s %s: failed after %s: %s", job.id, label, plural(job.attempts, "attempt"), error)
            return "failed"
        if state == "queued":
            log.warning(
                "job %s %s: attempt %d/%d failed, retrying in %.0f s: %s",
                *(job.id, label, job.attempts, self._max_attempts, delay, error),
            )
            if delay < self._poll and self._loop is not None:
                self._loop.call_later(delay, self.wake)
            return "retried"
        log.warning("job %s %s: failed (%s); the lease was lost meanwhile", job.id, label, error)
        return "lost"

    def _backoff(self, attempt: int) -> float:
        return backoff_seconds(attempt, self._backoff_base, self._backoff_cap)


async def _first_of(*waits: Awaitable[object], timeout: float) -> None:
    """Wait until the first of ``waits`` completes or ``timeout`` passes; cancel the rest."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _label(job: Job) -> str:
    head = job.head_sha[:7] if job.head_sha else "(head unknown)"
    return f"{job.repo}#{job.pr_number} @ {head}"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _describe(exc: BaseException) -> str:
    """``Type: message (at file:line in function)`` — enough to find a bug, short enough to store."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        where = f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name})"
    return _shorten(f"{type(exc).__name__}: {exc}{where}")
