"""The web side of the GitHub App: ``POST /webhook``, ``GET /healthz``, ``GET /readyz`` and ``GET /metrics``.

A delivery is checked (size, signature, headers, JSON), routed, and recorded with its job in the
store before it is answered (in one transaction with the deliveries that arrived alongside it),
so an answered delivery is never lost; the review itself happens later in the worker. All but the
size check run in the recorder's thread (:mod:`reviewbot.recorder`). Every answer is JSON:

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

import functools
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Final

import anyio.to_thread
import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from reviewbot import logs, metrics
from reviewbot.app_setup import closed_routes
from reviewbot.errors import StoreError
from reviewbot.recorder import DeliveryRecorder, Record
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


@dataclass(frozen=True, slots=True)
class _Answer:
    """What the recorder's thread answers a delivery; ``enqueued``: a job was queued (the loop
    calls ``on_enqueued``)."""

    response: Response
    enqueued: bool = False


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
            Route("/webhook", _Asgi(routes.webhook), methods=["POST"], name="webhook"),
            Route("/healthz", routes.healthz, methods=["GET"]),
            Route("/readyz", routes.readyz, methods=["GET"]),
            Route("/metrics", routes.scrape, methods=["GET"]),
            *closed_routes(),  # one-click setup answers 403 once an App is configured
        ],
        lifespan=lifespan,
    )


class _Json(JSONResponse):
    """A JSON answer rendered by msgspec: the same bytes for what the webhook answers, sooner."""

    def render(self, content: object) -> bytes:
        return msgspec.json.encode(content)


def _error(status: int, message: str) -> JSONResponse:
    return _Json({"error": message}, status_code=status)


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

    async def webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /webhook``, a plain ASGI endpoint (see :class:`_Asgi`)."""
        headers = _webhook_headers(scope)
        delivery = headers.get(b"x-github-delivery", "")
        with logs.log_context(delivery=delivery or None):
            response = await self._webhook(receive, headers, delivery)
        if (reason := _REJECTIONS.get(response.status_code)) is not None:
            metrics.observe_rejection(reason)
        await response(scope, receive, send)

    async def _webhook(self, receive: Receive, headers: dict[bytes, str], delivery: str) -> Response:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, "payload too large")
        body = await _read_body(receive, MAX_BODY_BYTES)
        if body is None:
            return _error(413, "payload too large")
        if not self._secret:
            log.error("REVIEWBOT_WEBHOOK_SECRET is not set: every delivery is refused with 401")
            return _error(401, "invalid signature")
        signature = headers.get(b"x-hub-signature-256")
        event = headers.get(b"x-github-event", "")
        # Everything else runs in the recorder's thread, in this request's logging context.
        answer = await self._recorder.run(functools.partial(self._accept, delivery, event, signature, body))
        if answer.enqueued and self._on_enqueued is not None:
            try:
                self._on_enqueued()
            except Exception:  # the job is stored; the worker's poll will find it
                log.exception("on_enqueued failed")
        return answer.response

    def _accept(self, delivery: str, event: str, signature: str | None, body: bytes) -> _Answer | Record[_Answer]:
        """In the recorder's thread: check the signature, parse and route the delivery; then the
        answer to a refusal, or the delivery to record and what to answer once it is."""
        if not verify_signature(self._secret, body, signature):
            log.warning("delivery %s: invalid or missing X-Hub-Signature-256", delivery or "(no id)")
            return _Answer(_error(401, "invalid signature"))
        if not event or not delivery:
            return _Answer(_error(400, "X-GitHub-Event and X-GitHub-Delivery headers are required"))
        try:
            payload = self._router.decode(body)
        except PayloadError as exc:
            log.warning("delivery %s: %s", delivery, exc)
            return _Answer(_error(400, str(exc)))
        facts = delivery_facts(payload)
        try:
            outcome = self._router.dispatch(event, payload, self._options)
        except PayloadError as exc:
            logs.bind(repo=facts.repo)
            log.warning("delivery %s: %s", delivery, exc)
            return _Answer(_error(400, str(exc)))
        if isinstance(outcome, JobRequest):
            logs.bind(repo=facts.repo, pr=outcome.pr_number, head=outcome.head_sha)
        else:
            logs.bind(repo=facts.repo)
        job = outcome if isinstance(outcome, JobRequest) else None
        record = Delivery(delivery, event, facts.action, facts.installation_id, facts.repo, job)
        name = f"{event}.{facts.action}" if facts.action is not None else event
        finish = functools.partial(self._finish, delivery, event, name, outcome)
        if not isinstance(outcome, InstallationChange):
            return Record(record, finish)  # recorded with the deliveries that arrived alongside it
        try:
            return finish(self._apply_installation_change(record, outcome))
        except StoreError as exc:
            return finish(exc)

    def _apply_installation_change(self, record: Delivery, change: InstallationChange) -> bool:
        """Rare, so it is not grouped with the others."""
        if self._store.has_delivery(record.id):
            return False
        change.apply(self._store)  # idempotent, so a crash before the delivery is recorded is harmless
        return self._store.record_deliveries([record])[0]

    def _finish(self, delivery: str, event: str, name: str, outcome: Outcome, added: bool | StoreError) -> _Answer:
        """In the recorder's thread, once the delivery is committed (or could not be)."""
        if isinstance(added, StoreError):
            log.error("delivery %s: store unavailable: %s", delivery, added)
            return _Answer(_error(503, "store unavailable"))
        recorded = _Recorded(duplicate=not added, queued=added and isinstance(outcome, JobRequest))
        metrics.observe_delivery(event, _delivery_outcome(name, outcome, recorded))
        return self._answer(delivery, name, outcome, recorded)

    def _answer(self, delivery: str, name: str, outcome: Outcome, recorded: _Recorded) -> _Answer:
        if recorded.duplicate:
            log.info("delivery %s %s: duplicate, nothing done", delivery, name)
            return _Answer(_Json({"duplicate": True, "queued": False, "delivery": delivery}))
        if isinstance(outcome, Ignored):
            log.info("delivery %s %s: ignored: %s", delivery, name, outcome.reason)
            return _Answer(_Json({"ignored": outcome.reason, "delivery": delivery}))
        if name == "ping":
            log.info("delivery %s: ping", delivery)
            return _Answer(_Json({"pong": True, "delivery": delivery}))
        if recorded.queued and isinstance(outcome, JobRequest):
            log.info("delivery %s %s: review queued for %s#%d", delivery, name, outcome.repo, outcome.pr_number)
        else:
            log.info("delivery %s %s: handled", delivery, name)
        response = _Json({"queued": recorded.queued, "delivery": delivery}, status_code=202)
        return _Answer(response, enqueued=recorded.queued)


