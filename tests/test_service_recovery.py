"""A review job recovering from what goes wrong around it: a revoked token, a post that fails, a
pull request that is gone, a model that fails, a review GitHub keeps refusing.

The job loop (:class:`Worker`) runs :class:`ReviewService` on jobs in a real store, against the
fake GitHub and the scripted model on loopback, with retries a few milliseconds apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from fake_github import FakeGitHub, Fault
from fake_openai import FakeOpenAI, Reply
from reviewbot.github.auth import _AppAuth
from reviewbot.github.draft import fingerprints_of_review
from reviewbot.github.notes import FAILED_MARKER, failure_note, is_failure_note
from reviewbot.money import ledger
from reviewbot.service.worker import TransientJobError, Worker
from reviewbot.store.records import Job
from reviewbot.store.store import open_store
from test_service import (
    BASE,
    BUG,
    HEAD,
    INSTALLATION,
    LEEWAY,
    NEW_HEAD,
    NUMBER,
    REPO,
    REVIEWS_PATH,
    TIMED,
    Harness,
    answer_with,
    make_service,
    make_settings,
    marker,
)
from test_service import clean_environment as clean_environment

TOKENS_PATH = "/app/installations/*/access_tokens"
FAILURE_NOTE = "could not be done"
NOTES = (
    "diff --git a/docs/notes.md b/docs/notes.md\nnew file mode 100644\nindex 0000000..1111111\n"
    "--- /dev/null\n+++ b/docs/notes.md\n@@ -0,0 +1,60 @@\n"
    + "".join(f"+A note about leeway number {i}, kept short.\n" for i in range(60))
)


@pytest.fixture
def recovery(fake_github: FakeGitHub, fake_openai: FakeOpenAI, database_url: str) -> Iterator[Harness]:
    """test_service's harness over a store on SQLite and on PostgreSQL."""
    settings = make_settings(fake_github, fake_openai)
    store = open_store(database_url)
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, title="Add leeway")
    fake_openai.set_default(answer_with(BUG))
    yield Harness(fake_github, fake_openai, settings, store, make_service(settings, store))
    store.close()


def work(harness: Harness, job_id: int, *, max_attempts: int = 3, timeout: float = 20.0) -> Job:
    """Run the job loop, retrying at once, until the job is done, dropped or failed."""
    worker = Worker(
        harness.store,
        harness.service.handle,
        worker_id="w",
        lease_seconds=30,
        max_attempts=max_attempts,
        poll_interval=0.02,
        backoff_base=0.001,
        on_failed=harness.service.give_up,
    )

    def ended() -> Job | None:
        job = harness.store.get_job(job_id)
        assert job is not None
        return job if job.state in ("done", "dropped", "failed") else None

    async def run() -> Job:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            deadline = time.monotonic() + timeout
            while (job := await asyncio.to_thread(ended)) is None:
                if time.monotonic() > deadline:
                    raise AssertionError(f"job {job_id} did not end within {timeout} s")
                await asyncio.sleep(0.01)
            return job
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    return asyncio.run(run())


def prompts_asked(model: FakeOpenAI) -> Counter[str]:
    return Counter(str(request.body["messages"]) for request in model.requests)


def bot_reviews(harness: Harness) -> list[dict[str, Any]]:
    return [r for r in harness.submitted() if r["user"]["login"] == harness.github.bot_login]


# -- a revoked installation token -------------------------------------------------------------


def test_a_revoked_installation_token_is_replaced_once_and_the_review_posted(recovery: Harness) -> None:
    github = recovery.github
    assert work(recovery, recovery.enqueue()).state == "done"  # the installation's token is now cached
    github.add_pull(REPO, NUMBER, LEEWAY, head_sha=NEW_HEAD, base_sha=BASE)
    assert github.revoke_tokens(INSTALLATION) >= 1
    issued = len(github.requests_to("POST", TOKENS_PATH))

    job = work(recovery, recovery.enqueue(head_sha=NEW_HEAD))

    assert (job.state, job.attempts) == ("done", 1)
    assert github.review_count(REPO, NUMBER, NEW_HEAD) == 1
    assert len(github.requests_to("POST", TOKENS_PATH)) == issued + 1


