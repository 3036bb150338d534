"""Sustained throughput of the review queue on PostgreSQL, and webhook acknowledgements meanwhile.

One ``reviewbot serve --no-worker`` and four ``reviewbot worker --concurrency 1`` processes share
a fresh schema of the PostgreSQL server at ``REVIEWBOT_BENCH_POSTGRES_URL`` (default: the local
one the tests use). The fake GitHub and the fake model (``tests/fake_github.py``,
``tests/fake_openai.py``) run in this process, on 127.0.0.1, served as the tests serve them;
the model takes 1.0 s per request plus 50 output tokens a second, and answers
each review with one finding of 72 to 100 tokens (about 70 is the least a finding takes), so a
review's one request takes 2.44–3.00 s on the server.

Sixty pull requests of ``tests/data/samples/sample_leeway.diff`` (one model request each) are
registered on the fake GitHub, and a load process (``--load``) sends their signed
``pull_request.opened`` deliveries at a steady rate of 1.5× what the four lanes can absorb, so a
backlog builds and no worker should wait for work; beside them it sends signed
``pull_request.labeled`` deliveries (ignored, but recorded) at 20 a second until the last review
is posted. Each request is sent on schedule (open loop, over keep-alive connections), and its
latency is from writing it to having read its whole answer.

The ideal is the makespan of a greedy list schedule on 4 lanes of the reviews' model times (as
the fake server computes them: 1.0 s + tokens / 50), each released when its delivery was
acknowledged: nothing but the model takes time, and a lane takes the next review the moment it
is free. The figure is the measured makespan (first delivery sent → last review posted) ÷ that
ideal, i.e. ideal ÷ measured reviews per minute; target ≤ 1/0.9. A second figure is the p99 of
all acknowledgements (opened and ignored) ÷ 50 ms. Where a worker's time went is printed too:
each review's time in hand split around the model request, the gaps between jobs, and the
GitHub calls per review.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import heapq
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast
from urllib.parse import quote

import httpx
import psycopg
from psycopg import sql

from _paths import SAMPLE_DIFFS, TESTS, FakeServer, fake_openai, new_fake_server
from _report import Result, emit

POSTGRES_URL = os.environ.get("REVIEWBOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
HOST = "127.0.0.1"
REPO = "Codertocat/Hello-World"
PAYLOAD = TESTS / "data" / "github-webhooks" / "pull_request" / "opened.payload.json"
DIFF = (SAMPLE_DIFFS / "sample_leeway.diff").read_text("utf-8")
BASE_SHA = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
FIRST_NUMBER = 1001
WORKERS = 4
WORKER_CONCURRENCY = 1  # one review per process: 4 lanes, each a process of its own
PULLS = 60
SECONDS_PER_REQUEST = 1.0
OUTPUT_TOKENS_PER_SECOND = 50.0
ANSWER_TOKENS = (72, 100)  # each review's one finding (about 70 tokens at least), varied by pull request
OVERSUBSCRIBE = 1.5  # opened deliveries per second ÷ reviews per second the lanes can absorb
IGNORED_PER_SECOND = 20.0
REVIEWS_DEADLINE_SECONDS = 75.0
THROUGHPUT_TARGET = 0.9  # measured ÷ ideal reviews per minute, at least
P99_TARGET_MS = 50.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TITLE = re.compile(r"Bench PR #(\d+)")
PULL_PATH = re.compile(r"/pulls/(\d+)")
BUG = {  # the deliberate bug in sample_leeway.diff, as tests/test_service_e2e.py reports it
    "path": "src/itsdangerous/timed.py",
    "line": 155,
    "start_line": None,
    "side": "RIGHT",
    "severity": "high",
    "category": "bug",
    "title": "Clock-skew check rejects fresh signatures",
    "body": "",
    "quote": "if age < self.leeway:",
    "suggestion": None,
}


# -- the fake GitHub, seen through a protocol (mypy bench does not see tests/) --------------------


class GitHubRequest(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def received_at(self) -> float: ...


class FakeGitHub(Protocol):
    """The part of ``fake_github.FakeGitHub`` this benchmark uses."""

    app_id: int
    private_key_pem: str
    webhook_secret: str

    @property
    def api_url(self) -> str: ...
    @property
    def requests(self) -> Sequence[GitHubRequest]: ...
    def start(self, timeout: float = ...) -> None: ...
    def stop(self, timeout: float = ...) -> None: ...
    def add_pull(self, repo: str, number: int, diff_text: str, *, title: str, head_sha: str, base_sha: str) -> None: ...
    def review_count(self, repo: str, number: int, commit_id: str) -> int: ...


def new_fake_github() -> FakeGitHub:
    fake_openai()  # puts tests/ on sys.path
    module = __import__("fake_github")
    return cast("FakeGitHub", module.FakeGitHub())


def head_of(number: int) -> str:
    return hashlib.sha1(f"bench-head-{number}".encode()).hexdigest()  # noqa: S324


def answer_tokens(number: int) -> int:
    low, high = ANSWER_TOKENS
    return low + (number * 37) % (high - low + 1)


def server_seconds(tokens: int) -> float:
    """How long the fake model takes to answer with ``tokens`` output tokens."""
    return SECONDS_PER_REQUEST + tokens / OUTPUT_TOKENS_PER_SECOND


class Responder:
    """One finding on the bug in the diff, ``answer_tokens(PR)`` tokens long as the server counts
    (about four characters a token); records each request's tokens by pull request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tokens: dict[int, list[int]] = {}

    def __call__(self, body: dict[str, Any]) -> Any:
        shown = body["messages"][-1]["content"]
        match = TITLE.search(shown)
        number = int(match.group(1)) if match else 0
        wanted = answer_tokens(number)
        bare = len(json.dumps({"findings": [BUG]}))
        content = json.dumps({"findings": [dict(BUG, body="Compare with -leeway." + "." * (4 * wanted - bare - 21))]})
        tokens = (len(content) + 3) // 4
        with self._lock:
            self.tokens.setdefault(number, []).append(tokens)
        return fake_openai().Reply.text(content)


