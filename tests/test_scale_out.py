"""Several replicas on one PostgreSQL database, as real processes ("Several replicas on Postgres"
in the README): ``reviewbot serve --no-worker`` and ``reviewbot worker`` against the fake GitHub
and the fake model on loopback.

- 200 signed deliveries for 20 pull requests in 3 repositories go to two web servers at once, a
  quarter of them duplicates, while pushes move the pull requests on in bursts; two workers then
  post exactly one review for every last head, never two for one head, and never one finding twice.
- A worker SIGKILLed mid-review leaves its job to the other once the lease runs out; the review
  is posted once.

The heaviest tests of the suite (about 15 s together). They need PostgreSQL: skipped without it,
failed under ``REVIEWBOT_REQUIRE_POSTGRES=1``, like every PostgreSQL test.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import databases
from fake_github import FakeGitHub
from fake_openai import FakeOpenAI, Reply
from fixtures_path import FIXTURE_DIFFS, SAMPLE_DIFFS, WEBHOOKS
from guids import guid
from reviewbot.engine.diff import parse_diff
from reviewbot.engine.filters import FilterRules, select_files
from reviewbot.service.webhooks import sign
from reviewbot.store.records import Job
from reviewbot.store.store import open_store

LEASE_SECONDS = 3
BASE_SHA = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
REPOS = ("scale-org/alpha", "scale-org/beta", "scale-org/gamma")
PULLS_PER_REPO = (7, 7, 6)  # 20 pull requests
UNIQUE_DELIVERIES = 150  # an `opened` per pull request, the rest `synchronize`
DUPLICATES = 50  # 25 % of the 200 deliveries sent
INITIAL_FILES = 2  # files of a pull request when it is opened; each push adds one
SEED = 20250501
_FILE_HEADER = re.compile(r"^File: (.+?)(?: \((?:renamed from .+|[a-z-]+)\))?$")
_ADDED_LINE = re.compile(r"^(\d+) \+(.*\S.*)$")
_FINGERPRINT = re.compile(r"<!-- reviewbot:fingerprint=([0-9a-f]{16}) -->")
_REPEATED = re.compile(r"\((\d+) findings? already raised earlier not repeated\)")


# -- the processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def child_env(github: FakeGitHub, model: FakeOpenAI, database_url: str) -> dict[str, str]:
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith(("REVIEWBOT_", "OPENAI_"))},
        "REVIEWBOT_GITHUB_APP_ID": str(github.app_id),
        "REVIEWBOT_GITHUB_PRIVATE_KEY": github.private_key_pem,
        "REVIEWBOT_GITHUB_API_URL": github.api_url,
        "REVIEWBOT_WEBHOOK_SECRET": github.webhook_secret,
        "REVIEWBOT_API_KEY": "sk-scale-out",
        "REVIEWBOT_BASE_URL": model.base_url,
        "REVIEWBOT_MAX_RETRIES": "0",
        "REVIEWBOT_DATABASE_URL": database_url,
        "REVIEWBOT_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
    }


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def worker_id(self) -> str:
        """What the store records as the lease owner of this process's jobs."""
        return f"{socket.gethostname()}:{self.process.pid}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Children:
    """The processes a test started; every one is stopped when the test ends, passed or not."""

    directory: Path
    env: dict[str, str] = field(default_factory=dict)
    started: list[Child] = field(default_factory=list)

    def spawn(self, name: str, *args: str) -> Child:
        log = self.directory / f"{name}.log"
        with log.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "reviewbot", *args],
                env=self.env,
                cwd=self.directory,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        child = Child(name, process, log)
        self.started.append(child)
        return child

    def web(self, name: str) -> Child:
        port = free_port()
        child = self.spawn(name, "serve", "--no-worker", "--port", str(port))
        child.url = f"http://127.0.0.1:{port}"
        return child

    def worker(self, name: str, concurrency: int = 2) -> Child:
        return self.spawn(name, "worker", "--concurrency", str(concurrency))

    def wait_ready(self, timeout: float = 30) -> None:
        """Until every web process answers /healthz and every worker says it started."""

        def ready(child: Child) -> bool:
            if not child.alive():
                raise AssertionError(f"{child.name} exited with {child.process.returncode}:\n{child.tail()}")
            if child.url:
                return _healthy(child.url)
            return "SIGTERM or SIGINT stops it" in child.log.read_text("utf-8", errors="replace")

        wait_for(lambda: all(ready(child) for child in self.started), timeout, "the processes to start")

    def logs(self) -> str:
        return "\n".join(f"--- {child.name} (pid {child.process.pid}):\n{child.tail()}" for child in self.started)

    def stop_all(self) -> None:
        for child in self.started:
            if child.alive():
                child.process.send_signal(signal.SIGTERM)
        for child in self.started:
            try:
                child.process.wait(15)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(5)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def children(fake_github: FakeGitHub, fake_openai: FakeOpenAI, postgres_url: str, tmp_path: Path) -> Iterator[Children]:
    """Starts processes on one fresh PostgreSQL schema; stops them all afterwards (before the
    schema is dropped), and prints their last log lines, which pytest shows if the test failed."""
    started = Children(tmp_path, child_env(fake_github, fake_openai, postgres_url))
    try:
        yield started
    finally:
        started.stop_all()
        print(started.logs())