@pytest.fixture
def no_waits(monkeypatch: pytest.MonkeyPatch) -> tuple[float, ...]:
    """The waits before a new token is tried again, at no time (the count is what matters)."""
    waits = tuple(0.0 for _ in _AppAuth.fresh_token_waits)
    monkeypatch.setattr(_AppAuth, "fresh_token_waits", waits)
    return waits


def test_a_token_github_refuses_right_after_issuing_it_is_tried_again_and_the_review_posted(
    recovery: Harness, no_waits: tuple[float, ...]
) -> None:
    recovery.github.revoke_tokens()
    recovery.github.new_token_lag = len(no_waits)  # refused until its last try

    job = work(recovery, recovery.enqueue())

    assert job.state == "done"
    assert len(bot_reviews(recovery)) == 1


def test_a_token_refused_right_after_it_was_issued_fails_the_job_at_once_as_a_configuration_error(
    recovery: Harness, caplog: pytest.LogCaptureFixture, no_waits: tuple[float, ...]
) -> None:
    # GitHub refuses the token, then the one it has just issued in its place, on every try.
    refused = Fault.error("GET", f"/repos/{REPO}/pulls/{NUMBER}", 401, message="Bad credentials")
    recovery.github.push(*[refused] * (2 + len(no_waits)))

    with caplog.at_level(logging.INFO, logger="reviewbot"):
        job = work(recovery, recovery.enqueue())

    assert (job.state, job.attempts) == ("failed", 1)
    assert job.last_error is not None
    assert f"installation {INSTALLATION}" in job.last_error
    assert "new installation token" in job.last_error
    assert "REVIEWBOT_GITHUB_API_URL" in job.last_error
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and "new installation token" in r.getMessage()]
    assert logged
    assert "ghs_" not in caplog.text
    assert recovery.model.requests == []
    assert recovery.github.reviews(REPO, NUMBER) == []


# -- a post that fails ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault.error("POST", REVIEWS_PATH, 403, message="Forbidden"),
        Fault.error("POST", REVIEWS_PATH, 502),
    ],
    ids=["403", "502"],
)
def test_a_post_that_fails_once_is_posted_on_the_retry_without_asking_the_model_again(
    recovery: Harness, fault: Fault
) -> None:
    recovery.github.push(fault)

    job = work(recovery, recovery.enqueue())

    assert (job.state, job.attempts) == ("done", 2)
    assert len(recovery.github.requests_to("POST", REVIEWS_PATH)) == 2
    review = recovery.only_review()
    assert review["commit_id"] == HEAD
    assert recovery.placed() == [(TIMED, 155, None)]
    asked = prompts_asked(recovery.model)
    assert asked
    assert set(asked.values()) == {1}
    entries = ledger.entries(recovery.store, repo=REPO)
    assert len(entries) == len(recovery.model.requests)
    assert {entry.job_id for entry in entries} == {job.id}
    assert recovery.store.review_for(REPO, NUMBER, HEAD) == review["id"]


def test_a_result_kept_for_an_older_head_is_not_posted_on_the_newer_one(recovery: Harness) -> None:
    github = recovery.github
    github.push(Fault.error("POST", REVIEWS_PATH, 502))
    job_id = recovery.enqueue()
    first = recovery.store.claim_job("w", 60)
    assert first is not None
    assert first.id == job_id
    with pytest.raises(TransientJobError, match="502"):
        asyncio.run(recovery.service.handle(first))
    recovery.store.retry_job(first.id, "w", "502", 0, 5)
    asked_before = len(recovery.model.requests)
    github.add_pull(REPO, NUMBER, LEEWAY.replace("seconds=12", "seconds=13"), head_sha=NEW_HEAD, base_sha=BASE)

    second = recovery.store.claim_job("w", 60)
    assert second is not None
    assert second.id == job_id
    assert asyncio.run(recovery.service.handle(second)).state == "done"

    assert len(recovery.model.requests) == 2 * asked_before  # the newer head was reviewed afresh
    assert github.review_count(REPO, NUMBER, HEAD) == 0
    assert github.review_count(REPO, NUMBER, NEW_HEAD) == 1