# -- a fresh PostgreSQL schema --------------------------------------------------------------------


@contextlib.contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """A new, empty schema, dropped afterwards; yields a store URL that uses it (as the tests do)."""
    name = f"reviewbot_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield f"{server_url}{'&' if '?' in server_url else '?'}options={quote(f'-csearch_path={name}')}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def count_rows(database_url: str, table: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


# -- the service processes ------------------------------------------------------------------------


class Process:
    """One ``reviewbot`` process, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "reviewbot", *args], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
            )

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}: {self.tail()}")

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text("utf-8", errors="replace")[-chars:] if self.log.is_file() else ""

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.tail(100_000):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not log {text!r} within {timeout} s: {self.tail()}")
            time.sleep(0.05)

    def cpu(self) -> float:
        """CPU seconds the process has used (all its threads)."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self, signum: signal.Signals = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def service_env(github: FakeGitHub, model: FakeServer, database_url: str) -> dict[str, str]:
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith(("REVIEWBOT_", "OPENAI_"))},
        "REVIEWBOT_GITHUB_APP_ID": str(github.app_id),
        "REVIEWBOT_GITHUB_PRIVATE_KEY": github.private_key_pem,
        "REVIEWBOT_GITHUB_API_URL": github.api_url,
        "REVIEWBOT_WEBHOOK_SECRET": github.webhook_secret,
        "REVIEWBOT_API_KEY": "sk-bench",
        "REVIEWBOT_BASE_URL": model.base_url,
        "REVIEWBOT_MAX_RETRIES": "0",
        "REVIEWBOT_DATABASE_URL": database_url,
    }


def wait_healthy(process: Process, url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        process.check_alive()
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} did not answer /healthz within {timeout} s: {process.tail()}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