# -- the pull requests ----------------------------------------------------------------------------


def file_sections() -> list[str]:
    """Single-file sections of the real diffs: small, LF-only, with added lines to comment on."""
    sections = []
    for path in sorted(FIXTURE_DIFFS.glob("*.diff")) + sorted(SAMPLE_DIFFS.glob("*.diff")):
        text = path.read_text("utf-8")
        if "\r" in text:
            continue
        for section in re.split(r"(?m)^(?=diff --git )", text):
            added = [line for line in section.splitlines() if line.startswith("+") and not line.startswith("+++")]
            if section.startswith("diff --git ") and added and section.count("\n") <= 150:
                sections.append(section)
    return sections


def section_path(section: str) -> str:
    return section.split("\n", 1)[0].rsplit(" b/", 1)[1]


@dataclass
class PullPlan:
    """One pull request and every head it goes through: head ``k`` has ``INITIAL_FILES + k`` files."""

    repo: str
    number: int
    sections: list[str]
    heads: list[str]

    def diff_at(self, step: int) -> str:
        return "".join(self.sections[: INITIAL_FILES + step])

    def move_to(self, github: FakeGitHub, step: int) -> None:
        """Push: the pull request's head becomes head ``step``; GitHub can compare it with the one before."""
        github.add_pull(
            self.repo,
            self.number,
            self.diff_at(step),
            title=f"Change {self.number}",
            head_sha=self.heads[step],
            base_sha=BASE_SHA,
        )
        if step > 0:
            github.set_compare(
                self.repo, self.heads[step - 1], self.heads[step], self.sections[INITIAL_FILES + step - 1]
            )


@dataclass(frozen=True)
class Delivery:
    id: str
    pull: PullPlan
    step: int
    body: bytes


@dataclass
class Send:
    """One POST of a delivery: to which web server, after which pause."""

    delivery: Delivery
    server: int
    pause: float = 0.0
    duplicate: str = ""  # "", "alongside" (sent with the original) or "after" (once it was answered)
    duplicate_server: int = 0


def plan_pulls(rng: random.Random) -> list[PullPlan]:
    pool = file_sections()
    pulls = []
    pushes_left = UNIQUE_DELIVERIES - sum(PULLS_PER_REPO)
    count = sum(PULLS_PER_REPO)
    for index, (repo, number) in enumerate(
        (repo, 100 + n) for repo, many in zip(REPOS, PULLS_PER_REPO, strict=True) for n in range(many)
    ):
        pushes = pushes_left // (count - index)
        pushes_left -= pushes
        sections: list[str] = []
        position = index * 7
        while len(sections) < INITIAL_FILES + pushes:  # distinct paths within a pull request
            section = pool[position % len(pool)]
            position += 1
            if section_path(section) not in {section_path(s) for s in sections}:
                sections.append(section)
        heads = [hashlib.sha256(f"{repo}#{number}@{k}".encode()).hexdigest()[:40] for k in range(pushes + 1)]
        pulls.append(PullPlan(repo, number, sections, heads))
    rng.shuffle(pulls)
    return pulls


