"""The delivery recorder: group commit in a writer thread of its own, answers back on the loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from reviewbot.errors import StoreError
from reviewbot.recorder import DeliveryRecorder, Record
from reviewbot.store import Delivery, JobRequest, Store, open_store

REPO = "octo/widgets"
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def delivery(n: int) -> Delivery:
    job = JobRequest(
        installation_id=42,
        repo=REPO,
        pr_number=n,
        head_sha="a" * 40,
        base_sha="b" * 40,
        full_review=True,
        trigger="pull_request.opened",
    )
    return Delivery(f"d{n}", "pull_request", "opened", 42, REPO, job)


def describe(added: bool | StoreError) -> str:
    return f"error: {added}" if isinstance(added, StoreError) else f"recorded {added}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'reviewbot.db'}")
    yield opened
    opened.close()


@pytest.fixture
def groups(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The delivery ids of each transaction, in order."""
    seen: list[list[str]] = []
    record = store.record_deliveries

    def counted(deliveries: Sequence[Delivery], *, now: float | None = None) -> list[bool]:
        seen.append([d.id for d in deliveries])
        time.sleep(0.01)  # a slow disk: the next deliveries queue up meanwhile
        return record(deliveries, now=now)

    monkeypatch.setattr(store, "record_deliveries", counted)
    return seen


def test_deliveries_arriving_together_are_committed_together_and_each_answered(
    store: Store, groups: list[list[str]]
) -> None:
    recorder = DeliveryRecorder(store)

    async def deliver() -> list[bool]:
        return await asyncio.gather(*(recorder.record(delivery(n)) for n in range(40)))

    assert asyncio.run(deliver()) == [True] * 40
    assert sorted(i for group in groups for i in group) == sorted(f"d{n}" for n in range(40))
    assert len(groups) < 40
    assert all(store.has_delivery(f"d{n}") for n in range(40))
    assert len(store.list_jobs()) == 40


def test_a_known_delivery_is_answered_false(store: Store) -> None:
    recorder = DeliveryRecorder(store)

    async def deliver() -> tuple[bool, bool]:
        first = await recorder.record(delivery(1))
        return first, await recorder.record(delivery(1))

    assert asyncio.run(deliver()) == (True, False)


def test_a_refusal_is_answered_without_the_store_and_a_failure_is_raised_to_its_caller_alone(
    store: Store, groups: list[list[str]]
) -> None:
    recorder = DeliveryRecorder(store)

    def refuse() -> str:
        return "refused"

    def fail() -> str:
        raise ValueError("broken payload handler")

    def record() -> str | Record[str]:
        return Record(delivery(1), describe)

    async def deliver() -> list[str | BaseException]:
        answers = recorder.run(refuse), recorder.run(fail), recorder.run(record)
        return list(await asyncio.gather(*answers, return_exceptions=True))

    refused, failed, recorded = asyncio.run(deliver())
    assert refused == "refused"
    assert isinstance(failed, ValueError)
    assert recorded == "recorded True"
    assert groups == [["d1"]]


def test_a_store_error_reaches_every_delivery_of_the_group_and_the_writer_goes_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = store.record_deliveries
    failures = [StoreError("disk full")]

    def flaky(deliveries: Sequence[Delivery], *, now: float | None = None) -> list[bool]:
        if failures:
            time.sleep(0.01)
            raise failures.pop()
        return record(deliveries, now=now)

    monkeypatch.setattr(store, "record_deliveries", flaky)
    recorder = DeliveryRecorder(store)

    def prepare(n: int) -> Callable[[], str | Record[str]]:
        return lambda: Record(delivery(n), describe)

    async def deliver() -> tuple[list[str], bool]:
        first = await asyncio.gather(*(recorder.run(prepare(n)) for n in range(3)))
        return first, await recorder.record(delivery(9))

    answers, later = asyncio.run(deliver())
    assert answers[0] == "error: disk full"  # every delivery of the first transaction has the error
    assert set(answers) <= {"error: disk full", "recorded True"}
    assert later is True
    assert store.has_delivery("d9")

    failures.append(StoreError("disk full"))

    async def raising() -> bool:
        return await recorder.record(delivery(10))

    with pytest.raises(StoreError, match="disk full"):
        asyncio.run(raising())


def test_the_preparation_and_the_finish_run_in_the_callers_context_in_the_writer_thread(store: Store) -> None:
    recorder = DeliveryRecorder(store)
    loop_thread = threading.get_ident()

    def prepare(n: int) -> tuple[str, str, object] | Record[tuple[str, str, object]]:
        seen = request_id.get()
        assert threading.get_ident() != loop_thread
        return Record(delivery(n), lambda added: (seen, request_id.get(), added))

    async def one(n: int) -> tuple[str, str, object]:
        request_id.set(f"request-{n}")
        return await recorder.run(lambda: prepare(n))

    async def deliver() -> list[tuple[str, str, object]]:
        return await asyncio.gather(*(one(n) for n in range(5)))

    assert asyncio.run(deliver()) == [(f"request-{n}", f"request-{n}", True) for n in range(5)]


def test_an_idle_writer_thread_ends_and_the_next_delivery_starts_another(store: Store) -> None:
    recorder = DeliveryRecorder(store, idle_seconds=0.05)

    def prepare(n: int) -> Callable[[], threading.Thread | Record[threading.Thread]]:
        return lambda: Record(delivery(n), lambda added: threading.current_thread())

    async def deliver(n: int) -> threading.Thread:
        return await recorder.run(prepare(n))

    first = asyncio.run(deliver(1))
    first.join(5)
    assert not first.is_alive()
    second = asyncio.run(deliver(2))
    assert second is not first
    assert store.has_delivery("d2")