# -- the load (its own process: `queue_throughput.py --load CONFIG`) ------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    kind: str  # "opened" or "ignored"
    number: int  # the pull request
    scheduled: float  # time.monotonic(), the same clock in every process on this machine
    sent: float
    acked: float
    ok: bool
    answer: str


class Connections:
    """Keep-alive HTTP/1.1 connections over asyncio streams: an idle one, or a new one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def post(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                break
            writer.close()
        else:
            reader, writer = await asyncio.open_connection(HOST, self.port)
            self.opened += 1
        head = f"POST /webhook HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
        response = await reader.readuntil(b"\r\n\r\n")
        lowered = response.lower()
        at = lowered.index(b"\r\ncontent-length:")
        content = await reader.readexactly(int(lowered[at + 17 : lowered.index(b"\r\n", at + 2)]))
        self.idle.append((reader, writer))
        return int(response[9:12]), content

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def signed(secret: bytes, payload: dict[str, Any], delivery: str) -> tuple[dict[str, str], bytes]:
    from reviewbot.service.webhooks import sign

    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/bench",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": "1",
        "X-Hub-Signature-256": sign(secret, body),
    }
    return headers, body


def deliveries(
    config: dict[str, Any],
) -> tuple[list[tuple[int, dict[str, str], bytes]], list[tuple[int, dict[str, str], bytes]]]:
    """The signed ``opened`` deliveries, one per pull request, and enough ``labeled`` ones."""
    template = json.loads(PAYLOAD.read_bytes())
    secret = config["secret"].encode()
    opened, ignored = [], []
    for number in config["numbers"]:
        payload = dict(template, number=number)
        payload["pull_request"] = dict(template["pull_request"], number=number, title=f"Bench PR #{number}")
        payload["pull_request"]["head"] = dict(template["pull_request"]["head"], sha=head_of(number))
        opened.append((number, *signed(secret, payload, str(uuid.uuid4()))))
    numbers = config["numbers"]
    for index in range(int(IGNORED_PER_SECOND * (REVIEWS_DEADLINE_SECONDS + 15))):
        number = numbers[index % len(numbers)]
        # A label of its own for each, as GitHub's deliveries differ: the same body again would be a duplicate.
        label = {"id": index + 1, "name": f"bench-{index + 1}"}
        payload = dict(template, action="labeled", number=number, label=label)
        ignored.append((number, *signed(secret, payload, str(uuid.uuid4()))))
    return opened, ignored


async def load(config: dict[str, Any]) -> list[Sent]:
    """Send the deliveries on schedule until standard input closes; every answer, in order."""
    opened, ignored = deliveries(config)
    connections = Connections(config["port"])
    results: list[Sent] = []
    in_flight: set[asyncio.Task[None]] = set()
    expected = {"opened": (202, b'"queued":true'), "ignored": (200, b'"ignored"')}

    async def one(kind: str, number: int, headers: dict[str, str], body: bytes, scheduled: float) -> None:
        sent = time.monotonic()
        try:
            status, content = await connections.post(headers, body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            status, content = 0, f"{type(exc).__name__}: {exc}".encode()
        acked = time.monotonic()
        ok = status == expected[kind][0] and expected[kind][1] in content
        results.append(Sent(kind, number, scheduled, sent, acked, ok, content[:200].decode(errors="replace")))

    async def stream(kind: str, items: list[tuple[int, dict[str, str], bytes]], rate: float, start: float) -> None:
        for index, (number, headers, body) in enumerate(items):
            scheduled = start + index / rate
            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
            task = asyncio.create_task(one(kind, number, headers, body, scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

    start = time.monotonic() + 0.2
    streams = [
        asyncio.create_task(stream("opened", opened, config["opened_rate"], start)),
        asyncio.create_task(stream("ignored", ignored, IGNORED_PER_SECOND, start + 0.5 / IGNORED_PER_SECOND)),
    ]
    await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our standard input
    for task in streams:
        task.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    if in_flight:
        await asyncio.wait(set(in_flight), timeout=10)
    connections.close()
    return sorted(results, key=lambda sent: sent.scheduled)


def run_load(config_json: str) -> None:
    config = json.loads(config_json)
    results = asyncio.run(load(config))
    Path(config["out"]).write_text(json.dumps([dataclasses.astuple(sent) for sent in results]))


class Load:
    """The load process: started with its configuration, stopped by closing its standard input."""

    def __init__(self, port: int, secret: str, numbers: list[int], opened_rate: float, workdir: Path) -> None:
        self.out = workdir / "load.json"
        config = {"port": port, "secret": secret, "numbers": numbers, "opened_rate": opened_rate, "out": str(self.out)}
        self.log = workdir / "load.log"
        with self.log.open("wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, __file__, "--load", json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).parent,
            )

    def finish(self, timeout: float = 20.0) -> list[Sent]:
        stdin = cast("IO[bytes]", self.popen.stdin)
        with contextlib.suppress(OSError):
            stdin.close()
        try:
            self.popen.wait(timeout)
        finally:
            self.kill()
        if self.popen.returncode != 0 or not self.out.is_file():
            raise RuntimeError(f"the load process failed ({self.popen.returncode}): {self.log.read_text()[-2000:]}")
        return [Sent(*row) for row in json.loads(self.out.read_text())]

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


# -- the analysis ---------------------------------------------------------------------------------


def greedy_makespan(durations: Sequence[float], lanes: int, releases: Sequence[float] | None = None) -> float:
    """Each job, in order, starts on the lane that comes free first, not before its release."""
    free = [0.0] * lanes
    end = 0.0
    for index, duration in enumerate(durations):
        start = max(heapq.heappop(free), releases[index] if releases is not None else 0.0)
        heapq.heappush(free, start + duration)
        end = max(end, start + duration)
    return end


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] if ordered else float("nan")


def spread(values: Sequence[float], scale: float = 1000.0) -> str:
    """``median / p90 / max`` in milliseconds (or seconds with ``scale`` 1)."""
    if not values:
        return "—"
    unit = "ms" if scale == 1000.0 else "s"
    digits = 0 if scale == 1000.0 else 2
    return (
        f"{percentile(values, 0.5) * scale:.{digits}f} / {percentile(values, 0.9) * scale:.{digits}f} / "
        f"{max(values) * scale:.{digits}f} {unit}"
    )


@dataclass(frozen=True, slots=True)
class Review:
    """One pull request's way through the queue, on the monotonic clock."""

    number: int
    released: float  # its delivery acknowledged (the job committed)
    started: float  # the first GitHub request naming it (shortly after the claim)
    model_at: float  # its model request reached the fake server
    model_seconds: float  # the server's time for it
    posted: float  # the review's POST reached the fake GitHub
    finished: float  # the job marked done in the store
    worker: str


