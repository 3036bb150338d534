"""Prometheus metrics: the one place they are defined, and the one-line calls that feed them.

=================================================  =========  ===============================================
metric                                             type       labels
=================================================  =========  ===============================================
``reviewbot_webhook_deliveries_total``             counter    ``event`` (one reviewbot handles, else
                                                              other), ``outcome`` (queued, ignored,
                                                              duplicate, installation, ping)
``reviewbot_webhook_rejected_total``               counter    ``reason`` (not_allowed, signature, too_large,
                                                              too_slow, busy, bad_request,
                                                              store_unavailable)
``reviewbot_jobs``                                 gauge      ``state`` (queued, running, done, failed,
                                                              dropped), read from the store at scrape time
``reviewbot_review_duration_seconds``              histogram  ``outcome`` (done, dropped, retried, failed,
                                                              lost), from job claim to its end
``reviewbot_model_requests_total``                 counter    ``model``, ``outcome`` (ok, invalid_json, error)
``reviewbot_model_request_duration_seconds``       histogram  ``model``, ``outcome``
``reviewbot_model_tokens_total``                   counter    ``model``, ``kind`` (input, output, reasoning;
                                                              reasoning tokens are part of output)
``reviewbot_model_cost_usd_total``                 counter    ``model``: known costs only
``reviewbot_model_requests_unknown_cost_total``    counter    ``model``: requests whose cost is unknown
``reviewbot_pruned_rows_total``                    counter    ``table`` (deliveries, jobs, kept_results):
                                                              rows the retention deleted
=================================================  =========  ===============================================

Every process counts what it did itself: with ``reviewbot serve`` one process does both, and
when the web side and workers run as separate processes (or replicas) each one is its own
scrape target, so query with ``sum by (…)`` across targets. ``reviewbot_jobs`` is the exception:
it is read from the shared store on every scrape, so every target reports the same figures —
use ``max`` (not ``sum``) across targets. With ``REVIEWBOT_METRICS_PORT`` set, ``reviewbot serve``
and ``reviewbot worker`` serve ``GET /metrics`` on that port alone
(:mod:`reviewbot.service.metrics_server`); unset, ``serve`` serves it with its app, on the webhook's
port, and ``worker`` serves none. A process must not fork web workers (no ``uvicorn --workers``):
their counters would be split over processes behind one port, which is what the client library's
multiprocess mode is for, and reviewbot does not use it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reviewbot.engine.price_layers import Prices
from reviewbot.engine.result import ModelCall
from reviewbot.errors import StoreError
from reviewbot.money.ledger import price_call
from reviewbot.store.records import JobState, Pruned

log = logging.getLogger("reviewbot.metrics")

DeliveryOutcome = Literal["queued", "ignored", "duplicate", "installation", "ping"]
RejectionReason = Literal[
    "not_allowed", "signature", "too_large", "too_slow", "busy", "bad_request", "store_unavailable"
]
ReviewOutcome = Literal["done", "dropped", "retried", "failed", "lost"]

REJECTION_REASONS: Final[tuple[RejectionReason, ...]] = (
    "not_allowed",
    "signature",
    "too_large",
    "too_slow",
    "busy",
    "bad_request",
    "store_unavailable",
)
REVIEW_OUTCOMES: Final[tuple[ReviewOutcome, ...]] = ("done", "dropped", "retried", "failed", "lost")
PRUNED_TABLES: Final = ("deliveries", "jobs", "kept_results")
#: A review takes from about a second (nothing to review) to the 15 minutes of a large PR on a slow model.
REVIEW_BUCKETS: Final = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0)
#: One model request, retries included: well under a second up to a few timeouts.
MODEL_BUCKETS: Final = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

# Each counter's `_created` series would double the series count for nothing Prometheus uses.
disable_created_metrics()  # type: ignore[no-untyped-call]

JobCounts = Callable[[], Mapping[JobState, int]]


class Metrics:
    """Every metric, registered on ``registry``; tests build one over a fresh registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.deliveries = Counter(
            "reviewbot_webhook_deliveries_total",
            "Signed webhook deliveries answered, by GitHub event and what was done with them.",
            ["event", "outcome"],
            registry=registry,
        )
        self.rejected = Counter(
            "reviewbot_webhook_rejected_total",
            "Webhook deliveries refused, by reason (source not allowed, bad signature, too large, too slow, busy, "
            "bad request, store unavailable).",
            ["reason"],
            registry=registry,
        )
        self.review_duration = Histogram(
            "reviewbot_review_duration_seconds",
            "Seconds from a review job's claim to its end, by how the attempt ended.",
            ["outcome"],
            buckets=REVIEW_BUCKETS,
            registry=registry,
        )
        self.model_requests = Counter(
            "reviewbot_model_requests_total",
            "Requests to the model endpoint, by model and outcome (ok, invalid_json, error).",
            ["model", "outcome"],
            registry=registry,
        )
        self.model_duration = Histogram(
            "reviewbot_model_request_duration_seconds",
            "Seconds one model request took, the client's retries included.",
            ["model", "outcome"],
            buckets=MODEL_BUCKETS,
            registry=registry,
        )
        self.model_tokens = Counter(
            "reviewbot_model_tokens_total",
            "Tokens the endpoint reported, by model and kind (input, output, reasoning; reasoning is part of output).",
            ["model", "kind"],
            registry=registry,
        )
        self.model_cost = Counter(
            "reviewbot_model_cost_usd_total",
            "USD spent on model requests whose cost is known (the endpoint's figure, else tokens × the price).",
            ["model"],
            registry=registry,
        )
        self.model_unknown_cost = Counter(
            "reviewbot_model_requests_unknown_cost_total",
            "Model requests whose cost is unknown (no price for the model); not included in the USD total.",
            ["model"],
            registry=registry,
        )
        self.pruned = Counter(
            "reviewbot_pruned_rows_total",
            "Rows the retention deleted (REVIEWBOT_RETENTION_DAYS), by table.",
            ["table"],
            registry=registry,
        )
        # Series that exist from the start, so rates and alerts see a 0 rather than nothing.
        for reason in REJECTION_REASONS:
            self.rejected.labels(reason)
        for outcome in REVIEW_OUTCOMES:
            self.review_duration.labels(outcome)
        for table in PRUNED_TABLES:
            self.pruned.labels(table)

    def observe_delivery(self, event: str, outcome: DeliveryOutcome) -> None:
        self.deliveries.labels(event, outcome).inc()

    def observe_rejection(self, reason: RejectionReason) -> None:
        self.rejected.labels(reason).inc()

    def observe_review(self, outcome: ReviewOutcome, seconds: float) -> None:
        self.review_duration.labels(outcome).observe(max(0.0, seconds))

    def observe_prune(self, pruned: Pruned) -> None:
        self.pruned.labels("deliveries").inc(pruned.deliveries)
        self.pruned.labels("jobs").inc(pruned.jobs)
        self.pruned.labels("kept_results").inc(pruned.kept_results)

    def observe_model_calls(self, calls: Iterable[ModelCall], prices: Prices) -> None:
        """Count each call, its tokens and its cost.

        A call's cost is the endpoint's own figure, else its tokens × the price that applies; when
        neither is known it is counted as unknown, never as $0. A call that used no tokens and
        reported no cost (it failed before anything was billed) adds to neither.
        """
        for call in calls:
            model, usage = call.model, call.usage
            self.model_requests.labels(model, call.outcome).inc()
            self.model_duration.labels(model, call.outcome).observe(max(0.0, call.seconds))
            self.model_tokens.labels(model, "input").inc(usage.input_tokens)
            self.model_tokens.labels(model, "output").inc(usage.output_tokens)
            self.model_tokens.labels(model, "reasoning").inc(usage.reasoning_tokens)
            if usage.cost_usd is None and not usage.input_tokens and not usage.output_tokens:
                continue
            usd = price_call(call, prices).usd  # as the ledger prices it
            if usd is None:
                self.model_unknown_cost.labels(model).inc()
            else:
                self.model_cost.labels(model).inc(max(0.0, usd))


