"""Unauthenticated clients against ``reviewbot serve``: the memory their uploads take, and how long
slow ones keep a connection.

Each phase starts its own ``reviewbot serve --no-worker`` process (SQLite, default settings: the
10 s read timeout) and drives it over raw sockets on 127.0.0.1:

- *unsigned*: 20 concurrent 24 MB uploads without ``X-Hub-Signature-256``;
- *forged*: 20 concurrent 24 MB uploads with a well-formed but wrong signature, so each body is
  read (and held, up to the process's cap on unverified bytes) until it can be checked; the
  uploads of both phases come from four addresses in turn (127.0.0.11 to .14): one address may
  hold a quarter of the cap, so filling it takes four;
- *slow*: 200 requests whose body never finishes, 50 whose head never finishes and 50 connections
  that send nothing;
- *flood*: one address (127.0.0.2) trying to hold the process's whole 50 MiB cap on unverified
  bytes: 50 connections, each sending the first MiB of a 2 MiB forged upload and then nothing, and
  opening again at once when cut off by the read timeout (or after 0.5 s when refused): about
  5 MB/s.

Meanwhile one signed ``pull_request.opened`` delivery is sent every 0.2 s from 127.0.0.1, as
GitHub would (in the flood phase from 2 s in, once the flood holds all it may, for 12 s: past one
read timeout, when the flood's connections are cut off and open again). The peak memory is the
server's ``VmHWM`` (``/proc/<pid>/status``) less its ``VmRSS`` once warm (after one delivery).
Targets: RSS growth under 100 MB in either upload phase; every slow connection closed within 1.1 ×
the 10 s read timeout; no delivery from the other address refused during the flood.
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
FLOODER = "127.0.0.2"  # Linux routes all of 127.0.0.0/8 to loopback: a second client address
FLOOD_CONNECTIONS = 50
FLOOD_PIECE = 1024 * 1024  # bytes each connection sends: together, the whole 50 MiB cap
FLOOD_RAMP = 2.0  # seconds before deliveries are measured
FLOOD_SECONDS = 12.0  # of deliveries measured: past one read timeout
T = TypeVar("T")


# -- the clients ----------------------------------------------------------------------------------


async def upload(port: int, signature: str | None, number: int) -> str:
    """One 24 MB upload, from the ``number``-th of four addresses in turn (one address may hold a
    quarter of the cap): the status it got, or "reset" when the server hung up without one."""
    source = ABUSE.UPLOADERS[number % len(ABUSE.UPLOADERS)]
    line = await ABUSE.upload(port, UPLOAD_BYTES, signature, source=source)
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
                server.port,
                lambda: asyncio.gather(*(upload(server.port, signature, number) for number in range(UPLOADS))),
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


@dataclass
class Flood:
    """One address holding as many unverified bytes as it can, over and over."""

    answers: Counter[str] = field(default_factory=Counter)

    async def run(self, port: int, done: asyncio.Event) -> None:
        await asyncio.gather(*(self._connection(port, done) for _ in range(FLOOD_CONNECTIONS)))

    async def _connection(self, port: int, done: asyncio.Event) -> None:
        while not done.is_set():
            line = await ABUSE.stall(port, 2 * FLOOD_PIECE, FLOOD_PIECE, FORGED, source=FLOODER)
            status = line[9:12].decode() if line else "reset"
            self.answers[status] += 1
            if status != "408":  # refused: not at once again, or the loop is all this measures
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.5)


def flood_phase(workdir: Path) -> float:
    """The share of signed deliveries from another address refused while one address floods."""
    with ABUSE.web_server(workdir, SECRET, "flood") as server:
        assert server.deliver(200_000) == 202

        async def measure() -> tuple[Flood, Deliveries]:
            flood, done = Flood(), asyncio.Event()
            flooding = asyncio.create_task(flood.run(server.port, done))
            deliveries, stop = Deliveries(), asyncio.Event()
            try:
                await asyncio.sleep(FLOOD_RAMP)
                sender = asyncio.create_task(deliveries.send_until(server.port, stop))
                await asyncio.sleep(FLOOD_SECONDS)
                stop.set()
                await sender
            finally:
                done.set()
                await flooding
            return flood, deliveries

        flood, deliveries = asyncio.run(measure())
    sent = len(deliveries.latencies)
    refused = sent - deliveries.statuses["202"]
    print(
        f"flood     {FLOODER}: {FLOOD_CONNECTIONS} connections sending {FLOOD_PIECE // 1024} KiB each of "
        f"forged uploads; answers {dict(flood.answers)}"
    )
    print(f"{'':<9} from 127.0.0.1 meanwhile: {deliveries.summary()}; refused {refused} of {sent}")
    return refused / sent if sent else 1.0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="intake-abuse-") as tmp:
        workdir = Path(tmp)
        growth = max(upload_phase(workdir, "unsigned", None), upload_phase(workdir, "forged", FORGED))
        slowest = slow_phase(workdir)
        starved = flood_phase(workdir)
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
    emit(
        Result(
            "intake_abuse",
            "refused deliveries, other address",
            starved,
            0.0,
            f"one address trying to hold the 50 MiB cap; another's deliveries every 0.2 s for {FLOOD_SECONDS:g} s",
        )
    )


if __name__ == "__main__":
    main()
