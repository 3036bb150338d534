"""The GitHub App end to end: `reviewbot serve` as a real process, fake GitHub and model on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fake_github import FakeGitHub
from fake_openai import FakeOpenAI, Reply
from fixtures_path import SAMPLE_DIFFS, WEBHOOKS
from guids import guid
from reviewbot.service.webhooks import sign
from reviewbot.store.store import open_store
from stored import has_delivery

REPO = "Codertocat/Hello-World"
NUMBER = 2
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
NEW_HEAD = "1111111111111111111111111111111111111111"
LEEWAY = (SAMPLE_DIFFS / "sample_leeway.diff").read_text("utf-8")
BUG = {
    "path": "src/itsdangerous/timed.py",
    "line": 155,
    "start_line": None,
    "side": "RIGHT",
    "severity": "high",
    "category": "bug",
    "title": "Clock-skew check rejects fresh signatures",
    "body": "Compare against the negative leeway.",
    "quote": "if age < self.leeway:",
    "suggestion": "            if age < -self.leeway:",
}
RANGE = dict(BUG, line=34, start_line=32, title="Validate leeway", quote="self.leeway = leeway", suggestion=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    url: str
    database: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    secret: bytes

    def deliver(self, event: str, payload: dict[str, Any], delivery: str, *, signature: str | None = None) -> int:
        body = json.dumps(payload).encode()
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature or sign(self.secret, body),
            "Content-Type": "application/json",
        }
        return httpx.post(f"{self.url}/webhook", content=body, headers=headers, timeout=10).status_code


def service_env(github: FakeGitHub, model: FakeOpenAI, database: Path) -> dict[str, str]:
    """The environment of a `reviewbot` service process against the fakes, with no other REVIEWBOT_ setting."""
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith(("REVIEWBOT_", "OPENAI_"))},
        "REVIEWBOT_GITHUB_APP_ID": str(github.app_id),
        "REVIEWBOT_GITHUB_PRIVATE_KEY": github.private_key_pem,
        "REVIEWBOT_GITHUB_API_URL": github.api_url,
        "REVIEWBOT_WEBHOOK_SECRET": github.webhook_secret,
        "REVIEWBOT_API_KEY": "sk-e2e",
        "REVIEWBOT_BASE_URL": model.base_url,
        "REVIEWBOT_MAX_RETRIES": "0",
        "REVIEWBOT_DATABASE_URL": f"sqlite:///{database}",
        "REVIEWBOT_JOB_LEASE_SECONDS": "3",
    }


def start_service(
    github: FakeGitHub,
    model: FakeOpenAI,
    database: Path,
    port: int | None = None,
    *,
    args: tuple[str, ...] = (),
    **settings: str,
) -> Service:
    """`reviewbot serve ARGS` on ``port``, once it answers; ``settings`` are added to its environment."""
    port = port or free_port()
    env = service_env(github, model, database) | settings
    process = subprocess.Popen(
        [sys.executable, "-m", "reviewbot", "serve", "--port", str(port), *args],
        env=env,
        cwd=database.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _healthy(url) or process.poll() is not None, 20, "the server to start")
    if process.poll() is not None:
        raise RuntimeError(process.stderr.read().decode() if process.stderr else "server exited")
    return Service(url, database, process, env, github.webhook_secret.encode())


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def stop(service: Service) -> None:
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(15)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(5)
    if service.process.stderr:
        service.process.stderr.close()


@pytest.fixture
def service(fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[Service]:
    running = start_service(fake_github, fake_openai, tmp_path / "reviewbot.db")
    yield running
    stop(running)


def payload(name: str, **pull_changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WEBHOOKS / "pull_request" / name).read_text("utf-8"))
    data["pull_request"].update(pull_changes)
    return data


def answer_with(*findings: dict[str, Any]) -> Callable[[dict[str, Any]], Reply]:
    def answer(body: dict[str, Any]) -> Reply:
        shown = body["messages"][1]["content"]
        return Reply.json({"findings": [f for f in findings if f["path"] in shown]})

    return answer


def reviews_on(github: FakeGitHub, head: str) -> int:
    return github.review_count(REPO, NUMBER, head)


def test_an_opened_pull_request_gets_one_review_with_anchored_comments_and_the_cost_note(
    service: Service, fake_github: FakeGitHub, fake_openai: FakeOpenAI
) -> None:
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, title="Add leeway")
    fake_openai.set_default(answer_with(BUG, RANGE))
    assert service.deliver("pull_request", payload("opened.payload.json"), guid("opened-1")) == 202
    wait_for(lambda: reviews_on(fake_github, HEAD) == 1, 30, "the review")
    (review,) = fake_github.reviews(REPO, NUMBER)
    assert review["state"] == "COMMENTED"
    assert review["commit_id"] == HEAD
    assert "request to qwen3-coder-30b" in review["body"]
    assert "uv.lock" in review["body"]
    placed = sorted((c["path"], c["line"], c.get("start_line")) for c in fake_github.comments(REPO, NUMBER))
    assert placed == [("src/itsdangerous/timed.py", 34, 32), ("src/itsdangerous/timed.py", 155, None)]
    assert any("```suggestion" in c["body"] for c in fake_github.comments(REPO, NUMBER))
    assert "Add leeway" in fake_openai.requests[0].body["messages"][1]["content"]


def test_the_same_delivery_five_times_at_once_gives_one_review(
    service: Service, fake_github: FakeGitHub, fake_openai: FakeOpenAI
) -> None:
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE)
    fake_openai.set_default(answer_with(BUG))
    body = payload("opened.payload.json")
    with ThreadPoolExecutor(5) as pool:
        statuses = list(pool.map(lambda _: service.deliver("pull_request", body, guid("same")), range(5)))
    assert sorted(statuses) == [200, 200, 200, 200, 202]
    wait_for(lambda: reviews_on(fake_github, HEAD) == 1, 30, "the review")
    store = open_store(f"sqlite:///{service.database}")
    try:
        wait_for(lambda: store.job_counts().get("done", 0) == 1, 10, "the job to finish")
        assert sum(store.job_counts().values()) == 1
    finally:
        store.close()
    assert reviews_on(fake_github, HEAD) == 1


def review_first_head(service: Service, github: FakeGitHub, model: FakeOpenAI) -> None:
    """The pull request opened at HEAD, and its review posted."""
    github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE)
    model.set_default(answer_with(BUG))
    assert service.deliver("pull_request", payload("opened.payload.json"), guid("first")) == 202
    wait_for(lambda: reviews_on(github, HEAD) == 1, 30, "the first review")


def push_new_head(service: Service, github: FakeGitHub) -> None:
    """The push of NEW_HEAD delivered; wait for its review."""
    synchronize = payload("synchronize.payload.json", head={"sha": NEW_HEAD, "ref": "feature"})
    synchronize["before"], synchronize["after"] = HEAD, NEW_HEAD
    assert service.deliver("pull_request", synchronize, guid("push")) == 202
    wait_for(lambda: reviews_on(github, NEW_HEAD) == 1, 30, "the review of the push")


def test_a_push_gets_a_review_of_only_what_is_new(
    service: Service, fake_github: FakeGitHub, fake_openai: FakeOpenAI
) -> None:
    review_first_head(service, fake_github, fake_openai)

    # The new commit touches only the test file; the model repeats its old finding anyway.
    new_test = dict(BUG, path="tests/test_itsdangerous/test_timed.py", line=48, title="Sleeps in a test", quote="")
    pushed = LEEWAY.replace("freeze.tick(timedelta(seconds=12))", "freeze.tick(timedelta(seconds=13))")
    fake_github.add_pull(REPO, NUMBER, pushed, head_sha=NEW_HEAD, base_sha=BASE)
    fake_github.set_compare(
        REPO,
        HEAD,
        NEW_HEAD,
        "diff --git a/tests/test_itsdangerous/test_timed.py b/tests/test_itsdangerous/test_timed.py\n"
        "index 1111111..2222222 100644\n"
        "--- a/tests/test_itsdangerous/test_timed.py\n+++ b/tests/test_itsdangerous/test_timed.py\n"
        "@@ -48 +48 @@\n-        freeze.tick(timedelta(seconds=12))\n+        freeze.tick(timedelta(seconds=13))\n",
    )
    fake_openai.reset()
    fake_openai.set_default(answer_with(BUG, new_test))
    push_new_head(service, fake_github)

    sent = fake_openai.requests[0].body["messages"][1]["content"]
    assert "tests/test_itsdangerous/test_timed.py" in sent
    assert "src/itsdangerous/timed.py" not in sent
    second = next(r for r in fake_github.reviews(REPO, NUMBER) if r["commit_id"] == NEW_HEAD)
    assert "since `ec26c3e`" in second["body"]
    lines = [(c["path"], c["line"]) for c in fake_github.comments(REPO, NUMBER) if c["commit_id"] == NEW_HEAD]
    assert lines == [("tests/test_itsdangerous/test_timed.py", 48)]


def test_a_revoked_installation_token_is_replaced_by_the_running_server_within_the_attempt(
    service: Service, fake_github: FakeGitHub, fake_openai: FakeOpenAI
) -> None:
    review_first_head(service, fake_github, fake_openai)
    issued = len(fake_github.requests_to("POST", "/app/installations/*/access_tokens"))
    assert fake_github.revoke_tokens() >= 1  # the server still holds the token in its cache

    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=NEW_HEAD, base_sha=BASE)
    push_new_head(service, fake_github)

    assert len(fake_github.requests_to("POST", "/app/installations/*/access_tokens")) == issued + 1
    store = open_store(f"sqlite:///{service.database}")
    try:
        wait_for(lambda: store.job_counts().get("done", 0) == 2, 10, "the job to finish")
        assert [job.attempts for job in store.list_jobs(repo=REPO)] == [1, 1]
    finally:
        store.close()


def test_forged_and_malformed_deliveries_are_refused_and_nothing_is_queued(
    service: Service, fake_github: FakeGitHub
) -> None:
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE)
    body = payload("opened.payload.json")
    assert service.deliver("pull_request", body, guid("forged"), signature="sha256=" + "0" * 64) == 401
    bad = httpx.post(
        f"{service.url}/webhook",
        content=b"{not json",
        headers={
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": guid("bad"),
            "X-Hub-Signature-256": sign(service.secret, b"{not json"),
        },
        timeout=10,
    )
    assert bad.status_code == 400
    store = open_store(f"sqlite:///{service.database}")
    try:
        assert store.job_counts() == {} or sum(store.job_counts().values()) == 0
        assert not has_delivery(store, guid("forged"))
    finally:
        store.close()
    # Nothing but the start-up question for the App's slug reached GitHub.
    assert [(r.method, r.path) for r in fake_github.requests if r.path != "/app"] == []


def _deep(payload: dict[str, Any]) -> bytes:
    """``payload`` with 100,000 nested arrays in a field nothing reads."""
    payload["pull_request"]["body"] = "DEEP"
    return json.dumps(payload).encode().replace(b'"DEEP"', b"[" * 100_000 + b"]" * 100_000)


def test_signed_payloads_with_fields_of_the_wrong_shape_get_400_naming_the_field_and_github_is_not_asked(
    service: Service, fake_github: FakeGitHub
) -> None:
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE)
    cases: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
        "number": (lambda p: p["pull_request"].update(number="x"), "$.pull_request.number"),
        "huge number": (lambda p: p["pull_request"].update(number=2**70), "$.pull_request.number"),
        "full_name object": (lambda p: p["repository"].update(full_name={}), "$.repository.full_name"),
        "full_name path": (lambda p: p["repository"].update(full_name="../x"), "$.repository.full_name"),
        "head sha": (lambda p: p["pull_request"]["head"].update(sha="../../x"), "$.pull_request.head.sha"),
        "installation id": (lambda p: p["installation"].update(id=-1), "$.installation.id"),
    }
    bodies: dict[str, tuple[bytes, str]] = {}
    for name, (change, field) in cases.items():
        changed = payload("opened.payload.json")
        change(changed)
        bodies[name] = (json.dumps(changed).encode(), field)
    bodies["deep nesting"] = (_deep(payload("opened.payload.json")), "nested too deeply")
    for name, (body, field) in bodies.items():
        headers = {
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": guid(f"malformed-{name}"),
            "X-Hub-Signature-256": sign(service.secret, body),
            "Content-Type": "application/json",
        }
        response = httpx.post(f"{service.url}/webhook", content=body, headers=headers, timeout=10)
        assert response.status_code == 400, (name, response.text)
        assert field in response.json()["error"], name
    store = open_store(f"sqlite:///{service.database}")
    try:
        assert sum(store.job_counts().values()) == 0
        assert not any(has_delivery(store, guid(f"malformed-{name}")) for name in bodies)
    finally:
        store.close()
    # Nothing but the start-up question for the App's slug reached GitHub.
    assert [(r.method, r.path) for r in fake_github.requests if r.path != "/app"] == []


def test_a_server_killed_mid_review_posts_the_review_exactly_once_after_restart(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE)
    fake_openai.set_default(lambda body: Reply.delay(30, then=answer_with(BUG)(body)))
    first = start_service(fake_github, fake_openai, tmp_path / "reviewbot.db")
    try:
        assert first.deliver("pull_request", payload("opened.payload.json"), guid("kill")) == 202
        wait_for(lambda: len(fake_openai.requests) == 1, 30, "the model request")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
    finally:
        stop(first)
    assert reviews_on(fake_github, HEAD) == 0

    fake_openai.set_default(answer_with(BUG))
    second = start_service(fake_github, fake_openai, tmp_path / "reviewbot.db")
    try:
        wait_for(lambda: reviews_on(fake_github, HEAD) == 1, 40, "the review after the restart")
        store = open_store(f"sqlite:///{second.database}")
        try:
            wait_for(lambda: store.job_counts().get("done", 0) == 1, 10, "the job to finish")
        finally:
            store.close()
        assert reviews_on(fake_github, HEAD) == 1
        assert len(fake_github.comments(REPO, NUMBER)) == 1
    finally:
        stop(second)


def test_an_at_mention_review_command_works_without_the_slug_being_configured(
    service: Service, fake_github: FakeGitHub, fake_openai: FakeOpenAI
) -> None:
    # The server was started without REVIEWBOT_GITHUB_APP_SLUG: it asked GitHub for it.
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE)
    fake_openai.set_default(answer_with(BUG))
    comment: dict[str, Any] = json.loads(
        (WEBHOOKS / "issue_comment" / "created.with-installation.payload.json").read_text("utf-8")
    )
    comment["issue"]["number"] = NUMBER
    comment["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/{NUMBER}"}
    comment["comment"]["body"] = f"@{fake_github.app_slug} review please"
    assert service.deliver("issue_comment", comment, guid("mention")) == 202
    wait_for(lambda: reviews_on(fake_github, HEAD) == 1, 30, "the review the command asked for")
