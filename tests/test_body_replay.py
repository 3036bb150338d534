"""A signed body sent again under new delivery ids is a duplicate, whatever its event, over real loopback
HTTP, on SQLite and on PostgreSQL.

GitHub signs a delivery's body (``X-Hub-Signature-256``), not its ``X-GitHub-Delivery`` id: whoever holds
one signed delivery can send its body again under made-up ids. Each must be answered as GitHub's own
redelivery is (200, duplicate, counted and logged as one, not recorded) for as long as deliveries are
kept, and queue nothing or change nothing. Two replicas recording copies of the same bodies at once
must each record their genuine deliveries.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest

from conftest import WebhookServer
from databases import hold_open, query
from guids import guid
from reviewbot.errors import StoreError
from reviewbot.service.committer import DeliveryCommitter
from reviewbot.service.intake import DeliveryIntake, IntakeAnswer, IntakeRequest
from reviewbot.service.retention import Pruner
from reviewbot.service.webhooks import WebhookOptions, router
from reviewbot.store.records import Delivery, JobRequest, Recorded
from reviewbot.store.store import Store, open_store
from test_app import REPO, headers, load, opened_payload
from test_command_replay import duplicate, run_queued_jobs, send_at_once
from test_intake import watch_transactions
from test_metrics import deltas, process_samples

REPLAY = "replay: a signed body sent again under a delivery id that is not its own, nothing done"
REDELIVERY = "duplicate: this delivery was recorded before (GitHub's redelivery), nothing done"
INSTALLATION_ID = 957387  # the installation of GitHub's example payloads
SUSPENDED_AT = "2021-04-29T02:32:50Z"


def send(server: WebhookServer, event: str, body: bytes, name: str) -> httpx.Response:
    """``body``, signed, as delivery ``guid(name)``."""
    sent = headers(event, body, secret=server.secret, delivery=guid(name))
    return httpx.post(f"{server.url}/webhook", content=body, headers=sent, timeout=10)


def recorded(store: Store) -> list[str]:
    """The ids of the deliveries the store holds."""
    with store.read() as tx:
        return sorted(str(row["id"]) for row in tx.all("SELECT id FROM deliveries"))


def installation_event(action: str, *, suspended_at: str | None = None) -> bytes:
    """GitHub's example ``installation`` payload with ``action``, suspended at ``suspended_at``."""
    payload: dict[str, Any] = load("installation/created.payload.json")
    payload["action"] = action
    payload["installation"]["suspended_at"] = suspended_at
    payload["installation"]["suspended_by"] = payload["sender"] if suspended_at else None
    return json.dumps(payload).encode()


def suspended(store: Store) -> bool:
    installation = store.installation(INSTALLATION_ID)
    assert installation is not None
    return installation.suspended


def a_month_later(store: Store) -> None:
    """Run the prune a month from now: every delivery recorded so far is past the 30 days' retention."""
    month_later = time.time() + 31 * 86_400
    pruned = asyncio.run(Pruner(store, 30, pause=0.0, clock=lambda: month_later).run_if_due())
    assert pruned is not None
    assert recorded(store) == []