def test_a_kept_result_is_posted_by_another_replica_with_its_own_connection(
    recovery: Harness, database_url: str
) -> None:
    recovery.github.push(Fault.error("POST", REVIEWS_PATH, 502))
    job = recovery.job()
    with pytest.raises(TransientJobError, match="502"):
        asyncio.run(recovery.service.handle(job))
    recovery.store.retry_job(job.id, "w", "502", 0, 5)
    asked = len(recovery.model.requests)

    other = open_store(database_url)
    try:
        replica = Harness(
            recovery.github, recovery.model, recovery.settings, other, make_service(recovery.settings, other)
        )
        again = other.claim_job("replica", 60)
        assert again is not None
        assert again.id == job.id
        assert asyncio.run(replica.service.handle(again)).state == "done"
    finally:
        other.close()

    assert len(recovery.model.requests) == asked
    assert recovery.placed() == [(TIMED, 155, None)]
    assert len(ledger.entries(recovery.store, repo=REPO)) == asked


# -- a pull request that is gone --------------------------------------------------------------


def test_a_pull_request_that_answers_404_ends_the_job_after_one_attempt(recovery: Harness) -> None:
    job = work(recovery, recovery.enqueue(number=NUMBER + 40))

    assert (job.state, job.attempts) == ("dropped", 1)
    assert job.last_error is not None
    assert "404" in job.last_error
    assert recovery.model.requests == []
    assert len(recovery.github.requests_to("GET", f"/repos/{REPO}/pulls/{NUMBER + 40}")) == 1


def test_a_pending_review_another_run_deleted_meanwhile_is_no_pull_request_gone(recovery: Harness) -> None:
    github = recovery.github
    github.add_review(REPO, NUMBER, user=github.bot_login, state="PENDING", body="half-made")
    # The DELETE is carried out, but answered 404 as if another run had deleted it first.
    github.push(Fault.succeed_then("DELETE", f"{REVIEWS_PATH}/*", status=404))

    job = work(recovery, recovery.enqueue())

    assert (job.state, job.attempts) == ("done", 1)
    assert recovery.only_review()["commit_id"] == HEAD


# -- parts that fail ---------------------------------------------------------------------------


