"""What an unauthenticated client can cost a real `reviewbot serve` process: memory, connections, log lines.

Each test starts ``reviewbot serve --no-worker`` as its own process (standard error to a file) and
talks to it over raw sockets on loopback, as an attacker would: large uploads without a valid
signature, bodies and request heads that never finish, uploads cut off halfway.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest

from test_service_e2e import wait_for
from webhook_abuse import FORGED, HOST, MB, UPLOADERS, request_head, until_closed, upload, web_server

SECRET = "limits-webhook-secret"


# -- memory ---------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("signature", [None, FORGED], ids=["unsigned", "forged"])
def test_twenty_concurrent_24_mb_uploads_without_a_valid_signature_raise_rss_by_less_than_100_mb(
    tmp_path: Path, signature: str | None
) -> None:
    with web_server(tmp_path, SECRET) as server:
        assert server.deliver() == 202  # the delivery path is loaded and warm
        before = server.kib("VmRSS")

        async def attack() -> list[bytes]:
            # From four addresses, each holding the quarter of the cap it may: the whole cap is held.
            sources = [UPLOADERS[number % len(UPLOADERS)] for number in range(20)]
            return await asyncio.gather(
                *(upload(server.port, 24 * 1000 * 1000, signature, source=source) for source in sources)
            )

        answers = asyncio.run(attack())
        peak = server.kib("VmHWM")
        statuses = {answer[9:12] for answer in answers if answer}
        assert statuses <= {b"401", b"503"}, answers
        assert (peak - before) / 1024 < 100, f"RSS grew from {before // 1024} MB to a peak of {peak // 1024} MB"
        assert server.deliver(2) == 202  # and GitHub's deliveries still get through


# -- time -----------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_slow_bodies_slow_heads_and_idle_connections_are_closed_within_the_read_timeout(tmp_path: Path) -> None:
    with web_server(tmp_path, SECRET, webhook_read_timeout="1") as server:
        port = server.port
        slow_body = request_head(port, length=4096, signature=FORGED) + b'{"action": '
        slow_head = request_head(port, length=4096, signature=FORGED)[:60]
        limit = 8.0

        async def connect_all() -> list[tuple[float, bytes]]:
            kinds = [slow_body] * 150 + [slow_head] * 25 + [b""] * 25
            return await asyncio.gather(*(until_closed(port, first, limit) for first in kinds))

        results = asyncio.run(connect_all())
        bodies, rest = results[:150], results[150:]
        slowest = max(seconds for seconds, _ in results)
        assert slowest < 5.0, f"a connection was still open after {slowest:.1f} s (read timeout 1 s)"
        assert {answer.split(b"\r\n", 1)[0] for _, answer in bodies} == {b"HTTP/1.1 408 Request Timeout"}
        assert {answer for _, answer in rest} == {b""}  # no request to answer: the connection is just closed
        assert server.deliver() == 202


# -- log lines ------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_an_upload_cut_off_halfway_is_one_log_line_without_a_traceback(tmp_path: Path) -> None:
    delivery = str(uuid.uuid4())
    with web_server(tmp_path, SECRET) as server:
        with socket.create_connection((HOST, server.port), timeout=10) as sock:
            sock.sendall(request_head(server.port, length=MB, signature=FORGED, delivery=delivery))
            sock.sendall(b"x" * (MB // 4))
        wait_for(lambda: delivery in server.log() or "Traceback" in server.log(), 10, "a log line about it")
        assert server.deliver() == 202
    log = server.log()
    assert "Traceback" not in log, log
    [line] = [line for line in log.splitlines() if delivery in line]
    assert "disconnected" in line