@dataclass(frozen=True, slots=True)
class Outcome:
    t0: float
    reviews: list[Review]
    sent: list[Sent]
    github_calls: Counter[str]
    steps: list[tuple[str, list[float]]]  # the steps of a review, in order, with their durations
    jobs: dict[str, int]
    deliveries_stored: int
    cpu: dict[str, float]  # CPU seconds of each process from the first delivery to the last job done
    seconds: float  # that time


def build_reviews(
    github: FakeGitHub, model: FakeServer, responder: Responder, sent: list[Sent], jobs: Sequence[Any], offset: float
) -> list[Review]:
    acked = {s.number: s.acked for s in sent if s.kind == "opened"}
    started: dict[int, float] = {}
    posted: dict[int, float] = {}
    for request in github.requests:
        match = PULL_PATH.search(request.path)
        if match is None:
            continue
        number = int(match.group(1))
        started.setdefault(number, request.received_at)
        if request.method == "POST" and request.path.endswith("/reviews"):
            posted[number] = request.received_at
    model_at: dict[int, float] = {}
    for request in model.requests:
        match = TITLE.search(request.body["messages"][-1]["content"])
        if match is not None:
            model_at.setdefault(int(match.group(1)), request.received_at)
    reviews = []
    for job in jobs:
        number = job.pr_number
        reviews.append(
            Review(
                number,
                acked[number],
                started[number],
                model_at[number],
                sum(server_seconds(tokens) for tokens in responder.tokens[number]),
                posted[number],
                job.updated_at - offset,
                job.lease_owner or "?",
            )
        )
    return sorted(reviews, key=lambda review: review.released)


