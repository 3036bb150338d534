"""Log lines: JSON objects carrying the delivery or job they are about, and no secret ever."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.types import ASGIApp

from reviewbot.logs import REDACTED, JsonFormatter, bind, build_handler, current_context, log_context, secret_values
from reviewbot.service.app import create_app
from reviewbot.service.worker import JobOutcome
from reviewbot.settings import Settings
from reviewbot.store.records import Job
from reviewbot.store.store import Store, open_store
from test_app import REPO, headers, opened_payload
from test_worker import enqueue, make_worker, run_until

ServeApp = Callable[[ASGIApp], AbstractContextManager[str]]
API_KEY = "sk-live-0123456789abcdef"
WEBHOOK_SECRET = "whsec-fedcba9876543210"
GITHUB_TOKEN = "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
KEY_BODY = (
    "MIIEowIBAAKCAQEAx1y2z3ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn",
    "opqrstuvwxyz0123456789+/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij==",
)
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_BODY) + "\n-----END RSA PRIVATE KEY-----\n"
SECRETS = (API_KEY, WEBHOOK_SECRET, GITHUB_TOKEN, *KEY_BODY)


class Capture:
    """A handler from :func:`build_handler` on one logger, and the lines it wrote."""

    def __init__(self, settings: Settings, logger: logging.Logger) -> None:
        self.stream = io.StringIO()
        self.handler = build_handler(settings, self.stream)
        self.logger = logger

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def capture() -> Iterator[Callable[..., Capture]]:
    """``capture(settings, "reviewbot.app")`` sends that logger's INFO lines through a fresh handler."""
    attached: list[tuple[Capture, int]] = []

    def attach(settings: Settings, name: str = "reviewbot.test") -> Capture:
        logger = logging.getLogger(name)
        captured = Capture(settings, logger)
        attached.append((captured, logger.level))
        logger.addHandler(captured.handler)
        logger.setLevel(logging.INFO)
        return captured

    yield attach
    for captured, level in attached:
        captured.logger.removeHandler(captured.handler)
        captured.logger.setLevel(level)


def secret_settings(log_format: str = "json") -> Settings:
    return Settings(
        log_format=log_format,
        api_key=SecretStr(API_KEY),
        webhook_secret=SecretStr(WEBHOOK_SECRET),
        github_token=SecretStr(GITHUB_TOKEN),
        github_private_key=SecretStr(PRIVATE_KEY),
    )


# -- the JSON line --------------------------------------------------------------------------------


def test_a_json_line_has_the_four_fields_and_the_context(capture: Callable[..., Capture]) -> None:
    captured = capture(Settings(log_format="json"))
    with log_context(delivery="d-1", repo="octo/widgets", pr=12):
        captured.logger.info("queued %s", "a review")
        with log_context(job=7, head="a" * 40):
            captured.logger.warning("inside the job", extra={"repo": "octo/other"})
    captured.logger.info("after")

    first, second, third = captured.records()
    assert first.keys() == {"ts", "level", "logger", "message", "delivery", "repo", "pr"}
    assert first["ts"].endswith("Z")
    assert (first["level"], first["logger"], first["message"]) == ("INFO", "reviewbot.test", "queued a review")
    assert (first["delivery"], first["repo"], first["pr"]) == ("d-1", "octo/widgets", 12)
    assert second == second | {"level": "WARNING", "job": 7, "head": "a" * 40, "repo": "octo/other", "pr": 12}
    assert third.keys() == {"ts", "level", "logger", "message"}
    assert current_context() == {}


def test_a_traceback_stays_on_one_line(capture: Callable[..., Capture]) -> None:
    captured = capture(Settings(log_format="json"))
    try:
        raise ValueError("boom\nwith a second line")
    except ValueError:
        captured.logger.exception("it failed")
    [line] = captured.lines()
    record = json.loads(line)
    assert record["message"] == "it failed"
    assert "ValueError: boom\nwith a second line" in record["exc"]


def test_the_text_format_is_unchanged_by_default(capture: Callable[..., Capture]) -> None:
    captured = capture(Settings())
    with log_context(repo="octo/widgets"):
        captured.logger.info("hello %d", 1)
    [line] = captured.lines()
    assert line.endswith(" INFO reviewbot.test: hello 1")


def test_bind_lasts_until_the_enclosing_context_ends() -> None:
    with log_context(delivery="d-2"):
        bind(repo="octo/widgets", pr=None)
        assert current_context() == {"delivery": "d-2", "repo": "octo/widgets"}
    assert current_context() == {}


# -- where the context comes from -------------------------------------------------------------------


