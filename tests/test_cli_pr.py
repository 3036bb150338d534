"""`reviewbot review --pr`: a pull request on the fake GitHub, reviewed by the fake model, in-process."""

from __future__ import annotations

import asyncio
import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fake_github import FakeGitHub
from fake_openai import FakeOpenAI, Reply
from fixtures_path import SAMPLE_DIFFS
from reviewbot.cli import main
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.result import ModelCall
from reviewbot.engine.usage import Usage
from reviewbot.money import ledger
from reviewbot.service.job import ReviewService
from reviewbot.store.records import JobRequest
from reviewbot.store.store import Store, open_store
from stored import record_delivery
from test_cli_context import AFTER as CALC_AFTER
from test_cli_context import BEFORE as CALC_BEFORE
from test_service import make_service, make_settings

REPO = "Codertocat/Hello-World"
NUMBER = 2
REF = f"{REPO}#{NUMBER}"
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
TOKEN = "ghp_cliTestToken0123456789abcdefABCDEF"
USER = "reviewer-bob"
INSTALLATION = 4242
LEEWAY = (SAMPLE_DIFFS / "sample_leeway.diff").read_text("utf-8")
BUG: dict[str, Any] = {
    "path": "src/itsdangerous/timed.py",
    "line": 155,
    "start_line": None,
    "side": "RIGHT",
    "severity": "high",
    "category": "bug",
    "title": "Negative leeway check is inverted",
    "body": "`age < self.leeway` rejects every fresh signature; compare against `-self.leeway`.",
    "quote": "if age < self.leeway:",
    "suggestion": "            if age < -self.leeway:",
}


NEW_HEAD = "1111111111111111111111111111111111111111"
NEW_TEST: dict[str, Any] = dict(
    BUG, path="tests/test_itsdangerous/test_timed.py", line=48, title="Sleeps in a test", quote="", suggestion=None
)
PUSHED = LEEWAY.replace("freeze.tick(timedelta(seconds=12))", "freeze.tick(timedelta(seconds=13))")
CHANGES = (
    "diff --git a/tests/test_itsdangerous/test_timed.py b/tests/test_itsdangerous/test_timed.py\n"
    "index 1111111..2222222 100644\n"
    "--- a/tests/test_itsdangerous/test_timed.py\n+++ b/tests/test_itsdangerous/test_timed.py\n"
    "@@ -48 +48 @@\n-        freeze.tick(timedelta(seconds=12))\n+        freeze.tick(timedelta(seconds=13))\n"
)

pytestmark = pytest.mark.usefixtures("clean_environment")


def push(github: FakeGitHub, number: int = NUMBER) -> None:
    """A new commit on the pull request that changes only a line of the test file."""
    github.add_pull(REPO, number, PUSHED, head_sha=NEW_HEAD, base_sha=BASE, title="Add leeway")
    github.set_compare(REPO, HEAD, NEW_HEAD, CHANGES)


def placed(github: FakeGitHub, number: int) -> list[tuple[str, str, int]]:
    return sorted((c["commit_id"], c["path"], c["line"]) for c in github.comments(REPO, number))


@dataclass
class AppService:
    """The GitHub App's review job on its own store, for pull requests of the fake GitHub."""

    service: ReviewService
    store: Store

    def run(self, number: int, head: str) -> str:
        request = JobRequest(
            installation_id=INSTALLATION,
            repo=REPO,
            pr_number=number,
            head_sha=head,
            base_sha=BASE,
            full_review=False,
            trigger="pull_request.synchronize",
        )
        record_delivery(
            self.store, f"d-{number}-{head}", "pull_request", "synchronize", INSTALLATION, REPO, job=request
        )
        job = self.store.claim_job("w", 60)
        assert job is not None
        outcome = asyncio.run(self.service.handle(job))
        self.store.finish_job(job.id, "w", outcome.state, outcome.note)
        return outcome.state


def app_service(github: FakeGitHub, model: FakeOpenAI, tmp_path: Path) -> AppService:
    """The App as test_service builds it, on a store of its own."""
    store = open_store(f"sqlite:///{tmp_path / 'app.db'}")
    return AppService(make_service(make_settings(github, model), store), store)


@pytest.fixture
def github(fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    """The pull request on the fake GitHub, and a token for it in GITHUB_TOKEN."""
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, title="Add leeway")
    fake_github.add_personal_token(TOKEN, USER)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("REVIEWBOT_GITHUB_API_URL", fake_github.api_url)
    return fake_github


