"""`reviewbot action`: a GitHub Actions run's pull request, reviewed with the workflow's token.

The runner's environment is built as GitHub documents it (GITHUB_EVENT_NAME, GITHUB_EVENT_PATH
holding a real `pull_request` payload, GITHUB_REPOSITORY, GITHUB_API_URL, GITHUB_OUTPUT,
GITHUB_STEP_SUMMARY), and the inputs arrive as `action.yml` hands them over (INPUT_*).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fake_github import WORKFLOW_LOGIN, FakeGitHub
from fake_openai import FakeOpenAI, Reply
from fixtures_path import WEBHOOKS
from reviewbot.cli import main
from test_cli_pr import BASE, BUG, CHANGES, HEAD, LEEWAY, NEW_HEAD, NEW_TEST, NUMBER, PUSHED, REPO

TOKEN = "ghs_workflowToken0123456789abcdefABCDEF"
OPENED: dict[str, Any] = json.loads((WEBHOOKS / "pull_request" / "opened.payload.json").read_text("utf-8"))
SYNCHRONIZE: dict[str, Any] = json.loads((WEBHOOKS / "pull_request" / "synchronize.payload.json").read_text("utf-8"))

pytestmark = pytest.mark.usefixtures("clean_environment")


class Runner:
    """The environment GitHub's runner gives the action's step, and what the step wrote back."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_url: str) -> None:
        self.dir = tmp_path / "runner"
        self.dir.mkdir()
        self.output = self.dir / "output"
        self.summary = self.dir / "summary"
        self._monkeypatch = monkeypatch
        for name, value in {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_API_URL": api_url,
            "GITHUB_ACTOR": "Codertocat",
            "GITHUB_OUTPUT": str(self.output),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "INPUT_GITHUB_TOKEN": TOKEN,
        }.items():
            monkeypatch.setenv(name, value)

    def event(self, payload: dict[str, Any], name: str = "pull_request") -> None:
        path = self.dir / f"event-{payload.get('action', 'none')}.json"
        path.write_text(json.dumps(payload), "utf-8")
        self._monkeypatch.setenv("GITHUB_EVENT_NAME", name)
        self._monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))
        # Each step starts with empty files, as the runner gives them.
        self.output.write_text("", "utf-8")
        self.summary.write_text("", "utf-8")

    def inputs(self, **values: str) -> None:
        for name, value in values.items():
            self._monkeypatch.setenv("INPUT_" + name.upper(), value)

    def outputs(self) -> dict[str, str]:
        """The step's outputs, read the way the runner reads ``name<<DELIMITER`` blocks."""
        found: dict[str, str] = {}
        lines = self.output.read_text("utf-8").splitlines()
        while lines:
            name, _, delimiter = lines.pop(0).partition("<<")
            end = lines.index(delimiter)
            found[name] = "\n".join(lines[:end])
            del lines[: end + 1]
        return found


@pytest.fixture
def runner(fake_github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, title="Add leeway")
    fake_github.add_workflow_token(TOKEN)
    return Runner(tmp_path, monkeypatch, fake_github.api_url)


@pytest.fixture
def model(fake_openai: FakeOpenAI, runner: Runner) -> FakeOpenAI:
    runner.inputs(api_key="sk-action-test", base_url=fake_openai.base_url)
    # The endpoint publishes no price for the default model; the inputs give one.
    runner.inputs(input_price="0.07", output_price="0.28")
    # A finding on the leeway check, and one on the line the push changes, when they are shown.
    shown = {"if age < self.leeway:": BUG, "seconds=13": NEW_TEST}
    fake_openai.set_default(
        lambda body: Reply.json({"findings": [finding for code, finding in shown.items() if code in str(body)]})
    )
    return fake_openai


def fork_of(payload: dict[str, Any]) -> dict[str, Any]:
    forked = copy.deepcopy(payload)
    forked["pull_request"]["head"]["repo"]["full_name"] = "someone/Hello-World"
    forked["pull_request"]["head"]["repo"]["fork"] = True
    return forked


