"""A real ``reviewbot serve --no-worker`` process, and clients of its ``POST /webhook`` that misbehave on purpose.

Shared by ``test_webhook_limits.py`` and ``bench/intake_abuse.py``: the server runs as its own
process (standard error to a file, memory figures from ``/proc``), and the clients talk to it over
raw sockets on loopback: uploads without a valid signature, requests that stop halfway through
their head or body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from fixtures_path import WEBHOOKS
from reviewbot.service.webhooks import sign

HOST = "127.0.0.1"
MB = 1024 * 1024
#: A well-formed X-Hub-Signature-256 that no body matches: only the whole body can show it is wrong.
FORGED = "sha256=" + "0" * 64
OPENED = WEBHOOKS / "pull_request" / "opened.payload.json"


# -- the server -----------------------------------------------------------------------------------


@dataclass
class WebServer:
    port: int
    process: subprocess.Popen[bytes]
    stderr: Path
    secret: str

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        return self.stderr.read_text("utf-8", "replace")

    def kib(self, field: str) -> int:
        """A ``kB`` figure of ``/proc/<pid>/status`` (VmRSS: resident now; VmHWM: the peak so far)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise RuntimeError(f"{field} is not in /proc/{self.process.pid}/status")

    def deliver(self, number: int = 1) -> int:
        """A signed ``pull_request.opened`` delivery, as GitHub sends it: the status it gets."""
        body, headers = signed_delivery(self.secret, number)
        return httpx.post(f"{self.url}/webhook", content=body, headers=headers, timeout=10).status_code


def signed_delivery(secret: str, number: int) -> tuple[bytes, dict[str, str]]:
    """The ``pull_request.opened`` fixture for pull request ``number``, signed with ``secret``."""
    payload = json.loads(OPENED.read_bytes())
    payload["number"] = payload["pull_request"]["number"] = number
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret.encode(), body),
    }
    return body, headers


@contextlib.contextmanager
def web_server(workdir: Path, secret: str, name: str = "serve", **settings: str) -> Iterator[WebServer]:
    """``reviewbot serve --no-worker`` on a free port with a SQLite file ``<name>.db`` in ``workdir``,
    standard error to ``<name>.log``, and ``REVIEWBOT_<KEY>`` set from ``settings``; stopped with SIGINT."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("REVIEWBOT_", "OPENAI_"))},
        "REVIEWBOT_WEBHOOK_SECRET": secret,
        "REVIEWBOT_DATABASE_URL": f"sqlite:///{workdir / f'{name}.db'}",
        **{f"REVIEWBOT_{key.upper()}": value for key, value in settings.items()},
    }
    stderr = workdir / f"{name}.log"
    with stderr.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "reviewbot", "serve", "--no-worker", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    server = WebServer(port, process, stderr, secret)
    try:
        deadline = time.monotonic() + 30
        while not _healthy(server.url):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {server.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 30 s")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# -- the clients ----------------------------------------------------------------------------------


def request_head(port: int, *, length: int | None, signature: str | None, delivery: str = "") -> bytes:
    """The head of a ``push`` delivery with a ``length``-byte body (chunked if None)."""
    lines = [
        "POST /webhook HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Content-Type: application/json",
        "X-GitHub-Event: push",
        f"X-GitHub-Delivery: {delivery or uuid.uuid4()}",
    ]
    if signature is not None:
        lines.append(f"X-Hub-Signature-256: {signature}")
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


#: Client addresses enough to fill the process's cap on unverified bytes, which takes four (one
#: address may hold a quarter of it). Linux routes all of 127.0.0.0/8 to loopback.
UPLOADERS = ("127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14")


async def upload(port: int, size: int, signature: str | None, *, source: str = HOST) -> bytes:
    """Send a ``size``-byte body from the address ``source`` as fast as the server takes it: the
    status line of the answer (b"" if the server hung up without one)."""
    reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    piece = b"x" * MB
    try:
        writer.write(request_head(port, length=size, signature=signature))
        sent = 0
        while sent < size:
            chunk = piece[: min(MB, size - sent)]
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        return await asyncio.wait_for(reader.readline(), 30)
    except (ConnectionError, asyncio.IncompleteReadError):
        # Answered and closed before the body was all sent: read what answer there is.
        with contextlib.suppress(ConnectionError, TimeoutError):
            return await asyncio.wait_for(reader.readline(), 5)
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def stall(port: int, length: int, sent: int, signature: str | None, *, source: str = HOST) -> bytes:
    """From the address ``source``, send the head of a ``length``-byte body and its first ``sent``
    bytes, then nothing more: the status line of the answer (408 once the read timeout passes, if
    nothing sooner; b"" if the server hung up without one)."""
    reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    try:
        writer.write(request_head(port, length=length, signature=signature) + b"x" * sent)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 30)
    except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def until_closed(port: int, first: bytes, limit: float) -> tuple[float, bytes]:
    """Open a connection, send ``first`` and nothing more: the seconds until the server closes it
    (``limit`` if it has not by then), and what it answered."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(first)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), limit)
        return time.monotonic() - started, answer
    except (TimeoutError, ConnectionError):
        return limit, b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
