"""Prometheus metrics: ``GET /metrics`` over loopback after real deliveries, the worker's review
durations, the service's model calls, and ``observe_model_calls`` on a fresh registry.

The process-wide counters are shared by every test, so the tests over them read deltas.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp

from fake_github import FakeGitHub
from fake_openai import FakeOpenAI
from fixtures_path import WEBHOOKS
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.result import ModelCall
from reviewbot.engine.usage import Usage
from reviewbot.errors import StoreError
from reviewbot.service import metrics
from reviewbot.service.app import create_app
from reviewbot.service.metrics import JobsCollector, Metrics, scrape_registry
from reviewbot.service.metrics_server import start_metrics_server
from reviewbot.service.worker import JobOutcome, TransientJobError
from reviewbot.settings import Settings
from reviewbot.store.records import JOB_STATES, Delivery, Job, JobRequest, JobState
from reviewbot.store.store import Store, open_store
from stored import has_delivery, record_delivery
from test_app import TOO_BIG, headers, opened_payload
from test_service import BASE as SERVICE_BASE
from test_service import BUG, LEEWAY, NUMBER, answer_with, make_service, make_settings
from test_service import HEAD as SERVICE_HEAD
from test_service import REPO as SERVICE_REPO
from test_worker import enqueue, make_worker, run_until

SECRET = b"metrics-secret"
ServeApp = Callable[[ASGIApp], AbstractContextManager[str]]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def deltas(before: Samples, after: Samples, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What moved among the samples whose name starts with ``prefix``."""
    moved = {key: after[key] - before.get(key, 0.0) for key in after if key[0].startswith(prefix)}
    return {key: change for key, change in moved.items() if change}


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def process_samples() -> Samples:
    return parse(generate_latest(metrics.REGISTRY).decode())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'metrics.db'}")
    yield opened
    opened.close()


# -- GET /metrics over loopback ----------------------------------------------------------------


def test_deliveries_and_rejections_move_the_counters_by_exactly_what_was_sent(
    store: Store, serve_app: ServeApp
) -> None:
    def send(event: str, body: bytes, *, secret: bytes = SECRET, delivery: str | None = None) -> int:
        sent = headers(event, body, secret=secret, delivery=delivery)
        return httpx.post(f"{url}/webhook", content=body, headers=sent, timeout=10).status_code

    with serve_app(create_app(Settings(webhook_secret=SECRET.decode()), store)) as url:
        before = scrape(url)
        _, opened = opened_payload()
        delivery = str(uuid.uuid4())
        statuses = [
            send("pull_request", opened, delivery=delivery),
            send("pull_request", opened, delivery=delivery),
            send("pull_request", opened_payload()[1]),
            send("ping", (WEBHOOKS / "ping" / "payload.json").read_bytes()),
            send("star", json.dumps({"action": "created", "repository": {"full_name": "o/r"}}).encode()),
            send("installation", (WEBHOOKS / "installation" / "created.payload.json").read_bytes()),
            send("pull_request", opened_payload()[1], secret=b"forged"),
            send("pull_request", b'{"action": '),
            send("pull_request", b"x" * TOO_BIG),
        ]
        after = scrape(url)

    assert statuses == [202, 200, 202, 200, 200, 202, 401, 400, 413]
    delivered = "reviewbot_webhook_deliveries_total"
    rejected = "reviewbot_webhook_rejected_total"
    assert deltas(before, after, "reviewbot_webhook_") == {
        (delivered, (("event", "pull_request"), ("outcome", "queued"))): 2,
        (delivered, (("event", "pull_request"), ("outcome", "duplicate"))): 1,
        (delivered, (("event", "ping"), ("outcome", "ping"))): 1,
        (delivered, (("event", "other"), ("outcome", "ignored"))): 1,  # an event no handler takes
        (delivered, (("event", "installation"), ("outcome", "installation"))): 1,
        (rejected, (("reason", "signature"),)): 1,
        (rejected, (("reason", "bad_request"),)): 1,
        (rejected, (("reason", "too_large"),)): 1,
    }
    # Every reason is there from the start, so a rate over it is 0 rather than nothing.
    assert value(after, rejected, reason="store_unavailable") == value(before, rejected, reason="store_unavailable")
    assert (rejected, (("reason", "store_unavailable"),)) in after


def test_the_jobs_gauge_is_what_the_store_holds_and_left_out_without_a_store(store: Store, serve_app: ServeApp) -> None:
    with serve_app(create_app(Settings(webhook_secret=SECRET.decode()), store)) as url:
        for _ in range(3):
            _, body = opened_payload()
            sent = headers("pull_request", body, secret=SECRET)
            assert httpx.post(f"{url}/webhook", content=body, headers=sent, timeout=10).status_code == 202
        claimed = store.claim_job("w1", 60)
        assert claimed is not None
        store.finish_job(claimed.id, "w1", "dropped", "test")
        assert store.claim_job("w1", 60) is not None
        counts = store.job_counts()
        assert (counts["queued"], counts["running"], counts["dropped"]) == (1, 1, 1)
        scraped = scrape(url)
        assert {state: value(scraped, "reviewbot_jobs", state=state) for state in JOB_STATES} == counts

        store.close()
        after = scrape(url)  # still answers: the gauge is left out, never reported as 0
    assert not any(name == "reviewbot_jobs" for name, _ in after)


