"""The webhook endpoint over real loopback HTTP: a uvicorn server driven with httpx and raw sockets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import ASGIApp

from conftest import WEBHOOK_SECRET, WebhookServer, serve
from fixtures_path import WEBHOOKS
from reviewbot.service.app import MAX_BODY_BYTES, create_app
from reviewbot.service.body import UNVERIFIED_BYTES_CAP, UnverifiedBytes
from reviewbot.service.webhooks import sign
from reviewbot.settings import Settings
from reviewbot.store.store import open_store
from stored import has_delivery, installation_repos

REPO = "Codertocat/Hello-World"
TOO_BIG = 26 * 1024 * 1024
FORGED = "sha256=" + "0" * 64  # well formed: only the body can show it is wrong
_numbers = itertools.count(1000)

ServeApp = Callable[[ASGIApp], AbstractContextManager[str]]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WEBHOOKS / name).read_text(encoding="utf-8"))
    return data


def opened_payload() -> tuple[int, bytes]:
    """The real ``pull_request.opened`` payload for a pull request number no other test uses."""
    number = next(_numbers)
    payload = load("pull_request/opened.payload.json")
    payload["number"] = payload["pull_request"]["number"] = number
    return number, json.dumps(payload).encode()


def headers(event: str, body: bytes, *, secret: bytes, delivery: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
    }


def post(server: WebhookServer, event: str, body: bytes, **overrides: str) -> httpx.Response:
    sent = headers(event, body, secret=server.secret) | overrides
    return httpx.post(f"{server.url}/webhook", content=body, headers=sent, timeout=10)


# -- accepted deliveries ---------------------------------------------------------------------


def test_a_signed_opened_delivery_is_accepted_with_one_queued_job(webhook_server: WebhookServer) -> None:
    number, body = opened_payload()
    before = len(webhook_server.wakeups)
    sent = headers("pull_request", body, secret=webhook_server.secret)
    response = httpx.post(f"{webhook_server.url}/webhook", content=body, headers=sent, timeout=10)
    assert response.status_code == 202
    assert response.json() == {"queued": True, "delivery": sent["X-GitHub-Delivery"]}
    [job] = webhook_server.store.list_jobs(repo=REPO, pr_number=number)
    assert (job.state, job.full_review, job.trigger) == ("queued", True, "pull_request.opened")
    assert has_delivery(webhook_server.store, sent["X-GitHub-Delivery"])
    assert len(webhook_server.wakeups) == before + 1


def test_the_same_delivery_five_times_at_once_queues_one_job(webhook_server: WebhookServer) -> None:
    number, body = opened_payload()
    sent = headers("pull_request", body, secret=webhook_server.secret)

    async def send_five() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=webhook_server.url, timeout=10) as client:
            return await asyncio.gather(*(client.post("/webhook", content=body, headers=sent) for _ in range(5)))

    responses = asyncio.run(send_five())
    assert sorted(response.status_code for response in responses) == [200, 200, 200, 200, 202]
    duplicates = [response.json() for response in responses if response.status_code == 200]
    assert duplicates == [{"duplicate": True, "queued": False, "delivery": sent["X-GitHub-Delivery"]}] * 4
    assert len(webhook_server.store.list_jobs(repo=REPO, pr_number=number)) == 1


def test_an_unhandled_event_is_answered_and_recorded_but_queues_nothing(webhook_server: WebhookServer) -> None:
    body = json.dumps({"action": "created", "repository": {"full_name": "octo/starred"}}).encode()
    response = post(webhook_server, "star", body)
    assert response.status_code == 200
    assert response.json()["ignored"] == "star.created is not handled"
    assert has_delivery(webhook_server.store, response.json()["delivery"])
    assert webhook_server.store.list_jobs(repo="octo/starred") == []


def test_a_draft_is_queued_so_the_repository_config_can_ask_for_its_review(webhook_server: WebhookServer) -> None:
    payload = load("pull_request/opened.payload.json")
    payload["pull_request"]["draft"] = True
    payload["number"] = payload["pull_request"]["number"] = number = next(_numbers)
    response = post(webhook_server, "pull_request", json.dumps(payload).encode())
    assert (response.status_code, response.json()["queued"]) == (202, True)
    assert len(webhook_server.store.list_jobs(repo=REPO, pr_number=number)) == 1


def test_ping_is_answered_with_200(webhook_server: WebhookServer) -> None:
    response = post(webhook_server, "ping", (WEBHOOKS / "ping" / "payload.json").read_bytes())
    assert response.status_code == 200
    assert response.json()["pong"] is True


def test_an_installation_is_recorded_without_queueing_anything(webhook_server: WebhookServer) -> None:
    response = post(webhook_server, "installation", (WEBHOOKS / "installation" / "created.payload.json").read_bytes())
    assert response.status_code == 202
    assert response.json()["queued"] is False
    assert installation_repos(webhook_server.store, 957387) == {REPO}


# -- refused deliveries ----------------------------------------------------------------------


def test_a_forged_signature_is_refused_and_nothing_is_recorded(webhook_server: WebhookServer) -> None:
    number, body = opened_payload()
    forged = headers("pull_request", body, secret=b"not the secret")
    response = httpx.post(f"{webhook_server.url}/webhook", content=body, headers=forged, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid signature"}
    assert not has_delivery(webhook_server.store, forged["X-GitHub-Delivery"])
    assert webhook_server.store.list_jobs(repo=REPO, pr_number=number) == []


def test_a_sha1_signature_alone_is_refused(webhook_server: WebhookServer) -> None:
    number, body = opened_payload()
    sent = headers("pull_request", body, secret=webhook_server.secret)
    del sent["X-Hub-Signature-256"]
    sent["X-Hub-Signature"] = "sha1=" + hmac.new(webhook_server.secret, body, hashlib.sha1).hexdigest()
    response = httpx.post(f"{webhook_server.url}/webhook", content=body, headers=sent, timeout=10)
    assert response.status_code == 401
    assert webhook_server.store.list_jobs(repo=REPO, pr_number=number) == []


def test_a_signature_over_a_tampered_body_is_refused(webhook_server: WebhookServer) -> None:
    number, body = opened_payload()
    sent = headers("pull_request", body, secret=webhook_server.secret)
    tampered = body.replace(b'"state": "open"', b'"state": "open" ')
    assert tampered != body
    response = httpx.post(f"{webhook_server.url}/webhook", content=tampered, headers=sent, timeout=10)
    assert response.status_code == 401
    assert webhook_server.store.list_jobs(repo=REPO, pr_number=number) == []


def test_malformed_json_with_a_good_signature_is_a_bad_request(webhook_server: WebhookServer) -> None:
    cases = {
        b'{"action": "opened"': "the body is not JSON: Input data was truncated",
        b"[1, 2, 3]": "the body is not a webhook payload: Expected `object`, got `array`",
        b'{"action": "opened", "pull_request": {"head": "abc"}}': "at `$.pull_request.head`",
    }
    for body, problem in cases.items():
        response = post(webhook_server, "pull_request", body)
        assert response.status_code == 400
        assert problem in response.json()["error"]
        assert not has_delivery(webhook_server.store, response.request.headers["X-GitHub-Delivery"])


def test_a_delivery_without_event_or_delivery_headers_is_a_bad_request(webhook_server: WebhookServer) -> None:
    _, body = opened_payload()
    for missing in ("X-GitHub-Event", "X-GitHub-Delivery"):
        sent = headers("pull_request", body, secret=webhook_server.secret)
        del sent[missing]
        response = httpx.post(f"{webhook_server.url}/webhook", content=body, headers=sent, timeout=10)
        assert response.status_code == 400


def test_every_delivery_is_refused_when_no_secret_is_configured(tmp_path: Path, serve_app: ServeApp) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'nosecret.db'}")
    with serve_app(create_app(Settings(webhook_secret=None), store)) as url:
        _, body = opened_payload()
        unsigned = headers("pull_request", body, secret=b"")
        response = httpx.post(f"{url}/webhook", content=body, headers=unsigned, timeout=10)
    assert response.status_code == 401
    assert store.list_jobs() == []
    store.close()


# -- oversized bodies ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_client_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    """A webhook server that lets one address hold the whole cap on unverified bytes, rather than
    a quarter of it: so that a body streamed from one client meets the 25 MiB limit before its
    address's share (see test_webhook_peers.py for the share)."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('one-client') / 'reviewbot.db'}")
    unverified = UnverifiedBytes(share=UNVERIFIED_BYTES_CAP)
    with serve(create_app(Settings(webhook_secret=WEBHOOK_SECRET), store, unverified=unverified)) as url:
        yield WebhookServer(url, store, WEBHOOK_SECRET.encode())
    store.close()