STEP_NOTES = {
    "GET /pulls/N → GET /pulls/N/reviews": "+ GET /app (the App's slug, with a JWT)",
    "GET /pulls/N/reviews → GET /pulls/N (diff)": "+ GET the repo config",
    "GET /pulls/N (diff) → model request": "plan, budget check (store), model client",
    "model answered → GET /pulls/N (head again)": "parse, ledger write (store)",
    "GET /pulls/N (head again) → GET /pulls/N/comments": "known fingerprints (store)",
    "GET /pulls/N/comments → POST /pulls/N/reviews": "build the review",
    "POST /pulls/N/reviews → job done": "record review, finish job (store)",
}


def review_steps(requests: Sequence[GitHubRequest], reviews: list[Review]) -> list[tuple[str, list[float]]]:
    """The time between consecutive events of each review (GitHub requests that name its pull
    request, its model request and answer, its job done), by step, in the order they happen."""
    events: dict[int, list[tuple[str, float]]] = {}
    for request in requests:
        match = PULL_PATH.search(request.path)
        if match is None:
            continue
        mine = events.setdefault(int(match.group(1)), [])
        route = github_route(request.method, request.path)
        if route == "GET /pulls/N":
            if "diff" in request.headers.get("accept", ""):
                route += " (diff)"
            elif any(label.startswith("GET /pulls/N") for label, _ in mine):
                route += " (head again)"
        mine.append((route, request.received_at))
    steps: dict[str, list[float]] = {}
    for review in reviews:
        mine = events.setdefault(review.number, [])
        mine += [("model request", review.model_at), ("model answered", review.model_at + review.model_seconds)]
        mine.append(("job done", review.finished))
        mine.sort(key=lambda event: event[1])
        for (before, at), (after, then) in itertools.pairwise(mine):
            steps.setdefault(f"{before} → {after}", []).append(then - at)
    return sorted(steps.items(), key=lambda item: -len(item[1]))


def github_route(method: str, path: str) -> str:
    route = re.sub(r"/pulls/\d+", "/pulls/N", path)
    route = re.sub(r"/installations/\d+", "/installations/I", route)
    route = re.sub(r"/contents/.*", "/contents/…", route)
    return f"{method} {route.removeprefix('/repos/' + REPO)}"


# -- the run --------------------------------------------------------------------------------------


def wait_for_reviews(github: FakeGitHub, processes: list[Process], numbers: list[int], load: Load) -> None:
    heads = {number: head_of(number) for number in numbers}
    deadline = time.monotonic() + REVIEWS_DEADLINE_SECONDS
    while heads:
        for number in [n for n, head in heads.items() if github.review_count(REPO, n, head) >= 1]:
            del heads[number]
        if not heads:
            return
        for process in processes:
            process.check_alive()
        if load.popen.poll() is not None:
            raise RuntimeError(f"the load process exited early: {load.log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(heads)} of {len(numbers)} reviews not posted within {REVIEWS_DEADLINE_SECONDS} s")
        time.sleep(0.05)


