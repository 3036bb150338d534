"""Unauthenticated clients against ``reviewbot serve``: the memory their uploads take, and how long
slow ones keep a connection.

Each phase starts its own ``reviewbot serve --no-worker`` process (SQLite, default settings: the
10 s read timeout) and drives it over raw sockets on 127.0.0.1:

- *unsigned*: 20 concurrent 24 MB uploads without ``X-Hub-Signature-256``;
- *forged*: 20 concurrent 24 MB uploads with a well-formed but wrong signature, so each body is
  read (and held, up to the process's cap on unverified bytes) until it can be checked;
- *slow*: 200 requests whose body never finishes, 50 whose head never finishes and 50 connections
  that send nothing.

Meanwhile one signed ``pull_request.opened`` delivery is sent every 0.2 s, as GitHub would. The
peak memory is the server's ``VmHWM`` (``/proc/<pid>/status``) less its ``VmRSS`` once warm (after
one delivery). Targets: RSS growth under 100 MB in either upload phase; every slow connection
closed within 1.1 × the 10 s read timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from _paths import webhook_abuse
from _report import Result, emit

HOST = "127.0.0.1"
SECRET = "bench-abuse-secret"  # noqa: S105
UPLOADS = 20
UPLOAD_BYTES = 24 * 1000 * 1000
ABUSE = webhook_abuse()
FORGED = ABUSE.FORGED
READ_TIMEOUT = 10.0  # the default of REVIEWBOT_WEBHOOK_READ_TIMEOUT
RSS_TARGET_MB = 100.0
CLOSE_TARGET = 1.1  # × READ_TIMEOUT
SLOW = {"slow body": 200, "slow head": 50, "idle": 50}
T = TypeVar("T")


# -- the clients ----------------------------------------------------------------------------------


async def upload(port: int, signature: str | None) -> str:
    """One 24 MB upload: the status it got, or "reset" when the server hung up without one."""
    line = await ABUSE.upload(port, UPLOAD_BYTES, signature)
    return line[9:12].decode() if line else "reset"


@dataclass
class Deliveries:
    """Signed deliveries sent while an attack runs, as GitHub would send them."""

    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    async def send_until(self, port: int, done: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30) as client:
            while not done.is_set():
                body, headers = ABUSE.signed_delivery(SECRET, 1 + len(self.latencies))
                started = time.perf_counter()
                try:
                    response = await client.post("/webhook", content=body, headers=headers)
                    self.statuses[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    self.statuses[type(exc).__name__] += 1
                self.latencies.append(time.perf_counter() - started)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.2)

    def summary(self) -> str:
        if not self.latencies:
            return "no signed delivery sent"
        ordered = sorted(self.latencies)
        return (
            f"{len(ordered)} signed deliveries meanwhile: {dict(self.statuses)}, "
            f"median {statistics.median(ordered) * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
        )


async def with_deliveries(port: int, attack: Callable[[], Awaitable[list[T]]]) -> tuple[list[T], Deliveries]:
    """Run ``attack()`` while sending signed deliveries; its results and theirs."""
    deliveries = Deliveries()
    done = asyncio.Event()
    sender = asyncio.create_task(deliveries.send_until(port, done))
    try:
        results = await attack()
    finally:
        done.set()
        await sender
    return results, deliveries


# -- the phases -----------------------------------------------------------------------------------


def upload_phase(workdir: Path, name: str, signature: str | None) -> float:
    """Peak RSS growth in MB of a server taking ``UPLOADS`` concurrent uploads."""
    with ABUSE.web_server(workdir, SECRET, name) as server:
        assert server.deliver(100_000) == 202  # the delivery path is loaded and warm
        before = server.kib("VmRSS")
        started = time.perf_counter()
        results, deliveries = asyncio.run(
            with_deliveries(
                server.port, lambda: asyncio.gather(*(upload(server.port, signature) for _ in range(UPLOADS)))
            )
        )
        seconds = time.perf_counter() - started
        peak, after = server.kib("VmHWM"), server.kib("VmRSS")
    growth = (peak - before) / 1024
    print(
        f"{name:<9} {UPLOADS} × {UPLOAD_BYTES / 1e6:.0f} MB in {seconds:5.1f} s, answers {dict(Counter(results))}; "
        f"RSS {before / 1024:.0f} MB → peak {peak / 1024:.0f} MB (+{growth:.0f} MB), {after / 1024:.0f} MB after"
    )
    print(f"{'':<9} {deliveries.summary()}")
    return growth


def slow_phase(workdir: Path) -> float:
    """The slowest time to close of the slow connections, in seconds."""
    with ABUSE.web_server(workdir, SECRET, "slow") as server:
        port = server.port
        firsts = {
            "slow body": ABUSE.request_head(port, length=4096, signature=FORGED) + b'{"action": ',
            "slow head": ABUSE.request_head(port, length=4096, signature=FORGED)[:60],
            "idle": b"",
        }
        before = server.kib("VmRSS")
        kinds = [kind for kind, count in SLOW.items() for _ in range(count)]
        limit = 3 * READ_TIMEOUT
        results, deliveries = asyncio.run(
            with_deliveries(
                port, lambda: asyncio.gather(*(ABUSE.until_closed(port, firsts[kind], limit) for kind in kinds))
            )
        )
        peak = server.kib("VmHWM")
    print(f"slow      {len(kinds)} connections, read timeout {READ_TIMEOUT:g} s; RSS +{(peak - before) / 1024:.0f} MB")
    for kind in SLOW:
        times = sorted(seconds for (seconds, _), each in zip(results, kinds, strict=True) if each == kind)
        answers = Counter(
            (answer.split(b"\r\n", 1)[0].decode() or "closed, no answer")
            for (_, answer), each in zip(results, kinds, strict=True)
            if each == kind
        )
        print(
            f"{'':<9} {kind:<10} closed after {times[0]:5.2f}–{times[-1]:5.2f} s "
            f"(median {statistics.median(times):5.2f}): {dict(answers)}"
        )
    print(f"{'':<9} {deliveries.summary()}")
    return max(seconds for seconds, _ in results)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="intake-abuse-") as tmp:
        workdir = Path(tmp)
        growth = max(upload_phase(workdir, "unsigned", None), upload_phase(workdir, "forged", FORGED))
        slowest = slow_phase(workdir)
    emit(
        Result(
            "intake_abuse",
            f"peak RSS growth / {RSS_TARGET_MB:.0f} MB",
            growth / RSS_TARGET_MB,
            1.0,
            f"+{growth:.0f} MB for {UPLOADS} concurrent {UPLOAD_BYTES / 1e6:.0f} MB uploads",
        )
    )
    emit(
        Result(
            "intake_abuse",
            f"slowest close / {READ_TIMEOUT:g} s read timeout",
            slowest / READ_TIMEOUT,
            CLOSE_TARGET,
            f"{slowest:.1f} s",
        )
    )


if __name__ == "__main__":
    main()