def webhook_body(pull: PullPlan, step: int) -> bytes:
    name = "opened" if step == 0 else "synchronize"
    payload: dict[str, Any] = json.loads((WEBHOOKS / "pull_request" / f"{name}.payload.json").read_text("utf-8"))
    payload["number"] = pull.number
    payload["repository"]["full_name"] = pull.repo
    payload["repository"]["name"] = pull.repo.split("/")[1]
    pr = payload["pull_request"]
    pr.update(number=pull.number, state="open", draft=False, title=f"Change {pull.number}")
    pr["head"]["sha"], pr["base"]["sha"] = pull.heads[step], BASE_SHA
    if step > 0:
        payload["before"], payload["after"] = pull.heads[step - 1], pull.heads[step]
    return json.dumps(payload).encode()


def plan_sends(pulls: list[PullPlan], rng: random.Random) -> list[list[Send]]:
    """Per pull request, its deliveries in order (as GitHub sends them): `opened`, then pushes in
    bursts of 1–3 back to back, with pauses between bursts so that workers see some heads and not
    others. A quarter of all deliveries sent are duplicates, alongside the original or after it."""
    plans: list[list[Send]] = []
    for pull in pulls:
        sends = []
        burst_left = 0
        for step in range(len(pull.heads)):
            pause = 0.0
            if step > 0 and burst_left == 0:
                burst_left, pause = rng.randint(1, 3), rng.uniform(0.3, 2.0)
            burst_left -= step > 0
            name = f"{pull.repo.split('/')[1]}-{pull.number}-{step}"
            delivery = Delivery(guid(name), pull, step, webhook_body(pull, step))
            sends.append(Send(delivery, rng.randrange(2), pause))
        plans.append(sends)
    for send in rng.sample([send for sends in plans for send in sends], DUPLICATES):
        send.duplicate, send.duplicate_server = rng.choice(("alongside", "after")), rng.randrange(2)
    return plans


