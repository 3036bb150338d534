"""A webhook delivery whose signature matched, once its body is read: decoded, routed, recorded, answered.

:class:`DeliveryIntake` takes the deliveries that arrived together (a *group*) and returns an
answer for each: it decodes and routes each payload (refusing with 400 one whose fields are not
what GitHub sends), records the group's deliveries and jobs in one transaction (one commit, one
fsync, for all of them), and writes each delivery's log line. It runs in the web process's writer
thread (:mod:`reviewbot.service.committer`); an answer is only sent once its delivery is committed.

A delivery is recorded with the SHA-256 of its body: GitHub signs the body but not the delivery id,
so a body already recorded is a duplicate whatever id it comes under, answered as GitHub's own
redelivery (same id, same body) is. Their log lines tell them apart, so that an operator sees
whether GitHub redelivered or someone replayed a signed body; and as a stranger holding a signed
delivery can send either again at will, each kind is logged at most once a minute
(:mod:`reviewbot.service.refusal_log`), the rest counted in the next line.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from reviewbot import logs
from reviewbot.errors import StoreError
from reviewbot.service import metrics
from reviewbot.service.refusal_log import RefusalLog
from reviewbot.service.webhooks import (
    Ignored,
    Outcome,
    PayloadError,
    Router,
    WebhookOptions,
    delivery_facts,
)
from reviewbot.service.webhooks import router as default_router
from reviewbot.settings import Settings
from reviewbot.store.records import Delivery, InstallationChange, JobRequest, Recorded
from reviewbot.store.store import Store

log = logging.getLogger("reviewbot.app")


@dataclass(frozen=True, slots=True)
class IntakeRequest:
    """A delivery as read from the request: its headers and its body, whose signature matched."""

    id: int  # the request's number, to match its answer
    delivery: str
    event: str
    body: bytes


@dataclass(frozen=True, slots=True)
class IntakeAnswer:
    """The HTTP answer to a delivery, and what the web process does besides sending it."""

    id: int
    status: int
    body: bytes  # JSON
    queued: bool = False  # a review job was queued: wake the worker
    counted: metrics.DeliveryOutcome | None = None  # for reviewbot_webhook_deliveries_total


@dataclass(frozen=True, slots=True)
class _Accepted:
    """A delivery that passed every check and waits for its group's commit."""

    request: IntakeRequest
    record: Delivery
    name: str  # event.action
    outcome: Outcome


_JSON: Final = msgspec.json.Encoder()


def error_body(message: str) -> bytes:
    return _JSON.encode({"error": message})


