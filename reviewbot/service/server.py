"""``reviewbot serve`` and ``reviewbot worker``: the webhook server and the review worker, together or apart.

``serve`` runs both in one process; ``serve --no-worker`` the webhook server alone, and ``reviewbot
worker`` the review worker alone (several replicas of each on one PostgreSQL database).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

from reviewbot.errors import ConfigError, ReviewbotError, StoreError
from reviewbot.github.client import GitHubClient
from reviewbot.service.app import create_app
from reviewbot.service.connections import deadline_protocol
from reviewbot.service.hook_ranges import webhook_allowlist
from reviewbot.service.job import ReviewService
from reviewbot.service.metrics_server import MetricsServer, start_metrics_server
from reviewbot.service.peers import Allowlist, proxy_hosts
from reviewbot.service.retention import pruner_for
from reviewbot.service.setup import needs_setup, run_setup
from reviewbot.service.worker import Worker
from reviewbot.settings import Settings
from reviewbot.store.store import Store, open_store

log = logging.getLogger("reviewbot.server")
# How long shutdown waits for reviews in progress; a job still running then is released, so
# another worker starts it at once.
_STOP_GRACE_SECONDS = 20.0
#: Reviews one process runs at once, unless ``reviewbot worker --concurrency`` says otherwise.
WORKER_CONCURRENCY = 2


def check_service_settings(settings: Settings, *, webhooks: bool = True, reviews: bool = True) -> None:
    """Refuse to start without what the webhook server (``webhooks``) or the review worker
    (``reviews``) needs, naming the variable to set."""
    missing = []
    if reviews and not settings.github_app_id:
        missing.append("REVIEWBOT_GITHUB_APP_ID (the App ID from the App's settings page)")
    if reviews and settings.github_private_key is None and settings.github_private_key_path is None:
        missing.append("REVIEWBOT_GITHUB_PRIVATE_KEY_PATH (the App's .pem file)")
    if webhooks and settings.webhook_secret is None:
        missing.append("REVIEWBOT_WEBHOOK_SECRET (the App's webhook secret)")
    if reviews and settings.api_key is None:
        missing.append("REVIEWBOT_API_KEY (the model endpoint's key)")
    if missing:
        what = "serve the GitHub App" if webhooks else "run the review worker"
        raise ConfigError(f"cannot {what} without " + "; ".join(missing))
    if reviews and settings.github_private_key_path is not None and not settings.github_private_key_path.is_file():
        raise ConfigError(
            f"REVIEWBOT_GITHUB_PRIVATE_KEY_PATH={settings.github_private_key_path} does not exist; "
            "point it at the App's .pem file"
        )


def check_trusted_proxies(settings: Settings) -> None:
    """Refuse REVIEWBOT_FORWARDED_ALLOW_IPS=* beside an allowlist, and warn of it alone: uvicorn then
    takes the address from the X-Forwarded-For of whoever connects, and a client writes that."""
    if not any(network.prefixlen == 0 for network in settings.forwarded_allow_ips):
        return
    if settings.webhook_allowed_ips:
        raise ConfigError(
            "REVIEWBOT_FORWARDED_ALLOW_IPS=* believes the address any client writes in X-Forwarded-For, so "
            "REVIEWBOT_WEBHOOK_ALLOWED_IPS cannot hold: list the addresses your proxies connect from"
        )
    log.warning(
        "REVIEWBOT_FORWARDED_ALLOW_IPS=* believes the address any client writes in X-Forwarded-For: keep the "
        "webhook's port reachable only through your proxy, or list the proxies' addresses"
    )


def check_metrics_port(settings: Settings, port: int) -> None:
    """Refuse a metrics port that is the webhook's own ``port``."""
    if settings.metrics_port == port:
        raise ConfigError(
            f"REVIEWBOT_METRICS_PORT={port} is also the port `reviewbot serve` listens on (REVIEWBOT_PORT, PORT "
            "or --port); give the metrics a port of their own, or unset REVIEWBOT_METRICS_PORT to serve /metrics "
            "with the webhook"
        )


def metrics_listener(settings: Settings, store: Store) -> MetricsServer | None:
    """The ``REVIEWBOT_METRICS_PORT`` listener, at ``REVIEWBOT_METRICS_HOST`` (else ``REVIEWBOT_HOST``),
    as ``serve`` and ``worker`` both run it; None when the port is not set."""
    if settings.metrics_port is None:
        return None
    host = settings.metrics_host or settings.host
    return start_metrics_server(store.job_counts, host=host, port=settings.metrics_port)


