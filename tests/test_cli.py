"""The command line, run in-process against the fake endpoint on loopback."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, Reply
from fixtures_path import FIXTURE_DIFFS, SAMPLE_DIFFS
from reviewbot.cli import main

LEEWAY = SAMPLE_DIFFS / "sample_leeway.diff"
BUG = {
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


def test_dry_run_shows_the_plan_without_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(LEEWAY), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "uv.lock" in out
    assert "lock file" in out
    assert "GPT-4o $" in out


def test_dry_run_json_holds_the_exact_messages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(LEEWAY), "--dry-run", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["schema"] == "reviewbot.plan/1"
    assert len(plan["requests"]) == 1
    assert plan["messages"][0][0]["role"] == "system"
    assert "155 +            if age < self.leeway:" in plan["messages"][0][1]["content"]


def test_a_real_run_without_a_key_names_the_variable_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(LEEWAY)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reviewbot: no API key")
    assert "REVIEWBOT_API_KEY" in err


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "sarif", "github"])
def test_prints_the_review_in_every_format(endpoint: FakeOpenAI, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint.push(Reply.json({"findings": [BUG]}))
    assert main(["review", str(LEEWAY), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "Negative leeway check is inverted" in out
    if fmt in ("json", "sarif"):
        json.loads(out)
    if fmt == "text":
        assert "\033[" not in out


def test_fail_on_exits_1_when_a_finding_is_severe_enough(endpoint: FakeOpenAI) -> None:
    endpoint.push(Reply.json({"findings": [BUG]}), Reply.json({"findings": [BUG]}))
    assert main(["review", str(LEEWAY), "--fail-on", "critical", "-f", "json", "-o", "out.json"]) == 0
    assert main(["review", str(LEEWAY), "--fail-on", "high", "-f", "json", "-o", "out.json"]) == 1
    assert json.loads(Path("out.json").read_text("utf-8"))["findings"][0]["line"] == 155


def test_exits_3_when_every_request_failed(endpoint: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint.set_default(lambda body: Reply.status(503))
    assert main(["review", str(LEEWAY)]) == 3
    out = capsys.readouterr().out
    assert out.startswith("Nothing was reviewed: every model request failed.\n")
    assert "No findings" not in out
    assert "could not be reviewed" in out
    assert out.rstrip().endswith("No request to qwen3-coder-30b was answered, so there is nothing to pay for.")


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "sarif", "github"])
def test_every_format_says_on_stderr_when_every_request_failed(
    endpoint: FakeOpenAI, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint.set_default(lambda body: Reply.status(503))
    assert main(["review", str(LEEWAY), "--format", fmt, "-o", "out"]) == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("reviewbot: every model request failed, nothing was reviewed: ")
    written = Path("out").read_text("utf-8")
    if fmt == "sarif":
        (invocation,) = json.loads(written)["runs"][0]["invocations"]
        assert invocation["executionSuccessful"] is False
        assert invocation["toolExecutionNotifications"][0]["level"] == "error"
        assert "was not reviewed" in invocation["toolExecutionNotifications"][0]["message"]["text"]
    if fmt == "github":
        assert "::error title=reviewbot::1 of 1 parts could not be reviewed" in written


def test_a_clean_sarif_run_says_it_ran(endpoint: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint.push(Reply.json({"findings": []}))
    assert main(["review", str(LEEWAY), "--format", "sarif"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["invocations"] == [{"executionSuccessful": True}]


def test_a_refused_key_exits_3_without_printing_the_key(
    endpoint: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint.set_default(lambda body: Reply.status(401))
    assert main(["review", str(LEEWAY)]) == 3
    captured = capsys.readouterr()
    assert "sk-cli-test" not in captured.out + captured.err
    assert "REVIEWBOT_API_KEY" in captured.err


def test_reads_the_diff_from_standard_input(endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(LEEWAY.read_bytes())))
    assert main(["review", "-", "-f", "json", "-o", "out.json"]) == 0
    assert json.loads(Path("out.json").read_text("utf-8"))["usage"]["requests"] == 1


def test_a_malformed_diff_exits_2_naming_the_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.diff"
    bad.write_text("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n-a\n+b\n", encoding="utf-8")
    assert main(["review", str(bad), "--dry-run"]) == 2
    assert "line 6" in capsys.readouterr().err


def test_text_that_is_not_a_diff_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n", encoding="utf-8")
    assert main(["review", str(notes)]) == 2
    assert "not a unified diff" in capsys.readouterr().err


def test_a_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "nope.diff"]) == 2
    assert "nope.diff does not exist" in capsys.readouterr().err


def test_an_empty_diff_is_nothing_to_review(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.diff"
    empty.write_bytes(b"")
    assert main(["review", str(empty), "-f", "json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert (result["findings"], result["requests_planned"]) == ([], 0)
    assert "the diff is empty" in captured.err


def test_a_diff_with_only_skipped_files_needs_no_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(FIXTURE_DIFFS / "bat-f8b6a009cbb7.diff")]) == 0
    assert "binary file" in capsys.readouterr().out


def test_reviews_a_git_revision_range(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "app.py").write_text("def f(x):\n    return x\n", encoding="utf-8")
    git("add", ".")
    git("commit", "-qm", "one")
    (tmp_path / "app.py").write_text("def f(x):\n    return x / 0\n", encoding="utf-8")
    git("commit", "-qam", "two")
    endpoint.push(Reply.json({"findings": [dict(BUG, path="app.py", line=2, quote="return x / 0")]}))
    assert main(["review", "--git", "HEAD~1..HEAD", "-f", "json", "-o", "out.json"]) == 0
    assert [f["line"] for f in json.loads(Path("out.json").read_text("utf-8"))["findings"]] == [2]
    assert "2 +    return x / 0" in endpoint.requests[0].body["messages"][1]["content"]


def test_a_git_range_is_read_right_whatever_the_users_diff_prefix_settings(
    endpoint: FakeOpenAI, tmp_path: Path
) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    git("config", "diff.mnemonicPrefix", "true")
    (tmp_path / "app.py").write_text("x = 1\n", encoding="utf-8")
    git("add", ".")
    git("commit", "-qm", "one")
    (tmp_path / "app.py").write_text("x = 2\n", encoding="utf-8")
    git("commit", "-qam", "two")
    assert main(["review", "--git", "HEAD~1..HEAD", "--dry-run", "-f", "json", "-o", "plan.json"]) == 0
    assert [f["path"] for f in json.loads(Path("plan.json").read_text("utf-8"))["files"]] == ["app.py"]


def test_a_bad_revision_range_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    subprocess.run(["git", "-C", str(tmp_path), "init", "-q"], check=True)
    assert main(["review", "--git", "nope..HEAD"]) == 2
    assert "git diff nope..HEAD` failed" in capsys.readouterr().err


def test_a_bad_setting_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REVIEWBOT_CONCURRENCY", "lots")
    assert main(["review", str(LEEWAY), "--dry-run"]) == 2
    assert "REVIEWBOT_CONCURRENCY" in capsys.readouterr().err


def test_max_cost_without_a_known_price_says_which_prices_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(LEEWAY), "--dry-run", "--max-cost", "0.01"]) == 2
    assert "REVIEWBOT_INPUT_PRICE" in capsys.readouterr().err


def test_the_console_script_runs_the_readme_quickstart() -> None:
    examples = Path(__file__).resolve().parents[1] / "examples" / "leeway.diff"
    completed = subprocess.run(
        [sys.executable, "-m", "reviewbot", "review", str(examples), "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "lock file" in completed.stdout


def test_max_cost_with_known_prices_leaves_out_what_does_not_fit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REVIEWBOT_INPUT_PRICE", "1.0")
    monkeypatch.setenv("REVIEWBOT_OUTPUT_PRICE", "2.0")
    monkeypatch.setenv("REVIEWBOT_MAX_OUTPUT_TOKENS", "1024")
    large = SAMPLE_DIFFS / "sample_large_trace.diff"
    args = ["review", str(large), "--dry-run", "-f", "json", "--context-window", "4096", "--max-cost", "0.01"]
    assert main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["requests"]
    assert plan["not_reviewed"]
    assert {item["reason"] for item in plan["not_reviewed"]} == {
        "the cost cap of $0.0100 (REVIEWBOT_MAX_COST) was reached"
    }
    assert plan["totals"]["estimated_cost"]["Qwen3-Coder-30B"] <= 0.01


def test_an_output_path_that_cannot_be_written_is_refused_before_the_model_is_called(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for output, says in [
        (tmp_path / "missing" / "x.json", "does not exist"),
        (tmp_path, "is a folder"),
    ]:
        assert main(["review", str(LEEWAY), "-f", "json", "-o", str(output)]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(f"reviewbot: --output {output}")
        assert says in line
    assert endpoint.requests == []


def test_an_empty_diff_says_so_and_calls_no_model(endpoint: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    Path("empty.diff").write_text("", "utf-8")
    assert main(["review", "empty.diff"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "reviewbot: the diff is empty; there is nothing to review\n"
    assert "No findings" not in captured.out
    assert endpoint.requests == []


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("REVIEWBOT_PRICES", "{bad", "REVIEWBOT_PRICES is not valid JSON"),
        ("REVIEWBOT_PRICES", '{"m": {"input": "x"}}', "REVIEWBOT_PRICES.m.input: Input should be a valid number"),
        ("REVIEWBOT_BASE_URL", "notaurl", "REVIEWBOT_BASE_URL: Value error, 'notaurl' is not an http(s) URL"),
        ("OPENAI_BASE_URL", "notaurl", "OPENAI_BASE_URL: Value error"),
        ("REVIEWBOT_WEBHOOK_ALLOWED_IPS", "10.0.0.300", "REVIEWBOT_WEBHOOK_ALLOWED_IPS: Value error, '10.0.0.300'"),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_variable_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["review", str(LEEWAY), "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"reviewbot: {says}")
    assert "REVIEWBOT_REVIEWBOT" not in line


def test_an_endpoint_that_reports_no_usage_gives_estimated_tokens_and_an_unknown_cost(
    endpoint: FakeOpenAI, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEWBOT_MODEL", "gpt-4o-mini")  # a model with a known price
    endpoint.set_default(lambda body: Reply.no_usage({"findings": [BUG]}))
    assert main(["review", str(LEEWAY), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["usage"]["estimated_requests"] == report["usage"]["requests"] == 1
    assert report["usage"]["input_tokens"] > 0
    assert report["cost"]["usd"] is None
    assert report["cost"]["source"] == "unknown"

    assert main(["review", str(LEEWAY)]) == 0
    out = capsys.readouterr().out
    assert "1 request to gpt-4o-mini; ~" in out
    assert "cost unknown (the endpoint reported no token counts; the counts shown are estimated" in out
    assert "cost $0.00" not in out
