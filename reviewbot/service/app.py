"""The web side of the GitHub App: ``POST /webhook``, ``GET /healthz``, ``GET /readyz`` and ``GET /metrics``.

A delivery is checked (size, signature, headers, JSON), routed, and recorded with its job in the
store before it is answered (in one transaction with the deliveries that arrived alongside it),
so an answered delivery is never lost; the review itself happens later in the worker. All but the
size check run in a writer thread (:mod:`reviewbot.service.committer`, :mod:`reviewbot.service.intake`).
Every answer is JSON:

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
``GET /metrics`` is the Prometheus text format (see :mod:`reviewbot.service.metrics`); it is not
authenticated, so keep it off the public route.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Final

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from reviewbot import logs
from reviewbot.errors import StoreError
from reviewbot.service import metrics
from reviewbot.service.committer import DeliveryCommitter
from reviewbot.service.intake import error_body
from reviewbot.service.setup import closed_routes
from reviewbot.settings import Settings
from reviewbot.store.store import Store

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


def create_app(
    settings: Settings,
    store: Store,
    *,
    on_enqueued: Callable[[], None] | None = None,
    lifespan: Lifespan | None = None,
) -> Starlette:
    """The ASGI app. ``on_enqueued`` is called (on the event loop) after a job was queued, e.g.
    ``worker.wake``; ``lifespan`` is passed to Starlette (start and stop the worker there)."""
    routes = _Routes(settings, store, DeliveryCommitter(settings, store), on_enqueued)
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


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, error_body(message)


class _Routes:
    def __init__(
        self, settings: Settings, store: Store, committer: DeliveryCommitter, on_enqueued: Callable[[], None] | None
    ) -> None:
        secret = settings.webhook_secret
        self._has_secret = secret is not None and bool(secret.get_secret_value())
        self._store = store
        self._committer = committer
        self._on_enqueued = on_enqueued
        self._metrics = metrics.scrape_registry(store.job_counts)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready: the database answers."""
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
            status, body = await self._webhook(receive, headers, delivery)
        if (reason := _REJECTIONS.get(status)) is not None:
            metrics.observe_rejection(reason)
        await send({"type": "http.response.start", "status": status, "headers": _json_headers(len(body))})
        await send({"type": "http.response.body", "body": body})

    async def _webhook(self, receive: Receive, headers: dict[bytes, str], delivery: str) -> tuple[int, bytes]:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, "payload too large")
        body = await _read_body(receive, MAX_BODY_BYTES)
        if body is None:
            return _error(413, "payload too large")
        if not self._has_secret:
            log.error("REVIEWBOT_WEBHOOK_SECRET is not set: every delivery is refused with 401")
            return _error(401, "invalid signature")
        event = headers.get(b"x-github-event", "")
        # A store error is an answer (503), not an exception: the intake logs and counts it.
        answer = await self._committer.accept(delivery, event, headers.get(b"x-hub-signature-256"), body)
        if answer.counted is not None:
            metrics.observe_delivery(event, answer.counted)
        if answer.queued and self._on_enqueued is not None:
            try:
                self._on_enqueued()
            except Exception:  # the job is stored; the worker's poll will find it
                log.exception("on_enqueued failed")
        return answer.status, answer.body


def _json_headers(length: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(length).encode("ascii"))]


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