class JobsCollector:
    """``reviewbot_jobs{state}``, asked of the store on every scrape (so it is right across processes)."""

    def __init__(self, job_counts: JobCounts) -> None:
        self._job_counts = job_counts

    def describe(self) -> Iterable[Metric]:
        return [_jobs_family()]

    def collect(self) -> Iterable[Metric]:
        try:
            counts = self._job_counts()
        except StoreError as exc:
            # Left out rather than reported as 0: absent(reviewbot_jobs) is what to alert on.
            log.warning("jobs left out of the metrics: %s", exc)
            return []
        family = _jobs_family()
        for state, count in sorted(counts.items()):
            family.add_metric([state], count)
        return [family]


def _jobs_family() -> GaugeMetricFamily:
    return GaugeMetricFamily("reviewbot_jobs", "Review jobs in the store, by state.", labels=["state"])


class _Forward:
    """Another registry's metrics, for a registry that adds its own (describes nothing, so never clashes)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()


#: The process's metrics; the /metrics endpoint serves these plus the jobs gauge.
REGISTRY: Final = CollectorRegistry()
METRICS: Final = Metrics(REGISTRY)

observe_delivery: Final = METRICS.observe_delivery
observe_rejection: Final = METRICS.observe_rejection
observe_review: Final = METRICS.observe_review
observe_model_calls: Final = METRICS.observe_model_calls
observe_prune: Final = METRICS.observe_prune


def scrape_registry(job_counts: JobCounts, source: CollectorRegistry = REGISTRY) -> CollectorRegistry:
    """What one scrape target exposes: ``source`` and the jobs gauge read through ``job_counts``."""
    registry = CollectorRegistry()
    registry.register(_Forward(source))
    collector: Collector = JobsCollector(job_counts)
    registry.register(collector)
    return registry
