"""``X-GitHub-Delivery`` is a GUID or the delivery is refused: 400 before the body is read, nothing
recorded, counted, and one log line that shows the value bounded and printable.

GitHub documents the header as "a globally unique identifier (GUID) to identify the event" and
sends it as 8-4-4-4-12 hex digits in lower case (docs.github.com, "Webhook events and payloads",
the same for GitHub Enterprise Server); it is not signed, so whoever reaches ``POST /webhook``
chooses it.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import ASGIApp

from reviewbot.logs import build_handler, printable
from reviewbot.service import metrics
from reviewbot.service.app import create_app
from reviewbot.service.webhooks import delivery_id, event_name
from reviewbot.settings import Settings
from reviewbot.store.store import Store, open_store
from stored import has_delivery
from test_app import FORGED, REPO, headers, opened_payload

ServeApp = Callable[[ASGIApp], AbstractContextManager[str]]
SECRET = "guid-secret"
GITHUB_EXAMPLE = "72d3162e-cc78-11e3-81ab-4c9367dc0958"  # the example delivery in GitHub's docs
EXPECTED_FORM = "X-GitHub-Delivery must be a GUID: 8-4-4-4-12 hex digits, as in 72d3162e-cc78-11e3-81ab-4c9367dc0958"
#: Header values h11 lets through that are not GUIDs. h11 refuses C0 controls and DEL itself, but
#: passes tabs inside a value and bytes 0x80-0xff, among them C1 controls: 0x9b opens an ANSI
#: escape sequence on some terminals, 0x85 ends a line for some readers (and for str.splitlines).
NOT_GUIDS: dict[str, bytes] = {
    "empty": b"",
    "readable": b"d-opened-1",
    "with spaces": b"d opened 1",
    "too long": GITHUB_EXAMPLE.encode() * 100,
    "too long, all letters": b"a" * 8000,
    "control characters": b"\x9b31mred\x9b0m\x85forged INFO line\tend",
    "latin-1 letters": b"72d3162e-cc78-11e3-81ab-4c9367dc095\xe9",
    "one digit short": GITHUB_EXAMPLE[:-1].encode(),
    "not hex": GITHUB_EXAMPLE[:-1].encode() + b"g",
    "in braces": b"{" + GITHUB_EXAMPLE.encode() + b"}",
    "without dashes": GITHUB_EXAMPLE.replace("-", "").encode(),
    "as a URN": b"urn:uuid:" + GITHUB_EXAMPLE.encode(),
    "with a tail": GITHUB_EXAMPLE.encode() + b" x",
    "dashes misplaced": b"72d3162ecc78-11e3-81ab-4c93-67dc0958",
}
#: What a refusal's log line may cost: 64 characters of the value, each escaped in at most 4.
MAX_LINE = 400


def bounded_and_printable(line: str) -> bool:
    return len(line) <= MAX_LINE and line.isascii() and line.isprintable()


def settings() -> Settings:
    # A body waited for past a second is a failure here, not a 408 ten seconds later.
    return Settings(webhook_secret=SECRET, webhook_read_timeout=1.0)


def rejected(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("reviewbot_webhook_rejected_total", {"reason": reason}) or 0.0


class Lines:
    """The lines ``reviewbot.app`` writes through a service handler, in the text format."""

    def __init__(self, log_format: str = "text") -> None:
        self.stream = io.StringIO()
        self.handler = build_handler(Settings(log_format=log_format), self.stream)

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def app_log() -> Iterator[Callable[[str], Lines]]:
    logger = logging.getLogger("reviewbot.app")
    attached: list[Lines] = []
    level = logger.level

    def attach(log_format: str = "text") -> Lines:
        lines = Lines(log_format)
        attached.append(lines)
        logger.addHandler(lines.handler)
        logger.setLevel(logging.INFO)
        return lines

    yield attach
    for lines in attached:
        logger.removeHandler(lines.handler)
    logger.setLevel(level)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'guid.db'}")
    yield opened
    opened.close()


def send_head(url: str, delivery: bytes | None, *, signature: str = FORGED, length: int = 1024 * 1024) -> bytes:
    """Send the head of a ``pull_request`` delivery announcing a ``length``-byte body, and none of
    the body; the whole answer (one that comes proves the body was not waited for)."""
    parts = urlsplit(url)
    lines = [
        b"POST /webhook HTTP/1.1",
        b"Host: " + parts.netloc.encode(),
        b"X-GitHub-Event: pull_request",
        b"X-Hub-Signature-256: " + signature.encode(),
        b"Content-Type: application/json",
        b"Content-Length: %d" % length,
    ]
    if delivery is not None:
        lines.append(b"X-GitHub-Delivery: " + delivery)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer and (data := sock.recv(4096)):
            answer += data
        head, _, body = answer.partition(b"\r\n\r\n")
        declared = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
        assert declared, head
        expected = int(declared[0].split(b":", 1)[1])
        while len(body) < expected and (data := sock.recv(4096)):
            body += data
    return head.split(b"\r\n", 1)[0] + b"\r\n" + body


# -- what is refused ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", NOT_GUIDS.values(), ids=NOT_GUIDS.keys())
def test_a_delivery_id_that_is_not_a_guid_is_not_taken(value: bytes) -> None:
    assert delivery_id(value.decode("latin-1")) is None


def test_a_guid_in_either_case_is_taken_in_lower_case() -> None:
    assert delivery_id(GITHUB_EXAMPLE) == GITHUB_EXAMPLE
    assert delivery_id(GITHUB_EXAMPLE.upper()) == GITHUB_EXAMPLE
    assert delivery_id("72D3162e-Cc78-11E3-81aB-4c9367DC0958") == GITHUB_EXAMPLE
    assert delivery_id(GITHUB_EXAMPLE + "\n") is None  # a regular expression's $ would take it


def test_each_non_guid_is_refused_with_400_before_its_body_is_sent_recorded_nowhere_and_counted(
    store: Store, serve_app: ServeApp, app_log: Callable[[str], Lines]
) -> None:
    lines = app_log("text")
    before = rejected("bad_request")
    with serve_app(create_app(settings(), store)) as url:
        answers = {name: send_head(url, value) for name, value in NOT_GUIDS.items()}
        after = rejected("bad_request")
    expected = b"HTTP/1.1 400 Bad Request\r\n" + json.dumps({"error": EXPECTED_FORM}, separators=(",", ":")).encode()
    assert answers == dict.fromkeys(NOT_GUIDS, expected)
    assert after - before == len(NOT_GUIDS)
    assert store.list_jobs() == []
    assert not any(has_delivery(store, value.decode("latin-1")) for value in NOT_GUIDS.values())

    # Strangers choose how many: the first refusal is logged, the others within the minute counted.
    logged = lines.text().splitlines()
    assert len(logged) == 1, logged
    assert bounded_and_printable(logged[0]), logged[0]
    assert '"" is not a GUID' in logged[0]  # the first value sent, the empty one


def test_every_refused_delivery_id_is_named_on_one_bounded_printable_line() -> None:
    for name, value in NOT_GUIDS.items():
        line = f"delivery from 127.0.0.1 refused: X-GitHub-Delivery {printable(value.decode('latin-1'))} is not a GUID"
        # A raw 0x85 would have made two lines.
        assert bounded_and_printable(line), name
        assert len(line.splitlines()) == 1, name
    assert printable("d opened 1") == '"d opened 1"'
    control = NOT_GUIDS["control characters"].decode("latin-1")
    assert printable(control) == r'"\x9b31mred\x9b0m\x85forged INFO line\tend"'


def test_a_refused_delivery_id_is_not_put_in_the_json_log_lines(
    store: Store, serve_app: ServeApp, app_log: Callable[[str], Lines]
) -> None:
    lines = app_log("json")
    with serve_app(create_app(settings(), store)) as url:
        send_head(url, NOT_GUIDS["control characters"])
    records = [json.loads(line) for line in lines.text().splitlines()]
    assert len(records) == 1
    for record in records:
        assert "delivery" not in record  # the field holds delivery ids, and this is none
        assert record["level"] == "WARNING"
        assert bounded_and_printable(record["message"]), record


def test_a_missing_header_is_still_named_as_required(store: Store, serve_app: ServeApp) -> None:
    with serve_app(create_app(settings(), store)) as url:
        answer = send_head(url, None)
    required = b'{"error":"X-GitHub-Event and X-GitHub-Delivery headers are required"}'
    assert answer == b"HTTP/1.1 400 Bad Request\r\n" + required


def test_a_non_guid_on_a_delivery_refused_for_its_signature_is_logged_bounded_too(
    store: Store, serve_app: ServeApp, app_log: Callable[[str], Lines]
) -> None:
    lines = app_log("text")
    with serve_app(create_app(settings(), store)) as url:
        answer = send_head(url, NOT_GUIDS["control characters"] * 50, signature="sha256=not-hex")
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    [line] = lines.text().splitlines()
    assert "X-Hub-Signature-256" in line
    assert bounded_and_printable(line), line


# -- what is taken -----------------------------------------------------------------------------


def test_an_upper_case_guid_is_taken_in_lower_case_and_its_redelivery_in_either_case_is_a_duplicate(
    store: Store, serve_app: ServeApp
) -> None:
    guid = str(uuid.uuid4())
    number, body = opened_payload()
    with serve_app(create_app(settings(), store)) as url:

        def send(delivery: str) -> httpx.Response:
            sent = headers("pull_request", body, secret=SECRET.encode(), delivery=delivery)
            return httpx.post(f"{url}/webhook", content=body, headers=sent, timeout=10)

        first = send(guid.upper())
        again = [send(guid), send(guid.upper())]
    assert (first.status_code, first.json()) == (202, {"queued": True, "delivery": guid})
    assert [(response.status_code, response.json()) for response in again] == [
        (200, {"duplicate": True, "queued": False, "delivery": guid})
    ] * 2
    assert has_delivery(store, guid)
    assert not has_delivery(store, guid.upper())
    assert len(store.list_jobs(repo=REPO, pr_number=number)) == 1


# -- the rendering -----------------------------------------------------------------------------


def test_printable_quotes_escapes_and_bounds_what_a_stranger_sent() -> None:
    assert printable("d-opened-1") == '"d-opened-1"'
    assert printable("") == '""'
    assert printable('a "quote" and a \\') == r'"a \"quote\" and a \\"'
    assert printable("\x9b\x85\t\x00\x7f\xe9\u202e") == r'"\x9b\x85\t\x00\x7f\xe9\u202e"'
    assert printable("x" * 64) == '"' + "x" * 64 + '"'
    assert printable("x" * 8000) == '"' + "x" * 64 + '"... (8000 characters)'
    worst = printable("\U0001f600" * 10_000)
    assert worst == '"' + "\\U0001f600" * 64 + '"... (10000 characters)'


# -- X-GitHub-Event, the other unsigned header that is kept and logged ------------------------------

NOT_EVENT_NAMES: dict[str, bytes] = {
    "upper case": b"Pull_Request",
    "with a space": b"pull request",
    "too long": b"a" * 65,
    "control characters": b"pull_request\x9b31m\x85forged INFO line",
    "a path": b"../pull_request",
}


@pytest.mark.parametrize("name", NOT_EVENT_NAMES)
def test_an_event_header_that_is_no_event_name_is_refused_before_the_body_and_logged_bounded(
    name: str, tmp_path: Path, serve_app: ServeApp, app_log: Callable[[str], Lines]
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'event.db'}")
    lines = app_log("text")
    before = rejected("bad_request")
    with serve_app(create_app(settings(), store)) as url:
        parts = urlsplit(url)
        head = (
            b"POST /webhook HTTP/1.1\r\nHost: "
            + parts.netloc.encode()
            + b"\r\nX-GitHub-Event: "
            + NOT_EVENT_NAMES[name]
            + b"\r\nX-GitHub-Delivery: "
            + GITHUB_EXAMPLE.encode()
            + b"\r\nX-Hub-Signature-256: "
            + FORGED.encode()
            + b"\r\nContent-Length: 1048576\r\n\r\n"
        )
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10) as sock:
            sock.sendall(head)  # and no body: an answer that comes proves none was waited for
            answer = b""
            while b"}" not in answer and (data := sock.recv(4096)):
                answer += data
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"X-GitHub-Event must be an event name" in answer
    assert rejected("bad_request") == before + 1
    assert not has_delivery(store, GITHUB_EXAMPLE)
    logged = [line for line in lines.text().splitlines() if "X-GitHub-Event" in line]
    assert len(logged) == 1, lines.text()
    assert bounded_and_printable(logged[0]), logged[0]
    store.close()


def test_every_event_github_names_passes_the_event_header_check() -> None:
    for event in ("pull_request", "issue_comment", "ping", "installation_repositories", "projects_v2_item"):
        assert event_name(event) == event


def test_a_stranger_s_stream_of_unsigned_and_forged_requests_is_counted_each_time_and_logged_once_a_minute_by_kind(
    store: Store, serve_app: ServeApp, app_log: Callable[[str], Lines]
) -> None:
    lines = app_log("text")
    unsigned_before, bad_before = rejected("signature"), rejected("bad_request")
    _, body = opened_payload()
    with serve_app(create_app(settings(), store)) as url, httpx.Client(timeout=10) as client:
        for _ in range(20):
            unsigned = headers("pull_request", body, secret=SECRET.encode())
            del unsigned["X-Hub-Signature-256"]
            assert client.post(f"{url}/webhook", content=body, headers=unsigned).status_code == 401
            forged = headers("pull_request", body, secret=b"not the secret")
            assert client.post(f"{url}/webhook", content=body, headers=forged).status_code == 401
            not_a_guid = headers("pull_request", body, secret=SECRET.encode(), delivery="d-1")
            assert client.post(f"{url}/webhook", content=body, headers=not_a_guid).status_code == 400
    assert rejected("signature") - unsigned_before == 40
    assert rejected("bad_request") - bad_before == 20
    logged = lines.text().splitlines()
    assert len(logged) == 3, logged  # one per kind: no signature, a body it does not match, a bad header
    assert "missing or malformed X-Hub-Signature-256" in logged[0]
    assert "invalid signature" in logged[1]
    assert "is not a GUID" in logged[2]