def test_a_delivery_logs_with_its_delivery_repo_pr_and_head(
    tmp_path: Path, serve_app: ServeApp, capture: Callable[..., Capture]
) -> None:
    settings = Settings(webhook_secret="s3cret", log_format="json")
    captured = capture(settings, "reviewbot.app")
    store = open_store(f"sqlite:///{tmp_path / 'logs.db'}")
    with serve_app(create_app(settings, store)) as url:
        number, body = opened_payload()
        sent = headers("pull_request", body, secret=b"s3cret")
        assert httpx.post(f"{url}/webhook", content=body, headers=sent, timeout=10).status_code == 202
        forged = headers("pull_request", body, secret=b"forged")
        assert httpx.post(f"{url}/webhook", content=body, headers=forged, timeout=10).status_code == 401
    store.close()

    queued, refused = captured.records()
    assert "review queued" in queued["message"]
    assert (queued["delivery"], queued["repo"], queued["pr"]) == (sent["X-GitHub-Delivery"], REPO, number)
    assert len(queued["head"]) == 40
    assert refused["level"] == "WARNING"
    assert refused["delivery"] == forged["X-GitHub-Delivery"]
    assert "repo" not in refused  # refused before the body was read as JSON


def test_every_line_inside_a_job_carries_the_job(tmp_path: Path, capture: Callable[..., Capture]) -> None:
    captured = capture(Settings(log_format="json"), "reviewbot")
    store: Store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    job_id = enqueue(store, pr=5)

    async def handler(job: Job) -> JobOutcome:
        logging.getLogger("reviewbot.service").info("reviewing")
        await asyncio.to_thread(logging.getLogger("reviewbot.service").info, "in a thread")
        return JobOutcome.done()

    asyncio.run(run_until([make_worker(store, handler)], lambda: store.list_jobs()[0].state == "done"))
    logging.getLogger("reviewbot.test").info("outside")
    store.close()

    lines = captured.records()
    inside = [line for line in lines if line["logger"] in ("reviewbot.service", "reviewbot.worker")]
    assert [line["message"] for line in inside][:2] == ["reviewing", "in a thread"]
    assert any(line["message"].endswith(": done") for line in inside)
    for line in inside:
        assert (line["job"], line["repo"], line["pr"], line["head"]) == (job_id, "octo/widgets", 5, f"{5:040d}")
    [outside] = [line for line in lines if line["message"] == "outside"]
    assert "job" not in outside


# -- secrets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_secret_reaches_a_line(log_format: str, capture: Callable[..., Capture]) -> None:
    captured = capture(secret_settings(log_format))
    log = captured.logger
    log.info("calling the model with key %s", API_KEY)
    log.warning("signature computed with %r", WEBHOOK_SECRET.encode())
    log.info("token in a field", extra={"repo": f"https://x-access-token:{GITHUB_TOKEN}@github.com/o/r"})
    log.info(f"the key is\n{PRIVATE_KEY}")
    log.info("one line of the key: %s", KEY_BODY[1])
    with log_context(delivery=API_KEY):
        log.info("secret in the context")
    try:
        raise RuntimeError(f"auth failed for {GITHUB_TOKEN}")
    except RuntimeError:
        log.exception("request failed")

    output = captured.stream.getvalue()
    for secret in SECRETS:
        assert secret not in output
    # Text lines show neither extra fields nor the context; JSON lines show both.
    assert output.count(REDACTED) == (7 if log_format == "json" else 5)
    if log_format == "json":
        records = captured.records()
        assert records[0]["message"] == f"calling the model with key {REDACTED}"
        assert records[2]["repo"] == f"https://x-access-token:{REDACTED}@github.com/o/r"
        assert records[5]["delivery"] == REDACTED
        assert records[6]["exc"].endswith(f"RuntimeError: auth failed for {REDACTED}")


def test_a_private_key_file_is_a_secret_too(tmp_path: Path) -> None:
    path = tmp_path / "app.pem"
    path.write_text(PRIVATE_KEY, encoding="utf-8")
    assert secret_values(Settings(github_private_key_path=path, api_key=SecretStr(API_KEY))) == [API_KEY, PRIVATE_KEY]
    assert secret_values(Settings(github_private_key_path=tmp_path / "missing.pem")) == []


def test_the_formatter_alone_writes_plain_json() -> None:
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "a %s", "args": ("b",), "pr": 3})
    assert json.loads(JsonFormatter().format(record))["pr"] == 3


def test_serve_logging_writes_json_without_secrets(tmp_path: Path) -> None:
    """What ``reviewbot serve`` sets up, in a process of its own (the test process has handlers)."""
    script = (
        "import logging\n"
        "from reviewbot.logs import configure_logging\n"
        "from reviewbot.settings import load_settings\n"
        "configure_logging(load_settings())\n"
        "logging.getLogger('uvicorn.error').info('started with %s', 'sk-child-secret-123')\n"
        "logging.getLogger('httpx').info('one line per request')\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REVIEWBOT_", "OPENAI_"))}
    env |= {"REVIEWBOT_LOG_FORMAT": "json", "REVIEWBOT_API_KEY": "sk-child-secret-123"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    [line] = done.stderr.splitlines()
    record = json.loads(line)
    assert (record["logger"], record["message"]) == ("uvicorn.error", f"started with {REDACTED}")


def test_the_settings_refuse_an_unknown_log_format() -> None:
    with pytest.raises(ValueError, match="log_format"):
        Settings(log_format="xml")
