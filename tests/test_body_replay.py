"""A signed body sent again under new delivery ids is a duplicate, whatever its event, over real loopback
HTTP, on SQLite and on PostgreSQL.

GitHub signs a delivery's body (``X-Hub-Signature-256``), not its ``X-GitHub-Delivery`` id: whoever holds
one signed delivery can send its body again under made-up ids. Each must be answered as GitHub's own
redelivery is (200, duplicate, counted and logged as one, not recorded) for as long as deliveries are
kept, and queue nothing or change nothing. A suspension replayed after that, once its delivery is
pruned, must still not suspend an installation that GitHub has unsuspended since.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import WebhookServer
from guids import guid
from reviewbot.service.intake import DeliveryIntake, IntakeRequest
from reviewbot.service.retention import Pruner
from reviewbot.service.webhooks import WebhookOptions, router
from reviewbot.store.records import Delivery
from reviewbot.store.store import Store, open_store
from test_app import REPO, headers, load, opened_payload
from test_command_replay import duplicate, run_queued_jobs, send_at_once
from test_intake import watch_transactions
from test_metrics import deltas, process_samples

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

    with caplog.at_level(logging.INFO, "reviewbot.app"):
        answers = [send(app_server, "pull_request", body, name) for name in ("replay-1", "replay-2", "opened")]

    assert [answer.status_code for answer in answers] == [200, 200, 200]  # the last is GitHub's redelivery
    assert [answer.json() for answer in answers] == [duplicate(answer) for answer in answers]
    assert recorded(app_server.store) == [guid("opened")]
    assert [job.state for job in app_server.store.list_jobs(repo=REPO, pr_number=number)] == ["done"]
    assert [record.getMessage() for record in caplog.records if record.name == "reviewbot.app"] == [
        f"delivery {guid(name)} pull_request.opened: duplicate, nothing done"
        for name in ("replay-1", "replay-2", "opened")
    ]
    delivered = ("reviewbot_webhook_deliveries_total", (("event", "pull_request"), ("outcome", "duplicate")))
    assert deltas(before, process_samples(), "reviewbot_webhook_") == {delivered: 3}


def test_two_copies_of_a_body_sent_at_once_under_new_delivery_ids_are_recorded_once(
    app_server: WebhookServer,
) -> None:
    number, body = opened_payload()

    responses = send_at_once(app_server, "pull_request", body, 2)

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


def test_a_suspension_replayed_after_its_delivery_was_pruned_does_not_suspend_an_unsuspended_installation(
    app_server: WebhookServer,
) -> None:
    suspend = installation_event("suspend", suspended_at=SUSPENDED_AT)
    for name, body in [
        ("created", installation_event("created")),
        ("suspend", suspend),
        ("unsuspend", installation_event("unsuspend")),
    ]:
        assert send(app_server, "installation", body, name).status_code == 202
    a_month_later(app_server.store)

    replay = send(app_server, "installation", suspend, "suspend-replay")

    assert replay.status_code == 200
    assert replay.json() == {
        "ignored": f"installation {INSTALLATION_ID} was suspended at {SUSPENDED_AT},"
        " no later than the suspension already recorded",
        "delivery": guid("suspend-replay"),
    }
    assert not suspended(app_server.store)
    # GitHub's next suspension, later than any the store has seen, suspends it.
    later = send(
        app_server, "installation", installation_event("suspend", suspended_at="2021-05-01T09:00:00Z"), "again"
    )
    assert later.status_code == 202
    assert suspended(app_server.store)


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

    assert store.record_deliveries(deliveries) == [True, False, True, True, True]
    assert store.record_deliveries([Delivery("d-6", "push", None, 1, REPO, body_sha256=other)]) == [False]
    assert recorded(store) == ["d-1", "d-3", "d-4", "d-5"]


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
        assert upgraded.record_deliveries([Delivery("old-1", "push", None, 1, REPO, body_sha256="c" * 64)]) == [False]
        new = [Delivery(f"new-{n}", "push", None, 1, REPO, body_sha256="c" * 64) for n in range(2)]
        assert upgraded.record_deliveries(new) == [True, False]
        assert recorded(upgraded) == ["new-0", "old-0", "old-1", "old-2"]
    finally:
        upgraded.close()