def test_opened_then_synchronize_posts_a_review_then_an_incremental_one(
    fake_github: FakeGitHub, runner: Runner, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.event(OPENED)
    assert main(["action"]) == 0

    (review,) = fake_github.reviews(REPO, NUMBER)
    assert review["user"]["login"] == WORKFLOW_LOGIN
    assert review["commit_id"] == HEAD
    assert "cost $0.0" in review["body"]
    assert [(c["path"], c["line"]) for c in fake_github.comments(REPO, NUMBER)] == [("src/itsdangerous/timed.py", 155)]
    url = f"https://github.com/{REPO}/pull/{NUMBER}#pullrequestreview-{review['id']}"
    outputs = runner.outputs()
    assert outputs["findings"] == "1"
    assert outputs["review-url"] == url
    assert re.fullmatch(r"0\.\d+", outputs["cost-usd"])
    summary = runner.summary.read_text("utf-8")
    assert url in summary
    assert "GPT-4o" in summary
    assert "input + " in summary
    out = capsys.readouterr().out
    assert "Negative leeway check is inverted" in out
    assert f"posted {url}" in out

    # A push: GitHub sends `synchronize`; only the new commit is reviewed, and what was raised stays out.
    fake_github.add_pull(REPO, NUMBER, PUSHED, head_sha=NEW_HEAD, base_sha=BASE, title="Add leeway")
    fake_github.set_compare(REPO, HEAD, NEW_HEAD, CHANGES)
    pushed = copy.deepcopy(SYNCHRONIZE)
    pushed["pull_request"]["head"]["sha"] = pushed["after"] = NEW_HEAD
    pushed["before"] = HEAD
    runner.event(pushed)
    assert main(["action"]) == 0

    _, second = fake_github.reviews(REPO, NUMBER)
    assert second["commit_id"] == NEW_HEAD
    assert "src/itsdangerous/timed.py" not in str(model.requests[-1].body)
    new_comments = [(c["path"], c["line"]) for c in fake_github.comments(REPO, NUMBER) if c["commit_id"] == NEW_HEAD]
    assert new_comments == [("tests/test_itsdangerous/test_timed.py", 48)]
    assert runner.outputs()["findings"] == "1"

    # The same event again (a re-run of the job): the head has its review; nothing more is posted.
    requests = len(model.requests)
    assert main(["action"]) == 0
    assert len(fake_github.reviews(REPO, NUMBER)) == 2
    assert len(model.requests) == requests
    assert "already posted" in runner.summary.read_text("utf-8")


def test_a_fork_pull_request_without_a_key_exits_0_and_says_why(
    fake_github: FakeGitHub, runner: Runner, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_github.add_workflow_token(TOKEN, writable=False)
    runner.event(fork_of(OPENED))
    assert main(["action"]) == 0

    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("::notice title=reviewbot::pull request #2 comes from a fork")
    assert "no secrets" in line
    assert fake_github.requests == []
    assert fake_openai.requests == []
    assert runner.outputs() == {"findings": "0", "cost-usd": "", "review-url": ""}


def test_a_fork_pull_request_with_a_key_is_reviewed_into_the_summary_not_posted(
    fake_github: FakeGitHub, runner: Runner, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_github.add_workflow_token(TOKEN, writable=False)
    runner.event(fork_of(OPENED))
    assert main(["action"]) == 0

    assert fake_github.requests_to("POST", "/repos/*") == []
    assert fake_github.reviews(REPO, NUMBER) == []
    summary = runner.summary.read_text("utf-8")
    assert "not posted" in summary
    assert "`src/itsdangerous/timed.py:155` Negative leeway check is inverted" in summary
    assert runner.outputs()["findings"] == "1"
    assert "::notice title=reviewbot::not posted" in capsys.readouterr().out


def test_a_read_only_token_on_the_repository_fails_naming_the_permission(
    fake_github: FakeGitHub, runner: Runner, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_github.add_workflow_token(TOKEN, writable=False)
    runner.event(OPENED)
    assert main(["action"]) == 2

    out = capsys.readouterr().out
    assert "::error title=reviewbot::GitHub answered 403" in out
    assert "pull-requests: write" in out
    assert TOKEN not in out


def test_fail_on_fails_the_step_and_sarif_is_written(
    fake_github: FakeGitHub, runner: Runner, model: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.inputs(fail_on="high", sarif=str(tmp_path / "reviewbot.sarif"))
    runner.event(OPENED)
    assert main(["action"]) == 1

    assert len(fake_github.reviews(REPO, NUMBER)) == 1
    sarif = json.loads((tmp_path / "reviewbot.sarif").read_text("utf-8"))
    (result,) = sarif["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/itsdangerous/timed.py"
    assert "::error title=reviewbot::a finding is at least high (fail-on)" in capsys.readouterr().out


def test_inputs_override_settings_and_a_bad_one_is_named_as_the_input(
    fake_github: FakeGitHub, runner: Runner, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.inputs(model="qwen3-coder-480b", extra_instructions="Mind the leeway.")
    runner.event(OPENED)
    assert main(["action"]) == 0
    body = model.requests[0].body
    assert body["model"] == "qwen3-coder-480b"
    assert "Mind the leeway." in body["messages"][0]["content"]

    runner.inputs(max_cost="a lot")
    assert main(["action"]) == 2
    assert "input max-cost" in capsys.readouterr().out


def test_a_draft_is_skipped_unless_the_input_asks_for_drafts(
    fake_github: FakeGitHub, runner: Runner, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, title="Add leeway", draft=True)
    runner.event(OPENED)
    assert main(["action"]) == 0
    assert "::notice title=reviewbot::the pull request is a draft" in capsys.readouterr().out
    assert model.requests == []

    runner.inputs(review_drafts="true")
    assert main(["action"]) == 0
    assert len(fake_github.reviews(REPO, NUMBER)) == 1


def test_reviews_turned_off_in_the_repository_config_stop_the_action(
    fake_github: FakeGitHub, runner: Runner, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_github.set_file(REPO, "master", ".github/reviewbot.toml", "enabled = false\n")
    fake_github.set_file(REPO, "main", ".github/reviewbot.toml", "enabled = false\n")
    runner.event(OPENED)
    assert main(["action"]) == 0

    assert "turned off" in capsys.readouterr().out
    assert model.requests == []
    assert fake_github.reviews(REPO, NUMBER) == []


def test_another_event_exits_2_with_an_error_annotation(runner: Runner, capsys: pytest.CaptureFixture[str]) -> None:
    runner.event({"ref": "refs/heads/main"}, name="push")
    assert main(["action"]) == 2
    assert "::error title=reviewbot::`reviewbot action` reviews pull requests; this run is a 'push' event" in (
        capsys.readouterr().out
    )


def test_outside_a_workflow_it_says_where_it_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["action"]) == 2
    assert "runs inside a GitHub Actions job" in capsys.readouterr().out


def test_a_model_that_fails_every_request_fails_the_step_and_posts_nothing(
    fake_github: FakeGitHub,
    runner: Runner,
    model: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REVIEWBOT_MAX_RETRIES", "0")
    model.set_default(lambda body: Reply.status(503))
    runner.event(OPENED)
    assert main(["action"]) == 3

    out = capsys.readouterr().out
    assert "::error title=reviewbot::every model request failed" in out
    assert fake_github.requests_to("POST", "/repos/*") == []
    assert runner.outputs()["review-url"] == ""
    assert "Not posted: every model request failed" in runner.summary.read_text("utf-8")

    # A refused key stops the run before anything else: one error naming it, in the log and the summary.
    model.set_default(lambda body: Reply.status(401, message="Incorrect API key provided: sk-actio*****test."))
    runner.event(OPENED)
    assert main(["action"]) == 3
    assert "refused the API key (HTTP 401)" in capsys.readouterr().out
    assert "The review could not be done: the endpoint" in runner.summary.read_text("utf-8")
    assert runner.outputs() == {"findings": "0", "cost-usd": "", "review-url": ""}


def test_the_action_yml_step_runs_the_command_with_the_inputs_it_was_given(
    fake_github: FakeGitHub, runner: Runner, model: FakeOpenAI, tmp_path: Path
) -> None:
    """The review step as the runner runs it: its `env:` with the inputs filled in, its script in bash."""
    action = yaml.safe_load((Path(__file__).resolve().parents[1] / "action.yml").read_text("utf-8"))
    (step,) = [step for step in action["runs"]["steps"] if step.get("id") == "review"]
    given = {"api-key": "sk-action-test", "base-url": model.base_url, "input-price": "0.07", "output-price": "0.28"}
    given |= {"github-token": TOKEN, "min-severity": "critical"}
    env = {
        name: re.sub(
            r"\$\{\{ inputs\.([a-z-]+) \}\}",
            lambda match: given.get(match.group(1), str(action["inputs"][match.group(1)].get("default", ""))),
            value,
        )
        for name, value in step["env"].items()
    }
    bin_dir = tmp_path / "temp" / "reviewbot-venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "reviewbot").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m reviewbot "$@"\n', "utf-8")
    (bin_dir / "reviewbot").chmod(0o755)
    runner.event(OPENED)
    base = {key: value for key, value in os.environ.items() if not key.startswith("INPUT_")}
    completed = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        env={**base, **env, "RUNNER_TEMP": str(tmp_path / "temp")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    (review,) = fake_github.reviews(REPO, NUMBER)
    assert fake_github.comments(REPO, NUMBER) == []  # min-severity critical left the high finding out
    assert runner.outputs()["review-url"].endswith(f"#pullrequestreview-{review['id']}")


def test_workflow_commands_the_model_writes_are_not_run(
    fake_github: FakeGitHub, runner: Runner, model: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    # A pull request can steer the model into writing lines that the runner would take as commands.
    planted = dict(BUG, body="Fine.\n::error file=README.md,line=1::planted\n::stop-commands::planted-token")
    model.set_default(lambda body: Reply.json({"findings": [planted]}))
    runner.event(OPENED)
    assert main(["action"]) == 0

    lines = capsys.readouterr().out.splitlines()
    stop = next(i for i, line in enumerate(lines) if line.startswith("::stop-commands::"))
    token = lines[stop].removeprefix("::stop-commands::")
    resume = lines.index(f"::{token}::")
    assert len(token) >= 32
    planted_at = [i for i, line in enumerate(lines) if "::error file=README.md" in line or "planted-token" in line]
    assert planted_at
    assert all(stop < i < resume for i in planted_at)


def test_pull_request_target_reviews_and_posts_a_fork_pull_request(
    fake_github: FakeGitHub, runner: Runner, model: FakeOpenAI
) -> None:
    # pull_request_target runs in the base repository, with its secrets and a token that can write.
    runner.event(fork_of(OPENED), name="pull_request_target")
    assert main(["action"]) == 0

    (review,) = fake_github.reviews(REPO, NUMBER)
    assert review["user"]["login"] == WORKFLOW_LOGIN
    assert runner.outputs()["review-url"].endswith(f"#pullrequestreview-{review['id']}")


@pytest.mark.parametrize("full_name", ["octo/x\n", "octo/..", "../x", "octo/x/y"])
def test_an_event_naming_no_repository_is_refused_before_github_is_asked(
    fake_github: FakeGitHub, runner: Runner, full_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    event = copy.deepcopy(OPENED)
    event["pull_request"]["base"]["repo"]["full_name"] = full_name
    runner.event(event)
    assert main(["action"]) == 2
    assert "is not OWNER/NAME" in capsys.readouterr().out
    assert fake_github.requests == []