def test_a_pull_request_body_replayed_under_new_delivery_ids_is_answered_as_a_redelivery(
    app_server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    number, body = opened_payload()
    assert send(app_server, "pull_request", body, "opened").status_code == 202
    run_queued_jobs(app_server.store)  # reviewed: a replay let through would queue a job of its own
    before = process_samples()

    names = ["replay-1", "opened", "replay-2", "opened", "replay-3"]
    with caplog.at_level(logging.INFO, "reviewbot.app"):
        answers = [send(app_server, "pull_request", body, name) for name in names]

    assert [answer.status_code for answer in answers] == [200] * 5  # "opened" again is GitHub's redelivery
    assert [answer.json() for answer in answers] == [duplicate(answer) for answer in answers]
    assert recorded(app_server.store) == [guid("opened")]
    assert [job.state for job in app_server.store.list_jobs(repo=REPO, pr_number=number)] == ["done"]
    # One line of each kind a minute at most: each one a stranger can send again at will.
    logged = [(record.levelname, record.getMessage()) for record in caplog.records if record.name == "reviewbot.app"]
    assert logged == [
        ("WARNING", f"delivery {guid('replay-1')} pull_request.opened: {REPLAY}"),
        ("INFO", f"delivery {guid('opened')} pull_request.opened: {REDELIVERY}"),
    ]
    delivered = ("reviewbot_webhook_deliveries_total", (("event", "pull_request"), ("outcome", "duplicate")))
    assert deltas(before, process_samples(), "reviewbot_webhook_") == {delivered: 5}


def test_two_copies_of_a_body_sent_at_once_under_new_delivery_ids_are_recorded_once(
    app_server: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both copies reach the server before either is recorded: the first group commit waits for the
    second copy to arrive. They are then in one group or in two, one after the other (a process has
    one writer); two replicas' transactions at once are the tests further down."""
    number, body = opened_payload()
    arrived: list[str] = []
    both_arrived = threading.Event()
    waited: list[bool] = []
    accept, record = DeliveryCommitter.accept, app_server.store.record_deliveries

    async def counted(committer: DeliveryCommitter, delivery: str, event: str, body: bytes) -> IntakeAnswer:
        arrived.append(delivery)
        if len(arrived) == 2:
            both_arrived.set()
        return await accept(committer, delivery, event, body)

    def held(deliveries: Sequence[Delivery], *, now: float | None = None) -> list[Recorded]:
        waited.append(both_arrived.wait(10))
        return record(deliveries, now=now)

    monkeypatch.setattr(DeliveryCommitter, "accept", counted)
    monkeypatch.setattr(app_server.store, "record_deliveries", held)

    responses = send_at_once(app_server, "pull_request", body, 2)

    assert waited[0]  # the second copy came while the first was not yet recorded
    assert sorted(response.status_code for response in responses) == [200, 202]
    [replay] = [response for response in responses if response.status_code == 200]
    assert replay.json() == duplicate(replay)
    assert len(recorded(app_server.store)) == 1
    assert len(app_server.store.list_jobs(repo=REPO, pr_number=number)) == 1


def test_an_installation_body_replayed_under_a_new_delivery_id_changes_nothing(app_server: WebhookServer) -> None:
    suspend = installation_event("suspend", suspended_at=SUSPENDED_AT)
    assert send(app_server, "installation", installation_event("created"), "created").status_code == 202
    assert send(app_server, "installation", suspend, "suspend").status_code == 202
    assert send(app_server, "installation", installation_event("unsuspend"), "unsuspend").status_code == 202
    assert not suspended(app_server.store)

    replay = send(app_server, "installation", suspend, "suspend-replay")

    assert (replay.status_code, replay.json()) == (200, duplicate(replay))
    assert not suspended(app_server.store)
    assert guid("suspend-replay") not in recorded(app_server.store)


def test_a_suspension_replayed_after_its_delivery_was_pruned_stops_no_review(app_server: WebhookServer) -> None:
    """Past the retention a replayed body is taken as new. The suspension it brings back changes a flag
    that nothing reads: GitHub itself stops a suspended installation's webhooks and refuses its tokens."""
    suspend = installation_event("suspend", suspended_at=SUSPENDED_AT)
    for name, body in [
        ("created", installation_event("created")),
        ("suspend", suspend),
        ("unsuspend", installation_event("unsuspend")),
    ]:
        assert send(app_server, "installation", body, name).status_code == 202
    a_month_later(app_server.store)

    assert send(app_server, "installation", suspend, "suspend-replay").status_code == 202
    assert suspended(app_server.store)

    number, body = opened_payload()
    opened = json.loads(body)
    opened["installation"]["id"] = INSTALLATION_ID
    assert send(app_server, "pull_request", json.dumps(opened).encode(), "opened").status_code == 202
    assert [job.state for job in app_server.store.list_jobs(repo=REPO, pr_number=number)] == ["queued"]


# -- one group commit, and the store ---------------------------------------------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


def test_two_copies_in_one_group_commit_are_recorded_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    transactions = watch_transactions(store, monkeypatch)
    _, body = opened_payload()
    suspend = installation_event("suspend", suspended_at=SUSPENDED_AT)
    requests = [
        IntakeRequest(1, guid("group-1"), "pull_request", body),
        IntakeRequest(2, guid("group-2"), "pull_request", body),
        IntakeRequest(3, guid("group-3"), "installation", suspend),
        IntakeRequest(4, guid("group-4"), "installation", suspend),
    ]

    answers = DeliveryIntake(store, router, WebhookOptions()).answer_group(requests)

    assert [(answer.status, answer.counted) for answer in answers] == [
        (202, "queued"),
        (200, "duplicate"),
        (202, "installation"),
        (200, "duplicate"),
    ]
    assert transactions[0] == [guid("group-1"), guid("group-2")]  # the two copies in one transaction
    assert recorded(store) == sorted([guid("group-1"), guid("group-3")])
    assert suspended(store)


def test_the_store_records_one_delivery_per_body(store: Store) -> None:
    body, other = "a" * 64, "b" * 64
    deliveries = [
        Delivery("d-1", "push", None, 1, REPO, body_sha256=body),
        Delivery("d-2", "push", None, 1, REPO, body_sha256=body),  # the same body, in the same transaction
        Delivery("d-3", "push", None, 1, REPO, body_sha256=other),
        Delivery("d-4", "push", None, 1, REPO),  # no body known: held to its id alone
        Delivery("d-5", "push", None, 1, REPO),
    ]

    assert store.record_deliveries(deliveries) == ["recorded", "replay", "recorded", "recorded", "recorded"]
    assert store.record_deliveries([Delivery("d-6", "push", None, 1, REPO, body_sha256=other)]) == ["replay"]
    assert recorded(store) == ["d-1", "d-3", "d-4", "d-5"]


def test_the_store_tells_githubs_redelivery_from_a_replay(store: Store) -> None:
    body, other = "a" * 64, "b" * 64
    assert store.record_deliveries([Delivery("d-1", "push", None, 1, REPO, body_sha256=body)]) == ["recorded"]

    outcomes = store.record_deliveries(
        [
            Delivery("d-1", "push", None, 1, REPO, body_sha256=body),  # its id and body again: GitHub redelivers
            Delivery("d-2", "push", None, 1, REPO, body_sha256=body),  # its body under a new id
            Delivery("d-1", "push", None, 1, REPO, body_sha256=other),  # another body under its id
            Delivery("d-3", "push", None, 1, REPO, body_sha256=other),
            Delivery("d-3", "push", None, 1, REPO, body_sha256=other),  # as above, in one transaction
            Delivery("d-4", "push", None, 1, REPO, body_sha256=other),
        ]
    )

    assert outcomes == ["redelivery", "replay", "replay", "recorded", "redelivery", "replay"]
    assert recorded(store) == ["d-1", "d-3"]


def test_a_database_of_the_release_before_keeps_its_deliveries_and_takes_each_body_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reviewbot.store import store as store_module

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 7)  # the release before bodies were kept
    old = open_store(database_url)
    with old.write() as tx:
        for n in range(3):
            tx.execute(
                "INSERT INTO deliveries (id, event, received_at) VALUES (?, 'push', ?)", (f"old-{n}", time.time())
            )
    old.close()
    monkeypatch.undo()

    upgraded = open_store(database_url)
    try:
        assert upgraded.migrated_from == 7
        again = Delivery("old-1", "push", None, 1, REPO, body_sha256="c" * 64)
        assert upgraded.record_deliveries([again]) == ["redelivery"]  # its body was not kept: held to its id
        new = [Delivery(f"new-{n}", "push", None, 1, REPO, body_sha256="c" * 64) for n in range(2)]
        assert upgraded.record_deliveries(new) == ["recorded", "replay"]
        assert recorded(upgraded) == ["new-0", "old-0", "old-1", "old-2"]
    finally:
        upgraded.close()


# -- two replicas recording the same replayed bodies at once ---------------------------------------


def genuine(name: str, pr: int) -> Delivery:
    """A delivery GitHub sent once, which queues a review of pull request ``pr``."""
    job = JobRequest(
        installation_id=42,
        repo=REPO,
        pr_number=pr,
        head_sha="a" * 40,
        base_sha="b" * 40,
        full_review=False,
        trigger="pull_request.opened",
    )
    return Delivery(guid(name), "pull_request", "opened", 42, REPO, job, body_sha256=sha(name))


def replayed(name: str, body: str) -> Delivery:
    """A copy of the captured body ``body`` that a stranger sends under the made-up id ``name``."""
    return Delivery(guid(name), "pull_request", "labeled", 42, REPO, body_sha256=sha(body))


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


Results = list[list[Recorded] | StoreError]


def start_recording(
    results: Results, index: int, on: Store, group: list[Delivery], *, after: Callable[[], object] = lambda: None
) -> threading.Thread:
    """A thread named ``replica-{index}`` in which ``on`` records ``group`` once ``after()`` returns,
    keeping what it returned, or the StoreError it raised, in ``results[index]``."""

    def record() -> None:
        after()
        try:
            results[index] = on.record_deliveries(group)
        except StoreError as exc:
            results[index] = exc

    thread = threading.Thread(target=record, name=f"replica-{index}")
    thread.start()
    return thread


def joined(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)


def recorded_by_body(database_url: str) -> dict[str, int]:
    """How many deliveries the database holds of each body."""
    rows = query(database_url, "SELECT body_sha256, COUNT(*) FROM deliveries GROUP BY body_sha256")
    return {str(body): int(count) for body, count in rows}


def test_two_replicas_recording_two_replayed_bodies_in_crossed_orders_record_both_genuine_deliveries(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica 0 records [genuine, X, Y] and holds its transaction open once X is in, until replica 1,
    recording [genuine, Y, X], waits on it. Inserted in arrival order, replica 1 would hold Y and wait
    for X, and replica 0 then wait for Y: PostgreSQL ends that deadlock by aborting one transaction, and
    the genuine delivery in it (answered 503 and lost: GitHub does not redeliver by itself). Anyone
    holding two signed bodies could do that at will."""
    name = f"reviewbot-test-{uuid.uuid4().hex[:8]}"
    stores = [open_store(f"{postgres_url}&application_name={name}-{n}") for n in range(2)]
    x, y = sha("body-x"), sha("body-y")
    holds_x = hold_open(
        monkeypatch, postgres_url, thread="replica-0", after=lambda sql, params: x in params, until_waiting=f"{name}-1"
    )
    first = [genuine("genuine-0", 1), replayed("replay-0x", "body-x"), replayed("replay-0y", "body-y")]
    second = [genuine("genuine-1", 2), replayed("replay-1y", "body-y"), replayed("replay-1x", "body-x")]
    results: Results = [StoreError("never ran")] * 2
    try:
        zero = start_recording(results, 0, stores[0], first)
        one = start_recording(results, 1, stores[1], second, after=lambda: holds_x.wait(10))
        joined([zero, one])
    finally:
        for store in stores:
            store.close()

    assert holds_x.is_set()  # the two transactions overlapped
    assert results == [["recorded"] * 3, ["recorded", "replay", "replay"]]
    assert recorded_by_body(postgres_url) == {sha("genuine-0"): 1, sha("genuine-1"): 1, x: 1, y: 1}


def test_two_replicas_recording_crossed_groups_many_times_record_every_genuine_delivery_and_each_body_once(
    database_url: str,
) -> None:
    """The same race left to the scheduler, fifty times, with six replayed bodies each in opposite
    orders: on SQLite too, where each transaction holds the one write lock."""
    stores = [open_store(database_url) for _ in range(2)]
    try:
        for turn in range(50):
            bodies = [f"body-{turn}-{n}" for n in range(6)]
            groups = [
                [genuine(f"genuine-{turn}-{side}", side + 1)]
                + [replayed(f"replay-{turn}-{side}-{body}", body) for body in (bodies if side else bodies[::-1])]
                for side in range(2)
            ]
            results: Results = [StoreError("never ran")] * 2
            together = functools.partial(threading.Barrier(2).wait, 10)
            joined([start_recording(results, n, stores[n], groups[n], after=together) for n in range(2)])

            assert not [result for result in results if isinstance(result, StoreError)], f"turn {turn}"
            assert [result[0] for result in results if not isinstance(result, StoreError)] == ["recorded"] * 2
    finally:
        for store in stores:
            store.close()
    counts = recorded_by_body(database_url)
    assert len(counts) == 50 * (2 + 6)
    assert set(counts.values()) == {1}
