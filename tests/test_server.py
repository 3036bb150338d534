"""Running the service as separate processes: ``serve --no-worker``, ``worker`` and ``migrate``.

The worker tests run real processes and send them real signals, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp

from conftest import WEBHOOK_SECRET
from fixtures_path import WEBHOOKS
from reviewbot.cli import main
from reviewbot.errors import ConfigError
from reviewbot.service.server import build_app, check_service_settings
from reviewbot.service.worker import JobOutcome, Worker
from reviewbot.settings import Settings
from reviewbot.store.records import Job
from reviewbot.store.schema import SCHEMA_VERSION
from reviewbot.store.store import Store, open_store
from test_app import headers
from test_worker import enqueue

HERE = Path(__file__).parent
REPO = "octo/widgets"
ServeApp = Callable[[ASGIApp], AbstractContextManager[str]]


def job(store: Store, job_id: int) -> Job:
    found = store.get_job(job_id)
    assert found is not None
    return found


def wait_for(condition: Callable[[], bool], timeout: float = 10, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


def start_worker(database_url: str, grace: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "worker_child.py"), database_url, str(grace)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stopped(process: subprocess.Popen[str], timeout: float = 10) -> str:
    """Wait for ``process`` to end on its own; its standard error."""
    try:
        _, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    return err


# -- reviewbot worker ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_sigterm_lets_a_worker_finish_short_reviews_and_release_long_ones(database_url: str, store: Store) -> None:
    short, long, waiting = enqueue(store, 1), enqueue(store, 2), enqueue(store, 3)
    worker = start_worker(database_url, grace=1.2)
    wait_for(lambda: {job(store, short).state, job(store, long).state} == {"running"}, what="claiming both jobs")
    worker.send_signal(signal.SIGTERM)
    err = stopped(worker)
    assert "1 review(s) cut off at shutdown were released" in err
    assert (job(store, short).state, job(store, short).attempts) == ("done", 1)
    released = job(store, long)
    assert (released.state, released.attempts, released.lease_owner, released.lease_until) == ("queued", 0, None, None)
    assert job(store, waiting).state == "queued"  # a stopping worker takes no new job
    taken = store.claim_job("next-worker", 60)  # released jobs are due at once, not after the lease
    assert taken is not None
    assert taken.id == long


@pytest.mark.timeout(60)
def test_a_second_signal_stops_a_worker_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reviewbot.db'}"
    store = open_store(url)
    long = enqueue(store, 2)
    worker = start_worker(url, grace=60)
    wait_for(lambda: job(store, long).state == "running", what="claiming the job")
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    started = time.monotonic()
    worker.send_signal(signal.SIGINT)
    stopped(worker)
    assert time.monotonic() - started < 10
    assert job(store, long).state == "queued"
    store.close()


@pytest.mark.timeout(60)
def test_the_job_of_a_worker_that_died_is_finished_by_another(database_url: str, store: Store) -> None:
    job_id = enqueue(store, 1)
    doomed = subprocess.run(
        [sys.executable, str(HERE / "store_child.py"), "die", database_url, "0.5"],
        input="go\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert doomed.returncode == 9, doomed.stderr
    assert json.loads(doomed.stdout.splitlines()[-1]) == job_id
    assert job(store, job_id).lease_owner == "doomed"

    async def handler(claimed: Job) -> JobOutcome:
        return JobOutcome.done()

    survivor = Worker(store, handler, worker_id="survivor", lease_seconds=5, max_attempts=3, poll_interval=0.05)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(survivor.run(stop))
        while job(store, job_id).state != "done":
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(asyncio.wait_for(run(), 10))
    finished = job(store, job_id)
    assert (finished.state, finished.lease_owner, finished.attempts) == ("done", "survivor", 2)


@pytest.mark.timeout(60)
def test_reviewbot_worker_runs_until_sigterm(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text("not read until a job runs")
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("REVIEWBOT_")},
        "REVIEWBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'reviewbot.db'}",
        "REVIEWBOT_GITHUB_APP_ID": "1",
        "REVIEWBOT_GITHUB_PRIVATE_KEY_PATH": str(key),
        "REVIEWBOT_API_KEY": "sk-test",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "reviewbot", "worker", "--concurrency", "3"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stderr is not None
    lines = []
    for line in worker.stderr:
        lines.append(line)
        if "SIGTERM or SIGINT stops it" in line:
            break
    assert "SIGTERM or SIGINT stops it" in lines[-1], "".join(lines)
    assert any("up to 3 reviews at once" in line for line in lines)
    worker.send_signal(signal.SIGTERM)
    err = stopped(worker)
    assert "SIGTERM" in err


def test_reviewbot_worker_needs_the_app_and_the_model_but_no_webhook_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("REVIEWBOT_", "OPENAI_")):
            monkeypatch.delenv(name)
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert "cannot run the review worker without REVIEWBOT_GITHUB_APP_ID" in err
    assert "REVIEWBOT_API_KEY" in err
    assert "WEBHOOK_SECRET" not in err
    assert main(["worker", "--concurrency", "0"]) == 2


# -- reviewbot migrate -------------------------------------------------------------------------------


def test_reviewbot_migrate_prints_the_schema_version(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REVIEWBOT_DATABASE_URL", database_url)
    assert main(["migrate"]) == 0
    assert f"schema version {SCHEMA_VERSION} (migrated from version 0)" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert f"schema version {SCHEMA_VERSION} (up to date)" in capsys.readouterr().out


def test_reviewbot_migrate_names_the_variable_when_the_database_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REVIEWBOT_DATABASE_URL", "postgresql://rb:hunter2-secret@127.0.0.1:1/rb?connect_timeout=2")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "REVIEWBOT_DATABASE_URL" in err
    assert "hunter2-secret" not in err


# -- reviewbot serve --no-worker ---------------------------------------------------------------------


def test_the_webhook_server_alone_needs_only_the_webhook_secret() -> None:
    web_only = Settings(webhook_secret=WEBHOOK_SECRET, github_app_id=None, api_key=None)
    check_service_settings(web_only, reviews=False)
    with pytest.raises(ConfigError, match="REVIEWBOT_GITHUB_APP_ID"):
        check_service_settings(web_only)


def test_serve_without_a_worker_queues_jobs_and_runs_none(serve_app: ServeApp, store: Store) -> None:
    payload = json.loads((WEBHOOKS / "pull_request/opened.payload.json").read_text(encoding="utf-8"))
    body = json.dumps(payload).encode()
    settings = Settings(webhook_secret=WEBHOOK_SECRET, github_app_id=None, api_key=None)
    with serve_app(build_app(settings, store, worker=False)) as url:
        sent = headers("pull_request", body, secret=WEBHOOK_SECRET.encode())
        response = httpx.post(f"{url}/webhook", content=body, headers=sent, timeout=10)
        assert response.status_code == 202
        time.sleep(0.2)
        [queued] = store.list_jobs()
    assert (queued.state, queued.attempts) == ("queued", 0)
