"""`reviewbot review --pr`: a pull request on the fake GitHub, reviewed by the fake model, in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fake_github import FakeGitHub
from fake_openai import FakeOpenAI, Reply
from fixtures_path import SAMPLE_DIFFS
from reviewbot.cli import main

REPO = "Codertocat/Hello-World"
NUMBER = 2
REF = f"{REPO}#{NUMBER}"
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
TOKEN = "ghp_cliTestToken0123456789abcdefABCDEF"
USER = "reviewer-bob"
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


pytestmark = pytest.mark.usefixtures("clean_environment")


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


def test_post_twice_does_not_repeat_findings_already_on_the_pull_request(
    github: FakeGitHub, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    note = dict(BUG, line=400, quote="", suggestion=None, title="Leeway is never validated")
    model.set_default(lambda body: Reply.json({"findings": [BUG, note] if BUG["path"] in str(body) else []}))

    assert main(["review", "--pr", REF, "--post"]) == 0
    assert main(["review", "--pr", REF, "--post"]) == 0

    first, second = github.reviews(REPO, NUMBER)
    assert "Leeway is never validated" in first["body"]
    assert "Leeway is never validated" not in second["body"]
    assert "2 findings already raised earlier not repeated" in second["body"]
    assert len(github.comments(REPO, NUMBER)) == 1


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