class DeliveryIntake:
    """Answers groups of signed deliveries: payload, routing, durable record, log line."""

    def __init__(self, store: Store, router: Router, options: WebhookOptions) -> None:
        self._store = store
        self._router = router
        self._options = options
        self._redeliveries = RefusalLog(log, level=logging.INFO, kind="duplicate")
        self._replays = RefusalLog(log, kind="replay")

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> DeliveryIntake:
        """The intake ``reviewbot serve`` runs: the default router."""
        return cls(store, default_router, WebhookOptions.from_settings(settings))

    def answer_group(self, requests: Sequence[IntakeRequest]) -> list[IntakeAnswer]:
        """One answer per request, in order. Never raises: a bug answers 500 for its delivery."""
        answers: dict[int, IntakeAnswer] = {}
        accepted: list[_Accepted] = []
        for request in requests:
            with logs.log_context(delivery=request.delivery or None):
                try:
                    checked = self._check(request)
                except Exception:
                    log.exception("delivery %s: could not be handled", request.delivery)
                    checked = IntakeAnswer(request.id, 500, error_body("internal error"))
            if isinstance(checked, IntakeAnswer):
                answers[request.id] = checked
            else:
                accepted.append(checked)
        try:
            recorded = self._record(accepted)
        except Exception:  # a bug: answer 500 and keep going, rather than end the process
            log.exception("%d deliveries could not be recorded", len(accepted))
            recorded = [IntakeAnswer(item.request.id, 500, error_body("internal error")) for item in accepted]
        for item, answer in zip(accepted, recorded, strict=True):
            answers[item.request.id] = answer
        return [answers[request.id] for request in requests]

    def _check(self, request: IntakeRequest) -> IntakeAnswer | _Accepted:
        """The refusal of a delivery, or what to record of it."""
        try:
            payload = self._router.decode(request.body)
        except PayloadError as exc:
            log.warning("delivery %s: %s", request.delivery, exc)
            return IntakeAnswer(request.id, 400, error_body(str(exc)))
        facts = delivery_facts(payload)
        name = f"{request.event}.{facts.action}" if facts.action is not None else request.event
        try:
            outcome = self._router.dispatch(request.event, payload, self._options)
        except PayloadError as exc:
            with logs.log_context(repo=facts.repo):
                log.warning("delivery %s: %s", request.delivery, exc)
            return IntakeAnswer(request.id, 400, error_body(str(exc)))
        job = outcome if isinstance(outcome, JobRequest) else None
        body_sha256 = hashlib.sha256(request.body).hexdigest()
        record = Delivery(
            request.delivery, request.event, facts.action, facts.installation_id, facts.repo, job, body_sha256
        )
        return _Accepted(request, record, name, outcome)

    def _record(self, accepted: list[_Accepted]) -> list[IntakeAnswer]:
        """Commit the group, then answer each delivery. Installation changes are committed one at a
        time, each with its delivery: rare, and they touch other tables."""
        grouped = [item for item in accepted if not isinstance(item.outcome, InstallationChange)]
        outcomes: dict[int, Recorded | StoreError] = {}
        if grouped:
            try:
                added: Sequence[Recorded | StoreError] = self._store.record_deliveries(
                    [item.record for item in grouped]
                )
            except StoreError as exc:
                added = [exc] * len(grouped)
            outcomes.update((item.request.id, outcome) for item, outcome in zip(grouped, added, strict=True))
        for item in accepted:
            if isinstance(item.outcome, InstallationChange):
                try:
                    outcomes[item.request.id] = self._store.record_installation_delivery(item.record, item.outcome)
                except StoreError as exc:
                    outcomes[item.request.id] = exc
        return [self._answer(item, outcomes[item.request.id]) for item in accepted]

    def _answer(self, item: _Accepted, added: Recorded | StoreError) -> IntakeAnswer:
        """The answer once the delivery is committed (or could not be), and its log line."""
        request, name, outcome = item.request, item.name, item.outcome
        delivery = request.delivery
        job = outcome if isinstance(outcome, JobRequest) else None
        context: dict[str, object] = {"repo": item.record.repo}
        if job is not None:
            context.update(pr=job.pr_number, head=job.head_sha or None)
        with logs.log_context(delivery=delivery, **context):
            if isinstance(added, StoreError):
                log.error("delivery %s: store unavailable: %s", delivery, added)
                return IntakeAnswer(request.id, 503, error_body("store unavailable"))
            if added != "recorded":
                self._log_duplicate(added, delivery, name, job)
                body = {"duplicate": True, "queued": False, "delivery": delivery}
                return IntakeAnswer(request.id, 200, _JSON.encode(body), counted="duplicate")
            if isinstance(outcome, Ignored):
                log.info("delivery %s %s: ignored: %s", delivery, name, outcome.reason)
                body = {"ignored": outcome.reason, "delivery": delivery}
                return IntakeAnswer(request.id, 200, _JSON.encode(body), counted="ignored")
            if job is not None:
                log.info("delivery %s %s: review queued for %s#%d", delivery, name, job.repo, job.pr_number)
                body = {"queued": True, "delivery": delivery}
                return IntakeAnswer(request.id, 202, _JSON.encode(body), queued=True, counted="queued")
            if request.event == "ping":
                log.info("delivery %s: ping", delivery)
                return IntakeAnswer(request.id, 200, _JSON.encode({"pong": True, "delivery": delivery}), counted="ping")
            log.info("delivery %s %s: handled", delivery, name)
            body = {"queued": False, "delivery": delivery}
            return IntakeAnswer(request.id, 202, _JSON.encode(body), counted="installation")

    def _log_duplicate(self, added: Recorded, delivery: str, name: str, job: JobRequest | None) -> None:
        """The line for a delivery left out: GitHub's redelivery, or a signed body someone sent again."""
        if added == "redelivery":
            self._redeliveries.log(
                "delivery %s %s: duplicate: this delivery was recorded before (GitHub's redelivery), nothing done",
                delivery,
                name,
            )
            return
        comment = job.comment_id if job is not None else None
        taken = f" (comment {comment}'s review command was already taken)" if comment is not None else ""
        self._replays.log(
            "delivery %s %s: replay: a signed body sent again under a delivery id that is not its own%s, nothing done",
            delivery,
            name,
            taken,
        )
