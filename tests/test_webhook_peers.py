"""Who may post to ``/webhook``, by source address: the allowlist of networks, and each address's
share of the bytes held before a signature can be checked.

Real uvicorn servers on loopback, and clients bound to other loopback addresses (127.0.0.2,
127.0.0.3, …, which Linux lets a socket bind to) so that one test has several peers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from fake_github import FakeGitHub
from loopback import LoopbackServer
from reviewbot.errors import GitHubAuthError, NoWebhookRanges
from reviewbot.github.meta import refused_without_credentials
from reviewbot.service import metrics
from reviewbot.service.app import create_app
from reviewbot.service.body import UnverifiedBytes
from reviewbot.settings import Settings
from reviewbot.store.store import open_store
from test_app import FORGED, headers, opened_payload, raw_exchange, request_head
from test_service_e2e import wait_for
from webhook_abuse import web_server

SECRET = "peers-webhook-secret"
KIB = 1024


@contextmanager
def served(
    tmp_path: Path, settings: Settings, *, host: str = "127.0.0.1", unverified: UnverifiedBytes | None = None
) -> Iterator[LoopbackServer]:
    """``create_app`` over a fresh SQLite store, served on ``host``."""
    store = open_store(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")
    server = LoopbackServer("peers", host)
    server.start(create_app(settings, store, unverified=unverified))
    try:
        yield server
    finally:
        server.stop()
        store.close()


def deliver(url: str, source: str, **extra: str) -> httpx.Response:
    """A signed ``pull_request.opened`` delivery sent from the address ``source``."""
    _, body = opened_payload()
    sent = headers("pull_request", body, secret=SECRET.encode()) | extra
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10) as client:
        return client.post(f"{url}/webhook", content=body, headers=sent)


def status_of_head(port: int, source: str, *, length: int, server: str = "127.0.0.1") -> bytes:
    """Send from ``source`` only the head of a delivery announcing a ``length``-byte body, and
    return the status line of the answer: one that comes proves no body was waited for."""
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: {server}:{port}\r\nX-GitHub-Event: pull_request\r\n"
        f"X-GitHub-Delivery: {uuid.uuid4()}\r\nX-Hub-Signature-256: {FORGED}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    with socket.socket(socket.AF_INET6 if ":" in source else socket.AF_INET) as sock:
        sock.settimeout(10)
        sock.bind((source, 0))
        sock.connect((server, port))
        sock.sendall(head)
        answer = b""
        while b"\r\n" not in answer and (data := sock.recv(4096)):
            answer += data
    return answer.split(b"\r\n", 1)[0]


def rejected(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("reviewbot_webhook_rejected_total", {"reason": reason}) or 0.0


# -- the allowlist ----------------------------------------------------------------------------


def test_a_peer_outside_the_allowed_networks_gets_403_before_its_body_is_sent_and_each_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(webhook_secret=SECRET, webhook_allowed_ips="127.0.0.2, 10.0.0.0/8")
    with served(tmp_path, settings) as server, caplog.at_level(logging.INFO):
        before = rejected("not_allowed")
        assert status_of_head(server.port, "127.0.0.3", length=10 * KIB * KIB) == b"HTTP/1.1 403 Forbidden"
        refused = deliver(server.url, "127.0.0.3")
        assert (refused.status_code, refused.json()) == (403, {"error": "source address not allowed"})
        for source in ("127.0.0.4", "127.0.0.5", "127.0.0.3"):
            assert deliver(server.url, source).status_code == 403
        assert deliver(server.url, "127.0.0.2").status_code == 202
    assert rejected("not_allowed") == before + 5
    # Anyone on the internet can send these: the first is logged, the next ones within the minute
    # are only counted, or a stranger could fill the log.
    lines = [record.getMessage() for record in caplog.records if "ALLOWED_IPS" in record.getMessage()]
    assert len(lines) == 1, lines
    assert '"127.0.0.3"' in lines[0]


def test_without_an_allowlist_every_peer_is_served(tmp_path: Path) -> None:
    with served(tmp_path, Settings(webhook_secret=SECRET)) as server:
        assert deliver(server.url, "127.0.0.3").status_code == 202


@pytest.mark.parametrize(("allowed", "status"), [("::1", 202), ("127.0.0.0/8", 403), ("::/0", 202)])
def test_an_ipv6_peer_is_matched_against_ipv6_networks(tmp_path: Path, allowed: str, status: int) -> None:
    with served(tmp_path, Settings(webhook_secret=SECRET, webhook_allowed_ips=allowed), host="::1") as server:
        assert deliver(server.url, "::1").status_code == status


def test_an_ipv4_mapped_ipv6_peer_is_matched_against_ipv4_networks(tmp_path: Path) -> None:
    # A server listening on an IPv6 socket sees IPv4 clients as ::ffff:a.b.c.d.
    settings = Settings(webhook_secret=SECRET, webhook_allowed_ips="127.0.0.2/32")
    with served(tmp_path, settings, host="::ffff:127.0.0.1") as server:
        assert deliver(server.url, "127.0.0.2").status_code == 202
        assert deliver(server.url, "127.0.0.3").status_code == 403


# -- `github`: GitHub's own webhook ranges ------------------------------------------------------


@pytest.mark.timeout(60)
def test_github_allows_the_hooks_ranges_of_the_meta_api_and_a_trusted_proxy_names_the_peer(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    fake_github.hooks = ["127.0.0.2/32", "2001:db8::/32"]
    with web_server(tmp_path, SECRET, webhook_allowed_ips="github", github_api_url=fake_github.api_url) as server:
        assert deliver(server.url, "127.0.0.2").status_code == 202
        assert deliver(server.url, "127.0.0.3").status_code == 403
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 (FORWARDED_ALLOW_IPS unset): a proxy there.
        assert deliver(server.url, "127.0.0.1", **{"X-Forwarded-For": "127.0.0.2"}).status_code == 202
        assert deliver(server.url, "127.0.0.1", **{"X-Forwarded-For": "127.0.0.3"}).status_code == 403
        assert deliver(server.url, "127.0.0.1").status_code == 403  # the proxy itself is not GitHub
        # Anyone else's X-Forwarded-For is not believed.
        assert deliver(server.url, "127.0.0.3", **{"X-Forwarded-For": "127.0.0.2"}).status_code == 403
    [meta] = fake_github.requests_to("GET", "/meta")
    assert "authorization" not in meta.headers


def serve_refused(tmp_path: Path, api_url: str) -> str:
    """Run ``reviewbot serve`` with ``github`` in the allowlist and the API at ``api_url``, which
    must refuse to start: the one line it says."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "REVIEWBOT_WEBHOOK_SECRET": SECRET,
        "REVIEWBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'refused.db'}",
        "REVIEWBOT_WEBHOOK_ALLOWED_IPS": "github",
        "REVIEWBOT_GITHUB_API_URL": api_url,
    }
    process = subprocess.run(
        [sys.executable, "-m", "reviewbot", "serve", "--no-worker", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert process.returncode == 2, process.stderr
    (line,) = process.stderr.splitlines()
    assert line.startswith("reviewbot: REVIEWBOT_WEBHOOK_ALLOWED_IPS=github:"), line
    return line


@pytest.mark.timeout(60)
def test_serve_believes_x_forwarded_for_only_from_the_proxies_set_in_its_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    # uvicorn reads FORWARDED_ALLOW_IPS from the process's environment only; reviewbot reads its
    # settings from .env too, and this one with them.
    (tmp_path / ".env").write_text("FORWARDED_ALLOW_IPS=127.0.0.4\n")
    with web_server(tmp_path, SECRET, webhook_allowed_ips="127.0.0.2") as server:
        assert deliver(server.url, "127.0.0.4", **{"X-Forwarded-For": "127.0.0.2"}).status_code == 202
        assert deliver(server.url, "127.0.0.4", **{"X-Forwarded-For": "127.0.0.3"}).status_code == 403
        # 127.0.0.1 is trusted only while the setting is unset.
        assert deliver(server.url, "127.0.0.1", **{"X-Forwarded-For": "127.0.0.2"}).status_code == 403


@pytest.mark.timeout(60)
def test_serve_refuses_to_start_when_github_lists_no_webhook_ranges(fake_github: FakeGitHub, tmp_path: Path) -> None:
    fake_github.hooks = []
    line = serve_refused(tmp_path, fake_github.api_url)
    assert "hooks" in line
    assert "REVIEWBOT_GITHUB_API_URL" in line


@pytest.mark.timeout(60)
@pytest.mark.parametrize("private_mode", [False, True], ids=["public", "private-mode"])
def test_serve_on_github_enterprise_server_says_it_publishes_no_webhook_ranges_and_to_list_the_appliance(
    fake_github: FakeGitHub, tmp_path: Path, private_mode: bool
) -> None:
    # GitHub Enterprise Server's GET /meta has no hooks, and in private mode needs credentials.
    fake_github.enterprise_private_mode = private_mode
    line = serve_refused(tmp_path, fake_github.enterprise_api_url)
    assert f"the API at {fake_github.enterprise_api_url} publishes no webhook ranges" in line
    assert "GitHub Enterprise Server" in line
    assert "list the addresses" in line
    assert fake_github.requests_to("GET", "/meta")  # it was asked, not guessed from the URL


def test_the_github_ranges_are_fetched_again_and_a_failed_fetch_keeps_the_last_good_ones_logged_once(
    fake_github: FakeGitHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_github.hooks = ["127.0.0.2/32"]
    settings = Settings(webhook_secret=SECRET, webhook_allowed_ips="github", github_api_url=fake_github.api_url)
    store = open_store(f"sqlite:///{tmp_path / 'refresh.db'}")
    server = LoopbackServer("refresh")
    server.start(create_app(settings, store, refresh_every=0.05))
    try:
        wait_for(lambda: deliver(server.url, "127.0.0.2").status_code == 202, 10, "the first fetch")
        fake_github.hooks = ["127.0.0.3/32"]  # GitHub moves its webhooks
        wait_for(lambda: deliver(server.url, "127.0.0.3").status_code == 202, 10, "the new ranges")
        assert deliver(server.url, "127.0.0.2").status_code == 403

        caplog.clear()
        with caplog.at_level(logging.INFO):
            fetched = len(fake_github.requests_to("GET", "/meta"))
            fake_github.hooks = []  # an answer that would shut everyone out is no answer
            wait_for(lambda: len(fake_github.requests_to("GET", "/meta")) >= fetched + 3, 10, "three failed fetches")
            assert deliver(server.url, "127.0.0.3").status_code == 202  # the last good ranges
        failures = [record for record in caplog.records if record.levelno >= logging.WARNING]
        assert len(failures) == 1, [record.getMessage() for record in failures]
        assert "webhook" in failures[0].getMessage()
    finally:
        server.stop()
        store.close()


# -- each address's share of the unverified bytes -----------------------------------------------

PIECE = 512 * KIB


async def _hold_upload(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """From ``source``, send the head of a forged delivery announcing two pieces and one piece of its
    body, then nothing more: the server holds what it read until the body is whole or timed out."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-GitHub-Event: pull_request\r\n"
        f"X-GitHub-Delivery: {uuid.uuid4()}\r\nX-Hub-Signature-256: {FORGED}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {2 * PIECE}\r\n\r\n"
    ).encode()
    writer.write(head + b"x" * PIECE)
    await writer.drain()
    return reader, writer


@pytest.mark.timeout(60)
def test_one_peer_cannot_take_more_than_its_share_of_the_unverified_bytes_and_another_still_gets_in(
    tmp_path: Path,
) -> None:
    unverified = UnverifiedBytes(cap=8 * PIECE)  # a quarter each: two pieces
    settings = Settings(webhook_secret=SECRET, webhook_read_timeout=30)
    with served(tmp_path, settings, unverified=unverified) as server:

        async def flood_then_deliver() -> tuple[list[bytes], int, httpx.Response]:
            # Eight pieces from one address: exactly what the whole cap holds.
            uploads = [await _hold_upload(server.port, "127.0.0.2") for _ in range(8)]
            answers = [asyncio.create_task(reader.readuntil(b"\r\n\r\n")) for reader, _ in uploads]
            try:
                async with asyncio.timeout(10):  # until each upload is held whole or refused
                    while unverified.held != PIECE * sum(not answer.done() for answer in answers):
                        await asyncio.sleep(0.01)
                held = unverified.held
                delivered = await asyncio.to_thread(deliver, server.url, "127.0.0.3")
                return [answer.result() for answer in answers if answer.done()], held, delivered
            finally:
                for answer in answers:
                    answer.cancel()
                for _, writer in uploads:
                    writer.close()

        refusals, held, delivered = asyncio.run(flood_then_deliver())
        assert delivered.status_code == 202
        assert held == 2 * PIECE
        assert len(refusals) == 6
        for refusal in refusals:
            assert refusal.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert b"retry-after: 30\r\n" in refusal.lower()
        wait_for(lambda: unverified.held == 0, 10, "the held bytes to be given back")


def test_one_body_streamed_past_its_addresss_share_is_refused_with_503_before_it_ends(tmp_path: Path) -> None:
    unverified = UnverifiedBytes()
    assert unverified.share == UnverifiedBytes().cap // 4 == 12.5 * KIB * KIB
    with served(tmp_path, Settings(webhook_secret=SECRET), unverified=unverified) as server:
        head = request_head(server.url, f"Transfer-Encoding: chunked\r\nX-Hub-Signature-256: {FORGED}\r\n")
        megabyte = b"x" * (KIB * KIB)
        chunk = f"{len(megabyte):x}\r\n".encode() + megabyte + b"\r\n"
        # 14 MiB of chunks and no final zero-length chunk: the body never ends.
        assert raw_exchange(server.url, head, iter([chunk] * 14)) == b"HTTP/1.1 503 Service Unavailable"
        wait_for(lambda: unverified.held == 0, 10, "the held bytes to be given back")


# -- the peer in the log lines ----------------------------------------------------------------

#: What a client behind a trusted proxy may put in X-Forwarded-For: h11 lets a header value carry
#: bytes 0x80-0xff, and uvicorn takes the last entry no proxy wrote as the peer, whatever it is.
#: 0x9b starts a terminal escape (CSI) and 0x85 ends a line (NEL).
C1_PEER = b"\x9b31m\x85forged"


@pytest.mark.parametrize(
    ("allowed", "delivery", "status", "says"),
    [
        ("127.0.0.2", str(uuid.uuid4()), b"403", "not in REVIEWBOT_WEBHOOK_ALLOWED_IPS"),
        ("", "not-a-guid", b"400", "is not a GUID"),
        ("", str(uuid.uuid4()), b"401", "invalid signature"),
    ],
    ids=["allowlist", "delivery-id", "signature"],
)
def test_a_peer_named_by_a_trusted_proxy_reaches_the_log_only_in_printable_ascii(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, allowed: str, delivery: str, status: bytes, says: str
) -> None:
    settings = Settings(webhook_secret=SECRET, webhook_allowed_ips=allowed)
    with served(tmp_path, settings) as server, caplog.at_level(logging.INFO):
        request = (
            (
                f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-GitHub-Event: pull_request\r\n"
                f"X-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {FORGED}\r\n"
                "Content-Type: application/json\r\nContent-Length: 2\r\n"
            ).encode()
            + b"X-Forwarded-For: "
            + C1_PEER
            + b"\r\n\r\n{}"
        )
        # From 127.0.0.1, which uvicorn trusts as a proxy unless told otherwise.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(request)
            answer = b""
            while b"\r\n" not in answer and (data := sock.recv(4096)):
                answer += data
        assert answer.split(b" ")[1] == status
    [line] = [record.getMessage() for record in caplog.records if "forged" in record.getMessage()]
    assert says in line
    assert '"\\x9b31m\\x85forged"' in line
    assert line.isascii(), line
    assert line.isprintable(), line


def test_a_401_or_403_from_github_com_s_public_meta_is_not_taken_for_an_enterprise_server_in_private_mode() -> None:
    # GitHub.com answers GET /meta to anyone: a refusal there comes from something in the way.
    blocked = GitHubAuthError("GitHub refused GET /meta: 403 Forbidden", status=403)
    assert refused_without_credentials("https://api.github.com", blocked) is blocked
    private = refused_without_credentials("https://ghes.example.com/api/v3", blocked)
    assert isinstance(private, NoWebhookRanges)
    assert "GitHub Enterprise Server in private mode" in str(private)