@dataclass
class Traffic:
    """Sends the planned deliveries over the web servers and keeps every answer."""

    github: FakeGitHub
    urls: list[str]
    secret: bytes
    client: httpx.Client
    answers: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    duplicates: list[Future[None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, delivery: Delivery, server: int, delay: float = 0.0) -> None:
        if delay:
            time.sleep(delay)
        headers = {
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": delivery.id,
            "X-Hub-Signature-256": sign(self.secret, delivery.body),
            "Content-Type": "application/json",
        }
        response = self.client.post(f"{self.urls[server]}/webhook", content=delivery.body, headers=headers)
        with self._lock:
            self.answers.append((delivery.id, response.status_code, response.json()))

    def run_pull(self, sends: list[Send], again: ThreadPoolExecutor, rng: random.Random) -> None:
        """One pull request's deliveries in order: each push is on GitHub before its delivery goes out."""
        for send in sends:
            if send.pause:
                time.sleep(send.pause)
            send.delivery.pull.move_to(self.github, send.delivery.step)
            if send.duplicate == "alongside":
                self.duplicates.append(again.submit(self.post, send.delivery, send.duplicate_server))
            self.post(send.delivery, send.server)
            if send.duplicate == "after":
                delay = rng.uniform(0, 0.5)
                self.duplicates.append(again.submit(self.post, send.delivery, send.duplicate_server, delay))


# -- the model ------------------------------------------------------------------------------------


def finding_per_file(body: dict[str, Any]) -> Reply:
    """One finding on the first added line of every file shown: the same file gives the same
    finding (and fingerprint) in every review that shows it."""
    findings = []
    current = None
    for line in str(body["messages"][1]["content"]).splitlines():
        if header := _FILE_HEADER.match(line):
            current = header.group(1)
        elif current is not None and (added := _ADDED_LINE.match(line)):
            findings.append(
                {
                    "path": current,
                    "line": int(added.group(1)),
                    "start_line": None,
                    "side": "RIGHT",
                    "severity": "medium",
                    "category": "bug",
                    "title": f"Check the change to {current}",
                    "body": "This line deserves a second look.",
                    "quote": added.group(2),
                    "suggestion": None,
                }
            )
            current = None
    return Reply.json({"findings": findings})


# -- the tests ------------------------------------------------------------------------------------


def drained(store_jobs: Callable[[], list[Job]]) -> bool:
    """No job queued or running; fails at once on a job that failed or is waiting to be retried."""
    jobs = store_jobs()
    stuck = [job for job in jobs if job.state == "failed" or (job.state == "queued" and job.last_error)]
    assert not stuck, f"jobs failed or retried: {stuck}"
    return all(job.state in ("done", "dropped") for job in jobs)


def reviewable_paths(diff: str) -> list[str]:
    """The files of ``diff`` a review shows the model (lock files, generated files and the like are not)."""
    reviewable, _ = select_files(parse_diff(diff), FilterRules())
    return [file.path for file in reviewable]


def posted_fingerprints(github: FakeGitHub, pull: PullPlan) -> Counter[str]:
    """Every fingerprint marker on the pull request: inline comments and review bodies."""
    bodies = [c["body"] for c in github.comments(pull.repo, pull.number)]
    bodies += [r["body"] for r in github.reviews(pull.repo, pull.number)]
    return Counter(print_ for body in bodies for print_ in _FINGERPRINT.findall(body))


@pytest.mark.timeout(180)
def test_two_web_servers_and_two_workers_on_postgres_review_every_last_head_once(
    children: Children, fake_github: FakeGitHub, fake_openai: FakeOpenAI, postgres_url: str
) -> None:
    rng = random.Random(SEED)
    pulls = plan_pulls(rng)
    plans = plan_sends(pulls, rng)
    fake_openai.set_default(finding_per_file)
    fake_openai.set_latency(0.15)  # reviews overlap with pushes, so heads move during reviews
    webs = [children.web("web-1"), children.web("web-2")]
    children.worker("worker-1")
    children.worker("worker-2")
    children.wait_ready()
    started = time.monotonic()

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(timeout=15, limits=limits) as client:
        traffic = Traffic(fake_github, [web.url for web in webs], fake_github.webhook_secret.encode(), client)
        with ThreadPoolExecutor(len(plans)) as pool, ThreadPoolExecutor(8) as again:
            seeds = [rng.random() for _ in plans]
            for future in [
                pool.submit(traffic.run_pull, sends, again, random.Random(seed))
                for sends, seed in zip(plans, seeds, strict=True)
            ]:
                future.result()
            for duplicate in list(traffic.duplicates):
                duplicate.result()
    sent_at = time.monotonic()

    store = open_store(postgres_url)
    try:
        wait_for(lambda: drained(store.list_jobs), 90, f"the queue to drain:\n{children.logs()}")
        jobs = store.list_jobs()
        stored_reviews = {
            tuple(row) for row in databases.query(postgres_url, "SELECT repo, pr_number, head_sha FROM reviews")
        }
    finally:
        store.close()
    drained_at = time.monotonic()

    # Every delivery was answered 2xx: queued once, and a duplicate every other time.
    deliveries = [send.delivery for sends in plans for send in sends]
    assert len(traffic.answers) == UNIQUE_DELIVERIES + DUPLICATES == 200
    by_id: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for delivery_id, status, answer in traffic.answers:
        by_id.setdefault(delivery_id, []).append((status, answer))
    assert set(by_id) == {delivery.id for delivery in deliveries}
    for delivery_id, answers in by_id.items():
        assert all(200 <= status < 300 for status, _ in answers), (delivery_id, answers)
        assert [answer.get("queued") for _, answer in answers].count(True) == 1, (delivery_id, answers)
        assert sum(bool(answer.get("duplicate")) for _, answer in answers) == len(answers) - 1, (delivery_id, answers)
    recorded = Counter(str(row[0]) for row in databases.query(postgres_url, "SELECT id FROM deliveries"))
    assert recorded == Counter(delivery.id for delivery in deliveries)

    # No job failed; every last head has its one review, and no head has two.
    states = Counter(job.state for job in jobs)
    assert set(states) <= {"done", "dropped"}, states
    reviewed = set()
    for pull in pulls:
        counts = {head: fake_github.review_count(pull.repo, pull.number, head) for head in pull.heads}
        assert counts[pull.heads[-1]] == 1, (pull.repo, pull.number, counts)
        assert max(counts.values()) == 1, (pull.repo, pull.number, counts)
        posted = fake_github.reviews(pull.repo, pull.number)
        assert len(posted) == sum(counts.values()), posted  # nothing else: no pending review, no stray commit
        assert all(review["user"]["login"] == fake_github.bot_login for review in posted)
        reviewed |= {(pull.repo, pull.number, head) for head, count in counts.items() if count}
        duplicated = {print_: n for print_, n in posted_fingerprints(fake_github, pull).items() if n > 1}
        assert not duplicated, (pull.repo, pull.number, duplicated)
        # ... and none was lost: every file the worker reviews carries its one finding, once.
        commented = Counter(comment["path"] for comment in fake_github.comments(pull.repo, pull.number))
        assert commented == Counter(reviewable_paths(pull.diff_at(len(pull.heads) - 1))), (pull.repo, pull.number)
    assert stored_reviews == reviewed

    heads_sent = sum(len(pull.heads) for pull in pulls)
    repeats = sum(
        int(match)
        for pull in pulls
        for r in fake_github.reviews(pull.repo, pull.number)
        for match in _REPEATED.findall(r["body"])
    )
    comments = sum(len(fake_github.comments(pull.repo, pull.number)) for pull in pulls)
    incremental = sum(
        "the commits since" in r["body"] for pull in pulls for r in fake_github.reviews(pull.repo, pull.number)
    )
    print(
        f"\nscale-out: {len(pulls)} pull requests, {heads_sent} heads sent, {len(reviewed)} reviewed"
        f" ({heads_sent - len(reviewed)} collapsed or dropped, {incremental} reviews of new commits only);"
        f" jobs {dict(states)};"
        f" {comments} comments, {repeats} repeated findings left out; {len(fake_openai.requests)} model requests;"
        f" sent in {sent_at - started:.1f} s, drained {drained_at - sent_at:.1f} s later"
    )


def test_a_worker_killed_mid_review_leaves_the_job_to_the_other_which_posts_it_once(
    children: Children, fake_github: FakeGitHub, fake_openai: FakeOpenAI, postgres_url: str
) -> None:
    pull = plan_pulls(random.Random(SEED))[0]
    pull.move_to(fake_github, 0)
    fake_openai.set_default(finding_per_file)
    fake_openai.push(Reply.delay(30))  # the first attempt hangs in the model until its worker dies
    web = children.web("web")
    workers = [children.worker("worker-1"), children.worker("worker-2")]
    children.wait_ready()

    delivery = Delivery(guid("kill-1"), pull, 0, webhook_body(pull, 0))
    traffic = Traffic(fake_github, [web.url], fake_github.webhook_secret.encode(), httpx.Client(timeout=15))
    with traffic.client:
        traffic.post(delivery, 0)
    assert traffic.answers[0][1] == 202
    wait_for(lambda: len(fake_openai.requests) == 1, 30, f"the model request:\n{children.logs()}")

    store = open_store(postgres_url)
    try:
        [job] = store.list_jobs()
        assert job.state == "running"
        [doomed] = [worker for worker in workers if worker.worker_id == job.lease_owner]
        [survivor] = [worker for worker in workers if worker is not doomed]
        doomed.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        assert doomed.process.wait(10) == -signal.SIGKILL

        head = pull.heads[0]
        wait_for(
            lambda: fake_github.review_count(pull.repo, pull.number, head) == 1, 30, f"the review:\n{children.logs()}"
        )
        wait_for(lambda: store.list_jobs()[0].state == "done", 10, "the job to be recorded as done")
        [finished] = store.list_jobs()
    finally:
        store.close()

    assert (finished.state, finished.lease_owner, finished.attempts) == ("done", survivor.worker_id, 2)
    assert survivor.alive()
    _, again = fake_openai.requests
    taken_over = again.received_at - killed_at
    assert 0 < taken_over < LEASE_SECONDS + 5  # once the lease ran out, at the survivor's next poll
    print(f"\nkill: the survivor asked the model again {taken_over:.1f} s after the SIGKILL")
    assert fake_github.review_count(pull.repo, pull.number, head) == 1
    assert len(fake_github.reviews(pull.repo, pull.number)) == 1
    comments = fake_github.comments(pull.repo, pull.number)
    assert sorted(comment["path"] for comment in comments) == sorted(reviewable_paths(pull.diff_at(0)))
    assert len(posted_fingerprints(fake_github, pull)) == len(comments) > 0
