"""The delivery intake (checks, routing, one commit per group, log lines) and the committer that
runs it in a writer thread of the web process, a group at a time."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from fixtures_path import WEBHOOKS
from reviewbot.errors import StoreError
from reviewbot.logs import build_handler
from reviewbot.service.committer import MAX_GROUP, DeliveryCommitter
from reviewbot.service.intake import DeliveryIntake, IntakeAnswer, IntakeRequest
from reviewbot.service.webhooks import WebhookOptions, router
from reviewbot.settings import Settings
from reviewbot.store.records import Delivery, Recorded
from reviewbot.store.store import Store, open_store
from stored import has_delivery, installation_repos
from test_app import REPO, opened_payload

SECRET = b"intake-secret"
INSTALLATION = (WEBHOOKS / "installation" / "created.payload.json").read_bytes()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'reviewbot.db'}")
    yield opened
    opened.close()


def request(n: int, body: bytes, *, event: str = "pull_request") -> IntakeRequest:
    return IntakeRequest(n, f"delivery-{n}", event, body)


def intake(store: Store) -> DeliveryIntake:
    return DeliveryIntake(store, router, WebhookOptions(app_slug="review-bot"))


def watch_transactions(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The delivery ids of each transaction that records deliveries, from now on."""
    transactions: list[list[str]] = []
    record = store.record_deliveries

    def watched(deliveries: Sequence[Delivery], *, now: float | None = None) -> list[Recorded]:
        transactions.append([delivery.id for delivery in deliveries])
        return record(deliveries, now=now)

    monkeypatch.setattr(store, "record_deliveries", watched)
    return transactions


# -- the intake, in this process -------------------------------------------------------------------