def test_a_body_over_the_cap_is_refused_with_413(webhook_server: WebhookServer) -> None:
    assert TOO_BIG > MAX_BODY_BYTES
    body = b"x" * TOO_BIG
    response = post(webhook_server, "pull_request", body)
    assert response.status_code == 413
    assert response.json() == {"error": "payload too large"}


def test_a_chunked_body_over_the_cap_is_refused_with_413(one_client_server: WebhookServer) -> None:
    megabyte = b"x" * (1024 * 1024)
    sent = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": FORGED}

    def chunks() -> Iterator[bytes]:
        for _ in range(26):
            yield megabyte

    response = httpx.post(f"{one_client_server.url}/webhook", content=chunks(), headers=sent, timeout=10)
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 413


def raw_exchange(url: str, head: bytes, body_chunks: Iterator[bytes]) -> bytes:
    """Send ``head`` and ``body_chunks`` on a raw socket and return the answer's status line.

    The request is left unfinished on purpose: an answer proves the server did not wait for
    (or buffer) the whole body.
    """
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            sock.sendall(chunk)
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    return answer.split(b"\r\n", 1)[0]


def request_head(url: str, extra: str) -> bytes:
    host = urlsplit(url).netloc
    return (
        f"POST /webhook HTTP/1.1\r\nHost: {host}\r\nX-GitHub-Event: pull_request\r\n"
        f"X-GitHub-Delivery: {uuid.uuid4()}\r\nContent-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_a_declared_oversized_body_is_refused_before_it_is_sent(webhook_server: WebhookServer) -> None:
    head = request_head(webhook_server.url, f"Content-Length: {TOO_BIG}\r\n")
    assert raw_exchange(webhook_server.url, head, iter(())) == b"HTTP/1.1 413 Request Entity Too Large"


def test_an_oversized_chunked_body_is_refused_before_it_ends(one_client_server: WebhookServer) -> None:
    url = one_client_server.url
    head = request_head(url, f"Transfer-Encoding: chunked\r\nX-Hub-Signature-256: {FORGED}\r\n")
    megabyte = b"x" * (1024 * 1024)
    chunk = f"{len(megabyte):x}\r\n".encode() + megabyte + b"\r\n"
    # 26 MiB of chunks and no final zero-length chunk: the body never ends.
    status = raw_exchange(url, head, iter([chunk] * 26))
    assert status == b"HTTP/1.1 413 Request Entity Too Large"


# -- what an unsigned upload may cost --------------------------------------------------------


def test_a_request_without_a_well_formed_signature_is_refused_before_its_body_is_sent(
    webhook_server: WebhookServer,
) -> None:
    for signature in ("", "X-Hub-Signature-256: sha256=not-hex\r\n", "X-Hub-Signature: sha1=" + "0" * 40 + "\r\n"):
        head = request_head(webhook_server.url, f"Content-Length: {10 * 1024 * 1024}\r\n{signature}")
        assert raw_exchange(webhook_server.url, head, iter(())) == b"HTTP/1.1 401 Unauthorized"


def test_a_request_without_event_or_delivery_headers_is_refused_before_its_body_is_sent(
    webhook_server: WebhookServer,
) -> None:
    host = urlsplit(webhook_server.url).netloc
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: {host}\r\nX-Hub-Signature-256: {FORGED}\r\n"
        f"Content-Length: {1024 * 1024}\r\n\r\n"
    ).encode()
    assert raw_exchange(webhook_server.url, head, iter(())) == b"HTTP/1.1 400 Bad Request"


