"""Two deliveries for one head while its review runs: one review, never two.

GitHub sends several deliveries, each with an id of its own, for one head: ``opened`` and then
``ready_for_review`` (a pull request opened as a draft and marked ready a moment later), or
``reopened`` (closed and reopened). The second one queues a second job while the first runs (a
running job is never coalesced into); it must wait for the first to end, and then find the head
reviewed.

Real processes against the fake GitHub, which answers every request in 250 ms as a far-away GitHub
does, and a scripted model: ten pull requests, each sent its second delivery once its first review
job is running. On SQLite one ``reviewbot serve`` (the web server and a worker with two slots, so
one is free for the second job); on PostgreSQL two ``serve --no-worker`` and two ``reviewbot
worker``, each delivery of a pair to another web server. Every pull request gets exactly one
review with its one comment, the model is asked once per pull request, and every second job ends
as "already posted".
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fake_github import FakeGitHub
from fake_openai import FakeOpenAI, Reply
from fixtures_path import WEBHOOKS
from guids import guid
from reviewbot.service.webhooks import sign
from reviewbot.store.store import Store, open_store
from test_scale_out import Child, Children, child_env, drained, free_port, wait_for
from test_service_e2e import BASE, BUG, LEEWAY, REPO

LATENCY = 0.25  # seconds GitHub takes to answer each request
PULLS = 10


def head_of(number: int) -> str:
    return hashlib.sha1(f"{REPO}#{number}".encode()).hexdigest()  # noqa: S324 (a made-up commit id)


def webhook_body(number: int, action: str, *, draft: bool = False) -> bytes:
    payload: dict[str, Any] = json.loads((WEBHOOKS / "pull_request" / "opened.payload.json").read_text("utf-8"))
    payload["action"] = action
    payload["number"] = number
    pull = payload["pull_request"]
    pull.update(number=number, state="open", draft=draft, title=f"Change {number}")
    pull["head"]["sha"], pull["base"]["sha"] = head_of(number), BASE
    return json.dumps(payload).encode()


@dataclass
class Deliveries:
    """Sends each pull request its two deliveries, the second while the first job runs."""

    webs: list[Child]
    secret: bytes
    store: Store
    client: httpx.Client

    def send(self, web: Child, number: int, action: str, delivery_id: str, *, draft: bool = False) -> None:
        body = webhook_body(number, action, draft=draft)
        headers = {
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": sign(self.secret, body),
            "Content-Type": "application/json",
        }
        response = self.client.post(f"{web.url}/webhook", content=body, headers=headers)
        assert (response.status_code, response.json().get("queued")) == (202, True), response.text

    def states(self, number: int) -> list[str]:
        return [job.state for job in self.store.list_jobs(repo=REPO, pr_number=number)]

    def pair(self, number: int) -> None:
        first, second = self.webs[number % len(self.webs)], self.webs[(number + 1) % len(self.webs)]
        # Odd pull requests are opened and then reopened; even ones opened as drafts and marked
        # ready (a draft's job is queued all the same, and by the time it runs the pull request
        # is ready for review on GitHub).
        again = "reopened" if number % 2 else "ready_for_review"
        self.send(first, number, "opened", guid(f"opened-{number}"), draft=again == "ready_for_review")
        wait_for(lambda: self.states(number) == ["running"], 30, f"the first job of #{number} to run")
        self.send(second, number, again, guid(f"{again}-{number}"))
        assert self.states(number) == ["running", "queued"], "the second delivery came after the first review"

    def lane(self, numbers: list[int]) -> None:
        for number in numbers:
            self.pair(number)


def review_twice_delivered_pulls(
    children: Children, webs: list[Child], github: FakeGitHub, model: FakeOpenAI, database_url: str, lanes: int
) -> None:
    for number in range(1, PULLS + 1):
        github.add_pull(REPO, number, LEEWAY, title=f"Change {number}", head_sha=head_of(number), base_sha=BASE)
    github.set_latency(LATENCY)
    model.set_default(lambda body: Reply.json({"findings": [BUG]}))
    children.wait_ready()
    store = open_store(database_url)
    try:
        with httpx.Client(timeout=15) as client:
            deliveries = Deliveries(webs, github.webhook_secret.encode(), store, client)
            numbers = list(range(1, PULLS + 1))
            with ThreadPoolExecutor(lanes) as pool:
                for done in [pool.submit(deliveries.lane, numbers[lane::lanes]) for lane in range(lanes)]:
                    done.result()
        wait_for(lambda: drained(store.list_jobs), 60, f"the queue to drain:\n{children.logs()}")
        jobs = store.list_jobs()
    finally:
        store.close()

    posted = {number: github.review_count(REPO, number, head_of(number)) for number in range(1, PULLS + 1)}
    assert posted == dict.fromkeys(range(1, PULLS + 1), 1)
    for number in range(1, PULLS + 1):
        assert len(github.reviews(REPO, number)) == 1
        assert [comment["path"] for comment in github.comments(REPO, number)] == [BUG["path"]]
    assert len(model.requests) == PULLS  # the second job never asked the model
    for number in range(1, PULLS + 1):
        first, second = [job for job in jobs if job.pr_number == number]
        assert first.state == "done"
        assert first.last_error is not None
        assert first.last_error.startswith("posted review")
        assert second.state == "done"
        assert second.last_error is not None
        assert "was already posted" in second.last_error


def environment(github: FakeGitHub, model: FakeOpenAI, database_url: str) -> dict[str, str]:
    # The workers of `reviewbot worker` learn of new jobs by polling; a short poll keeps the test short.
    return {**child_env(github, model, database_url), "REVIEWBOT_WORKER_POLL_SECONDS": "0.1"}


@pytest.mark.timeout(120)
def test_two_deliveries_for_a_head_under_review_make_one_review_on_sqlite(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    children = Children(tmp_path, environment(fake_github, fake_openai, f"sqlite:///{tmp_path / 'reviewbot.db'}"))
    try:
        port = free_port()
        serve = children.spawn("serve", "serve", "--port", str(port))
        serve.url = f"http://127.0.0.1:{port}"
        review_twice_delivered_pulls(
            children, [serve], fake_github, fake_openai, f"sqlite:///{tmp_path / 'reviewbot.db'}", lanes=1
        )
    finally:
        children.stop_all()
        print(children.logs())


@pytest.mark.timeout(120)
def test_two_deliveries_for_a_head_under_review_make_one_review_on_postgres_with_two_of_each_process(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, postgres_url: str, tmp_path: Path
) -> None:
    children = Children(tmp_path, environment(fake_github, fake_openai, postgres_url))
    try:
        webs = [children.web("web-1"), children.web("web-2")]
        children.worker("worker-1", concurrency=4)
        children.worker("worker-2", concurrency=4)
        review_twice_delivered_pulls(children, webs, fake_github, fake_openai, postgres_url, lanes=4)
    finally:
        children.stop_all()
        print(children.logs())