def _delivery_outcome(name: str, outcome: Outcome, recorded: _Recorded) -> metrics.DeliveryOutcome:
    """What :meth:`_Routes._answer` does with a delivery, for the metrics (the same order of cases)."""
    if recorded.duplicate:
        return "duplicate"
    if isinstance(outcome, Ignored):
        return "ignored"
    if name == "ping":
        return "ping"
    return "queued" if recorded.queued else "installation"


class _Asgi:
    """A plain ASGI endpoint for a route. Starlette wraps a function or a method in its
    Request/Response machinery, which costs the webhook, the one hot path, more than it uses of
    it; any other callable it passes through as it is. (The app's middleware still applies.)"""

    __slots__ = ("_app",)

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


#: The request headers the webhook reads, as ASGI names them.
_WEBHOOK_HEADERS: Final = frozenset(
    (b"content-length", b"x-github-delivery", b"x-github-event", b"x-hub-signature-256")
)


def _webhook_headers(scope: Scope) -> dict[bytes, str]:
    """The first value of each of ``_WEBHOOK_HEADERS`` the request has, in one pass."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _WEBHOOK_HEADERS and name not in found:
            found[name] = value.decode("latin-1")
    return found


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The body, read as it streams in; None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)  # one chunk (the usual case) is returned as it is, not copied