@pytest.fixture
def model(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.setenv("REVIEWBOT_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("REVIEWBOT_API_KEY", "sk-cli-test")
    monkeypatch.setenv("REVIEWBOT_MAX_RETRIES", "0")
    fake_openai.set_default(lambda body: Reply.json({"findings": [BUG] if BUG["path"] in str(body) else []}))
    return fake_openai


def posts(github: FakeGitHub) -> int:
    return len(github.requests_to("POST", "/repos/*/pulls/*/reviews"))


def test_prints_the_findings_of_a_pull_request_without_posting_anything(
    github: FakeGitHub, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--pr", REF]) == 0

    out = capsys.readouterr().out
    assert "Negative leeway check is inverted" in out
    assert "timed.py" in out
    assert "155" in out
    assert posts(github) == 0
    assert github.reviews(REPO, NUMBER) == []
    assert "Add leeway" in model.requests[0].body["messages"][1]["content"]
    assert all(r.headers["authorization"].endswith(TOKEN) for r in github.requests)


def test_post_posts_one_review_as_the_token_user_and_says_so(
    github: FakeGitHub, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--pr", REF, "--post"]) == 0

    (review,) = github.reviews(REPO, NUMBER)
    assert review["user"]["login"] == USER
    assert review["state"] == "COMMENTED"
    assert review["commit_id"] == HEAD
    assert f"<!-- reviewbot:head={HEAD} -->" in review["body"]
    placed = [(c["path"], c["line"]) for c in github.comments(REPO, NUMBER)]
    assert placed == [("src/itsdangerous/timed.py", 155)]
    err = capsys.readouterr().err
    assert f"posted review {review['id']} on https://github.com/{REPO}/pull/{NUMBER}" in err


def test_dry_run_shows_the_plan_without_a_model_key(github: FakeGitHub, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--pr", REF, "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "uv.lock" in out
    assert "GPT-4o $" in out
    assert posts(github) == 0


def test_a_pull_request_url_works_too(
    github: FakeGitHub, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["review", "--pr", f"https://github.com/{REPO}/pull/{NUMBER}", "--format", "json", "-o", "out.json"]) == 0
    )

    assert "Negative leeway check is inverted" in Path("out.json").read_text("utf-8")
    assert github.requests_to("GET", f"/repos/{REPO}/pulls/{NUMBER}")


@pytest.mark.parametrize("ref", ["Hello-World#2", "Codertocat/Hello-World", "Codertocat/Hello-World#two"])
def test_a_bad_pull_request_reference_exits_2_with_a_clear_message(
    github: FakeGitHub, ref: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--pr", ref]) == 2

    err = capsys.readouterr().err
    assert f"--pr {ref!r} is not OWNER/REPO#NUMBER or a pull request URL" in err
    assert github.requests == []


def test_no_token_exits_2_naming_github_token(fake_github: FakeGitHub, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--pr", REF, "--dry-run"]) == 2

    err = capsys.readouterr().err
    assert "GITHUB_TOKEN" in err
    assert fake_github.requests == []


def test_post_without_pr_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--post", str(SAMPLE_DIFFS / "sample_leeway.diff")]) == 2

    assert "--post works with --pr only" in capsys.readouterr().err


def test_post_alone_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--post"]) == 2

    assert "--post works with --pr only" in capsys.readouterr().err


def test_post_again_on_the_same_head_posts_nothing_more_and_calls_no_model(
    github: FakeGitHub, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--pr", REF, "--post"]) == 0
    calls = len(model.requests)

    assert main(["review", "--pr", REF, "--post"]) == 0

    assert posts(github) == 1
    assert len(model.requests) == calls
    assert "was already posted" in capsys.readouterr().err


def test_post_after_a_push_reviews_only_the_new_commits_and_repeats_no_finding(
    github: FakeGitHub, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    note = dict(BUG, line=400, quote="", suggestion=None, title="Leeway is never validated")
    model.set_default(lambda body: Reply.json({"findings": [BUG, note] if BUG["path"] in str(body) else []}))
    assert main(["review", "--pr", REF, "--post"]) == 0
    push(github)
    model.reset()
    model.set_default(lambda body: Reply.json({"findings": [BUG, note, NEW_TEST]}))

    assert main(["review", "--pr", REF, "--post"]) == 0

    sent = model.requests[0].body["messages"][1]["content"]
    assert "tests/test_itsdangerous/test_timed.py" in sent
    assert "src/itsdangerous/timed.py" not in sent
    first, second = github.reviews(REPO, NUMBER)
    assert "Leeway is never validated" in first["body"]
    assert "since `ec26c3e`" in second["body"]
    assert "Leeway is never validated" not in second["body"]
    # The model repeated both old findings; only the new one is posted.
    assert [(c["path"], c["line"]) for c in github.comments(REPO, NUMBER) if c["commit_id"] == NEW_HEAD] == [
        ("tests/test_itsdangerous/test_timed.py", 48)
    ]


def test_post_posts_what_the_app_posts_for_the_same_pull_request_and_push(
    github: FakeGitHub, model: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model.set_default(lambda body: Reply.json({"findings": [f for f in (BUG, NEW_TEST) if f["path"] in str(body)]}))
    other = 3  # the same change as a second pull request, reviewed by the App
    github.add_pull(REPO, other, LEEWAY, head_sha=HEAD, base_sha=BASE, title="Add leeway")
    app = app_service(github, model, tmp_path)

    assert main(["review", "--pr", REF, "--post"]) == 0
    assert app.run(other, HEAD) == "done"
    push(github)
    push(github, other)
    assert main(["review", "--pr", REF, "--post"]) == 0
    assert app.run(other, NEW_HEAD) == "done"

    by_cli, by_app = github.reviews(REPO, NUMBER), github.reviews(REPO, other)
    assert [r["user"]["login"] for r in by_cli] == [USER, USER]
    assert [r["user"]["login"] for r in by_app] == [github.bot_login] * 2
    assert [r["body"] for r in by_cli] == [r["body"] for r in by_app]
    assert "since `ec26c3e`" in by_cli[1]["body"]
    assert placed(github, NUMBER) == placed(github, other) != []


def test_post_posts_nothing_when_every_model_request_failed(
    github: FakeGitHub, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    model.set_default(lambda body: Reply.status(500))

    assert main(["review", "--pr", REF, "--post"]) == 3

    assert posts(github) == 0
    assert github.reviews(REPO, NUMBER) == []
    assert "nothing was posted" in capsys.readouterr().err


def test_a_token_github_refuses_exits_2_without_printing_it(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_notKnownToGitHub0123456789")

    assert main(["review", "--pr", REF, "--dry-run"]) == 2

    captured = capsys.readouterr()
    assert "401" in captured.err
    assert "Bad credentials" in captured.err
    assert "ghp_notKnownToGitHub0123456789" not in captured.out + captured.err


def test_an_unknown_pull_request_exits_2_naming_the_request(
    github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--pr", f"{REPO}#99", "--dry-run"]) == 2

    assert f"404 to GET /repos/{REPO}/pulls/99" in capsys.readouterr().err


def test_with_a_database_the_requests_land_in_the_ledger_under_no_installation(
    github: FakeGitHub, model: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("REVIEWBOT_DATABASE_URL", url)

    assert main(["review", "--pr", REF]) == 0

    store = open_store(url)
    try:
        entries = ledger.entries(store, repo=REPO)
    finally:
        store.close()
    assert len(entries) == len(model.requests) >= 1
    assert {(e.installation_id, e.pr_number, e.head_sha, e.job_id) for e in entries} == {(0, NUMBER, HEAD, None)}


def test_without_a_database_setting_no_database_file_is_made(github: FakeGitHub, model: FakeOpenAI) -> None:
    assert main(["review", "--pr", REF, "--post"]) == 0

    assert not Path("reviewbot.db").exists()  # the working directory is the test's own


def test_with_a_database_a_repository_over_its_budget_exits_2_with_no_model_call_and_no_note(
    github: FakeGitHub,
    model: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("REVIEWBOT_DATABASE_URL", url)
    monkeypatch.setenv("REVIEWBOT_MONTHLY_BUDGET_PER_REPO", "1")
    store = open_store(url)
    try:
        earlier = ModelCall(0, "somebody-elses-model", Usage(1_000, 100, 0, 1, 1.5), 1.0, "ok")
        ledger.record_calls(store, ledger.Origin(0, REPO, 1, "f" * 40), [earlier], Prices())
    finally:
        store.close()

    assert main(["review", "--pr", REF, "--post"]) == 2

    assert model.requests == []
    assert github.reviews(REPO, NUMBER) == []  # the App's note is for the App's installations
    err = capsys.readouterr().err
    assert "over the repository budget (REVIEWBOT_MONTHLY_BUDGET_PER_REPO); no model was called" in err


def test_post_leaves_the_users_own_pending_review_alone_and_exits_2(
    github: FakeGitHub, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    pending = github.add_review(REPO, NUMBER, user=USER, state="PENDING", body="half-written")

    assert main(["review", "--pr", REF, "--post"]) == 2

    assert [review["id"] for review in github.reviews(REPO, NUMBER)] == [pending]
    assert model.requests == []
    assert "you have a pending review on this pull request" in capsys.readouterr().err


def test_with_the_apps_database_post_neither_reads_nor_moves_the_apps_reviewed_head(
    github: FakeGitHub, model: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    store = open_store(url)
    store.record_review(REPO, NUMBER, "a" * 40, 77, ["fingerprint-the-app-raised"])  # the App reviewed an old head
    store.close()
    monkeypatch.setenv("REVIEWBOT_DATABASE_URL", url)

    assert main(["review", "--pr", REF, "--post"]) == 0

    assert "since `" not in github.reviews(REPO, NUMBER)[0]["body"]  # a whole review: the user never reviewed
    store = open_store(url)
    try:
        assert store.last_reviewed_head(REPO, NUMBER) == "a" * 40
        assert store.known_fingerprints(REPO, NUMBER) == {"fingerprint-the-app-raised"}
    finally:
        store.close()


def test_dry_run_with_post_plans_only_what_post_would_send(
    github: FakeGitHub, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--pr", REF, "--post"]) == 0
    push(github)
    capsys.readouterr()

    assert main(["review", "--pr", REF, "--post", "--dry-run", "--format", "json"]) == 0

    plan = json.loads(capsys.readouterr().out)
    assert [file["path"] for file in plan["files"] if not file.get("skipped")] == [
        "tests/test_itsdangerous/test_timed.py"
    ]
    assert posts(github) == 1


def test_a_review_turned_off_in_the_config_still_runs_when_asked_by_hand(
    github: FakeGitHub, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    github.set_file(REPO, "main", ".github/reviewbot.toml", "enabled = false\n")

    assert main(["review", "--pr", REF]) == 0

    assert "Negative leeway check is inverted" in capsys.readouterr().out


CALC_NUMBER = 9
CALC_HEAD = "9" * 40
CALC_DIFF = "diff --git a/calc.py b/calc.py\nindex 1111111..2222222 100644\n" + "".join(
    difflib.unified_diff(CALC_BEFORE.splitlines(True), CALC_AFTER.splitlines(True), "a/calc.py", "b/calc.py")
)


def calc_pull(github: FakeGitHub, *, with_file: bool = True) -> None:
    github.add_pull(REPO, CALC_NUMBER, CALC_DIFF, head_sha=CALC_HEAD, base_sha=BASE, title="Skip the limit")
    if with_file:
        github.set_file(REPO, CALC_HEAD, "calc.py", CALC_AFTER)


def test_function_context_on_a_pull_request_reads_the_files_at_its_head_commit(
    github: FakeGitHub, model: FakeOpenAI
) -> None:
    calc_pull(github)
    assert main(["review", "--pr", f"{REPO}#{CALC_NUMBER}", "--context", "function"]) == 0
    assert "4 ~def total(items, limit):" in model.requests[0].body["messages"][1]["content"]
    (fetched,) = github.requests_to("GET", f"/repos/{REPO}/contents/calc.py")
    assert fetched.query["ref"] == CALC_HEAD


def test_a_file_the_contents_api_does_not_have_is_reviewed_with_its_diff_alone(
    github: FakeGitHub, model: FakeOpenAI
) -> None:
    calc_pull(github, with_file=False)
    assert main(["review", "--pr", f"{REPO}#{CALC_NUMBER}", "--context", "function"]) == 0
    assert " ~" not in model.requests[0].body["messages"][1]["content"]


def test_the_app_reviews_with_function_context_when_set(
    github: FakeGitHub, model: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEWBOT_CONTEXT", "function")
    calc_pull(github)
    app = app_service(github, model, tmp_path)
    assert app.run(CALC_NUMBER, CALC_HEAD) == "done"
    assert "4 ~def total(items, limit):" in model.requests[0].body["messages"][1]["content"]


def test_the_app_reviews_with_function_context_when_the_repository_asks_for_it(
    github: FakeGitHub, model: FakeOpenAI, tmp_path: Path
) -> None:
    calc_pull(github)
    github.set_file(REPO, "main", ".github/reviewbot.toml", 'context = "function"\n')
    app = app_service(github, model, tmp_path)
    assert app.run(CALC_NUMBER, CALC_HEAD) == "done"
    assert "4 ~def total(items, limit):" in model.requests[0].body["messages"][1]["content"]