def test_each_part_the_model_failed_is_logged_with_the_model_the_status_and_the_error(
    recovery: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # A second file and a small context window make two parts; the model fails the second.
    recovery.github.add_pull(REPO, NUMBER, LEEWAY + NOTES, head_sha=HEAD, base_sha=BASE)
    recovery.settings = recovery.settings.model_copy(update={"context_window": 2048, "max_output_tokens": 512})
    recovery.service = make_service(recovery.settings, recovery.store)

    def fail_the_notes(body: dict[str, Any]) -> Reply:
        if "docs/notes.md" in body["messages"][1]["content"]:
            return Reply.error(503, "upstream overloaded")
        return answer_with(BUG)(body)

    recovery.model.set_default(fail_the_notes)

    with caplog.at_level(logging.WARNING, logger="reviewbot"):
        assert recovery.run().state == "done"

    assert len(recovery.model.requests) == 2
    assert "1 of 2 parts could not be reviewed" in recovery.only_review()["body"]
    assert recovery.placed() == [(TIMED, 155, None)]
    (line,) = [r.getMessage() for r in caplog.records if "not reviewed" in r.getMessage()]
    assert "part 2 of 2" in line
    assert "docs/notes.md" in line
    assert "model qwen3-coder-30b" in line
    assert "status 503" in line
    assert "upstream overloaded" in line
    assert "sk-test" not in caplog.text


# -- every attempt failing ----------------------------------------------------------------------


def test_when_every_attempt_fails_one_note_is_posted_for_the_head_and_it_does_not_count_as_its_review(
    recovery: Harness,
) -> None:
    recovery.model.set_default(lambda body: Reply.text("Sorry, I can only answer in prose."))

    first = work(recovery, recovery.enqueue(), max_attempts=2)
    second = work(recovery, recovery.enqueue(trigger="pull_request.reopened"), max_attempts=2)

    assert (first.state, first.attempts, second.state) == ("failed", 2, "failed")
    (note,) = bot_reviews(recovery)
    assert FAILURE_NOTE in note["body"]
    assert "the model" in note["body"]
    assert note["commit_id"] == HEAD
    assert note["body"].endswith(marker(HEAD))
    assert recovery.github.comments(REPO, NUMBER) == []
    assert recovery.model.base_url not in note["body"]

    # Once the model answers again, the head still gets its review: a note is no review.
    recovery.model.set_default(answer_with(BUG))
    assert work(recovery, recovery.enqueue(trigger="pull_request.reopened")).state == "done"
    assert len(bot_reviews(recovery)) == 2
    assert recovery.placed() == [(TIMED, 155, None)]


# -- a review GitHub refuses --------------------------------------------------------------------


def test_a_review_github_refuses_twice_is_posted_as_a_plain_list_of_its_findings(recovery: Harness) -> None:
    refused = Fault.error("POST", REVIEWS_PATH, 422, message="Unprocessable Entity")
    recovery.github.push(refused, refused)

    job = work(recovery, recovery.enqueue())

    assert (job.state, job.attempts) == ("done", 1)
    inline, in_body, plain = recovery.github.requests_to("POST", REVIEWS_PATH)
    assert (len(inline.json["comments"]), in_body.json["comments"], plain.json["comments"]) == (1, [], [])
    assert "Inline comments" in in_body.json["body"]
    review = recovery.only_review()
    assert review["body"] == plain.json["body"]
    assert "<details>" not in review["body"]
    assert "Clock-skew check rejects fresh signatures" in review["body"]
    assert f"`{TIMED}:155`" in review["body"]
    assert fingerprints_of_review(review["body"])
    assert review["body"].endswith(marker(HEAD))
    assert len(prompts_asked(recovery.model)) == len(recovery.model.requests)


def test_a_review_github_refuses_in_every_form_fails_at_once_with_one_note(recovery: Harness) -> None:
    refused = Fault.error("POST", REVIEWS_PATH, 422, message="Unprocessable Entity")
    recovery.github.push(refused, refused, refused)

    job = work(recovery, recovery.enqueue())

    assert (job.state, job.attempts) == ("failed", 1)
    (note,) = bot_reviews(recovery)
    assert FAILURE_NOTE in note["body"]
    assert "GitHub refused" in note["body"]


def test_a_job_whose_worker_died_on_every_attempt_gets_the_note_too(recovery: Harness) -> None:
    job_id = recovery.enqueue()
    claimed = recovery.store.claim_job("died", lease_seconds=0.0)  # its one attempt; the worker never came back
    assert claimed is not None

    job = work(recovery, job_id, max_attempts=1)

    assert job.state == "failed"
    (note,) = bot_reviews(recovery)
    assert FAILURE_NOTE in note["body"]
    assert "stopped its worker on every attempt" in note["body"]
    assert recovery.model.requests == []


def test_a_failure_marker_quoted_in_a_review_s_text_does_not_make_it_a_note() -> None:
    assert is_failure_note(failure_note(HEAD, "the model gave no usable answer"))
    quoted = f"The finding quotes {FAILED_MARKER} in its text.\n\n{marker(HEAD)}"
    assert not is_failure_note(quoted)
