"""Group commit for webhook deliveries: one transaction for all that arrive together, off the event loop.

Every delivery must be on disk before it is answered, and an fsync per delivery caps a burst
at the disk's commit rate. So each delivery waits for the next commit, and each commit takes
everything that queued up while the previous one ran. One delivery alone still commits at once.

The work runs in one writer thread of its own, fed by a queue. The event loop hands it a
delivery's *preparation* (for the webhook: check the signature, parse, route), which the thread
runs in the request's context; what that returns is either the answer itself (a refusal) or a
:class:`Record`: a delivery to commit with the others of its group, and what to do once it is
committed (the delivery's log line and metrics, and its answer). The thread then hands the
group's answers back to the loop in one call. So the loop only reads requests and writes
answers, and wakes once per group.

Why the parsing is in that thread too: under the GIL every µs of Python costs the same in any
thread, but each time two threads want the GIL at once, handing it over costs both of them a
context switch. The writer takes the GIL back after every SQL statement, and when it did that
while the loop was parsing the next deliveries, those hand-offs cost more than the statements.
With the preparation beside the transaction, the loop's work and the writer's alternate, a
group at a time, with few hand-offs in between; and the HMAC, which releases the GIL, no longer
holds up the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from reviewbot.errors import StoreError
from reviewbot.store import Delivery, Store

# Bounds the time one commit holds the write lock, and the answer time of the first in a group.
MAX_GROUP = 64
#: How long the writer thread waits for work before it ends (the next delivery starts another).
IDLE_SECONDS = 10.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Record(Generic[T]):
    """What a preparation asks of the writer: commit ``delivery`` with its group, then call
    ``finish`` (in the writer thread, in the request's context) with True if it was recorded,
    False if its id was known already, or the :class:`StoreError` that kept it from the store."""

    delivery: Delivery
    finish: Callable[[bool | StoreError], T]


class _Task:
    """One request's preparation, from the loop to the writer, and its answer back."""

    __slots__ = ("context", "future", "prepare", "result")

    def __init__(self, prepare: Callable[[], Any], future: asyncio.Future[Any]) -> None:
        self.prepare = prepare
        self.context = contextvars.copy_context()  # the request's logging context, among others
        self.future = future
        self.result: tuple[bool, Any] | None = None  # (failed, the answer or the exception)


class DeliveryRecorder:
    """Prepares and records deliveries durably, in groups, for the event loop (or several)."""

    def __init__(self, store: Store, *, idle_seconds: float = IDLE_SECONDS) -> None:
        self._store = store
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._pending: list[_Task] = []
        self._writer: threading.Thread | None = None
        self._local = threading.local()  # .loop: the running loop of the thread

    async def run(self, prepare: Callable[[], T | Record[T]]) -> T:
        """Run ``prepare`` in the writer thread, in the caller's context; if it returns a
        :class:`Record`, commit its delivery and return what its ``finish`` returns, else return
        what ``prepare`` returned. An exception from either is raised here."""
        loop = self._running_loop()
        task = _Task(prepare, loop.create_future())
        with self._lock:
            self._pending.append(task)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_all, name="reviewbot-delivery-writer", daemon=True)
                self._writer.start()
            elif len(self._pending) == 1:  # the writer may be waiting for work: wake it, but
                loop.call_soon(self._kick)  # once the loop is through with what it has in hand
        result: T = await task.future
        return result

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop. ``asyncio.get_running_loop()`` makes a system call (getpid, to notice
        a fork) on every call before Python 3.12; a loop running in this thread is the running
        loop, so it is asked once per thread and loop."""
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None or not loop.is_running():
            loop = self._local.loop = asyncio.get_running_loop()
        return loop

    def _kick(self) -> None:
        """Wake the writer (on the loop, after the callbacks that were ready with this one: a
        burst of deliveries read together goes to the writer together, and it does not compete
        with the loop for the GIL while the loop is still reading the rest of them)."""
        with self._lock:
            self._work.notify()

    async def record(self, delivery: Delivery) -> bool:
        """True once the delivery (and its job) is committed; False if its id was already known."""
        return await self.run(lambda: Record(delivery, _added))

    def _write_all(self) -> None:
        """The writer thread: prepare and commit what is pending, a group at a time, until idle."""
        while True:
            with self._lock:
                if not self._pending and not self._work.wait_for(lambda: self._pending, self._idle_seconds):
                    self._writer = None
                    return
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            try:
                self._write(group)
            except BaseException as exc:  # not an Exception (those are answers): end this thread
                with self._lock:
                    self._writer = None  # the next delivery starts a new one
                for task in group:
                    if task.result is None:
                        task.result = (True, exc)
                _answer(group)
                raise
            _answer(group)

    def _write(self, group: list[_Task]) -> None:
        """Prepare each of ``group``; commit the deliveries to record in one transaction; finish them."""
        records: list[tuple[_Task, Record[Any]]] = []
        for task in group:
            try:
                prepared = task.context.run(task.prepare)
            except Exception as exc:
                task.result = (True, exc)
                continue
            if isinstance(prepared, Record):
                records.append((task, prepared))
            else:
                task.result = (False, prepared)
        if not records:
            return
        outcomes: list[bool | StoreError]
        try:
            outcomes = list(self._store.record_deliveries([record.delivery for _, record in records]))
        except StoreError as exc:
            outcomes = [exc] * len(records)
        except Exception as exc:  # a bug: each request fails with it, as it would have on the loop
            for task, _ in records:
                task.result = (True, exc)
            return
        for (task, record), outcome in zip(records, outcomes, strict=True):
            try:
                task.result = (False, task.context.run(record.finish, outcome))
            except Exception as exc:
                task.result = (True, exc)


def _added(outcome: bool | StoreError) -> bool:
    if isinstance(outcome, StoreError):
        raise outcome
    return outcome


def _answer(group: list[_Task]) -> None:
    """Hand the group's answers to the loop(s) its requests wait on: one call for each."""
    loops: dict[asyncio.AbstractEventLoop, list[_Task]] = {}
    for task in group:
        loops.setdefault(task.future.get_loop(), []).append(task)
    for loop, tasks in loops.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, tasks)


def _settle(tasks: list[_Task]) -> None:
    """On the event loop: answer each waiting request."""
    for task in tasks:
        if task.future.done():  # its request was cancelled
            continue
        failed, value = task.result if task.result is not None else (True, RuntimeError("the writer gave no answer"))
        if failed:
            task.future.set_exception(value)
        else:
            task.future.set_result(value)
