"""``reviewbot serve``: the webhook server and the review worker in one process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

from reviewbot.app import create_app
from reviewbot.errors import ConfigError
from reviewbot.service import ReviewService
from reviewbot.settings import Settings
from reviewbot.store import Store, open_store
from reviewbot.worker import Worker

log = logging.getLogger("reviewbot.server")
# How long shutdown waits for reviews in progress; a job cut off here is taken over later.
_STOP_GRACE_SECONDS = 20.0


def check_service_settings(settings: Settings) -> None:
    """Refuse to start without what every review needs, naming the variable to set."""
    missing = []
    if not settings.github_app_id:
        missing.append("REVIEWBOT_GITHUB_APP_ID (the App ID from the App's settings page)")
    if settings.github_private_key is None and settings.github_private_key_path is None:
        missing.append("REVIEWBOT_GITHUB_PRIVATE_KEY_PATH (the App's .pem file)")
    if settings.webhook_secret is None:
        missing.append("REVIEWBOT_WEBHOOK_SECRET (the App's webhook secret)")
    if settings.api_key is None:
        missing.append("REVIEWBOT_API_KEY (the model endpoint's key)")
    if missing:
        raise ConfigError("cannot serve the GitHub App without " + "; ".join(missing))
    if settings.github_private_key_path is not None and not settings.github_private_key_path.is_file():
        raise ConfigError(
            f"REVIEWBOT_GITHUB_PRIVATE_KEY_PATH={settings.github_private_key_path} does not exist; "
            "point it at the App's .pem file"
        )


def build_app(settings: Settings, store: Store) -> Starlette:
    """The ASGI app, with the review worker running alongside it for its lifetime."""
    service = ReviewService(settings, store)
    runner = Worker(
        store,
        service.handle,
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        lease_seconds=settings.job_lease_seconds,
        max_attempts=settings.job_attempts,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop), name="reviewbot-worker")
        try:
            yield
        finally:
            stop.set()
            try:
                await asyncio.wait_for(task, _STOP_GRACE_SECONDS)
            except TimeoutError:
                log.warning("reviews still running at shutdown; their jobs will be taken over after the lease")

    return create_app(settings, store, on_enqueued=runner.wake, lifespan=lifespan)


def uvicorn_config(app: Starlette, *, host: str, port: int) -> uvicorn.Config:
    """How reviewbot runs under uvicorn (benchmarks use the same)."""
    return uvicorn.Config(app, host=host, port=port, proxy_headers=True, log_level="info", access_log=False)


def freeze_startup_objects() -> None:
    """Everything loaded at start-up lives as long as the process: keep the cyclic collector from
    rescanning it on every full collection, which stalls every request in flight."""
    gc.collect()
    gc.freeze()


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Run until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    check_service_settings(settings)
    store = open_store(settings.database_url)
    try:
        app = build_app(settings, store)
        config = uvicorn_config(app, host=host, port=port)
        freeze_startup_objects()
        uvicorn.Server(config).run()
    finally:
        store.close()