def build_app(
    settings: Settings,
    store: Store,
    *,
    worker: bool = True,
    allowlist: Allowlist | None = None,
    metrics: MetricsServer | None = None,
) -> Starlette:
    """The ASGI app; with ``worker``, the review worker runs alongside it for its lifetime.
    ``allowlist``: who may post webhooks (by default, as the settings say). ``metrics`` is closed
    when the app stops, after the worker: uvicorn ends the process with the signal that stopped it,
    before the caller's ``finally`` runs."""
    runner = review_worker(settings, store) if worker else None
    if runner is None and metrics is None:
        return create_app(settings, store, allowlist=allowlist)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if metrics is not None:
                stack.push_async_callback(asyncio.to_thread, metrics.close)
            if runner is not None:
                await stack.enter_async_context(worker_running(runner, store))
            yield

    on_enqueued = runner.wake if runner is not None else None
    return create_app(settings, store, on_enqueued=on_enqueued, lifespan=lifespan, allowlist=allowlist)


@contextlib.asynccontextmanager
async def worker_running(worker: Worker, store: Store) -> AsyncIterator[None]:
    """``worker`` runs in a task until the block ends, then stops as :func:`stop_worker` says."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="reviewbot-worker")
    try:
        yield
    finally:
        stop.set()
        await stop_worker(worker, task, store)


def review_worker(settings: Settings, store: Store, *, concurrency: int = WORKER_CONCURRENCY) -> Worker:
    """The job loop that reviews pull requests, as ``serve`` and ``worker`` both run it."""
    service = ReviewService(settings, store)
    return Worker(
        store,
        service.handle,
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        lease_seconds=settings.job_lease_seconds,
        max_attempts=settings.job_attempts,
        concurrency=concurrency,
        poll_interval=settings.worker_poll_seconds,
        on_failed=service.give_up,
        pruner=pruner_for(settings, store),
    )


async def stop_worker(
    worker: Worker,
    task: asyncio.Task[None],
    store: Store,
    grace: float = _STOP_GRACE_SECONDS,
    hurry: asyncio.Event | None = None,
) -> None:
    """Once ``worker`` was told to stop: wait up to ``grace`` seconds (or until ``hurry`` is set)
    for the reviews in hand, then cancel the rest and release their jobs, so another worker starts
    them at once rather than after their lease runs out."""
    hurried = asyncio.ensure_future(hurry.wait()) if hurry is not None else None
    await asyncio.wait({task} | ({hurried} if hurried else set()), timeout=grace, return_when=asyncio.FIRST_COMPLETED)
    if hurried is not None:
        hurried.cancel()
    if task.done():
        task.result()  # a crash of the loop itself is a bug: let it show
        return
    task.cancel()  # Worker.run cancels the reviews in hand
    await asyncio.wait({task})
    try:
        released = await asyncio.to_thread(store.release_jobs, worker.worker_id)
    except StoreError as exc:
        log.warning("reviews cut off at shutdown could not be released (%s); they restart after the lease", exc)
    else:
        log.warning("%d review(s) cut off at shutdown were released to the next worker", released)


async def run_until_signalled(worker: Worker, store: Store, *, grace: float = _STOP_GRACE_SECONDS) -> None:
    """Run ``worker`` until SIGTERM or SIGINT, then finish or release the jobs in hand
    (:func:`stop_worker`); a second signal stops at once, releasing them."""
    loop = asyncio.get_running_loop()
    stop, hurry = asyncio.Event(), asyncio.Event()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s again: stopping now", signum.name)
            hurry.set()
        else:
            log.info("%s: finishing the reviews in hand (up to %.0f s), taking no new ones", signum.name, grace)
            stop.set()

    handled = (signal.SIGTERM, signal.SIGINT)
    for signum in handled:
        loop.add_signal_handler(signum, on_signal, signum)
    log.info("worker %s started; SIGTERM or SIGINT stops it", worker.worker_id)
    try:
        task = asyncio.create_task(worker.run(stop), name="reviewbot-worker")
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        await stop_worker(worker, task, store, grace, hurry)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def work(settings: Settings, *, concurrency: int = WORKER_CONCURRENCY) -> None:
    """``reviewbot worker``: review jobs from the store until SIGTERM or SIGINT, with no web server."""
    check_service_settings(settings, webhooks=False)
    settings = with_app_slug(settings)
    store = open_store(settings.database_url)
    try:
        runner = review_worker(settings, store, concurrency=concurrency)
        log.info("worker %s: up to %d reviews at once from %s", runner.worker_id, concurrency, store.location)
        metrics = metrics_listener(settings, store)  # its own counters; Prometheus sums them across targets
        try:
            freeze_startup_objects()
            asyncio.run(run_until_signalled(runner, store))
        finally:
            if metrics is not None:
                metrics.close()
    finally:
        store.close()


def uvicorn_config(app: Starlette, settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    """How reviewbot runs under uvicorn (benchmarks use the same). uvicorn's own lines go to the
    root logger (``log_config=None``), so they get the same format and secret redaction.

    A client may keep the server waiting no longer than REVIEWBOT_WEBHOOK_READ_TIMEOUT for a request
    head, or for the rest of a body the app refused without reading it (:mod:`reviewbot.service.connections`,
    which runs h11, what uvicorn picks when httptools is not installed); the webhook bounds the body
    it reads the same way. An idle kept-alive connection is closed after uvicorn's 5 s.

    With ``proxy_headers``, uvicorn takes the client's address from ``X-Forwarded-For`` when the
    connection comes from a proxy it trusts: REVIEWBOT_FORWARDED_ALLOW_IPS (or FORWARDED_ALLOW_IPS),
    read with the other settings, .env included, and passed on here, so that what is trusted does
    not depend on uvicorn's version (its own default gained ``::1`` late) or on where it was set;
    unset, loopback. That address is the peer the webhook's allowlist and its per-address share of
    unverified bytes go by (:mod:`reviewbot.service.peers`).
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=deadline_protocol(settings.webhook_read_timeout),
        proxy_headers=True,
        forwarded_allow_ips=proxy_hosts(settings),
        log_level="info",
        access_log=False,
        log_config=None,
    )