def test_a_delivery_the_store_cannot_take_is_a_503_counted_as_store_unavailable(
    store: Store, serve_app: ServeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(deliveries: Sequence[Delivery], *, now: float | None = None) -> list[bool]:
        raise StoreError("disk I/O error")

    app = create_app(Settings(webhook_secret=SECRET.decode()), store)
    with serve_app(app) as url:
        before = value(scrape(url), "reviewbot_webhook_rejected_total", reason="store_unavailable")
        monkeypatch.setattr(store, "record_deliveries", broken)
        _, body = opened_payload()
        sent = headers("pull_request", body, secret=SECRET)
        response = httpx.post(f"{url}/webhook", content=body, headers=sent, timeout=10)
        monkeypatch.undo()
        after = scrape(url)
    assert (response.status_code, response.json()) == (503, {"error": "store unavailable"})
    assert value(after, "reviewbot_webhook_rejected_total", reason="store_unavailable") == before + 1
    assert not has_delivery(store, sent["X-GitHub-Delivery"])


def test_the_metrics_listener_serves_the_metrics_with_the_jobs_gauge_at_metrics_alone(store: Store) -> None:
    enqueue(store, pr=1)
    server = start_metrics_server(store.job_counts, host="127.0.0.1", port=0)
    url = f"http://127.0.0.1:{server.port}"
    try:
        response = httpx.get(f"{url}/metrics", timeout=10)
        elsewhere = [httpx.get(f"{url}{path}", timeout=10).status_code for path in ("/", "/favicon.ico", "/metrics/")]
        posted = httpx.post(f"{url}/metrics", content=b"", timeout=10).status_code
    finally:
        server.close()
    assert elsewhere == [404, 404, 404]
    assert posted == 405
    scraped = parse(response.text)
    assert value(scraped, "reviewbot_jobs", state="queued") == 1
    assert ("reviewbot_review_duration_seconds_count", (("outcome", "done"),)) in scraped


def test_the_metrics_listener_closes_idle_connections_and_holds_a_bounded_number(store: Store) -> None:
    # Each connection has a thread: idle ones must not pile up, whoever opens them.
    server = start_metrics_server(store.job_counts, host="127.0.0.1", port=0, idle_timeout=0.3, max_connections=2)
    address = ("127.0.0.1", server.port)
    try:
        idle = [socket.create_connection(address, timeout=10) for _ in range(2)]
        extra = socket.create_connection(address, timeout=10)
        assert extra.recv(1) == b""  # past the bound: closed at once, unanswered
        for connection in idle:
            assert connection.recv(1) == b""  # closed by the server after its idle timeout
            connection.close()
        extra.close()
        # Freed again: a scrape is answered.
        assert httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).status_code == 200
    finally:
        server.close()


def test_a_failing_store_leaves_the_jobs_gauge_out() -> None:
    def broken() -> dict[JobState, int]:
        raise StoreError("database is locked")

    assert list(JobsCollector(broken).collect()) == []


# -- the worker: how long a review took and how it ended -----------------------------------------


def test_each_attempt_is_timed_by_how_it_ended(store: Store) -> None:
    for pr in (1, 2, 3):
        enqueue(store, pr=pr)

    async def handler(job: Job) -> JobOutcome:
        if job.pr_number == 1:
            return JobOutcome.done()
        if job.pr_number == 2:
            return JobOutcome.dropped("closed")
        raise TransientJobError("model endpoint returned 502")

    def ended() -> bool:
        return all(job.state in ("done", "dropped", "failed") for job in store.list_jobs())

    before = process_samples()
    asyncio.run(run_until([make_worker(store, handler, max_attempts=2)], ended))
    after = process_samples()
    moved = deltas(before, after, "reviewbot_review_duration_seconds_count")
    counted = {dict(labels)["outcome"]: change for (_, labels), change in moved.items()}
    assert counted == {"done": 1, "dropped": 1, "retried": 1, "failed": 1}


# -- the service: model calls after a real review ---------------------------------------------------


