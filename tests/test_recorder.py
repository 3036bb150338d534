"""The delivery intake (checks, routing, one commit per group, log lines) and the recorder
process that runs it beside the event loop: start, answers, death, restart, shutdown."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from fixtures_path import WEBHOOKS
from reviewbot.errors import StoreError
from reviewbot.logs import build_handler
from reviewbot.service import recorder
from reviewbot.service.intake import DeliveryIntake, IntakeAnswer, IntakeRequest
from reviewbot.service.recorder import DeliveryRecorder, RecorderUnavailable
from reviewbot.service.webhooks import WebhookOptions, router, sign
from reviewbot.settings import Settings
from reviewbot.store.records import Delivery
from reviewbot.store.store import Store, open_store
from test_app import REPO, opened_payload

SECRET = b"recorder-secret"
INSTALLATION = (WEBHOOKS / "installation" / "created.payload.json").read_bytes()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'reviewbot.db'}")
    yield opened
    opened.close()


def request(n: int, body: bytes, *, event: str = "pull_request", secret: bytes = SECRET) -> IntakeRequest:
    return IntakeRequest(n, f"delivery-{n}", event, sign(secret, body), body)


def intake(store: Store) -> DeliveryIntake:
    return DeliveryIntake(SECRET, store, router, WebhookOptions(app_slug="review-bot"))


def kill_recorder(recorder: DeliveryRecorder, timeout: float = 10.0) -> None:
    """SIGKILL the recorder process and wait until the web process has noticed."""
    pid = recorder.process_id
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while recorder.process_id is not None:
        assert time.monotonic() < deadline, "the web process did not notice the recorder's death"
        time.sleep(0.01)


# -- the intake, in this process -------------------------------------------------------------------


def test_a_group_is_committed_in_one_transaction_and_answered_in_order(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    transactions: list[list[str]] = []
    record = store.record_deliveries

    def counted(deliveries: Sequence[Delivery], *, now: float | None = None) -> list[bool]:
        transactions.append([delivery.id for delivery in deliveries])
        return record(deliveries, now=now)

    monkeypatch.setattr(store, "record_deliveries", counted)
    bodies = [opened_payload()[1] for _ in range(5)]
    requests = [request(n, body) for n, body in enumerate(bodies, 1)]
    requests.insert(2, request(99, bodies[0], secret=b"forged"))
    answers = intake(store).answer_group(requests)

    assert [answer.id for answer in answers] == [1, 2, 99, 3, 4, 5]
    assert [answer.status for answer in answers] == [202, 202, 401, 202, 202, 202]
    assert transactions == [[f"delivery-{n}" for n in range(1, 6)]]  # the refusal never reached the store
    assert all(answer.queued and answer.counted == "queued" for answer in answers if answer.status == 202)
    assert len(store.list_jobs(repo=REPO)) == 5


def test_each_kind_of_delivery_gets_its_answer(store: Store) -> None:
    _, body = opened_payload()
    ping = (WEBHOOKS / "ping" / "payload.json").read_bytes()
    requests = [
        request(1, body),
        IntakeRequest(2, "delivery-1", "pull_request", sign(SECRET, body), body),  # a redelivery
        request(3, ping, event="ping"),
        request(4, b'{"action": "created"}', event="star"),
        request(5, INSTALLATION, event="installation"),
        request(6, b'{"action": ', event="pull_request"),
        IntakeRequest(7, "", "pull_request", sign(SECRET, body), body),
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
    assert store.installation_repos(957387) == {"Codertocat/Hello-World"}
    assert answers[6].status == 400
    assert b"not JSON" in answers[6].body
    assert answers[7].status == 400
    assert b"X-GitHub-Delivery" in answers[7].body
    assert not any(answer.counted for answer in (answers[6], answers[7]))


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
        answers = intake(store).answer_group([request(1, opened_payload()[1]), request(2, b"x", secret=b"no")])
    assert [answer.status for answer in answers] == [500, 401]
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
        intake(store).answer_group([request(1, body), request(2, body, secret=b"forged")])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    refused, queued = (json.loads(line) for line in stream.getvalue().splitlines())  # refused at once
    assert "review queued" in queued["message"]
    assert (queued["delivery"], queued["repo"], queued["pr"], len(queued["head"])) == ("delivery-1", REPO, number, 40)
    assert (refused["level"], refused["delivery"]) == ("WARNING", "delivery-2")
    assert "repo" not in refused  # refused before the body was read


# -- the recorder process ------------------------------------------------------------------------


def test_the_recorder_process_records_what_it_answers(store: Store) -> None:
    async def scenario() -> list[IntakeAnswer]:
        recorder = DeliveryRecorder(Settings(webhook_secret=SECRET.decode()), store)
        await recorder.start()
        try:
            pid = recorder.process_id
            assert pid is not None
            assert pid != os.getpid()
            bodies = [opened_payload()[1] for _ in range(40)]
            return await asyncio.gather(
                *(recorder.accept(f"d-{n}", "pull_request", sign(SECRET, body), body) for n, body in enumerate(bodies))
            )
        finally:
            await recorder.close()

    answers = asyncio.run(scenario())
    assert {answer.status for answer in answers} == {202}
    assert all(store.has_delivery(f"d-{n}") for n in range(40))


def test_deliveries_sent_before_the_process_is_up_are_answered_too(store: Store) -> None:
    async def scenario() -> IntakeAnswer:
        recorder = DeliveryRecorder(Settings(webhook_secret=SECRET.decode()), store)
        try:
            _, body = opened_payload()  # no start(): the first delivery starts it
            return await recorder.accept("early", "pull_request", sign(SECRET, body), body)
        finally:
            await recorder.close()

    assert asyncio.run(scenario()).status == 202
    assert store.has_delivery("early")


def test_when_the_process_dies_deliveries_get_503_until_a_new_one_starts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def deliver(recorder: DeliveryRecorder, name: str) -> IntakeAnswer | str:
        _, body = opened_payload()
        try:
            return await recorder.accept(name, "pull_request", sign(SECRET, body), body)
        except RecorderUnavailable as exc:
            return str(exc)

    async def scenario() -> tuple[IntakeAnswer | str, IntakeAnswer | str, int | None, int | None]:
        recorder = DeliveryRecorder(Settings(webhook_secret=SECRET.decode()), store)
        await recorder.start()
        first = recorder.process_id
        try:
            monkeypatch.setattr(recorder_module, "RESTART_PAUSE_SECONDS", 3600.0)
            await asyncio.to_thread(kill_recorder, recorder)
            refused = await deliver(recorder, "while-down")
            monkeypatch.setattr(recorder_module, "RESTART_PAUSE_SECONDS", 0.0)
            recorded = await deliver(recorder, "after-restart")
            return refused, recorded, first, recorder.process_id
        finally:
            await recorder.close()

    recorder_module = recorder
    refused, recorded, first, second = asyncio.run(scenario())
    assert refused == "the recorder process ended soon after it started; the next one starts in a moment"
    assert isinstance(recorded, IntakeAnswer)
    assert recorded.status == 202
    assert second is not None
    assert second != first
    assert not store.has_delivery("while-down")
    assert store.has_delivery("after-restart")


def test_closing_ends_the_process_after_the_group_in_hand(store: Store) -> None:
    async def scenario() -> tuple[int, IntakeAnswer]:
        recorder = DeliveryRecorder(Settings(webhook_secret=SECRET.decode()), store)
        await recorder.start()
        pid = recorder.process_id
        assert pid is not None
        _, body = opened_payload()
        answer = await recorder.accept("last", "pull_request", sign(SECRET, body), body)
        await recorder.close()
        assert recorder.process_id is None
        return pid, answer

    pid, answer = asyncio.run(scenario())
    assert answer.status == 202
    with pytest.raises(ProcessLookupError):  # exited and reaped
        os.kill(pid, 0)


def test_a_process_that_cannot_start_fails_start_up(store: Store) -> None:
    async def scenario() -> None:
        broken = DeliveryRecorder(
            Settings(webhook_secret=SECRET.decode()), store, command=[sys.executable, "-c", "import sys; sys.exit(3)"]
        )
        try:
            await broken.start()
        finally:
            await broken.close()

    with pytest.raises(RecorderUnavailable, match="ended"):
        asyncio.run(scenario())


def test_an_in_memory_store_is_recorded_in_this_process() -> None:
    memory = open_store("sqlite://:memory:")

    async def scenario() -> IntakeAnswer:
        recorder = DeliveryRecorder(Settings(webhook_secret=SECRET.decode()), memory)
        await recorder.start()
        assert recorder.process_id is None  # no child could see this database
        _, body = opened_payload()
        answer = await recorder.accept("in-memory", "pull_request", sign(SECRET, body), body)
        await recorder.close()
        return answer

    assert asyncio.run(scenario()).status == 202
    assert memory.has_delivery("in-memory")
    memory.close()


def test_the_process_ignores_sigterm_and_sigint_and_ends_when_its_socket_closes(store: Store) -> None:
    async def scenario() -> tuple[int, IntakeAnswer]:
        recorder = DeliveryRecorder(Settings(webhook_secret=SECRET.decode()), store)
        await recorder.start()
        pid = recorder.process_id
        assert pid is not None
        os.kill(pid, signal.SIGTERM)  # as a service manager stopping the whole service would
        os.kill(pid, signal.SIGINT)  # as Ctrl-C in a terminal would
        try:
            _, body = opened_payload()
            return pid, await recorder.accept("after-signals", "pull_request", sign(SECRET, body), body)
        finally:
            await recorder.close()

    pid, answer = asyncio.run(scenario())
    assert answer.status == 202
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_closing_answers_every_delivery_already_sent(store: Store) -> None:
    async def scenario() -> list[IntakeAnswer]:
        recorder = DeliveryRecorder(Settings(webhook_secret=SECRET.decode()), store)
        await recorder.start()
        bodies = [opened_payload()[1] for _ in range(20)]
        sent = [
            asyncio.ensure_future(recorder.accept(f"c-{n}", "pull_request", sign(SECRET, body), body))
            for n, body in enumerate(bodies)
        ]
        await asyncio.sleep(0)  # every request is written to the socket
        await recorder.close()  # half-closes it: the child answers all of them, then exits
        return await asyncio.gather(*sent)

    answers = asyncio.run(scenario())
    assert [answer.status for answer in answers] == [202] * 20
    assert all(store.has_delivery(f"c-{n}") for n in range(20))


def test_a_process_that_never_opens_its_store_is_killed_and_start_up_fails(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "START_TIMEOUT_SECONDS", 0.5)
    pid_file = tmp_path / "pid"
    hangs = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"

    async def scenario() -> None:
        stuck = DeliveryRecorder(Settings(webhook_secret=SECRET.decode()), store, command=[sys.executable, "-c", hangs])
        try:
            await stuck.start()
        finally:
            assert stuck.process_id is None
            await stuck.close()

    with pytest.raises(RecorderUnavailable, match="did not open the store"):
        asyncio.run(scenario())
    with pytest.raises(ProcessLookupError):  # killed and reaped: no child is left behind
        os.kill(int(pid_file.read_text()), 0)
