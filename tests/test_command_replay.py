"""A review command is taken once per comment, over real loopback HTTP, on SQLite and on PostgreSQL.

GitHub signs a delivery's body (``X-Hub-Signature-256``) but not its ``X-GitHub-Delivery`` header:
whoever holds one signed ``issue_comment`` delivery can send its body again under made-up delivery
ids. Each must be answered as a redelivery is, not queue another review (a command reviews a
reviewed head again, so each would be another paid model run).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time

import httpx
import pytest

from conftest import WebhookServer
from reviewbot.service.retention import Pruner
from reviewbot.store.records import COMMAND_TRIGGER, JobRequest
from reviewbot.store.store import Store, open_store
from stored import has_delivery, record_delivery
from test_app import REPO, headers, load, post

_comment_ids = itertools.count(2_000_000_001)  # past 2**31, as GitHub's comment ids are now


def command(comment_id: int, number: int, *, action: str = "created", text: str = "/review") -> bytes:
    """The real ``issue_comment`` payload, on pull request ``number``, by its owner, as comment ``comment_id``."""
    payload = load("issue_comment/created.with-installation.payload.json")
    payload["action"] = action
    payload["issue"]["number"] = number
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/{number}"}
    payload["comment"].update(id=comment_id, body=text, author_association="OWNER")
    return json.dumps(payload).encode()


def run_queued_jobs(store: Store) -> None:
    """Claim and finish every queued job, as the worker would: a later request for the pull request
    then queues a job of its own instead of folding into the queued one."""
    while (job := store.claim_job("test-worker", 60)) is not None:
        assert store.finish_job(job.id, "test-worker")


def send_at_once(server: WebhookServer, event: str, body: bytes, count: int) -> list[httpx.Response]:
    """``body`` ``count`` times at once, each under its own new delivery id."""

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            sent = [headers(event, body, secret=server.secret) for _ in range(count)]
            return await asyncio.gather(*(client.post("/webhook", content=body, headers=each) for each in sent))

    return asyncio.run(send())


def duplicate(response: httpx.Response) -> dict[str, object]:
    return {"duplicate": True, "queued": False, "delivery": response.request.headers["X-GitHub-Delivery"]}


def test_a_command_replayed_under_new_delivery_ids_queues_one_review(
    app_server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    comment_id = next(_comment_ids)
    body = command(comment_id, 7)
    first = post(app_server, "issue_comment", body)
    assert first.status_code == 202
    run_queued_jobs(app_server.store)  # the review was made: a command would make it again

    with caplog.at_level(logging.INFO, "reviewbot.app"):
        replays = [post(app_server, "issue_comment", body) for _ in range(2)]

    assert [response.status_code for response in replays] == [200, 200]
    assert [response.json() for response in replays] == [duplicate(response) for response in replays]
    assert [job.state for job in app_server.store.list_jobs(repo=REPO, pr_number=7)] == ["done"]
    assert [record.getMessage() for record in caplog.records if record.name == "reviewbot.app"] == [
        f"delivery {replays[0].request.headers['X-GitHub-Delivery']} issue_comment.created: replay: a signed body"
        f" sent again under a delivery id that is not its own (comment {comment_id}'s review command was already"
        " taken), nothing done"
    ]


def test_a_command_replayed_after_its_delivery_and_job_were_pruned_is_still_refused(app_server: WebhookServer) -> None:
    comment_id = next(_comment_ids)
    body = command(comment_id, 11)
    assert post(app_server, "issue_comment", body).status_code == 202
    run_queued_jobs(app_server.store)
    assert post(app_server, "issue_comment", command(next(_comment_ids), 12)).status_code == 202  # a newer job
    month_later = time.time() + 31 * 86_400
    pruned = asyncio.run(Pruner(app_server.store, 30, pause=0.0, clock=lambda: month_later).run_if_due())
    assert pruned is not None
    assert pruned.jobs == 1
    assert app_server.store.list_jobs(repo=REPO, pr_number=11) == []

    replay = post(app_server, "issue_comment", body)

    assert replay.status_code == 200
    assert replay.json() == duplicate(replay)
    assert app_server.store.list_jobs(repo=REPO, pr_number=11) == []


def test_a_command_sent_three_times_at_once_under_new_delivery_ids_queues_one_review(app_server: WebhookServer) -> None:
    responses = send_at_once(app_server, "issue_comment", command(next(_comment_ids), 8), 3)

    assert sorted(response.status_code for response in responses) == [200, 200, 202]
    replays = [response for response in responses if response.status_code == 200]
    assert [response.json() for response in replays] == [duplicate(response) for response in replays]
    assert len(app_server.store.list_jobs(repo=REPO, pr_number=8)) == 1


def test_another_comment_with_the_same_command_asks_for_its_own_review(app_server: WebhookServer) -> None:
    assert post(app_server, "issue_comment", command(next(_comment_ids), 9)).status_code == 202
    run_queued_jobs(app_server.store)

    again = post(app_server, "issue_comment", command(next(_comment_ids), 9))

    assert again.status_code == 202
    assert [job.state for job in app_server.store.list_jobs(repo=REPO, pr_number=9)] == ["done", "queued"]


def test_an_edit_of_a_command_comment_asks_for_no_review(app_server: WebhookServer) -> None:
    comment_id = next(_comment_ids)
    assert post(app_server, "issue_comment", command(comment_id, 10)).status_code == 202
    run_queued_jobs(app_server.store)

    edited = post(app_server, "issue_comment", command(comment_id, 10, action="edited", text="/review\nplease"))

    assert edited.status_code == 200
    assert edited.json()["ignored"] == "issue_comment.edited is not handled"
    assert len(app_server.store.list_jobs(repo=REPO, pr_number=10)) == 1


# -- the store ---------------------------------------------------------------------------------


def command_request(comment_id: int | None, number: int = 7) -> JobRequest:
    return JobRequest(
        installation_id=1,
        repo=REPO,
        pr_number=number,
        head_sha="",
        base_sha="",
        full_review=True,
        trigger=COMMAND_TRIGGER,
        comment_id=comment_id,
    )


def test_a_database_of_the_release_before_keeps_its_deliveries_and_takes_each_command_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reviewbot.store import store as store_module

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 5)  # the release before comment ids were kept
    old = open_store(database_url)
    with old.write() as tx:
        tx.execute(
            "INSERT INTO deliveries (id, event, action, installation_id, repo, received_at)"
            " VALUES ('old', 'issue_comment', 'created', 1, ?, 0)",
            (REPO,),
        )
    old.close()
    monkeypatch.undo()

    upgraded = open_store(database_url)
    try:
        assert upgraded.migrated_from == 5
        assert has_delivery(upgraded, "old")
        largest = 2**63 - 1  # GitHub's ids are 64-bit
        taken = [
            record_delivery(upgraded, delivery, "issue_comment", "created", 1, REPO, command_request(comment_id))
            for delivery, comment_id in [("a", largest), ("b", largest), ("c", None), ("d", None), ("old", 5)]
        ]
        assert taken == [True, False, True, True, False]  # a job without a comment id is not held to one
        assert not has_delivery(upgraded, "b")
    finally:
        upgraded.close()
