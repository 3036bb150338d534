"""Webhook acknowledgement under load: ``POST /webhook`` against a bare Starlette endpoint.

Two servers, each in its own subprocess with the uvicorn settings ``reviewbot serve`` uses
(``uvicorn.Config(app, proxy_headers=True, log_level="info", access_log=False)``, one worker, the
default loop and HTTP implementation, logging configured as the CLI does) on 127.0.0.1:

- *webhook*: reviewbot's app (``create_app(settings, store)``: ``reviewbot serve`` less the review
  worker, which would only compete for the CPU) on a temporary SQLite file; its writer thread
  checks, commits and logs each group of deliveries (:mod:`reviewbot.service.committer`);
- *bare*: a Starlette app whose one ``POST`` route reads the body and answers 202 JSON.

This process drives both over loopback with 32 concurrent keep-alive connections, sending the
same signed ``pull_request.opened`` deliveries (the fixture payload, ~28 KB): every request has
its own ``X-GitHub-Delivery``, PR number and head sha, and is signed again. Each side is warmed
up, then measured in interleaved rounds; latency is from sending a request to having read its
whole answer. Afterwards the store must hold every delivery, with one queued job each.

Target: p99 of the webhook at most 50 ms with the durable write before each answer; its
throughput against the bare endpoint's is printed, not held to a target. With ``--profile`` (or
over target) one more webhook round runs with the server's event loop thread under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import hashlib
import importlib.util
import io
import json
import os
import pstats
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from _paths import TESTS
from _report import Result, emit

PAYLOAD = TESTS / "data" / "github-webhooks" / "pull_request" / "opened.payload.json"
SECRET = "bench-webhook-secret"  # noqa: S105
HOST = "127.0.0.1"
CONCURRENCY = 32
WARMUP = 400  # per side, before the first round
ROUND_WARMUP = 64  # per side and round, untimed: opens the 32 connections again
ROUNDS = 3
PER_ROUND = 1_000  # timed requests per side and round: 3,000 each in all
PHASE_DEADLINE_SECONDS = 20.0  # a phase that takes longer is cut short and the run fails
P99_TARGET_MS = 50.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the servers (run in subprocesses: `webhook_ack.py --serve KIND ...`) ---------------------------


def bare_app() -> Starlette:
    async def receive(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"queued": True, "bytes": len(body)}, status_code=202)

    return Starlette(routes=[Route("/webhook", receive, methods=["POST"])])


class GcPauses:
    """The full (generation 2) collections of the server's own process while it serves: every
    thread stops for them."""

    def __init__(self) -> None:
        self.full: list[float] = []
        self.started = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        elif info["generation"] == 2:
            self.full.append(time.perf_counter() - self.started)


def serve(kind: str, port: int, database_url: str, stats_path: str, profile_path: str | None) -> None:
    """Run one server until SIGINT; then write ``stats_path`` (GC pauses) and, with
    ``profile_path``, the cProfile of the event loop thread."""
    from reviewbot.logs import configure_logging
    from reviewbot.settings import Settings

    settings = Settings(webhook_secret=SECRET, github_app_slug="reviewbot-bench", database_url=database_url)
    configure_logging(settings)  # as `reviewbot serve` (cli._serve): text lines, secrets redacted
    pauses = GcPauses()
    store = None
    if kind == "webhook":
        import reviewbot.service.server  # noqa: F401  (what `reviewbot serve` loads: the GC walks all of it)
        from reviewbot.service.app import create_app
        from reviewbot.store.store import open_store

        store = open_store(settings.database_url)
        app = create_app(settings, store)  # as build_app, less the review worker
    else:
        app = bare_app()
    # Served exactly as `reviewbot serve` serves: the same uvicorn settings and start-up steps.
    from reviewbot.service.server import freeze_startup_objects, uvicorn_config

    server = uvicorn.Server(uvicorn_config(app, settings, host=HOST, port=port))
    freeze_startup_objects()
    profiler = cProfile.Profile() if profile_path is not None else None
    tracked = len(gc.get_objects())
    gc.callbacks.append(pauses.on_gc)  # from here on: the collections while serving
    try:
        if profiler is not None:
            profiler.enable()
        server.run()  # on SIGINT it shuts down, then raises the signal again
    finally:
        if profiler is not None and profile_path is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)
        Path(stats_path).write_text(json.dumps({"gc_full": pauses.full, "tracked": tracked}))
        if store is not None:
            store.close()


# -- the load -------------------------------------------------------------------------------------


@dataclass
class Delivery:
    id: str
    headers: dict[str, str]
    body: bytes


class Deliveries:
    """Signed ``pull_request.opened`` deliveries, each with its own id, PR number and head sha."""

    def __init__(self) -> None:
        self.template = json.loads(PAYLOAD.read_bytes())
        self.secret = SECRET.encode()
        self.issued = 0

    def make(self, count: int) -> list[Delivery]:
        from reviewbot.service.webhooks import sign

        made = []
        for _ in range(count):
            self.issued += 1
            n = self.issued
            payload = self.template
            payload["number"] = payload["pull_request"]["number"] = 10_000 + n
            payload["pull_request"]["head"]["sha"] = hashlib.sha1(f"head-{n}".encode()).hexdigest()  # noqa: S324
            body = json.dumps(payload, indent=2).encode()  # as the fixture: ~28 KB
            delivery = str(uuid.uuid4())  # a GUID, as GitHub sends: the webhook takes nothing else
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/bench",
                "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": delivery,
                "X-GitHub-Hook-ID": "1",
                "X-Hub-Signature-256": sign(self.secret, body),
            }
            made.append(Delivery(delivery, headers, body))
        return made


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)  # seconds
    seconds: float = 0.0
    client_cpu: float = 0.0  # seconds of this process
    server_cpu: float = 0.0  # seconds of the server process, all its threads
    loop_cpu: float = 0.0  # seconds of the server's main thread (the event loop)
    failures: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # delivery ids answered as expected


def process_cpu(pid: int, tid: int | None = None) -> float:
    """CPU seconds of process ``pid`` (all its threads), or of its thread ``tid``."""
    stat = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


class RawTransport:
    """HTTP/1.1 over asyncio streams, one keep-alive connection per lane: a client that costs
    far less CPU per request than httpx, so the servers, not this process, set the pace."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.host_header = f"Host: {HOST}:{port}\r\n"
        self.connections: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def post(self, lane: int, delivery: Delivery) -> tuple[int, bytes]:
        connection = self.connections.get(lane)
        if connection is None:
            connection = self.connections[lane] = await asyncio.open_connection(HOST, self.port)
        reader, writer = connection
        head = (
            "POST /webhook HTTP/1.1\r\n"
            + self.host_header
            + "".join(f"{name}: {value}\r\n" for name, value in delivery.headers.items())
            + f"Content-Length: {len(delivery.body)}\r\n\r\n"
        )
        writer.write(head.encode("ascii") + delivery.body)
        response = await reader.readuntil(b"\r\n\r\n")
        status = int(response[9:12])
        lowered = response.lower()
        at = lowered.find(b"\r\ncontent-length:")
        if at < 0:
            raise ConnectionError(f"answer without Content-Length: {response[:200]!r}")
        length = int(lowered[at + 17 : lowered.index(b"\r\n", at + 2)])
        return status, await reader.readexactly(length)

    async def aclose(self) -> None:
        connections, self.connections = self.connections, {}
        for _, writer in connections.values():
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class HttpxTransport:
    """``httpx.AsyncClient`` with a pool of ``CONCURRENCY`` connections (``--client httpx``)."""

    def __init__(self, port: int) -> None:
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        self.client = httpx.AsyncClient(limits=limits, timeout=30.0)
        self.url = f"http://{HOST}:{port}/webhook"

    async def post(self, lane: int, delivery: Delivery) -> tuple[int, bytes]:
        response = await self.client.post(self.url, content=delivery.body, headers=delivery.headers)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


