"""The eval runner over the real engine and the loopback fake endpoint: the same requests as
``reviewbot review``, answers cached on disk, and a cost cap that holds before and while it runs."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, Reply
from reviewbot.cli import main
from reviewbot.engine.pricing import format_usd
from reviewbot.errors import ConfigError
from reviewbot.eval.cache import AnswerCache
from reviewbot.eval.cases import load_set
from reviewbot.eval.models import models_under_test
from reviewbot.eval.plan import RunPlan, plan_run, refuse_over_cap
from reviewbot.eval.runner import RunOutcome, run_plan
from reviewbot.eval.spend import CostCapReached
from reviewbot.eval.terminal import ProgressLine, confirm
from scripted_reviewer import ANSWER_USD, CASES, USAGE, on_labels, reviewer, write_cases

pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.fixture
def endpoint(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.setenv("REVIEWBOT_API_KEY", "sk-eval-test")
    fake_openai.set_default(reviewer(CASES, on_labels))
    return fake_openai


def spec(endpoint: FakeOpenAI, *options: str) -> str:
    return ",".join([f"fake-model@{endpoint.base_url}", "input_price=1", "output_price=2", *options])


def planned(folder: Path, specs: list[str], cache: Path | None) -> tuple[RunPlan, AnswerCache]:
    answers = AnswerCache(cache)
    return plan_run(load_set(str(folder)), models_under_test(specs), answers), answers


def run(folder: Path, specs: list[str], cache: Path | None, max_cost: float | None = None) -> RunOutcome:
    plan, answers = planned(folder, specs, cache)
    return asyncio.run(run_plan(plan, answers, max_cost=max_cost))


def test_each_case_gets_the_requests_reviewbot_review_sends(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_cases(tmp_path / "set")
    outcome = run(folder, [spec(endpoint)], tmp_path / "cache")

    (model_run,) = outcome.models
    assert [case_run.case.id for case_run in model_run.cases] == [case.id for case in CASES]
    sent = {json.dumps(request.body["messages"]) for request in endpoint.requests}
    for case in CASES:
        diff = tmp_path / f"{case.id}.diff"
        diff.write_bytes(case.diff)
        main(["review", str(diff), "--dry-run", "--format", "json", "--title", case.title])
        (messages,) = json.loads(capsys.readouterr().out)["messages"]
        assert json.dumps(messages) in sent
    assert len(endpoint.requests) == len(CASES)
    # The answers went through the engine's anchoring: each label's line carries a finding.
    lib = model_run.cases[0]
    assert [(f.path, f.line, str(f.side)) for f in lib.result.findings] == [
        ("src/lib.rs", 24, "RIGHT"),
        ("src/lib.rs", 28, "RIGHT"),
    ]
    assert all(not call.cached for case_run in model_run.cases for call in case_run.calls)
    assert outcome.spent_usd == pytest.approx(len(CASES) * ANSWER_USD)


def test_a_rerun_answers_from_the_cache_and_sends_nothing(
    endpoint: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_cases(tmp_path / "set")
    first = run(folder, [spec(endpoint)], tmp_path / "cache")
    endpoint.reset()
    # No key either: a run the cache answers whole opens no connection.
    monkeypatch.delenv("REVIEWBOT_API_KEY")
    plan, answers = planned(folder, [spec(endpoint)], tmp_path / "cache")

    again = asyncio.run(run_plan(plan, answers))

    assert endpoint.requests == []
    assert (plan.models[0].cached, plan.models[0].to_send, plan.usd) == (len(CASES), 0, 0.0)
    assert again.spent_usd == 0.0
    for before, after in zip(first.models[0].cases, again.models[0].cases, strict=True):
        assert after.result.findings == before.result.findings
        assert after.result.usage == before.result.usage  # what the answers cost the first time
        assert [call.cached for call in after.calls] == [True]


def test_without_the_cache_every_run_asks_again(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    run(folder, [spec(endpoint)], None)
    run(folder, [spec(endpoint)], None)
    assert len(endpoint.requests) == 2 * len(CASES)


def test_a_changed_request_is_asked_again(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    run(folder, [spec(endpoint)], tmp_path / "cache")
    run(folder, [spec(endpoint, "temperature=0.7")], tmp_path / "cache")
    assert len(endpoint.requests) == 2 * len(CASES)


def test_a_failed_request_is_not_cached_and_the_rerun_asks_only_it(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    endpoint.push(Reply.status(500))
    first = run(folder, [spec(endpoint, "max_retries=0", "concurrency=1")], tmp_path / "cache")
    failed = [case_run.case.id for case_run in first.models[0].cases if case_run.result.failed]
    assert len(failed) == 1
    endpoint.reset()
    endpoint.set_default(reviewer(CASES, on_labels))

    again = run(folder, [spec(endpoint, "max_retries=0")], tmp_path / "cache")

    assert len(endpoint.requests) == 1
    assert all(not case_run.result.failed for case_run in again.models[0].cases)


def test_requests_in_flight_stay_within_the_model_concurrency(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    endpoint.set_latency(0.2)
    run(folder, [spec(endpoint, "concurrency=2")], None)
    assert endpoint.max_in_flight == 2


def test_several_models_run_side_by_side_with_their_own_settings(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    outcome = run(folder, [spec(endpoint), f"other-model@{endpoint.base_url},input_price=3,output_price=4"], None)
    assert [model_run.model.label for model_run in outcome.models] == ["fake-model", "other-model"]
    assert sorted(request.body["model"] for request in endpoint.requests) == sorted(
        ["fake-model"] * len(CASES) + ["other-model"] * len(CASES)
    )
    assert outcome.spent_usd == pytest.approx(len(CASES) * (ANSWER_USD + (1000 * 3 + 100 * 4) / 1_000_000))


def test_the_estimate_prices_each_planned_request_as_the_dry_run_does(
    endpoint: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_cases(tmp_path / "set")
    plan, _ = planned(folder, [spec(endpoint)], tmp_path / "cache")
    total = 0.0
    for case in CASES:
        diff = tmp_path / f"{case.id}.diff"
        diff.write_bytes(case.diff)
        main(["review", str(diff), "--dry-run", "--format", "json", "--title", case.title])
        dry_run = json.loads(capsys.readouterr().out)
        totals = dry_run["totals"]
        total += (totals["estimated_input_tokens"] * 1 + totals["estimated_output_tokens"] * 2) / 1e6
    assert plan.usd == pytest.approx(total)


def test_the_cap_stops_the_run_before_a_request_that_could_pass_it(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    # Each request may cost up to its prompt and 256 answer tokens (about $0.002); each costs $0.0012.
    cap = 0.003
    with pytest.raises(CostCapReached, match=r"stopped at --max-cost \$0.0030"):
        run(folder, [spec(endpoint, "max_output_tokens=256")], tmp_path / "cache", max_cost=cap)
    sent = len(endpoint.requests)
    assert 0 < sent < len(CASES)
    assert sent * ANSWER_USD <= cap
    endpoint.reset()
    endpoint.set_default(reviewer(CASES, on_labels))
    run(folder, [spec(endpoint, "max_output_tokens=256")], tmp_path / "cache")
    assert len(endpoint.requests) == len(CASES) - sent  # what was paid for is kept


def test_a_cap_below_one_request_sends_nothing(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    with pytest.raises(CostCapReached, match=r"\$0.00 spent"):
        run(folder, [spec(endpoint)], tmp_path / "cache", max_cost=0.0001)
    assert endpoint.requests == []


def test_model_specs_take_settings_and_tell_equal_names_apart(
    endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTHER_KEY", "sk-other")
    first, second = models_under_test(
        [spec(endpoint, "context_window=8192"), "fake-model@https://api.example.com/v1,api_key_env=OTHER_KEY"]
    )
    assert first.label == f"fake-model@127.0.0.1:{endpoint.port}"
    assert (first.settings.context_window, first.settings.max_output_tokens) == (8192, 2048)
    assert first.options.prices.quote("fake-model") is not None
    assert second.label == "fake-model@api.example.com"
    assert second.settings.api_key is not None
    assert second.settings.api_key.get_secret_value() == "sk-other"
    (default,) = models_under_test([])
    assert default.label == "qwen3-coder-30b"  # the configured model, as for reviewbot review


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["m,window=1"], "'window' is not an option; use one of context_window"),
        (["m,context_window"], "'context_window' is not OPTION=VALUE"),
        (["m,api_key_env=NOT_SET_ANYWHERE"], "api_key_env=NOT_SET_ANYWHERE is not set in the environment"),
        (["m,context_window=12"], "--model m: REVIEWBOT_CONTEXT_WINDOW: Input should be greater than or equal"),
        (["m", "m"], "two --model values are both 'm' at global-apis.com; give one of them label=NAME"),
        (["@http://x"], "is not NAME[@BASE_URL]"),
    ],
)
def test_a_bad_model_spec_says_what_is_wrong(specs: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        models_under_test(specs)


def test_usage_of_the_scripted_answers_is_what_the_script_says(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    outcome = run(folder, [spec(endpoint)], None)
    usage = outcome.models[0].cases[0].result.usage
    assert (usage.input_tokens, usage.output_tokens) == (USAGE.prompt_tokens, USAGE.completion_tokens)


def test_a_run_estimated_past_the_cap_is_refused_before_anything_is_sent(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    plan, _ = planned(folder, [spec(endpoint)], tmp_path / "cache")
    assert plan.usd is not None
    with pytest.raises(ConfigError, match=r"the run is estimated at \$0\.\d+, over --max-cost \$0\.001000; nothing"):
        refuse_over_cap(plan, 0.001)
    refuse_over_cap(plan, plan.usd)  # at the estimate exactly, it may start
    assert endpoint.requests == []


def test_a_cap_needs_the_prices_of_a_model_with_requests_to_send(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    plan, answers = planned(folder, [f"unpriced-model@{endpoint.base_url}"], tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"--max-cost needs the input and output prices of unpriced-model"):
        refuse_over_cap(plan, 1.0)
    with pytest.raises(ConfigError, match=r"--max-cost needs the input and output prices"):
        asyncio.run(run_plan(plan, answers, max_cost=1.0))
    assert endpoint.requests == []


def test_a_damaged_answer_file_is_asked_again_and_replaced(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    folder = write_cases(tmp_path / "set")
    run(folder, [spec(endpoint)], tmp_path / "cache")
    answers = sorted((tmp_path / "cache").glob("*/*.json"))
    assert len(answers) == len(CASES)
    answers[0].write_text("{half an ans", "utf-8")
    endpoint.reset()
    endpoint.set_default(reviewer(CASES, on_labels))
    run(folder, [spec(endpoint)], tmp_path / "cache")
    run(folder, [spec(endpoint)], tmp_path / "cache")
    assert len(endpoint.requests) == 1
    assert json.loads(answers[0].read_text("utf-8"))["model"] == "fake-model"


def test_the_terminal_sees_progress_per_model_and_a_question_before_paying(
    endpoint: FakeOpenAI, tmp_path: Path
) -> None:
    folder = write_cases(tmp_path / "set")
    plan, answers = planned(folder, [spec(endpoint), spec(endpoint, "label=second")], tmp_path / "cache")
    stream = io.StringIO()
    assert not confirm(plan, stream, lambda: "n")
    assert stream.getvalue() == f"reviewbot: send 10 requests for about {format_usd(plan.usd)}? [y/N] "
    assert confirm(plan, io.StringIO(), lambda: " Yes\n")
    line = ProgressLine(stream, plan)
    asyncio.run(run_plan(plan, answers, progress=line.update))
    assert stream.getvalue().endswith("\rreviewbot eval: fake-model 5/5, second 5/5 cases…")
    # Nothing left to send: nothing to ask.
    plan, _ = planned(folder, [spec(endpoint), spec(endpoint, "label=second")], tmp_path / "cache")
    assert confirm(plan, stream, lambda: "n")


def test_a_rerun_of_answers_without_usage_keeps_them_estimated(endpoint: FakeOpenAI, tmp_path: Path) -> None:
    # An endpoint that reports no usage: the token counts are estimates, and stay so from the cache.
    endpoint.set_default(lambda body: Reply.no_usage({"findings": []}))
    folder = write_cases(tmp_path / "set")
    first = run(folder, [spec(endpoint)], tmp_path / "cache")
    endpoint.reset()
    again = run(folder, [spec(endpoint)], tmp_path / "cache")

    assert endpoint.requests == []
    for before, after in zip(first.models[0].cases, again.models[0].cases, strict=True):
        assert before.result.usage.estimated
        assert after.result.usage == before.result.usage