def wait_for_jobs(store: Any, count: int, timeout: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = store.list_jobs(repo=REPO)
        if sum(job.state in ("done", "dropped", "failed") for job in jobs) >= count:
            return list(jobs)
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs not finished in the store: {store.job_counts()}")
        time.sleep(0.05)


def run(pulls: int, oversubscribe: float, workdir: Path) -> Outcome:
    from reviewbot.store.store import open_store

    numbers = list(range(FIRST_NUMBER, FIRST_NUMBER + pulls))
    durations = [server_seconds(answer_tokens(number)) for number in numbers]
    opened_rate = oversubscribe * WORKERS * WORKER_CONCURRENCY / (sum(durations) / len(durations))
    github, model, responder = new_fake_github(), new_fake_server(), Responder()
    processes: list[Process] = []
    load: Load | None = None
    with postgres_schema(POSTGRES_URL) as database_url:
        store = open_store(database_url)  # creates the tables once, before five processes start
        try:
            github.start()
            model.start()
            model.set_latency(SECONDS_PER_REQUEST, OUTPUT_TOKENS_PER_SECOND)
            model.set_default(responder)
            for number in numbers:
                github.add_pull(
                    REPO, number, DIFF, title=f"Bench PR #{number}", head_sha=head_of(number), base_sha=BASE_SHA
                )
            env = service_env(github, model, database_url)
            port = free_port()
            server = Process("serve", ["serve", "--no-worker", "--port", str(port)], env, workdir)
            processes.append(server)
            for index in range(WORKERS):
                args = ["worker", "--concurrency", str(WORKER_CONCURRENCY)]
                processes.append(Process(f"worker-{index + 1}", args, env, workdir))
            wait_healthy(server, f"http://{HOST}:{port}")
            for process in processes[1:]:
                process.wait_for_log("started; SIGTERM or SIGINT stops it", 20.0)
            cpu = {process.name: -process.cpu() for process in processes} | {"bench": -time.process_time()}
            load = Load(port, github.webhook_secret, numbers, opened_rate, workdir)
            wait_for_reviews(github, processes, numbers, load)
            jobs = wait_for_jobs(store, pulls)
            for process in processes:
                cpu[process.name] += process.cpu()
            cpu["bench"] += time.process_time()
            cpu_end = time.monotonic()
            sent = load.finish()
            load = None
            offset = time.time() - time.monotonic()
            reviews = build_reviews(github, model, responder, sent, jobs, offset)
            calls = Counter(github_route(r.method, r.path) for r in github.requests)
            steps = review_steps(github.requests, reviews)
            counts: dict[str, int] = {state: n for state, n in store.job_counts().items() if n}
            stored = count_rows(database_url, "deliveries")
        except BaseException:
            for process in processes:
                print(f"--- {process.name} log (end):\n{process.tail()}", file=sys.stderr)
            raise
        finally:
            if load is not None:
                load.kill()
            for process in processes:
                process.stop(signal.SIGINT if process.name == "serve" else signal.SIGTERM)
            store.close()
            model.stop()
            github.stop()
    t0 = min(s.sent for s in sent)
    check(reviews, sent, counts, stored, github, numbers)
    return Outcome(t0, reviews, sent, calls, steps, counts, stored, cpu, cpu_end - t0)


def check(
    reviews: list[Review], sent: list[Sent], jobs: dict[str, int], stored: int, github: FakeGitHub, numbers: list[int]
) -> None:
    failed = [s for s in sent if not s.ok]
    assert not failed, f"{len(failed)} deliveries not answered as expected, first: {failed[0]}"
    assert jobs == {"done": len(numbers)}, f"jobs should all be done once each: {jobs}"
    assert stored == len(sent), f"{stored} deliveries stored, {len(sent)} acknowledged"
    twice = [n for n in numbers if github.review_count(REPO, n, head_of(n)) != 1]
    assert not twice, f"pull requests without exactly one review: {twice[:5]}"
    assert len(reviews) == len(numbers)


# -- the report -----------------------------------------------------------------------------------


def report(outcome: Outcome, pulls: int, oversubscribe: float) -> tuple[float, float]:
    """Print the figures; return (measured ÷ ideal makespan, ack p99 in ms)."""
    t0, reviews = outcome.t0, outcome.reviews
    durations = [review.model_seconds for review in reviews]
    releases = [review.released - t0 for review in reviews]
    lanes = WORKERS * WORKER_CONCURRENCY
    makespan = max(review.posted for review in reviews) - t0
    ideal = greedy_makespan(durations, lanes, releases)
    at_once = greedy_makespan(durations, lanes)
    mean = sum(durations) / len(durations)
    opened = [s for s in outcome.sent if s.kind == "opened"]
    sending = max(s.sent for s in opened) - t0
    print(
        f"{pulls} pull requests (sample_leeway.diff, one model request each); {WORKERS} × `reviewbot worker "
        f"--concurrency {WORKER_CONCURRENCY}` + `reviewbot serve --no-worker` on PostgreSQL (a fresh schema)"
    )
    print(
        f"model: {SECONDS_PER_REQUEST:.1f} s + output tokens / {OUTPUT_TOKENS_PER_SECOND:.0f} per request → "
        f"{min(durations):.2f}–{max(durations):.2f} s, mean t_review {mean:.2f} s"
    )
    print(
        f"opened deliveries: {len(opened)} over {sending:.1f} s ({len(opened) / sending:.2f}/s, "
        f"{oversubscribe:.1f}× the {lanes / mean:.2f}/s {lanes} lanes absorb); ignored (labeled): "
        f"{len(outcome.sent) - len(opened)} at {IGNORED_PER_SECOND:.0f}/s"
    )
    print(f"\n{'':<44}{'makespan':>9}  {'reviews/min':>11}")
    print(f"{'ideal, simple: 4 × 60 / t_review':<44}{pulls * mean / lanes:8.2f}s  {lanes * 60 / mean:11.1f}")
    print(f"{'ideal, greedy 4-lane, all queued at t0':<44}{at_once:8.2f}s  {pulls * 60 / at_once:11.1f}")
    print(f"{'ideal, greedy 4-lane, released at each ack':<44}{ideal:8.2f}s  {pulls * 60 / ideal:11.1f}")
    print(f"{'measured: first delivery → last review POST':<44}{makespan:8.2f}s  {pulls * 60 / makespan:11.1f}")
    print(
        f"measured ÷ ideal rate {ideal / makespan:.3f}× (target ≥ {THROUGHPUT_TARGET}×); "
        f"lanes busy in the model {sum(durations) / (lanes * makespan):.1%} of the makespan"
    )
    print_breakdown(outcome)
    return makespan / ideal, print_acks(outcome)


def print_breakdown(outcome: Outcome) -> None:
    reviews = outcome.reviews
    before = [r.model_at - r.started for r in reviews]
    after = [r.posted - (r.model_at + r.model_seconds) for r in reviews]
    closing = [r.finished - r.posted for r in reviews]
    in_hand = [r.finished - r.started - r.model_seconds for r in reviews]
    print("\nper review, median / p90 / max:")
    print(f"  time in a worker beyond the model        {spread(in_hand)}")
    print(f"    first GitHub call → model request      {spread(before)}")
    print(f"    model answered → review POST           {spread(after)}")
    print(f"    review POST → job done in the store    {spread(closing)}")
    waiting, idle, first = [], [], []
    by_worker: dict[str, list[Review]] = {}
    for review in reviews:
        by_worker.setdefault(review.worker, []).append(review)
    for mine in by_worker.values():
        mine.sort(key=lambda review: review.started)
        first.append(mine[0].started - mine[0].released)
        for previous, current in itertools.pairwise(mine):
            if current.released <= previous.finished:
                waiting.append(current.started - previous.finished)
            else:
                idle.append(current.started - max(previous.finished, current.released))
    print(
        f"  job done → next job's first GitHub call, work waiting (claim, clients)  {spread(waiting)}  "
        f"({len(waiting)} times)"
    )
    print(f"  delivery acked → picked up by an idle worker (1 s poll)  {spread(idle + first)}  ({len(idle + first)})")
    print(
        "  reviews per worker: "
        + ", ".join(str(len(mine)) for mine in sorted(by_worker.values(), key=len, reverse=True))
    )
    lanes = len(by_worker)
    print(
        f"  a lane's time lost, on average: {sum(in_hand) / lanes:.2f} s in hand beyond the model, "
        f"{sum(waiting) / lanes:.2f} s between jobs with work waiting, "
        f"{(sum(first) + sum(idle)) / lanes:.2f} s from a delivery to an idle worker taking it"
    )
    print("steps of a review (median / p90 / max), in order:")
    for step, values in outcome.steps:
        if len(values) * 2 >= len(reviews):
            print(f"  {step:<52}{spread(values):>22}  {STEP_NOTES.get(step, '')}")
    workers = [seconds for name, seconds in outcome.cpu.items() if name.startswith("worker")]
    print(
        f"CPU from the first delivery to the last job done ({outcome.seconds:.1f} s, {os.cpu_count()} cores): "
        f"workers {' + '.join(f'{seconds:.1f}' for seconds in workers)} s = "
        f"{sum(workers) / len(reviews) * 1000:.0f} ms per review; serve {outcome.cpu['serve']:.1f} s; "
        f"this process (fake GitHub and model) {outcome.cpu['bench']:.1f} s"
    )
    total = sum(outcome.github_calls.values())
    print(f"GitHub requests: {total} ({total / len(reviews):.1f} per review)")
    for route, count in outcome.github_calls.most_common():
        print(f"  {count:>5}  {route}")


def print_acks(outcome: Outcome) -> float:
    print(f"\nwebhook acknowledgements, ms{'':<8}{'count':>6} {'p50':>7} {'p99':>7} {'max':>7}")
    every = [s.acked - s.sent for s in outcome.sent]
    for kind in ("opened", "ignored"):
        values = [s.acked - s.sent for s in outcome.sent if s.kind == kind]
        print(
            f"  {kind:<32}{len(values):>6} {percentile(values, 0.5) * 1000:7.1f} "
            f"{percentile(values, 0.99) * 1000:7.1f} {max(values) * 1000:7.1f}"
        )
    p99 = percentile(every, 0.99) * 1000
    print(f"  {'all':<32}{len(every):>6} {percentile(every, 0.5) * 1000:7.1f} {p99:7.1f} {max(every) * 1000:7.1f}")
    late = max(s.sent - s.scheduled for s in outcome.sent)
    print(f"  (sent open loop: the latest send was {late * 1000:.1f} ms behind its schedule)")
    print(f"store: jobs {outcome.jobs}; {outcome.deliveries_stored} deliveries recorded")
    return p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pulls", type=int, default=PULLS, help=f"pull requests to review (default {PULLS})")
    parser.add_argument(
        "--oversubscribe",
        type=float,
        default=OVERSUBSCRIBE,
        help=f"opened deliveries per second ÷ what the lanes absorb (default {OVERSUBSCRIBE})",
    )
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load is not None:
        run_load(args.load)
        return
    with tempfile.TemporaryDirectory(prefix="queue-throughput-") as tmp:
        outcome = run(args.pulls, args.oversubscribe, Path(tmp))
    ratio, p99 = report(outcome, args.pulls, args.oversubscribe)
    emit(
        Result(
            "queue_throughput",
            "ideal / measured reviews per min",
            ratio,
            round(1 / THROUGHPUT_TARGET, 3),
            f"{len(outcome.reviews) * 60 / (max(r.posted for r in outcome.reviews) - outcome.t0):.1f} reviews/min, "
            f"{WORKERS}×{WORKER_CONCURRENCY} lanes",
        )
    )
    emit(
        Result(
            "queue_throughput",
            f"ack p99 under load / {P99_TARGET_MS:.0f} ms",
            p99 / P99_TARGET_MS,
            1.0,
            f"p99 {p99:.1f} ms over {len(outcome.sent)} deliveries",
        )
    )


if __name__ == "__main__":
    main()