Transport = RawTransport | HttpxTransport


class Side:
    """One server subprocess and the client connections that drive it."""

    def __init__(self, kind: str, database_url: str, workdir: Path, client: str, profile: bool = False) -> None:
        self.kind = kind
        self.client = client
        self.port = free_port()
        self.log = workdir / f"{kind}{'-profile' if profile else ''}.log"
        self.profile = str(workdir / f"{kind}.prof") if profile else None
        self.stats = workdir / f"{kind}{'-profile' if profile else ''}.json"
        command = [sys.executable, __file__, "--serve", kind, "--port", str(self.port), "--database", database_url]
        command += ["--stats-to", str(self.stats)]
        if self.profile is not None:
            command += ["--profile-to", self.profile]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        self.transport: Transport | None = None

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} server did not start listening within {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def run(self, deliveries: list[Delivery]) -> Phase:
        """Send ``deliveries`` over ``CONCURRENCY`` connections; time each request."""
        if self.transport is None:
            self.transport = RawTransport(self.port) if self.client == "raw" else HttpxTransport(self.port)
        transport = self.transport
        phase = Phase()
        expected = b'"queued":true'
        pending = iter(deliveries)
        deadline = time.perf_counter() + PHASE_DEADLINE_SECONDS

        async def lane(number: int) -> None:
            for delivery in pending:
                if time.perf_counter() > deadline:
                    phase.failures.append("deadline")
                    return
                started = time.perf_counter()
                try:
                    status, content = await transport.post(number, delivery)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, httpx.HTTPError) as exc:
                    phase.failures.append(f"{type(exc).__name__}: {exc}")
                    return
                phase.latencies.append(time.perf_counter() - started)
                if status == 202 and expected in content:
                    phase.answered.append(delivery.id)
                else:
                    phase.failures.append(f"{status} {content[:200]!r}")

        pid = self.process.pid
        cpu, server, loop_cpu = time.process_time(), process_cpu(pid), process_cpu(pid, pid)
        started = time.perf_counter()
        await asyncio.gather(*(lane(number) for number in range(CONCURRENCY)))
        phase.seconds = time.perf_counter() - started
        phase.client_cpu = time.process_time() - cpu
        phase.server_cpu = process_cpu(pid) - server
        phase.loop_cpu = process_cpu(pid, pid) - loop_cpu
        return phase

    async def close(self) -> None:
        """Close the connections (the next phase opens new ones, in its untimed warm-up)."""
        if self.transport is not None:
            await self.transport.aclose()
            self.transport = None


