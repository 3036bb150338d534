"""Shared fixtures."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.types import ASGIApp

import databases
from fake_github import FakeGitHub
from fake_openai import FakeOpenAI
from loopback import LoopbackServer
from reviewbot.service.app import create_app
from reviewbot.settings import Settings
from reviewbot.store.store import Store, open_store

WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the test PostgreSQL server; skips the test (fails it under
    REVIEWBOT_REQUIRE_POSTGRES=1) when the server cannot be reached."""
    problem = databases.postgres_problem()
    if problem is not None:
        if databases.REQUIRE_POSTGRES:
            pytest.fail(f"{problem} (and REVIEWBOT_REQUIRE_POSTGRES=1)")
        pytest.skip(problem)
    return databases.POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A store URL for a fresh, empty schema on the test PostgreSQL server, dropped afterwards."""
    with databases.postgres_schema(postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL for an empty database: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reviewbot.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def openai_server() -> Iterator[FakeOpenAI]:
    """One fake OpenAI-compatible server on loopback for the whole session."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(openai_server: FakeOpenAI) -> FakeOpenAI:
    """The session's fake server with an empty script and no recorded requests."""
    openai_server.reset()
    return openai_server


@contextmanager
def serve(app: ASGIApp, timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread; yield its base URL."""
    server = LoopbackServer("test-server")
    server.start(app, timeout)
    try:
        yield server.url
    finally:
        server.stop(timeout)


@dataclass
class WebhookServer:
    """The App's web side on loopback, with its store and the number of wake-ups it sent."""

    url: str
    store: Store
    secret: bytes
    wakeups: list[float] = field(default_factory=list)


@pytest.fixture(scope="session")
def serve_app() -> Callable[[ASGIApp], AbstractContextManager[str]]:
    """``with serve_app(app) as url:`` serves another app for one test."""
    return serve


@pytest.fixture(scope="session")
def webhook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    """``create_app`` over a temporary SQLite store, signed with ``WEBHOOK_SECRET``, for the session."""
    path: Path = tmp_path_factory.mktemp("webhooks") / "reviewbot.db"
    store = open_store(f"sqlite:///{path}")
    settings = Settings(webhook_secret=WEBHOOK_SECRET, github_app_slug="review-bot", review_drafts=False)
    wakeups: list[float] = []
    app = create_app(settings, store, on_enqueued=lambda: wakeups.append(time.monotonic()))
    with serve(app) as url:
        yield WebhookServer(url, store, WEBHOOK_SECRET.encode(), wakeups)
    store.close()


@pytest.fixture
def app_server(
    database_url: str, serve_app: Callable[[ASGIApp], AbstractContextManager[str]]
) -> Iterator[WebhookServer]:
    """``create_app`` over a fresh store, on SQLite and on PostgreSQL, signed with ``WEBHOOK_SECRET``, for one test."""
    store = open_store(database_url)
    settings = Settings(webhook_secret=WEBHOOK_SECRET, github_app_slug="review-bot")
    try:
        with serve_app(create_app(settings, store)) as url:
            yield WebhookServer(url, store, WEBHOOK_SECRET.encode())
    finally:
        store.close()


@pytest.fixture(scope="session")
def github_server() -> Iterator[FakeGitHub]:
    """One fake GitHub REST API on loopback for the whole session, with its own App key."""
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def fake_github(github_server: FakeGitHub) -> FakeGitHub:
    """The session's fake GitHub with no pull requests, files, reviews, faults or requests."""
    github_server.reset()
    return github_server


#: The API key the ``endpoint`` fixture configures; no output may ever show it.
ENDPOINT_KEY = "sk-cli-test"


@pytest.fixture
def endpoint(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """The fake model endpoint as REVIEWBOT_BASE_URL, with a key and no retries (every answer is scripted)."""
    monkeypatch.setenv("REVIEWBOT_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("REVIEWBOT_API_KEY", ENDPOINT_KEY)
    monkeypatch.setenv("REVIEWBOT_MAX_RETRIES", "0")
    return fake_openai


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No settings leak in from the machine: no keys or tokens, no .env file in the working directory."""
    for name in list(os.environ):
        if name.startswith(("REVIEWBOT_", "OPENAI_")) or name in ("GITHUB_TOKEN", "NO_COLOR"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