def test_a_review_counts_its_model_requests_tokens_and_unknown_cost(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, store: Store
) -> None:
    settings = make_settings(fake_github, fake_openai)
    fake_github.add_pull(SERVICE_REPO, NUMBER, LEEWAY, head_sha=SERVICE_HEAD, base_sha=SERVICE_BASE, title="Leeway")
    fake_openai.set_default(answer_with(BUG))
    request = JobRequest(
        installation_id=4242,
        repo=SERVICE_REPO,
        pr_number=NUMBER,
        head_sha=SERVICE_HEAD,
        base_sha=SERVICE_BASE,
        full_review=True,
        trigger="pull_request.opened",
    )
    record_delivery(store, str(uuid.uuid4()), "pull_request", "opened", 4242, SERVICE_REPO, job=request)
    job = store.claim_job("w", 60)
    assert job is not None

    before = process_samples()
    outcome = asyncio.run(make_service(settings, store).handle(job))
    after = process_samples()

    assert outcome.state == "done"
    model = settings.model  # qwen3-coder-30b: its input price is not known
    sent = len(fake_openai.requests)
    assert sent >= 1
    moved = deltas(before, after, "reviewbot_model_")
    assert moved[("reviewbot_model_requests_total", (("model", model), ("outcome", "ok")))] == sent
    assert moved[("reviewbot_model_tokens_total", (("kind", "input"), ("model", model)))] > 0
    assert moved[("reviewbot_model_requests_unknown_cost_total", (("model", model),))] == sent
    assert ("reviewbot_model_cost_usd_total", (("model", model),)) not in moved
    assert moved[("reviewbot_model_request_duration_seconds_count", (("model", model), ("outcome", "ok")))] == sent


# -- observe_model_calls on a fresh registry --------------------------------------------------------


def call(
    model: str,
    outcome: str = "ok",
    seconds: float = 1.5,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    reasoning_tokens: int = 0,
    cost_usd: float | None = None,
) -> ModelCall:
    usage = Usage(input_tokens, output_tokens, reasoning_tokens, requests=1, cost_usd=cost_usd)
    return ModelCall(request_index=0, model=model, usage=usage, seconds=seconds, outcome=outcome)


def test_model_calls_sum_tokens_and_known_usd_and_count_unknown_cost() -> None:
    fresh = Metrics(CollectorRegistry())
    prices = Prices()
    gpt = prices.table.lookup("gpt-4o")  # the default endpoint's price
    assert gpt is not None
    calls = [
        call("gpt-4o", input_tokens=1_000, output_tokens=200, reasoning_tokens=50),
        call("gpt-4o", outcome="invalid_json", input_tokens=3_000, output_tokens=100),
        call("gpt-4o", outcome="error", seconds=30.0),  # nothing billed: neither known nor unknown
        call("mystery-model", input_tokens=500, output_tokens=10),
        call("mystery-model", input_tokens=500, output_tokens=10, cost_usd=0.25),  # the endpoint's figure
        call("qwen3-coder-30b", input_tokens=100, output_tokens=40),  # output price known, input not
    ]
    fresh.observe_model_calls(calls, prices)
    scraped = parse(generate_latest(fresh.registry).decode())

    def get(name: str, **labels: str) -> float:
        return value(scraped, name, **labels)

    assert get("reviewbot_model_requests_total", model="gpt-4o", outcome="ok") == 1
    assert get("reviewbot_model_requests_total", model="gpt-4o", outcome="invalid_json") == 1
    assert get("reviewbot_model_requests_total", model="gpt-4o", outcome="error") == 1
    assert get("reviewbot_model_tokens_total", model="gpt-4o", kind="input") == 4_000
    assert get("reviewbot_model_tokens_total", model="gpt-4o", kind="output") == 300
    assert get("reviewbot_model_tokens_total", model="gpt-4o", kind="reasoning") == 50
    expected = (gpt.cost(1_000, 200) or 0) + (gpt.cost(3_000, 100) or 0)
    assert get("reviewbot_model_cost_usd_total", model="gpt-4o") == pytest.approx(expected)
    assert get("reviewbot_model_requests_unknown_cost_total", model="gpt-4o") == 0
    assert get("reviewbot_model_cost_usd_total", model="mystery-model") == pytest.approx(0.25)
    assert get("reviewbot_model_requests_unknown_cost_total", model="mystery-model") == 1
    assert get("reviewbot_model_requests_unknown_cost_total", model="qwen3-coder-30b") == 1
    assert ("reviewbot_model_cost_usd_total", (("model", "qwen3-coder-30b"),)) not in scraped
    assert get("reviewbot_model_request_duration_seconds_count", model="gpt-4o", outcome="error") == 1
    assert get("reviewbot_model_request_duration_seconds_sum", model="gpt-4o", outcome="error") == 30.0


def test_the_exposition_follows_the_conventions() -> None:
    fresh = Metrics(CollectorRegistry())
    fresh.observe_delivery("pull_request", "queued")
    fresh.observe_review("done", 42.0)
    text = generate_latest(scrape_registry(lambda: dict.fromkeys(JOB_STATES, 0), fresh.registry)).decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for family in families.values():
        assert family.documentation, family.name
    assert families["reviewbot_webhook_deliveries"].type == "counter"
    assert families["reviewbot_jobs"].type == "gauge"
    assert families["reviewbot_review_duration_seconds"].type == "histogram"
    assert "_created" not in text
    buckets = [
        float(sample.labels["le"])
        for sample in families["reviewbot_review_duration_seconds"].samples
        if sample.name.endswith("_bucket") and sample.labels["outcome"] == "done"
    ]
    assert (buckets[0], buckets[-2], buckets[-1]) == (1.0, 900.0, float("inf"))