def freeze_startup_objects() -> None:
    """Everything loaded at start-up lives as long as the process: keep the cyclic collector from
    rescanning it on every full collection, which stalls every request in flight."""
    gc.collect()
    gc.freeze()


def with_app_slug(settings: Settings) -> Settings:
    """``settings`` with the App's slug, asked of GitHub once at start-up when it is not set, so
    that ``@<slug> review`` commands are recognised and no job has to ask again."""
    if settings.github_app_slug or not settings.github_app_id:
        return settings
    if settings.github_private_key is None and settings.github_private_key_path is None:
        return settings

    async def fetch() -> str:
        # GET /app is signed with the App's own key; no installation is involved.
        async with GitHubClient.for_installation(settings, 0) as github:
            return await github.app_slug()

    try:
        slug = asyncio.run(fetch())
    except ReviewbotError as exc:
        log.warning(
            "could not ask GitHub for the App's slug (%s); /review works, and `@<slug> review` "
            "needs REVIEWBOT_GITHUB_APP_SLUG",
            exc,
        )
        return settings
    log.info("the App's slug is %s", slug)
    return settings.model_copy(update={"github_app_slug": slug})


def serve(settings: Settings, *, host: str, port: int, worker: bool = True) -> None:
    """Run until interrupted (SIGINT/SIGTERM stop it cleanly); without ``worker``, only receive
    webhooks and queue their jobs for ``reviewbot worker`` processes. Without any App settings,
    first register the App (:mod:`reviewbot.service.setup`), then serve it.

    With ``REVIEWBOT_METRICS_PORT``, ``GET /metrics`` is served on that port alone, from before
    the webhook listens until it has stopped; without it, on ``port`` with the webhook."""
    check_metrics_port(settings, port)
    if needs_setup(settings):
        registered = run_setup(settings, lambda app: uvicorn_config(app, settings, host=host, port=port))
        if registered is None:
            return
        settings = registered
    check_service_settings(settings, reviews=worker)
    check_trusted_proxies(settings)
    allowlist = webhook_allowlist(settings)  # with `github`, GitHub's ranges are read before we listen
    settings = with_app_slug(settings)
    store = open_store(settings.database_url)
    metrics: MetricsServer | None = None
    try:
        metrics = metrics_listener(settings, store)  # a taken port fails here, before anything runs
        if metrics is None:
            log.warning(
                "GET /metrics is served on the webhook's port %d, to anyone who can reach it; set "
                "REVIEWBOT_METRICS_PORT (and REVIEWBOT_METRICS_HOST, e.g. 127.0.0.1) to serve it on a port of its own",
                port,
            )
        app = build_app(settings, store, worker=worker, allowlist=allowlist, metrics=metrics)
        config = uvicorn_config(app, settings, host=host, port=port)
        freeze_startup_objects()
        uvicorn.Server(config).run()
    finally:
        if metrics is not None:  # at once if the app never got to close it (build_app failed)
            metrics.close()
        store.close()
