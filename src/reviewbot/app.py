"""The web side of the GitHub App: ``POST /webhook``, ``GET /healthz``, ``GET /readyz`` and ``GET /metrics``.

A delivery is checked (size, signature, headers, JSON), routed, and recorded with its job in the
store before it is answered (in one transaction with the deliveries that arrived alongside it),
so an answered delivery is never lost; the review itself happens later in the worker. Every answer is JSON:

=====================================  ======  ==================================================
case                                   status  body
=====================================  ======  ==================================================
review queued                          202     ``{"queued": true, "delivery": ID}``
handled, nothing queued (installation) 202     ``{"queued": false, "delivery": ID}``
``ping``                               200     ``{"pong": true, "delivery": ID}``
event or action we do not act on       200     ``{"ignored": REASON, "delivery": ID}``
delivery id seen before                200     ``{"duplicate": true, "queued": false, "delivery": ID}``
body over 25 MiB                       413     ``{"error": "payload too large"}``
bad or missing signature, no secret    401     ``{"error": "invalid signature"}``
missing headers, bad JSON              400     ``{"error": ...}``
store unavailable                      503     ``{"error": "store unavailable"}``
=====================================  ======  ==================================================

A 503 makes GitHub list the delivery as failed, so it can be redelivered once the store is back.
``GET /metrics`` is the Prometheus text format (see :mod:`reviewbot.metrics`); it is not
authenticated, so keep it off the public route.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Final

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reviewbot import logs, metrics
from reviewbot.errors import StoreError
from reviewbot.recorder import DeliveryRecorder
from reviewbot.settings import Settings
from reviewbot.store import Delivery, JobRequest, Store
from reviewbot.webhooks import (
    Ignored,
    InstallationChange,
    Outcome,
    PayloadError,
    Router,
    WebhookOptions,
    delivery_facts,
    verify_signature,
)
from reviewbot.webhooks import router as default_router

log = logging.getLogger("reviewbot.app")

#: GitHub caps webhook payloads at 25 MB and does not deliver larger ones, so anything bigger is
#: not from GitHub.
MAX_BODY_BYTES: Final = 25 * 1024 * 1024

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]
#: The refusals by status, as in the table above.
_REJECTIONS: Final[dict[int, metrics.RejectionReason]] = {
    413: "too_large",
    401: "signature",
    400: "bad_request",
    503: "store_unavailable",
}


@dataclass(frozen=True, slots=True)
class _Recorded:
    duplicate: bool
    queued: bool


def create_app(
    settings: Settings,
    store: Store,
    *,
    on_enqueued: Callable[[], None] | None = None,
    lifespan: Lifespan | None = None,
    router: Router | None = None,
) -> Starlette:
    """The ASGI app. ``on_enqueued`` is called (on the event loop) after a job was queued, e.g.
    ``worker.wake``; ``lifespan`` is passed to Starlette (start and stop the worker there)."""
    routes = _Routes(settings, store, on_enqueued, router or default_router)
    return Starlette(
        routes=[
            Route("/webhook", routes.webhook, methods=["POST"]),
            Route("/healthz", routes.healthz, methods=["GET"]),
            Route("/readyz", routes.readyz, methods=["GET"]),
            Route("/metrics", routes.scrape, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Routes:
    def __init__(
        self, settings: Settings, store: Store, on_enqueued: Callable[[], None] | None, router: Router
    ) -> None:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret is not None else ""
        self._secret = secret.encode("utf-8")
        self._store = store
        self._recorder = DeliveryRecorder(store)
        self._on_enqueued = on_enqueued
        self._router = router
        self._options = WebhookOptions.from_settings(settings)
        self._metrics = metrics.scrape_registry(store.job_counts)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        try:
            await anyio.to_thread.run_sync(self._store.ping)
        except StoreError as exc:
            log.warning("not ready: %s", exc)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def scrape(self, request: Request) -> Response:
        body = await anyio.to_thread.run_sync(generate_latest, self._metrics)  # the jobs gauge asks the store
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def webhook(self, request: Request) -> Response:
        with logs.log_context(delivery=request.headers.get("x-github-delivery") or None):
            response = await self._webhook(request)
        if (reason := _REJECTIONS.get(response.status_code)) is not None:
            metrics.observe_rejection(reason)
        return response

    async def _webhook(self, request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, "payload too large")
        body = await _read_body(request, MAX_BODY_BYTES)
        if body is None:
            return _error(413, "payload too large")
        delivery = request.headers.get("x-github-delivery", "")
        if not self._secret:
            log.error("REVIEWBOT_WEBHOOK_SECRET is not set: every delivery is refused with 401")
            return _error(401, "invalid signature")
        if not verify_signature(self._secret, body, request.headers.get("x-hub-signature-256")):
            log.warning("delivery %s: invalid or missing X-Hub-Signature-256", delivery or "(no id)")
            return _error(401, "invalid signature")
        event = request.headers.get("x-github-event", "")
        if not event or not delivery:
            return _error(400, "X-GitHub-Event and X-GitHub-Delivery headers are required")
        try:
            payload = json.loads(body)
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(payload, dict):
            return _error(400, "the body is not a JSON object")
        logs.bind(repo=delivery_facts(payload).repo)
        try:
            outcome = self._router.dispatch(event, payload, self._options)
        except PayloadError as exc:
            log.warning("delivery %s: %s", delivery, exc)
            return _error(400, str(exc))
        if isinstance(outcome, JobRequest):
            logs.bind(pr=outcome.pr_number, head=outcome.head_sha)
        try:
            recorded = await self._record(delivery, event, payload, outcome)
        except StoreError as exc:
            log.error("delivery %s: store unavailable: %s", delivery, exc)
            return _error(503, "store unavailable")
        action = payload.get("action")
        name = f"{event}.{action}" if isinstance(action, str) else event
        metrics.observe_delivery(event, _delivery_outcome(name, outcome, recorded))
        return self._answer(delivery, name, outcome, recorded)

    async def _record(self, delivery: str, event: str, payload: dict[str, Any], outcome: Outcome) -> _Recorded:
        """Record the delivery and queue its job, or apply its installation change."""
        facts = delivery_facts(payload)
        job = outcome if isinstance(outcome, JobRequest) else None
        record = Delivery(delivery, event, facts.action, facts.installation_id, facts.repo, job)
        if isinstance(outcome, InstallationChange):
            added = await anyio.to_thread.run_sync(self._apply_installation_change, record, outcome)
        else:
            added = await self._recorder.record(record)
        return _Recorded(duplicate=not added, queued=added and job is not None)

    def _apply_installation_change(self, record: Delivery, change: InstallationChange) -> bool:
        """In a worker thread; rare, so it is not grouped with the others."""
        if self._store.has_delivery(record.id):
            return False
        change.apply(self._store)  # idempotent, so a crash before the delivery is recorded is harmless
        return self._store.record_deliveries([record])[0]

    def _answer(self, delivery: str, name: str, outcome: Outcome, recorded: _Recorded) -> Response:
        if recorded.duplicate:
            log.info("delivery %s %s: duplicate, nothing done", delivery, name)
            return JSONResponse({"duplicate": True, "queued": False, "delivery": delivery})
        if isinstance(outcome, Ignored):
            log.info("delivery %s %s: ignored: %s", delivery, name, outcome.reason)
            return JSONResponse({"ignored": outcome.reason, "delivery": delivery})
        if name == "ping":
            log.info("delivery %s: ping", delivery)
            return JSONResponse({"pong": True, "delivery": delivery})
        if recorded.queued and isinstance(outcome, JobRequest):
            log.info("delivery %s %s: review queued for %s#%d", delivery, name, outcome.repo, outcome.pr_number)
            if self._on_enqueued is not None:
                try:
                    self._on_enqueued()
                except Exception:  # the job is stored; the worker's poll will find it
                    log.exception("on_enqueued failed")
        else:
            log.info("delivery %s %s: handled", delivery, name)
        return JSONResponse({"queued": recorded.queued, "delivery": delivery}, status_code=202)


def _delivery_outcome(name: str, outcome: Outcome, recorded: _Recorded) -> metrics.DeliveryOutcome:
    """What :meth:`_Routes._answer` does with a delivery, for the metrics (the same order of cases)."""
    if recorded.duplicate:
        return "duplicate"
    if isinstance(outcome, Ignored):
        return "ignored"
    if name == "ping":
        return "ping"
    return "queued" if recorded.queued else "installation"


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, read as it streams in; None as soon as it passes ``limit`` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