def test_a_group_is_committed_in_one_transaction_and_answered_in_order(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    transactions = watch_transactions(store, monkeypatch)
    bodies = [opened_payload()[1] for _ in range(5)]
    requests = [request(n, body) for n, body in enumerate(bodies, 1)]
    requests.insert(2, request(99, b'{"action": "opened", "repository": {"full_name": "../x"}}'))
    answers = intake(store).answer_group(requests)

    assert [answer.id for answer in answers] == [1, 2, 99, 3, 4, 5]
    assert [answer.status for answer in answers] == [202, 202, 400, 202, 202, 202]
    assert transactions == [[f"delivery-{n}" for n in range(1, 6)]]  # the refusal never reached the store
    assert all(answer.queued and answer.counted == "queued" for answer in answers if answer.status == 202)
    assert len(store.list_jobs(repo=REPO)) == 5


def test_each_kind_of_delivery_gets_its_answer(store: Store) -> None:
    _, body = opened_payload()
    ping = (WEBHOOKS / "ping" / "payload.json").read_bytes()
    requests = [
        request(1, body),
        IntakeRequest(2, "delivery-1", "pull_request", body),  # a redelivery
        request(3, ping, event="ping"),
        request(4, b'{"action": "created"}', event="star"),
        request(5, INSTALLATION, event="installation"),
        request(6, b'{"action": ', event="pull_request"),
    ]
    answers = {answer.id: answer for answer in intake(store).answer_group(requests)}

    assert (answers[1].status, answers[1].counted) == (202, "queued")
    assert (answers[2].status, answers[2].body) == (200, b'{"duplicate":true,"queued":false,"delivery":"delivery-1"}')
    assert (answers[3].status, answers[3].counted) == (200, "ping")
    assert (answers[4].status, answers[4].body) == (
        200,
        b'{"ignored":"star.created is not handled","delivery":"delivery-4"}',
    )
    assert (answers[5].status, answers[5].counted, answers[5].queued) == (202, "installation", False)
    assert installation_repos(store, 957387) == {"Codertocat/Hello-World"}
    assert answers[6].status == 400
    assert b"not JSON" in answers[6].body
    assert answers[6].counted is None


def test_a_store_error_answers_503_for_its_whole_group(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(deliveries: Sequence[Delivery], *, now: float | None = None) -> list[bool]:
        raise StoreError("disk I/O error")

    monkeypatch.setattr(store, "record_deliveries", broken)
    answers = intake(store).answer_group([request(n, opened_payload()[1]) for n in range(3)])
    assert [(answer.status, answer.body, answer.queued) for answer in answers] == [
        (503, b'{"error":"store unavailable"}', False)
    ] * 3


def test_a_bug_while_recording_answers_500_for_the_group(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(deliveries: Sequence[Delivery], *, now: float | None = None) -> list[bool]:
        raise KeyError("a bug")

    monkeypatch.setattr(store, "record_deliveries", broken)
    with caplog.at_level(logging.ERROR, "reviewbot.app"):
        answers = intake(store).answer_group([request(1, opened_payload()[1]), request(2, b"x")])
    assert [answer.status for answer in answers] == [500, 400]
    assert "KeyError: 'a bug'" in caplog.text


def test_a_bug_answers_500_for_its_delivery_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: str, payload: object, options: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(router, "dispatch", broken)
    ping = (WEBHOOKS / "ping" / "payload.json").read_bytes()
    with caplog.at_level(logging.ERROR, "reviewbot.app"):
        answers = intake(store).answer_group([request(1, ping, event="ping"), request(2, b"[]")])
    assert [answer.status for answer in answers] == [500, 400]
    assert "RuntimeError: a bug" in caplog.text


def test_the_log_lines_carry_the_delivery_repo_pull_request_and_head(store: Store) -> None:
    number, body = opened_payload()
    stream = io.StringIO()
    handler = build_handler(Settings(log_format="json"), stream)
    logger = logging.getLogger("reviewbot.app")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        intake(store).answer_group([request(1, body), request(2, b'{"action": 7}')])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    refused, queued = (json.loads(line) for line in stream.getvalue().splitlines())  # refused at once
    assert "review queued" in queued["message"]
    assert (queued["delivery"], queued["repo"], queued["pr"], len(queued["head"])) == ("delivery-1", REPO, number, 40)
    assert (refused["level"], refused["delivery"]) == ("WARNING", "delivery-2")
    assert "$.action" in refused["message"]
    assert "repo" not in refused  # refused before the payload was routed


# -- the committer: the intake in a writer thread of the web process ----------------------------


def committer(store: Store) -> DeliveryCommitter:
    return DeliveryCommitter(Settings(webhook_secret=SECRET.decode()), store)


def test_the_committer_records_what_it_answers_and_groups_what_arrives_together(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    transactions = watch_transactions(store, monkeypatch)

    async def scenario() -> list[IntakeAnswer]:
        intake = committer(store)
        bodies = [opened_payload()[1] for _ in range(40)]
        return await asyncio.gather(*(intake.accept(f"d-{n}", "pull_request", body) for n, body in enumerate(bodies)))

    answers = asyncio.run(scenario())
    assert {answer.status for answer in answers} == {202}
    assert all(has_delivery(store, f"d-{n}") for n in range(40))
    # All 40 were read before the writer ran: one transaction, one fsync.
    assert [len(group) for group in transactions] == [40]


def test_the_committer_writes_in_groups_of_at_most_max_group(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    transactions = watch_transactions(store, monkeypatch)
    ping = (WEBHOOKS / "ping" / "payload.json").read_bytes()

    async def scenario() -> list[IntakeAnswer]:
        intake = committer(store)
        count = 2 * MAX_GROUP + 2
        return await asyncio.gather(*(intake.accept(f"p-{n}", "ping", ping) for n in range(count)))

    answers = asyncio.run(scenario())
    assert {answer.status for answer in answers} == {200}
    assert [len(group) for group in transactions] == [MAX_GROUP, MAX_GROUP, 2]


def test_a_request_cancelled_while_its_group_commits_is_still_recorded(store: Store) -> None:
    async def scenario() -> IntakeAnswer:
        intake = committer(store)
        gone = asyncio.ensure_future(intake.accept("d-gone", "pull_request", opened_payload()[1]))
        await asyncio.sleep(0)  # its group is being written
        gone.cancel()  # the client hung up
        return await intake.accept("d-next", "pull_request", opened_payload()[1])

    assert asyncio.run(scenario()).status == 202
    assert has_delivery(store, "d-gone")
    assert has_delivery(store, "d-next")


def test_a_store_that_fails_answers_503_and_the_next_group_is_written_once_it_is_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = store.record_deliveries
    failing = iter([True, False])  # the first group fails, the second is written

    def flaky(deliveries: Sequence[Delivery], *, now: float | None = None) -> list[Recorded]:
        if next(failing):
            raise StoreError("disk I/O error")
        return record(deliveries, now=now)

    monkeypatch.setattr(store, "record_deliveries", flaky)
    _, body = opened_payload()

    async def scenario() -> list[IntakeAnswer]:
        intake = committer(store)
        first = await intake.accept("d-1", "pull_request", body)
        second = await intake.accept("d-2", "pull_request", body)
        return [first, second]

    first, second = asyncio.run(scenario())
    assert (first.status, first.body) == (503, b'{"error":"store unavailable"}')
    assert second.status == 202
    assert not has_delivery(store, "d-1")
    assert has_delivery(store, "d-2")
