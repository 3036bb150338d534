"""``REVIEWBOT_METRICS_PORT`` with real `reviewbot serve` and `reviewbot worker` processes on loopback:
``/metrics`` on a listener of its own (and off the webhook's port), or, unset, on the webhook's port
with a hint at start; both listeners stopping together; and the port errors as one line."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fake_github import FakeGitHub
from fake_openai import FakeOpenAI
from guids import guid
from test_metrics import parse, value
from test_service_e2e import (
    BASE,
    BUG,
    HEAD,
    LEEWAY,
    NUMBER,
    REPO,
    Service,
    answer_with,
    free_port,
    payload,
    reviews_on,
    service_env,
    start_service,
    stop,
    wait_for,
)

HINT = "set REVIEWBOT_METRICS_PORT"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def refuses(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def stop_and_read(service: Service, signum: signal.Signals = signal.SIGTERM) -> str:
    """Signal the process, wait for it to end, and return what it wrote to stderr."""
    service.process.send_signal(signum)
    _, err = service.process.communicate(timeout=30)
    return err.decode()


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reviewbot", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30
    )


def test_with_a_metrics_port_metrics_are_served_there_alone_and_the_webhook_port_has_none(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    metrics_port = free_port()
    service = start_service(
        fake_github,
        fake_openai,
        tmp_path / "reviewbot.db",
        REVIEWBOT_METRICS_PORT=str(metrics_port),
        REVIEWBOT_METRICS_HOST="127.0.0.2",  # the webhook listens on 127.0.0.1
    )
    try:
        fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE)
        fake_openai.set_default(answer_with(BUG))
        assert service.deliver("pull_request", payload("opened.payload.json"), guid("metrics-port")) == 202
        wait_for(lambda: reviews_on(fake_github, HEAD) == 1, 30, "the review")

        assert httpx.get(f"{service.url}/metrics", timeout=10).status_code == 404
        metrics_url = f"http://127.0.0.2:{metrics_port}"
        response = httpx.get(f"{metrics_url}/metrics", timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        scraped = parse(response.text)
        assert value(scraped, "reviewbot_webhook_deliveries_total", event="pull_request", outcome="queued") == 1
        assert value(scraped, "reviewbot_jobs", state="done") == 1
        assert ("reviewbot_review_duration_seconds_count", (("outcome", "done"),)) in scraped
        # The metrics listener answers /metrics and nothing else.
        assert httpx.get(f"{metrics_url}/", timeout=10).status_code == 404
        assert httpx.get(f"{metrics_url}/healthz", timeout=10).status_code == 404
        assert httpx.get(f"{metrics_url}/favicon.ico", timeout=10).status_code == 404
        assert httpx.post(f"{metrics_url}/webhook", content=b"{}", timeout=10).status_code == 404
        assert refuses("127.0.0.1", metrics_port)  # bound to REVIEWBOT_METRICS_HOST only
    finally:
        stop(service)


@pytest.mark.parametrize(
    ("signum", "args"),
    [(signal.SIGTERM, ()), (signal.SIGINT, ()), (signal.SIGTERM, ("--no-worker",))],
    ids=["SIGTERM", "SIGINT", "SIGTERM-no-worker"],
)
def test_a_signal_stops_the_webhook_and_the_metrics_listener_together(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path, signum: signal.Signals, args: tuple[str, ...]
) -> None:
    metrics_port = free_port()
    service = start_service(
        fake_github, fake_openai, tmp_path / "reviewbot.db", args=args, REVIEWBOT_METRICS_PORT=str(metrics_port)
    )
    try:
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).status_code == 200
        err = stop_and_read(service, signum)
    finally:
        stop(service)
    assert f"stopped serving /metrics on 127.0.0.1:{metrics_port}" in err
    assert "Traceback" not in err
    assert refuses("127.0.0.1", metrics_port)
    assert refuses("127.0.0.1", int(service.url.rsplit(":", 1)[1]))


def test_a_worker_serves_metrics_on_its_port_alone_until_it_is_stopped(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    metrics_port = free_port()
    env = service_env(fake_github, fake_openai, tmp_path / "reviewbot.db")
    env |= {"REVIEWBOT_METRICS_PORT": str(metrics_port), "REVIEWBOT_METRICS_HOST": "127.0.0.2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "reviewbot", "worker"], env=env, cwd=tmp_path, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.2:{metrics_port}"
    try:
        wait_for(lambda: process.poll() is not None or not refuses("127.0.0.2", metrics_port), 20, "the worker")
        scraped = httpx.get(f"{url}/metrics", timeout=10)
        elsewhere = httpx.get(f"{url}/", timeout=10)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert (scraped.status_code, elsewhere.status_code) == (200, 404)
    assert "reviewbot_jobs" in scraped.text
    assert process.returncode == 0
    assert f"stopped serving /metrics on 127.0.0.2:{metrics_port}" in err.decode()
    assert refuses("127.0.0.2", metrics_port)


def test_without_a_metrics_port_metrics_stay_on_the_webhook_port_with_a_hint_at_start(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    service = start_service(fake_github, fake_openai, tmp_path / "reviewbot.db")
    try:
        response = httpx.get(f"{service.url}/metrics", timeout=10)
        err = stop_and_read(service)
    finally:
        stop(service)
    assert response.status_code == 200
    assert "reviewbot_webhook_rejected_total" in response.text
    [hint] = [line for line in err.splitlines() if HINT in line]
    assert "/metrics" in hint
    assert "REVIEWBOT_METRICS_HOST" in hint


@pytest.mark.parametrize("command", [["serve"], ["serve", "--no-worker"], ["worker"]])
def test_a_taken_metrics_port_stops_the_start_with_one_line_naming_the_setting(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path, taken_port: int, command: list[str]
) -> None:
    env = service_env(fake_github, fake_openai, tmp_path / "reviewbot.db")
    env["REVIEWBOT_METRICS_PORT"] = str(taken_port)
    port = free_port()
    done = run_cli(env, tmp_path, *command, *(["--port", str(port)] if command[0] == "serve" else []))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"reviewbot: REVIEWBOT_METRICS_PORT={taken_port}: ")
    assert "in use" in last
    assert "Uvicorn running" not in done.stderr  # the webhook never listened


@pytest.mark.parametrize("given_by", ["REVIEWBOT_PORT", "PORT", "--port"])
def test_a_metrics_port_that_is_the_webhook_port_is_a_settings_error(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path, given_by: str
) -> None:
    env = service_env(fake_github, fake_openai, tmp_path / "reviewbot.db")
    port = str(free_port())
    env["REVIEWBOT_METRICS_PORT"] = port
    if given_by.startswith("-"):
        done = run_cli(env, tmp_path, "serve", given_by, port)
    else:
        done = run_cli(env | {given_by: port}, tmp_path, "serve")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"reviewbot: REVIEWBOT_METRICS_PORT={port} is also the port `reviewbot serve` listens on "
        "(REVIEWBOT_PORT, PORT or --port); give the metrics a port of their own, or unset "
        "REVIEWBOT_METRICS_PORT to serve /metrics with the webhook"
    ]