def test_unsigned_bodies_past_the_process_cap_are_answered_503_with_retry_after(
    tmp_path: Path, serve_app: ServeApp
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'cap.db'}")
    cap = 256 * 1024  # all of it for one address: the cap is what is tested here
    app = create_app(Settings(webhook_secret="s3cret"), store, unverified=UnverifiedBytes(cap=cap, share=cap))
    with serve_app(app) as url:
        _, body = opened_payload()
        big = body + b" " * (300 * 1024)  # past the cap on its own
        forged = headers("pull_request", big, secret=b"not the secret")
        refused = httpx.post(f"{url}/webhook", content=big, headers=forged, timeout=10)
        assert (refused.status_code, refused.headers["Retry-After"]) == (503, "10")
        assert refused.json() == {"error": "too many uploads in progress"}
        # What it held is given back: a delivery under the cap goes through.
        signed = headers("pull_request", body, secret=b"s3cret")
        assert httpx.post(f"{url}/webhook", content=body, headers=signed, timeout=10).status_code == 202
    store.close()


def test_a_body_that_does_not_arrive_within_the_read_timeout_gets_408_and_its_connection_closed(
    tmp_path: Path, serve_app: ServeApp
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'slow.db'}")
    with serve_app(create_app(Settings(webhook_secret="s3cret", webhook_read_timeout=0.3), store)) as url:
        parts = urlsplit(url)
        head = request_head(url, f"Content-Length: 1000\r\nX-Hub-Signature-256: {FORGED}\r\n")
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10) as sock:
            sock.sendall(head + b'{"action": ')
            answer = b""
            while chunk := sock.recv(4096):  # until the server closes the connection
                answer += chunk
    store.close()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close" in answer.lower()
    assert answer.endswith(b'{"error":"the body did not arrive within 0.3 s"}')


# -- health ----------------------------------------------------------------------------------


def test_healthz_and_readyz_are_ok(webhook_server: WebhookServer) -> None:
    assert httpx.get(f"{webhook_server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{webhook_server.url}/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


def test_a_broken_store_makes_readyz_answer_503_while_healthz_stays_200(tmp_path: Path, serve_app: ServeApp) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'broken.db'}")
    with serve_app(create_app(Settings(webhook_secret="s3cret"), store)) as url:
        assert httpx.get(f"{url}/readyz").status_code == 200
        store.close()
        ready = httpx.get(f"{url}/readyz")
        healthy = httpx.get(f"{url}/healthz")
    assert (ready.status_code, ready.json()) == (503, {"status": "unavailable"})
    assert healthy.status_code == 200


def test_only_post_is_allowed_on_the_webhook(webhook_server: WebhookServer) -> None:
    assert httpx.get(f"{webhook_server.url}/webhook").status_code == 405
