"""ReviewService.handle in-process, against the fake GitHub and the fake model on loopback.

Each test enqueues one job in a real SQLite store, claims it and runs the service on it, then
looks at what the fake GitHub received and stored.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from fake_github import FakeGitHub, Fault
from fake_openai import FakeOpenAI, Reply
from fixtures_path import SAMPLE_DIFFS
from reviewbot.engine.repo_config import CONFIG_PATH
from reviewbot.github.client import GitHubClient
from reviewbot.github.draft import fingerprint_of_comment
from reviewbot.github.retry import RetryPolicy
from reviewbot.service.job import ReviewService
from reviewbot.service.worker import JobOutcome, PermanentJobError, TransientJobError
from reviewbot.settings import Settings
from reviewbot.store.records import Job, JobRequest
from reviewbot.store.store import Store, open_store
from stored import record_delivery

REPO = "Codertocat/Hello-World"
NUMBER = 2
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
OLD_HEAD = "0000000000000000000000000000000000000abc"
NEW_HEAD = "1111111111111111111111111111111111111111"
INSTALLATION = 4242
TIMED = "src/itsdangerous/timed.py"
LEEWAY = (SAMPLE_DIFFS / "sample_leeway.diff").read_text("utf-8")
BUG: dict[str, Any] = {
    "path": TIMED,
    "line": 155,
    "start_line": None,
    "side": "RIGHT",
    "severity": "high",
    "category": "bug",
    "title": "Clock-skew check rejects fresh signatures",
    "body": "Compare against the negative leeway.",
    "quote": "if age < self.leeway:",
    "suggestion": "            if age < -self.leeway:",
}
OFF_DIFF: dict[str, Any] = dict(
    BUG,
    line=400,
    quote="",
    suggestion=None,
    severity="medium",
    title="Leeway is never validated",
    body="A negative leeway silently widens the window.",
)
REVIEWS_PATH = "/repos/*/pulls/*/reviews"


@dataclass
class Harness:
    github: FakeGitHub
    model: FakeOpenAI
    settings: Settings
    store: Store
    service: ReviewService

    def enqueue(
        self,
        *,
        head_sha: str = HEAD,
        trigger: str = "pull_request.opened",
        full_review: bool = True,
        number: int = NUMBER,
    ) -> int:
        """Record a delivery that queues a job; the job's ID."""
        request = JobRequest(
            installation_id=INSTALLATION,
            repo=REPO,
            pr_number=number,
            head_sha=head_sha,
            base_sha=BASE,
            full_review=full_review,
            trigger=trigger,
        )
        record_delivery(self.store, str(uuid.uuid4()), "pull_request", "opened", INSTALLATION, REPO, job=request)
        return max(job.id for job in self.store.list_jobs(repo=REPO, pr_number=number))

    def job(self, *, head_sha: str = HEAD, trigger: str = "pull_request.opened", full_review: bool = True) -> Job:
        self.enqueue(head_sha=head_sha, trigger=trigger, full_review=full_review)
        job = self.store.claim_job("w", 60)
        assert job is not None
        return job

    def run(self, job: Job | None = None, **job_fields: Any) -> JobOutcome:
        job = job or self.job(**job_fields)
        outcome = asyncio.run(self.service.handle(job))
        self.store.finish_job(job.id, "w", outcome.state, outcome.note)
        return outcome

    def fails(self, **job_fields: Any) -> TransientJobError:
        with pytest.raises(TransientJobError) as caught:
            asyncio.run(self.service.handle(self.job(**job_fields)))
        return caught.value

    def submitted(self) -> list[dict[str, Any]]:
        return [r for r in self.github.reviews(REPO, NUMBER) if r["state"] != "PENDING"]

    def only_review(self) -> dict[str, Any]:
        (review,) = self.submitted()
        return review

    def placed(self) -> list[tuple[str, int, int | None]]:
        return sorted((c["path"], c["line"], c.get("start_line")) for c in self.github.comments(REPO, NUMBER))

    def sent_to_model(self) -> str:
        return "\n".join(str(request.body["messages"]) for request in self.model.requests)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come from the test alone: no REVIEWBOT_*/OPENAI_* variables, no .env file."""
    for name in list(os.environ):
        if name.startswith(("REVIEWBOT_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make_settings(github: FakeGitHub, model: FakeOpenAI) -> Settings:
    return Settings(
        github_app_id=str(github.app_id),
        github_private_key=SecretStr(github.private_key_pem),
        github_api_url=github.api_url,
        api_key=SecretStr("sk-test"),
        base_url=model.base_url,
        max_retries=0,
        review_drafts=False,
    )


def make_service(settings: Settings, store: Store) -> ReviewService:
    def github(installation: int) -> GitHubClient:
        return GitHubClient.for_installation(settings, installation, retry=RetryPolicy(time_scale=0.001), timeout=10)

    return ReviewService(settings, store, github=github)


@pytest.fixture
def harness(fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[Harness]:
    settings = make_settings(fake_github, fake_openai)
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, title="Add leeway")
    fake_openai.set_default(answer_with(BUG))
    yield Harness(fake_github, fake_openai, settings, store, make_service(settings, store))
    store.close()


def answer_with(*findings: dict[str, Any]) -> Callable[[dict[str, Any]], Reply]:
    """A model that reports each finding whose file is in the request."""

    def answer(body: dict[str, Any]) -> Reply:
        shown = body["messages"][1]["content"]
        return Reply.json({"findings": [f for f in findings if f["path"] in shown]})

    return answer


def marker(head: str) -> str:
    return f"<!-- reviewbot:head={head} -->"


# -- 1. pending reviews -----------------------------------------------------------------------


def test_a_stale_pending_review_of_ours_is_deleted_and_the_review_is_then_posted(harness: Harness) -> None:
    github = harness.github
    ours = github.add_review(REPO, NUMBER, user=github.bot_login, state="PENDING", body="half-made")
    theirs = github.add_review(REPO, NUMBER, user="someone-else", state="PENDING", body="their draft")

    outcome = harness.run()

    assert outcome.state == "done"
    assert [r.path for r in github.requests_to("DELETE", f"{REVIEWS_PATH}/*")] == [
        f"/repos/{REPO}/pulls/{NUMBER}/reviews/{ours}"
    ]
    stored = {r["id"]: r for r in github.reviews(REPO, NUMBER)}
    assert ours not in stored
    assert stored[theirs]["state"] == "PENDING"
    assert stored[theirs]["user"]["login"] == "someone-else"
    review = harness.only_review()
    assert review["user"]["login"] == github.bot_login
    assert review["commit_id"] == HEAD
    assert harness.placed() == [(TIMED, 155, None)]
    assert harness.store.review_for(REPO, NUMBER, HEAD) == review["id"]


# -- 2. a review already posted for this head -------------------------------------------------


def test_a_review_of_ours_already_posted_for_the_head_ends_the_job_without_the_model(harness: Harness) -> None:
    github = harness.github
    landed = github.add_review(REPO, NUMBER, user=github.bot_login, body=f"An earlier review.\n\n{marker(HEAD)}")

    outcome = harness.run()

    assert outcome.state == "done"
    assert harness.model.requests == []
    assert github.requests_to("POST", REVIEWS_PATH) == []
    assert [r["id"] for r in github.reviews(REPO, NUMBER)] == [landed]
    assert harness.store.review_for(REPO, NUMBER, HEAD) == landed


def test_a_review_by_someone_else_carrying_the_head_marker_does_not_stop_ours(harness: Harness) -> None:
    harness.github.add_review(REPO, NUMBER, user="mallory", body=marker(HEAD))

    assert harness.run().state == "done"
    assert harness.github.review_count(REPO, NUMBER, HEAD) == 2
    assert len(harness.github.requests_to("POST", REVIEWS_PATH)) == 1


# -- 3. stale heads, closed and draft pull requests -------------------------------------------


def test_a_job_for_a_head_that_moved_on_is_dropped_when_the_newer_head_has_its_job(harness: Harness) -> None:
    stale = harness.job(head_sha=OLD_HEAD)
    newer = JobRequest(
        installation_id=INSTALLATION,
        repo=REPO,
        pr_number=NUMBER,
        head_sha=HEAD,
        base_sha=BASE,
        full_review=False,
        trigger="pull_request.synchronize",
    )
    record_delivery(harness.store, "d-newer", "pull_request", "synchronize", INSTALLATION, REPO, job=newer)

    outcome = harness.run(stale)

    assert outcome.state == "dropped"
    assert "stale" in (outcome.note or "")
    assert harness.model.requests == []
    assert harness.github.reviews(REPO, NUMBER) == []


def test_a_job_left_with_an_older_head_reviews_the_current_head_when_no_other_job_will(harness: Harness) -> None:
    # Pushes recorded out of order left the only queued job with the older head.
    outcome = harness.run(head_sha=OLD_HEAD)

    assert outcome.state == "done"
    assert harness.github.review_count(REPO, NUMBER, HEAD) == 1
    assert harness.placed() == [(TIMED, 155, None)]


def test_a_closed_pull_request_is_dropped(harness: Harness) -> None:
    harness.github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, state="closed")

    outcome = harness.run()

    assert (outcome.state, outcome.note) == ("dropped", "the pull request is closed")
    assert harness.model.requests == []
    assert harness.github.reviews(REPO, NUMBER) == []


def test_a_draft_pull_request_is_dropped(harness: Harness) -> None:
    harness.github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, draft=True)

    outcome = harness.run()

    assert (outcome.state, outcome.note) == ("dropped", "the pull request is a draft")
    assert harness.model.requests == []
    assert harness.github.reviews(REPO, NUMBER) == []


def test_a_draft_is_reviewed_when_the_base_branch_config_asks_for_drafts(harness: Harness) -> None:
    harness.github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, draft=True)
    harness.github.set_file(REPO, "main", CONFIG_PATH, "review_drafts = true\n")

    assert harness.run().state == "done"
    assert harness.github.review_count(REPO, NUMBER, HEAD) == 1
    assert harness.placed() == [(TIMED, 155, None)]


def test_the_config_is_read_from_the_base_branch_not_the_head(harness: Harness) -> None:
    harness.github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, draft=True)
    harness.github.set_file(REPO, "feature", CONFIG_PATH, "review_drafts = true\n")
    harness.github.set_file(REPO, HEAD, CONFIG_PATH, "review_drafts = true\n")

    assert harness.run().state == "dropped"
    assert harness.github.reviews(REPO, NUMBER) == []
    (read,) = harness.github.requests_to("GET", f"/repos/{REPO}/contents/*")
    assert read.query["ref"] == "main"


def test_a_review_command_on_a_draft_is_reviewed(harness: Harness) -> None:
    harness.github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, draft=True)

    outcome = harness.run(head_sha="", trigger="command", full_review=False)

    assert outcome.state == "done"
    assert harness.github.review_count(REPO, NUMBER, HEAD) == 1
    assert harness.placed() == [(TIMED, 155, None)]


def test_a_review_command_reviews_an_already_reviewed_head_again_but_only_once_per_command(harness: Harness) -> None:
    harness.run()
    command = harness.job(head_sha="", trigger="command", full_review=True)

    assert asyncio.run(harness.service.handle(command)).state == "done"
    # The worker died before finishing the job: the same command job runs again.
    assert asyncio.run(harness.service.handle(command)).state == "done"

    assert harness.github.review_count(REPO, NUMBER, HEAD) == 2


def test_a_lost_answer_to_a_command_review_is_found_by_its_job_marker(harness: Harness) -> None:
    harness.run()
    harness.github.push(Fault.succeed_then("POST", REVIEWS_PATH))

    outcome = harness.run(head_sha="", trigger="command", full_review=True)

    assert outcome.state == "done"
    assert harness.github.review_count(REPO, NUMBER, HEAD) == 2


# -- 4. .github/reviewbot.toml ------------------------------------------------------------------


def test_a_repository_that_turned_reviews_off_is_dropped(harness: Harness) -> None:
    harness.github.set_file(REPO, "main", CONFIG_PATH, "enabled = false\n")

    outcome = harness.run()

    assert outcome.state == "dropped"
    assert CONFIG_PATH in (outcome.note or "")
    assert harness.model.requests == []
    assert harness.github.reviews(REPO, NUMBER) == []


def test_a_config_with_a_syntax_error_still_gets_a_review_that_names_the_problem(harness: Harness) -> None:
    harness.github.set_file(REPO, "main", CONFIG_PATH, "enabled = \n[[[\n")

    assert harness.run().state == "done"

    body = harness.only_review()["body"]
    assert "**Configuration:**" in body
    assert f"{CONFIG_PATH} could not be read" in body
    assert harness.placed() == [(TIMED, 155, None)]


def test_files_excluded_by_the_config_are_not_sent_to_the_model(harness: Harness) -> None:
    harness.github.set_file(REPO, "main", CONFIG_PATH, 'exclude = ["src/**"]\n')

    assert harness.run().state == "done"

    sent = harness.sent_to_model()
    assert harness.model.requests
    assert TIMED not in sent
    assert "tests/test_itsdangerous/test_timed.py" in sent
    assert harness.placed() == []
    assert harness.github.review_count(REPO, NUMBER, HEAD) == 1


# -- 5. a POST whose answer was lost ----------------------------------------------------------


def test_a_review_stored_despite_a_502_is_found_and_not_posted_twice(harness: Harness) -> None:
    harness.github.push(Fault.succeed_then("POST", REVIEWS_PATH))

    outcome = harness.run()

    assert outcome.state == "done"
    assert len(harness.github.requests_to("POST", REVIEWS_PATH)) == 1
    review = harness.only_review()
    assert harness.placed() == [(TIMED, 155, None)]
    assert harness.store.review_for(REPO, NUMBER, HEAD) == review["id"]
    # It looked after the failed POST before deciding.
    methods = [r.method for r in harness.github.requests if r.path.endswith("/reviews")]
    assert methods[-2:] == ["POST", "GET"]


def test_a_502_with_nothing_stored_is_a_transient_failure_and_posts_nothing(harness: Harness) -> None:
    harness.github.push(Fault.error("POST", REVIEWS_PATH, 502))

    error = harness.fails()

    assert "502" in str(error)
    assert harness.github.reviews(REPO, NUMBER) == []
    assert len(harness.github.requests_to("POST", REVIEWS_PATH)) == 1
    assert harness.store.review_for(REPO, NUMBER, HEAD) is None


# -- 6. rate limits -----------------------------------------------------------------------------


def test_a_secondary_rate_limit_on_the_post_is_retried_later_after_the_wait_github_asked(harness: Harness) -> None:
    harness.github.push(Fault.secondary_rate_limit("POST", REVIEWS_PATH, retry_after=90))

    error = harness.fails()

    assert error.retry_after == 90
    assert harness.github.reviews(REPO, NUMBER) == []
    assert len(harness.github.requests_to("POST", REVIEWS_PATH)) == 1


# -- 7. the model failing -----------------------------------------------------------------------


def test_a_model_that_fails_every_request_makes_the_job_retry_later_with_nothing_posted(harness: Harness) -> None:
    harness.model.set_default(lambda body: Reply.status(500))

    error = harness.fails()

    assert "every model request failed" in str(error)
    assert harness.model.requests
    assert harness.github.reviews(REPO, NUMBER) == []
    assert harness.github.requests_to("POST", REVIEWS_PATH) == []


# -- 8. the head moving during the review -----------------------------------------------------


def test_a_head_that_moves_on_while_the_model_runs_drops_the_review(harness: Harness) -> None:
    def push_then_answer(body: dict[str, Any]) -> Reply:
        harness.github.add_pull(REPO, NUMBER, LEEWAY, head_sha=NEW_HEAD, base_sha=BASE)
        return answer_with(BUG)(body)

    harness.model.set_default(push_then_answer)

    outcome = harness.run()

    assert outcome.state == "dropped"
    assert NEW_HEAD[:7] in (outcome.note or "")
    assert harness.model.requests
    assert harness.github.reviews(REPO, NUMBER) == []
    assert harness.github.requests_to("POST", REVIEWS_PATH) == []


# -- 9. findings already on the pull request --------------------------------------------------


def test_a_finding_already_posted_on_the_pull_request_is_not_repeated(
    harness: Harness, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    assert harness.run().state == "done"
    (first_comment,) = fake_github.comments(REPO, NUMBER)
    assert fingerprint_of_comment(first_comment["body"])

    # A push that keeps the buggy line; a worker with a fresh database knows only what GitHub shows.
    fake_github.add_pull(REPO, NUMBER, LEEWAY.replace("seconds=12", "seconds=13"), head_sha=NEW_HEAD, base_sha=BASE)
    fresh_store = open_store(f"sqlite:///{tmp_path}/fresh.sqlite")
    try:
        second = Harness(
            fake_github, harness.model, harness.settings, fresh_store, make_service(harness.settings, fresh_store)
        )
        assert second.run(head_sha=NEW_HEAD, trigger="pull_request.synchronize", full_review=True).state == "done"
    finally:
        fresh_store.close()

    assert fake_github.review_count(REPO, NUMBER, NEW_HEAD) == 1
    review = next(r for r in fake_github.reviews(REPO, NUMBER) if r["commit_id"] == NEW_HEAD)
    assert "1 finding already raised earlier not repeated" in review["body"]
    assert "no new findings" in review["body"]
    assert [c["commit_id"] for c in fake_github.comments(REPO, NUMBER)] == [HEAD]


def test_the_same_store_also_remembers_what_it_posted(harness: Harness) -> None:
    assert harness.run().state == "done"
    harness.github.add_pull(REPO, NUMBER, LEEWAY, head_sha=NEW_HEAD, base_sha=BASE)

    assert harness.run(head_sha=NEW_HEAD, full_review=True).state == "done"

    assert len(harness.github.comments(REPO, NUMBER)) == 1
    second = next(r for r in harness.github.reviews(REPO, NUMBER) if r["commit_id"] == NEW_HEAD)
    assert "not repeated" in second["body"]


# -- 10. a pull request too big for the diff media type ---------------------------------------


def test_a_diff_refused_with_406_is_rebuilt_from_the_files_api_and_comments_land_on_the_right_lines(
    harness: Harness,
) -> None:
    harness.github.push(Fault.error("GET", f"/repos/{REPO}/pulls/{NUMBER}", 406, accept="diff"))

    assert harness.run().state == "done"

    assert harness.github.requests_to("GET", f"/repos/{REPO}/pulls/{NUMBER}/files")
    assert harness.placed() == [(TIMED, 155, None)]
    assert harness.github.review_count(REPO, NUMBER, HEAD) == 1


def test_a_pull_request_of_301_files_is_reviewed_through_the_files_api(harness: Harness) -> None:
    extra = "".join(
        f"diff --git a/gen/f{i}.txt b/gen/f{i}.txt\nnew file mode 100644\nindex 0000000..1111111\n"
        f"--- /dev/null\n+++ b/gen/f{i}.txt\n@@ -0,0 +1 @@\n+value {i}\n"
        for i in range(297)
    )
    harness.github.add_pull(REPO, NUMBER, LEEWAY + extra, head_sha=HEAD, base_sha=BASE)
    harness.github.set_file(REPO, "main", CONFIG_PATH, 'exclude = ["gen/**"]\n')

    assert harness.run().state == "done"

    pages = harness.github.requests_to("GET", f"/repos/{REPO}/pulls/{NUMBER}/files")
    assert len(pages) == 4
    # GitHub's diff media type was not even asked for: the size alone says it would be refused.
    diffs = [
        r
        for r in harness.github.requests_to("GET", f"/repos/{REPO}/pulls/{NUMBER}")
        if "diff" in r.headers.get("accept", "")
    ]
    assert diffs == []
    assert harness.placed() == [(TIMED, 155, None)]
    assert harness.github.review_count(REPO, NUMBER, HEAD) == 1


# -- 11. findings off the diff ----------------------------------------------------------------


def test_a_finding_off_the_diff_becomes_a_file_note_and_github_accepts_the_review(harness: Harness) -> None:
    harness.model.set_default(answer_with(BUG, OFF_DIFF))

    assert harness.run().state == "done"

    assert len(harness.github.requests_to("POST", REVIEWS_PATH)) == 1  # no 422 and no second try
    body = harness.only_review()["body"]
    assert "**Notes on files**" in body
    assert f"`{TIMED}`" in body
    assert "Leeway is never validated" in body
    assert harness.placed() == [(TIMED, 155, None)]


# -- 12. the body ---------------------------------------------------------------------------------


def test_the_review_body_reports_the_cost_and_the_head(harness: Harness) -> None:
    assert harness.run().state == "done"

    body = harness.only_review()["body"]
    assert "request to qwen3-coder-30b" in body
    assert "GPT-4o $" in body
    assert body.endswith(marker(HEAD))
    assert "uv.lock" in body  # the lock file is listed as not reviewed


def test_a_review_github_refuses_in_every_form_fails_the_job_at_once_instead_of_paying_for_it_again(
    harness: Harness,
) -> None:
    refused = Fault.error("POST", REVIEWS_PATH, 422, message="Unprocessable Entity")
    harness.github.push(refused, refused, refused)

    with pytest.raises(PermanentJobError, match="refused the review three times"):
        asyncio.run(harness.service.handle(harness.job()))

    posts = harness.github.requests_to("POST", REVIEWS_PATH)
    assert [len(post.json["comments"]) for post in posts] == [1, 0, 0]
    assert harness.github.reviews(REPO, NUMBER) == []


def test_a_push_while_the_diff_is_fetched_drops_the_job_before_the_model_is_paid(harness: Harness) -> None:
    newer = JobRequest(
        installation_id=INSTALLATION,
        repo=REPO,
        pr_number=NUMBER,
        head_sha=NEW_HEAD,
        base_sha=BASE,
        full_review=False,
        trigger="pull_request.synchronize",
    )

    def push() -> None:
        record_delivery(harness.store, "d-push", "pull_request", "synchronize", INSTALLATION, REPO, job=newer)

    harness.github.push(Fault.while_answering("GET", f"/repos/{REPO}/pulls/{NUMBER}", push, accept="diff"))

    outcome = harness.run()

    assert outcome.state == "dropped"
    assert "newer head" in (outcome.note or "")
    assert harness.model.requests == []
    assert harness.github.reviews(REPO, NUMBER) == []