def resolved_auto() -> str:
    """What uvicorn's default ``loop="auto"`` and ``http="auto"`` pick in this environment."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} + {http}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Totals:
    phases: list[Phase] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return sorted(latency for phase in self.phases for latency in phase.latencies)

    @property
    def requests(self) -> int:
        return sum(len(phase.latencies) for phase in self.phases)

    @property
    def seconds(self) -> float:
        return sum(phase.seconds for phase in self.phases)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = self.latencies
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000

    def cpu_share(self, attribute: str) -> float:
        return self.cpu(attribute) / self.seconds

    def cpu(self, attribute: str) -> float:
        return float(sum(getattr(phase, attribute) for phase in self.phases))

    def cpu_per_request(self, attribute: str) -> float:
        """µs of CPU per request."""
        return self.cpu(attribute) / self.requests * 1e6


def summary_line(name: str, totals: Totals) -> str:
    loop = totals.cpu_per_request("loop_cpu")
    return (
        f"{name:<8} {totals.requests:>6,} {totals.percentile(0.50):8.1f} {totals.percentile(0.95):8.1f} "
        f"{totals.percentile(0.99):8.1f} {totals.percentile(1.0):8.1f} {totals.rate:9,.0f} "
        f"{totals.cpu_share('client_cpu'):9.0%} {totals.cpu_share('server_cpu'):9.0%} "
        f"{loop:8.0f} {totals.cpu_per_request('server_cpu') - loop:8.0f}"
    )


async def drive(sides: list[Side], maker: Deliveries, rounds: int) -> tuple[dict[str, Totals], list[str], list[str]]:
    """Warm up every side, then ``rounds`` interleaved timed rounds."""
    totals = {side.kind: Totals() for side in sides}
    sent: list[str] = []  # to the webhook side, answered with queued: true
    failures: list[str] = []

    async def phase(side: Side, count: int) -> Phase:
        result = await side.run(maker.make(count))
        failures.extend(f"{side.kind}: {failure}" for failure in result.failures)
        if side.kind == "webhook":
            sent.extend(result.answered)
        return result

    try:
        for side in sides:
            await phase(side, WARMUP)
            await side.close()
        for _ in range(rounds):
            for side in sides:
                await phase(side, ROUND_WARMUP)
                totals[side.kind].phases.append(await phase(side, PER_ROUND))
                await side.close()  # idle connections would hit uvicorn's 5 s keep-alive timeout
    finally:
        for side in sides:
            await side.close()
    return totals, sent, failures


def check_store(database_url: str, sent: list[str]) -> tuple[int, int, dict[str, int]]:
    """Deliveries found and jobs in all, reading the store the webhook server wrote."""
    from reviewbot.store.store import open_store

    store = open_store(database_url)
    try:
        with store.read() as tx:
            found = sum(tx.one("SELECT 1 FROM deliveries WHERE id = ?", (delivery,)) is not None for delivery in sent)
        counts = store.job_counts()
    finally:
        store.close()
    return found, sum(counts.values()), {state: n for state, n in counts.items() if n}


def print_profile(side: Side, top: int = 22) -> None:
    assert side.profile is not None
    out = io.StringIO()
    stats = pstats.Stats(side.profile, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    print("\ncProfile of the webhook server's event loop thread, by own time:")
    print(text[text.find("   ncalls") :].rstrip())


async def profile_round(database_url: str, workdir: Path, maker: Deliveries, client: str) -> None:
    side = Side("webhook", database_url, workdir, client, profile=True)
    try:
        side.wait_ready()
        await side.run(maker.make(ROUND_WARMUP))
        phase = await side.run(maker.make(PER_ROUND))
        await side.close()
    finally:
        side.stop()
    totals = Totals([phase])
    print(f"\nprofiled round ({PER_ROUND:,} requests; cProfile slows both processes):")
    print(summary_line("webhook", totals))
    print_profile(side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profile", action="store_true", help="profile a webhook round even within target")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw asyncio streams (default) or httpx.AsyncClient, which saturates a core first",
    )
    parser.add_argument("--serve", choices=("webhook", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--stats-to", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.port, args.database, args.stats_to, args.profile_to)
        return

    with tempfile.TemporaryDirectory(prefix="webhook-ack-") as tmp:
        workdir = Path(tmp)
        database_url = f"sqlite:///{workdir / 'reviewbot.db'}"
        maker = Deliveries()
        sides: list[Side] = []
        try:
            for kind in ("bare", "webhook"):
                sides.append(Side(kind, database_url, workdir, args.client))
            for side in sides:
                side.wait_ready()
            totals, sent, failures = asyncio.run(drive(sides, maker, ROUNDS))
        finally:
            for side in sides:
                side.stop()
        report(totals, len(maker.make(1)[0].body), sides)
        found, jobs, states = check_store(database_url, sent)
        print(
            f"store: {found:,} of {len(sent):,} acknowledged deliveries recorded; jobs {jobs:,} {states}"
            + (f"; {len(failures)} failures, first: {failures[0]}" if failures else "")
        )
        assert not failures, failures[:5]
        assert found == len(sent) == jobs, "an acknowledged delivery or its job is missing from the store"

        p99 = totals["webhook"].percentile(0.99)
        if args.profile or p99 > P99_TARGET_MS:
            asyncio.run(profile_round(f"sqlite:///{workdir / 'profile.db'}", workdir, maker, args.client))
    emit(
        Result(
            "webhook_ack",
            f"webhook p99 / {P99_TARGET_MS:.0f} ms",
            p99 / P99_TARGET_MS,
            1.0,
            f"p99 {p99:.1f} ms at concurrency {CONCURRENCY}",
        )
    )


def report(totals: dict[str, Totals], size: int, sides: list[Side]) -> None:
    bare = totals["bare"]
    print(
        f"{ROUNDS} interleaved rounds of {PER_ROUND:,} signed pull_request deliveries ({size:,} bytes) per side, "
        f"concurrency {CONCURRENCY}, after {WARMUP} warm-up requests; uvicorn {uvicorn.__version__} "
        f"(loop and http 'auto': {resolved_auto()}), one worker each"
    )
    print(
        f"\n{'':<8} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>9} "
        f"{'client':>9} {'server':>9} {'loop µs':>8} {'other µs':>8}"
    )
    print(summary_line("bare", bare))
    print(summary_line("webhook", totals["webhook"]))
    print("client, server: CPU time ÷ wall time of the timed phases (100% = one core busy)")
    print(
        "loop µs, other µs: server CPU per request in its event loop thread, and elsewhere "
        "(its other threads: the writer thread that checks, commits and logs)"
    )
    webhook = totals["webhook"]
    print(
        f"\nthroughput webhook / bare  {webhook.rate / bare.rate:.3f}×; "
        f"p99 webhook {webhook.percentile(0.99):.1f} ms (target ≤ {P99_TARGET_MS:.0f} ms)"
    )
    for side in sides:
        stats = json.loads(side.stats.read_text()) if side.stats.is_file() else {}
        pauses = sorted(stats.get("gc_full", []))
        longest = f", longest {pauses[-1] * 1000:.0f} ms" if pauses else ""
        print(
            f"{side.kind} server: {stats.get('tracked', 0):,} objects tracked by the GC when serving starts; "
            f"{len(pauses)} full collections while serving{longest}"
        )


if __name__ == "__main__":
    main()
