"""The web side of the GitHub App: ``POST /webhook``, ``GET /healthz``, ``GET /readyz``, and ``GET /metrics``
unless ``REVIEWBOT_METRICS_PORT`` serves it on a port of its own.

A delivery is checked (headers, size, signature as the body streams in, JSON and the fields used),
routed, and recorded with its job in the store before it is answered (in one transaction with
the deliveries that arrived alongside it), so an answered delivery is never lost; the review
itself happens later in the worker. What needs no body is refused before the body is read;
the body is read and its signature checked on the event loop (:mod:`reviewbot.service.body`), the
rest runs in a writer thread (:mod:`reviewbot.service.committer`, :mod:`reviewbot.service.intake`).
Every answer is JSON:

=====================================  ======  ==================================================
case                                   status  body
=====================================  ======  ==================================================
review queued                          202     ``{"queued": true, "delivery": ID}``
handled, nothing queued (installation) 202     ``{"queued": false, "delivery": ID}``
``ping``                               200     ``{"pong": true, "delivery": ID}``
event or action we do not act on       200     ``{"ignored": REASON, "delivery": ID}``
delivery id or body seen before        200     ``{"duplicate": true, "queued": false, "delivery": ID}``
peer not in the allowlist              403     ``{"error": "source address not allowed"}``
body over 25 MiB                       413     ``{"error": "payload too large"}``
bad or missing signature, no secret    401     ``{"error": "invalid signature"}``
missing headers, bad JSON or field     400     ``{"error": ...}`` (naming the field)
X-GitHub-Delivery that is not a GUID   400     ``{"error": ...}`` (saying the form)
body not whole within the read timeout 408     ``{"error": ...}``, and the connection is closed
too many unsigned uploads at once      503     ``{"error": ...}``, with ``Retry-After`` (in all, or
                                               from the peer's address)
store unavailable                      503     ``{"error": "store unavailable"}``
=====================================  ======  ==================================================

The allowlist (REVIEWBOT_WEBHOOK_ALLOWED_IPS, :mod:`reviewbot.service.peers`) applies to ``POST
/webhook`` alone: a load balancer's health checks and Prometheus reach the other routes from
their own addresses. Its 403s are counted each, but logged at most once a minute
(:mod:`reviewbot.service.refusal_log`): anyone on the internet can cause them. A 503 makes GitHub
list the delivery as failed, so it can be redelivered once the store is back.
A client that hangs up mid-body gets one log line. The delivery id is the GUID in
``X-GitHub-Delivery``, in lower case; what a stranger sends there instead reaches the log lines
only through :func:`reviewbot.logs.printable`, and so does the peer's address, which behind a
trusted proxy is what the client wrote in ``X-Forwarded-For``. ``GET /metrics`` is the Prometheus text format
(see :mod:`reviewbot.service.metrics`). It is not authenticated, and it tells model names, spend and
job counts to whoever asks: with ``REVIEWBOT_METRICS_PORT`` set this app has no such route (404),
and :mod:`reviewbot.service.metrics_server` serves it on that port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send, StatelessLifespan

from reviewbot import logs
from reviewbot.errors import StoreError
from reviewbot.service import metrics
from reviewbot.service.body import BodyRefused, ClientGone, UnverifiedBytes, read_signed_body
from reviewbot.service.committer import DeliveryCommitter
from reviewbot.service.hook_ranges import REFRESH_SECONDS, refreshing
from reviewbot.service.intake import error_body
from reviewbot.service.peers import Allowlist, peer_key
from reviewbot.service.refusal_log import RefusalLog
from reviewbot.service.setup import closed_routes
from reviewbot.service.webhooks import SignatureCheck, delivery_id, event_name, router
from reviewbot.settings import Settings
from reviewbot.store.store import Store

log = logging.getLogger("reviewbot.app")

#: GitHub caps webhook payloads at 25 MB and does not deliver larger ones, so anything bigger is
#: not from GitHub.
MAX_BODY_BYTES: Final = 25 * 1024 * 1024
NOT_A_GUID: Final = (
    "X-GitHub-Delivery must be a GUID: 8-4-4-4-12 hex digits, as in 72d3162e-cc78-11e3-81ab-4c9367dc0958"
)
NOT_AN_EVENT: Final = (
    "X-GitHub-Event must be an event name: lower-case letters, digits and underscores, as in pull_request"
)


def create_app(
    settings: Settings,
    store: Store,
    *,
    on_enqueued: Callable[[], None] | None = None,
    lifespan: StatelessLifespan[Starlette] | None = None,
    unverified: UnverifiedBytes | None = None,
    allowlist: Allowlist | None = None,
    refresh_every: float = REFRESH_SECONDS,
) -> Starlette:
    """The ASGI app. ``on_enqueued`` is called (on the event loop) after a job was queued, e.g.
    ``worker.wake``; ``lifespan`` is passed to Starlette (start and stop the worker there);
    ``unverified`` bounds the bodies read before their signature is checked (one per process).

    ``allowlist`` is who may post webhooks, by default as the settings say; when it includes
    GitHub's ranges, they are read every ``refresh_every`` seconds while the app runs (at once if
    they were not read before)."""
    if allowlist is None:
        allowlist = Allowlist.from_settings(settings)
    if allowlist.wants_github:
        lifespan = refreshing(allowlist, settings.github_api_url, refresh_every, lifespan)
    committer = DeliveryCommitter(settings, store)
    routes = _Routes(settings, store, committer, on_enqueued, unverified or UnverifiedBytes(), allowlist)
    scrape = [Route("/metrics", routes.scrape, methods=["GET"])] if settings.metrics_port is None else []
    return Starlette(
        routes=[
            Route("/webhook", _Asgi(routes.webhook), methods=["POST"], name="webhook"),
            Route("/healthz", routes.healthz, methods=["GET"]),
            Route("/readyz", routes.readyz, methods=["GET"]),
            *scrape,
            *closed_routes(),  # one-click setup answers 403 once an App is configured
        ],
        lifespan=lifespan,
    )


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes  # JSON
    refused: metrics.RejectionReason | None = None  # counted in reviewbot_webhook_rejected_total
    close: bool = False  # the client is too slow to keep its connection
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class _Peer:
    """Who sent a request: ``host`` as the ASGI scope has it (None without one)."""

    host: str | None

    @property
    def named(self) -> str:
        """The peer for a log line. Behind a proxy uvicorn trusts, it is what the client put in
        ``X-Forwarded-For`` (any text, C1 control bytes included), so it goes through
        :func:`~reviewbot.logs.printable` like any value a stranger chose."""
        return "(no address)" if self.host is None else logs.printable(self.host)


def _refusal(refused: BodyRefused) -> _Answer:
    return _Answer(
        refused.status, error_body(refused.message), refused.reason, refused.status == 408, refused.retry_after
    )


#: How the intake's statuses are counted when it refuses a delivery.
_INTAKE_REFUSALS: Final[dict[int, metrics.RejectionReason]] = {400: "bad_request", 503: "store_unavailable"}


class _Routes:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        committer: DeliveryCommitter,
        on_enqueued: Callable[[], None] | None,
        unverified: UnverifiedBytes,
        allowlist: Allowlist,
    ) -> None:
        secret = settings.webhook_secret
        self._secret = secret.get_secret_value().encode() if secret is not None else b""
        self._read_timeout = settings.webhook_read_timeout
        self._unverified = unverified
        self._allowlist = allowlist
        # What anyone on the internet can cause at will is logged at most once a minute by kind, and
        # counted each time (reviewbot_webhook_rejected_total).
        self._not_allowed = RefusalLog(log)  # once the allowlist is on, the whole internet is refused
        self._unsigned = RefusalLog(log)
        self._bad_headers = RefusalLog(log)
        self._bad_bodies = RefusalLog(log)
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
        sent = headers.get(b"x-github-delivery")
        delivery = delivery_id(sent) if sent is not None else None
        # How the log lines name the delivery: by its id, or by what was sent instead, made safe.
        named = delivery or ("(no id)" if sent is None else logs.printable(sent))
        client = scope.get("client")
        peer: str | None = client[0] if client else None
        with logs.log_context(delivery=delivery):
            try:
                answer = await self._webhook(receive, headers, delivery, named, _Peer(peer))
            except ClientGone as gone:
                self._bad_bodies.log("delivery %s: %s; nothing recorded", named, gone)
                return  # no one to answer
        if answer.refused is not None:
            metrics.observe_rejection(answer.refused)
        await send({"type": "http.response.start", "status": answer.status, "headers": _response_headers(answer)})
        await send({"type": "http.response.body", "body": answer.body})

    async def _webhook(
        self, receive: Receive, headers: dict[bytes, str], delivery: str | None, named: str, peer: _Peer
    ) -> _Answer:
        # First what needs no body: an answer before the body is read costs no memory and no wait.
        if not self._allowlist.allows(peer.host):
            self._not_allowed.log(
                "delivery %s from %s refused: not in REVIEWBOT_WEBHOOK_ALLOWED_IPS", named, peer.named
            )
            return _Answer(403, error_body("source address not allowed"), "not_allowed")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _Answer(413, error_body("payload too large"), "too_large")
        if not self._secret:
            log.error("REVIEWBOT_WEBHOOK_SECRET is not set: every delivery is refused with 401")
            return _Answer(401, error_body("invalid signature"), "signature")
        check = SignatureCheck.from_header(self._secret, headers.get(b"x-hub-signature-256"))
        if check is None:
            self._unsigned.log("delivery %s: missing or malformed X-Hub-Signature-256", named)
            return _Answer(401, error_body("invalid signature"), "signature")
        event = headers.get(b"x-github-event", "")
        if not event or b"x-github-delivery" not in headers:
            return _Answer(400, error_body("X-GitHub-Event and X-GitHub-Delivery headers are required"), "bad_request")
        if delivery is None:  # it is the store's key and in every log line of the delivery
            self._bad_headers.log("delivery from %s refused: X-GitHub-Delivery %s is not a GUID", peer.named, named)
            return _Answer(400, error_body(NOT_A_GUID), "bad_request")
        if event_name(event) is None:  # it is kept with the delivery and named in its log lines
            self._bad_headers.log(
                "delivery %s refused: X-GitHub-Event %s is no event name", named, logs.printable(event)
            )
            return _Answer(400, error_body(NOT_AN_EVENT), "bad_request")
        try:
            body = await read_signed_body(
                receive,
                check,
                self._unverified,
                peer=peer_key(peer.host),
                limit=MAX_BODY_BYTES,
                timeout=self._read_timeout,
            )
        except BodyRefused as refused:
            self._bad_bodies.log("delivery %s from %s: %s", delivery, peer.named, refused)
            return _refusal(refused)
        # A store error is an answer (503), not an exception: the intake logs and counts it.
        answer = await self._committer.accept(delivery, event, body)
        if answer.counted is not None:
            # The header is not signed: a replayed body under made-up event names must not mint
            # a metrics series each.
            metrics.observe_delivery(event if event in router.events else "other", answer.counted)
        if answer.queued and self._on_enqueued is not None:
            try:
                self._on_enqueued()
            except Exception:  # the job is stored; the worker's poll will find it
                log.exception("on_enqueued failed")
        return _Answer(answer.status, answer.body, _INTAKE_REFUSALS.get(answer.status))


def _response_headers(answer: _Answer) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer.body)).encode("ascii"))]
    if answer.retry_after is not None:
        headers.append((b"retry-after", str(answer.retry_after).encode("ascii")))
    if answer.close:  # RFC 9110 §15.5.9: a 408 closes the connection
        headers.append((b"connection", b"close"))
    return headers


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
