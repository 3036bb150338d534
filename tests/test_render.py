"""Every output format renders a review (and the dry-run plan) from plain data."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from reviewbot.engine.diff import Side, parse_diff
from reviewbot.engine.filters import FilterRules
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.pricing import CostReport, cost_note, cost_report
from reviewbot.engine.result import (
    Category,
    FailedRequest,
    Finding,
    NotReviewed,
    Repairs,
    ReviewResult,
    SkippedFile,
)
from reviewbot.engine.review import Prepared, ReviewOptions, prepare
from reviewbot.engine.tokens import ESTIMATED_OUTPUT_TOKENS
from reviewbot.engine.usage import Usage
from reviewbot.errors import ConfigError
from reviewbot.render import FORMATS, plan_to_dict, render_plan, render_result, result_to_dict, result_to_sarif
from reviewbot.render.annotations import escape_data, escape_property
from reviewbot.render.markdown import code_span
from reviewbot.severity import Severity

LEEWAY_DIFF = Path(__file__).resolve().parents[1] / "examples" / "leeway.diff"
UNICODE_PATH = "src/my dir/módulo.py"
ANSI = re.compile(r"\x1b\[")

SINGLE = Finding(
    path="src/app.py",
    line=12,
    side=Side.RIGHT,
    severity=Severity.HIGH,
    category=Category.BUG,
    title="Unchecked None",
    body="`user` can be None here when the session expired, and the attribute access raises.",
    suggestion="if user is not None:\n    name = user.name",
    code="name = user.name",
)
MULTI = Finding(
    path=UNICODE_PATH,
    line=12,
    start_line=10,
    side=Side.RIGHT,
    severity=Severity.MEDIUM,
    category=Category.SECURITY,
    title="Shell injection",
    body="The file name reaches a shell unquoted. " * 8,
    code='cmd = f"ls {name}"\nos.system(cmd)\nreturn cmd',
)
LEFT = Finding(
    path="src/app.py",
    line=7,
    side=Side.LEFT,
    severity=Severity.LOW,
    category=Category.CORRECTNESS,
    title="Removed validation",
    body="The length check that was removed here still matters.",
    suggestion="validate(name)",
    code="validate(name)",
)
NOTE = Finding(
    path="docs/guía de uso.md",
    line=None,
    side=Side.RIGHT,
    severity=Severity.INFO,
    category=Category.MAINTAINABILITY,
    title="Docs out of date",
    body="The guide still describes the old flag.",
    suggestion="Use --leeway.",
)


def make_result(*findings: Finding, model: str = "qwen3-coder-30b") -> ReviewResult:
    return ReviewResult(
        findings=findings,
        skipped=(SkippedFile("uv.lock", "modified", "lock file"), SkippedFile("logo.png", "binary", "binary file")),
        not_reviewed=(NotReviewed("src/big.py", 40, 90, "the model request failed: timed out"),),
        repairs=Repairs(moved=2, to_file_level=1),
        usage=Usage(input_tokens=12_000, output_tokens=800, requests=3),
        model=model,
        requests_planned=3,
        failed=(FailedRequest(2, "timed out"), FailedRequest(1, "timed out")),
    )


def full_result() -> ReviewResult:
    return make_result(SINGLE, MULTI, LEFT, NOTE)


def cost_of(result: ReviewResult) -> CostReport:
    return cost_report(result.usage, result.model, Prices())


def render(result: ReviewResult, fmt: str, *, color: bool = False) -> str:
    return render_result(result, fmt, cost=cost_of(result), color=color)


def sarif_results(result: ReviewResult) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = result_to_sarif(result)["runs"][0]["results"]
    return results


# text


def test_text_without_color_has_no_ansi_codes_even_when_the_model_sends_some() -> None:
    hostile = dataclasses.replace(SINGLE, body="fine\x1b[2J\x1b]0;pwned\x07 text", title="T\x9b31m")
    output = render(make_result(hostile, MULTI), "text")
    assert not ANSI.search(output)
    assert "\x1b" not in output
    assert "\x9b" not in output
    assert "\\x1b[2J" in output


def test_text_with_color_marks_severities_in_their_colours() -> None:
    output = render(full_result(), "text", color=True)
    assert "\x1b[31mHIGH" in output
    assert "\x1b[33mMEDIUM" in output
    assert "\x1b[36mLOW" in output
    assert "\x1b[2m      │ name = user.name\x1b[0m" in output


def test_text_groups_findings_by_file_in_result_order() -> None:
    output = render(full_result(), "text")
    assert output.startswith("4 findings in 3 files (1 high, 1 medium, 1 low, 1 info)")
    assert (
        output.index("\nsrc/app.py\n") < output.index(f"\n{UNICODE_PATH}\n") < output.index("\ndocs/guía de uso.md\n")
    )
    # The LEFT finding on src/app.py is listed under its file, before the next file starts.
    assert output.index("src/app.py:7 (LEFT)") < output.index(f"\n{UNICODE_PATH}\n")


def test_text_shows_each_kind_of_location() -> None:
    output = render(full_result(), "text")
    assert "src/app.py:12  Unchecked None [bug]" in output
    assert f"{UNICODE_PATH}:10-12  Shell injection [security]" in output
    assert "src/app.py:7 (LEFT)  Removed validation [correctness]" in output
    assert "docs/guía de uso.md (file-level)  Docs out of date [maintainability]" in output


def test_text_wraps_bodies_and_shows_code_and_suggestion_indented() -> None:
    output = render(full_result(), "text")
    assert all(len(line) <= 100 for line in output.splitlines() if "Shell injection" in line or "shell" in line)
    assert "      │ os.system(cmd)" in output
    assert "      Suggested change:\n      + if user is not None:\n      +     name = user.name" in output


def test_text_lists_skipped_files_not_reviewed_lines_failures_and_repairs() -> None:
    output = render(full_result(), "text")
    assert "Skipped:\n  lock file: uv.lock\n  binary file: logo.png\n" in output
    assert "  src/big.py:40-90 — the model request failed: timed out" in output
    assert "2 of 3 parts could not be reviewed: timed out\n" in output
    assert "anchoring: 2 moved, 1 kept as file notes" in output


def test_text_says_no_findings_and_ends_with_the_cost_note() -> None:
    result = make_result()
    output = render(result, "text")
    assert output.startswith("No findings.\n")
    assert output.endswith(f"\n\n{cost_note(cost_of(result))}\n")


def test_text_leaves_out_repairs_when_nothing_was_repaired() -> None:
    result = dataclasses.replace(make_result(SINGLE), repairs=Repairs(), failed=())
    output = render(result, "text")
    assert "anchoring" not in output
    assert "could not be reviewed" not in output


@pytest.mark.parametrize("fmt", ["text", "markdown", "github"])
def test_an_unknown_cost_renders_as_unknown_never_as_zero_dollars(fmt: str) -> None:
    output = render(full_result(), fmt)
    assert "cost unknown" in output
    assert "cost $0" not in output


# JSON


def test_json_follows_the_versioned_schema() -> None:
    data = json.loads(render(full_result(), "json"))
    assert data["schema"] == "reviewbot.review/1"
    assert set(data) == {
        "schema",
        "model",
        "findings",
        "not_reviewed",
        "skipped",
        "failed_requests",
        "repairs",
        "usage",
        "cost",
        "requests_planned",
    }
    assert data["model"] == "qwen3-coder-30b"
    assert data["requests_planned"] == 3
    assert [set(finding) for finding in data["findings"]] == [
        {"path", "line", "start_line", "side", "severity", "category", "title", "body", "suggestion", "code"}
    ] * 4


def test_json_carries_every_finding_field_as_plain_values() -> None:
    data = json.loads(render(full_result(), "json"))
    multi, left, note = data["findings"][1:]
    assert multi == {
        "path": UNICODE_PATH,
        "line": 12,
        "start_line": 10,
        "side": "RIGHT",
        "severity": "medium",
        "category": "security",
        "title": "Shell injection",
        "body": MULTI.body,
        "suggestion": None,
        "code": MULTI.code,
    }
    assert (left["side"], left["line"]) == ("LEFT", 7)
    assert (note["line"], note["start_line"], note["code"]) == (None, None, None)


def test_json_keeps_unicode_readable() -> None:
    assert UNICODE_PATH in render(full_result(), "json")


def test_json_lists_what_was_left_out_and_what_it_cost() -> None:
    data = result_to_dict(full_result(), cost_of(full_result()))
    assert data["skipped"][0] == {"path": "uv.lock", "status": "modified", "reason": "lock file"}
    assert data["not_reviewed"] == [
        {"path": "src/big.py", "start_line": 40, "end_line": 90, "reason": "the model request failed: timed out"}
    ]
    assert data["failed_requests"] == [{"index": 2, "reason": "timed out"}, {"index": 1, "reason": "timed out"}]
    assert data["repairs"] == {
        "moved": 2,
        "trimmed": 0,
        "to_file_level": 1,
        "dropped": 0,
        "merged": 0,
        "capped": 0,
        "below_threshold": 0,
        "invalid_json": 0,
        "on_context": 0,
    }
    assert data["usage"] == {
        "requests": 3,
        "input_tokens": 12_000,
        "output_tokens": 800,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
        "estimated_requests": 0,
    }
    estimate = data["cost"].pop("estimate")
    price = data["cost"].pop("price")
    assert data["cost"] == {
        "usd": None,
        "source": "unknown",
        "price_source": "unknown",
        "missing": ["input"],
        "comparisons": [{"model": "GPT-4o", "usd": 0.038}, {"model": "Claude 3.5 Sonnet", "usd": 0.048}],
    }
    # The price the tokens lacked a side of, and another provider's price of the model: never the cost.
    assert price == {
        "source": "reviewbot",
        "filled_from": None,
        "model": "Qwen3-Coder-30B",
        "input": None,
        "cached_input": None,
        "output": 0.35,
        "date": price["date"],
    }
    assert (estimate["source"], estimate["provider"], estimate["model"]) == (
        "genai-prices:openrouter",
        "OpenRouter",
        "qwen/qwen3-coder-30b-a3b-instruct",
    )
    assert estimate["usd"] > 0


def test_json_gives_a_known_cost_as_a_number() -> None:
    result = make_result(SINGLE, model="gpt-4o")
    data = json.loads(render(result, "json"))
    assert data["cost"]["usd"] == pytest.approx(0.038)
    assert (data["cost"]["source"], data["cost"]["price_source"]) == ("price table", "reviewbot")
    assert data["cost"]["estimate"] is None


# SARIF


def test_sarif_has_the_structure_github_code_scanning_requires() -> None:
    sarif = result_to_sarif(full_result())
    assert sarif["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "reviewbot"
    assert driver["version"]
    assert [rule["id"] for rule in driver["rules"]] == [
        "reviewbot/bug",
        "reviewbot/security",
        "reviewbot/correctness",
        "reviewbot/maintainability",
    ]
    assert all(rule["shortDescription"]["text"] for rule in driver["rules"])
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert result["partialFingerprints"]["reviewbot/v1"]


def test_sarif_maps_severities_to_levels() -> None:
    critical = dataclasses.replace(SINGLE, severity=Severity.CRITICAL)
    levels = [result["level"] for result in sarif_results(make_result(critical, *full_result().findings))]
    assert levels == ["error", "error", "warning", "note", "note"]


def test_sarif_regions_are_new_file_lines_and_other_findings_point_at_the_file() -> None:
    single, multi, left, note = (result["locations"][0]["physicalLocation"] for result in sarif_results(full_result()))
    assert single["region"] == {"startLine": 12, "endLine": 12}
    assert multi["region"] == {"startLine": 10, "endLine": 12}
    assert "region" not in left
    assert "region" not in note


def test_sarif_names_the_old_line_of_a_removed_line_finding_in_its_message() -> None:
    left = sarif_results(full_result())[2]
    assert left["message"]["text"].startswith("Removed validation\n\nOn removed line 7 of the old file.")


def test_sarif_uris_are_percent_encoded_relative_paths() -> None:
    uris = [
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for result in sarif_results(full_result())
    ]
    assert uris == ["src/app.py", "src/my%20dir/m%C3%B3dulo.py", "src/app.py", "docs/gu%C3%ADa%20de%20uso.md"]


def test_sarif_fingerprints_are_stable_across_runs_and_line_moves() -> None:
    first = [result["partialFingerprints"] for result in sarif_results(full_result())]
    moved = dataclasses.replace(SINGLE, line=40)
    second = [result["partialFingerprints"] for result in sarif_results(make_result(moved, MULTI, LEFT, NOTE))]
    assert first == second
    assert len({print_["reviewbot/v1"] for print_ in first}) == 4


def test_sarif_gives_security_findings_a_security_severity() -> None:
    sarif = result_to_sarif(full_result())
    results = sarif["runs"][0]["results"]
    assert results[1]["properties"]["security-severity"] == "5.0"
    assert "security-severity" not in results[0]["properties"]
    security_rule = sarif["runs"][0]["tool"]["driver"]["rules"][1]
    assert security_rule["properties"] == {"tags": ["security"], "security-severity": "5.0"}


def test_sarif_renders_as_json_text() -> None:
    assert json.loads(render(full_result(), "sarif")) == result_to_sarif(full_result())


# GitHub annotations


def test_annotations_escape_messages_and_properties_per_the_actions_toolkit() -> None:
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext%3A a%2C b"


def test_annotations_put_one_finding_on_one_line_with_escaped_title() -> None:
    finding = dataclasses.replace(SINGLE, title="Bad: a, b", body="50% of calls\n::error::fail", suggestion=None)
    lines = render(make_result(finding), "github").splitlines()
    assert lines[0] == (
        "::error file=src/app.py,line=12,endLine=12,title=high%3A Bad%3A a%2C b::50%25 of calls%0A::error::fail"
    )


def test_annotations_use_a_range_and_command_per_severity() -> None:
    lines = render(full_result(), "github").splitlines()
    assert lines[1].startswith(f"::warning file={UNICODE_PATH},line=10,endLine=12,title=medium%3A Shell injection::")
    assert lines[2].startswith("::notice file=src/app.py,title=low%3A Removed validation::On removed line 7 of the old")
    assert lines[3].startswith("::notice file=docs/guía de uso.md,title=info%3A Docs out of date::")


def test_annotations_end_with_the_cost_note() -> None:
    result = full_result()
    lines = render(result, "github").splitlines()
    assert len(lines) == 6
    # Two of three parts failed: a warning says so before the cost.
    assert lines[-2] == "::warning title=reviewbot::2 of 3 parts could not be reviewed: timed out"
    assert lines[-1].startswith("::notice title=reviewbot cost::3 requests to qwen3-coder-30b")
    assert "\n" not in lines[-1]


# Markdown


def test_markdown_uses_suggestion_fences_only_for_findings_on_new_lines() -> None:
    output = render(full_result(), "markdown")
    assert output.count("```suggestion") == 1
    assert "  ```suggestion\n  if user is not None:\n      name = user.name\n  ```" in output
    assert "  Suggested change:\n\n  ```\n  validate(name)\n  ```" in output
    assert "  ```\n  Use --leeway.\n  ```" in output


def test_markdown_lists_findings_with_bold_severity_and_path_in_backticks() -> None:
    output = render(full_result(), "markdown")
    assert output.startswith("## reviewbot review\n")
    assert "- **HIGH** · bug · `src/app.py:12` — Unchecked None" in output
    assert f"- **MEDIUM** · security · `{UNICODE_PATH}:10-12` — Shell injection" in output
    assert "- **LOW** · correctness · `src/app.py:7` (removed lines) — Removed validation" in output


def test_markdown_puts_file_level_notes_in_their_own_section() -> None:
    output = render(full_result(), "markdown")
    notes = output.index("### File-level notes")
    assert output.index("`docs/guía de uso.md` — Docs out of date") > notes
    assert output.index("`src/app.py:12`") < notes


def test_markdown_folds_what_was_left_out_into_details_and_ends_with_the_cost() -> None:
    output = render(full_result(), "markdown")
    details = output[output.index("<details>") : output.index("</details>")]
    assert "<summary>2 files skipped, 1 range not reviewed</summary>" in details
    assert "- `uv.lock` — lock file" in details
    assert "- `src/big.py:40-90` — the model request failed: timed out" in details
    assert output.endswith(f"\n---\n\n{cost_note(cost_of(full_result()))}\n")


def test_markdown_says_no_findings_without_empty_sections() -> None:
    output = render(make_result(), "markdown")
    assert "No findings from `qwen3-coder-30b`." in output
    assert "### Findings" not in output


def test_markdown_code_spans_survive_backticks_in_names() -> None:
    assert code_span("a`b.py") == "`` a`b.py ``"
    assert code_span("plain.py") == "`plain.py`"


# dispatch


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_a_result_and_ends_with_a_newline(fmt: str) -> None:
    assert render(full_result(), fmt).endswith("\n")


def test_an_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'xml'"):
        render(full_result(), "xml")


# dry-run plan


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    options = ReviewOptions(
        model="qwen3-coder-30b",
        context_window=32768,
        max_output_tokens=4096,
        rules=FilterRules(),
        prices=Prices(),
    )
    return prepare(parse_diff(LEEWAY_DIFF.read_bytes()), options)


def test_plan_json_lists_every_file_and_shows_the_lock_file_as_skipped(prepared: Prepared) -> None:
    data = json.loads(render_plan(prepared, "json"))
    assert data["schema"] == "reviewbot.plan/1"
    assert data["model"] == "qwen3-coder-30b"
    files = {file["path"]: file for file in data["files"]}
    assert set(files) == {
        "CHANGES.rst",
        "src/itsdangerous/timed.py",
        "tests/test_itsdangerous/test_timed.py",
        "uv.lock",
    }
    assert files["uv.lock"]["skip_reason"] == "lock file"
    assert files["CHANGES.rst"]["skip_reason"] is None
    assert files["CHANGES.rst"]["hunks"] == [{"old_start": 5, "old_length": 6, "new_start": 5, "new_length": 8}]
    assert (files["src/itsdangerous/timed.py"]["added"], files["src/itsdangerous/timed.py"]["removed"]) == (10, 3)
    assert all("uv.lock" not in request["files"] for request in data["requests"])


def test_plan_json_totals_are_the_sum_over_requests(prepared: Prepared) -> None:
    data = plan_to_dict(prepared)
    requests = data["requests"]
    assert requests
    totals = data["totals"]
    assert totals["requests"] == len(requests)
    assert totals["estimated_input_tokens"] == sum(request["estimated_input_tokens"] for request in requests)
    assert all(request["estimated_output_tokens"] == ESTIMATED_OUTPUT_TOKENS for request in requests)
    for label in ("GPT-4o", "Claude 3.5 Sonnet"):
        assert totals["estimated_cost"][label] == pytest.approx(
            sum(request["estimated_cost"][label] for request in requests)
        )


def test_plan_json_cost_is_null_for_a_model_without_an_input_price(prepared: Prepared) -> None:
    data = plan_to_dict(prepared)
    assert set(data["totals"]["estimated_cost"]) == {"Qwen3-Coder-30B", "GPT-4o", "Claude 3.5 Sonnet"}
    for costs in [data["totals"]["estimated_cost"], *(request["estimated_cost"] for request in data["requests"])]:
        assert costs["Qwen3-Coder-30B"] is None
        assert isinstance(costs["GPT-4o"], float)
        assert costs["GPT-4o"] > 0


def test_plan_json_shows_exactly_the_messages_that_would_be_sent(prepared: Prepared) -> None:
    data = json.loads(render_plan(prepared, "json"))
    assert data["messages"] == [[dict(message) for message in request.messages] for request in prepared.plan.requests]
    assert data["budget"] == {"context_window": 32768, "max_output_tokens": 4096, "per_request": 25804}
    assert data["not_reviewed"] == []


def test_plan_text_lists_files_requests_and_unknown_costs(prepared: Prepared) -> None:
    output = render_plan(prepared, "text")
    assert not ANSI.search(output)
    assert "uv.lock  +1 -1  skipped: lock file" in output
    assert "Qwen3-Coder-30B unknown, GPT-4o $" in output
    assert ANSI.search(render_plan(prepared, "text", color=True))


def test_plan_says_where_the_models_price_comes_from_or_which_setting_gives_it(prepared: Prepared) -> None:
    text = render_plan(prepared, "text")
    assert "The input price of qwen3-coder-30b is unknown: set REVIEWBOT_INPUT_PRICE (USD per million tokens)" in text
    assert plan_to_dict(prepared)["totals"]["price"]["source"] == "reviewbot"
    known = dataclasses.replace(prepared, options=dataclasses.replace(prepared.options, model="gpt-4o-mini"))
    assert "gpt-4o-mini is priced at reviewbot's price table; `reviewbot prices`" in render_plan(known, "text")
    assert "costs are priced at reviewbot's price table." in render_plan(known, "markdown")


def test_the_dry_run_estimate_uses_the_price_a_review_would_be_charged(prepared: Prepared) -> None:
    options = dataclasses.replace(
        prepared.options, model="qwen/qwen3-coder-30b-a3b-instruct", prices=Prices("https://openrouter.ai/api/v1")
    )
    plan = plan_to_dict(prepare(parse_diff(LEEWAY_DIFF.read_bytes()), options))
    quote = options.prices.quote(options.model)
    assert quote is not None
    [request] = plan["requests"]
    usage = Usage(request["estimated_input_tokens"], ESTIMATED_OUTPUT_TOKENS, requests=1)
    assert request["estimated_cost"][quote.price.label] == pytest.approx(quote.cost((usage,)))
    assert plan["totals"]["price"]["source"] == "genai-prices:openrouter"


def test_plan_markdown_has_tables_of_files_and_requests(prepared: Prepared) -> None:
    output = render_plan(prepared, "markdown")
    assert "| `uv.lock` | modified | 1 | 1 | skipped: lock file |" in output
    assert (
        "| # | Files | Est. input tokens | Est. output tokens | Qwen3-Coder-30B | GPT-4o | Claude 3.5 Sonnet |"
        in output
    )
    assert "| unknown | $" in output
    assert "$0.00 " not in output


@pytest.mark.parametrize("fmt", ["sarif", "github"])
def test_a_dry_run_refuses_formats_meant_for_findings(prepared: Prepared, fmt: str) -> None:
    with pytest.raises(ConfigError, match=r"^--dry-run supports --format text, json or markdown$"):
        render_plan(prepared, fmt)


def test_a_dry_run_with_an_unknown_format_is_a_config_error(prepared: Prepared) -> None:
    with pytest.raises(ConfigError, match="'xml'"):
        render_plan(prepared, "xml")


def test_plan_lists_the_lines_a_cap_leaves_out_in_every_format() -> None:
    options = ReviewOptions(
        model="qwen3-coder-30b",
        context_window=32768,
        max_output_tokens=4096,
        rules=FilterRules(),
        prices=Prices(),
        max_input_tokens=100,
    )
    capped = prepare(parse_diff(LEEWAY_DIFF.read_bytes()), options)
    data = plan_to_dict(capped)
    assert data["requests"] == []
    assert data["totals"]["requests"] == 0
    reasons = {gap["reason"] for gap in data["not_reviewed"]}
    assert reasons == {"the cap of 100 prompt tokens (REVIEWBOT_MAX_INPUT_TOKENS) was reached"}
    assert "Not reviewed:\n  CHANGES.rst:5-12 — the cap of 100" in render_plan(capped, "text")
    assert "### Not reviewed\n\n- `CHANGES.rst:5-12` — the cap of 100" in render_plan(capped, "markdown")


def test_text_keeps_indented_lines_of_a_body_as_written() -> None:
    finding = dataclasses.replace(SINGLE, body="Call it like this:\n\n    fetch(url,  timeout=5)\nthen retry.")
    output = render(make_result(finding), "text")
    assert "      Call it like this:\n\n          fetch(url,  timeout=5)\n      then retry.\n" in output


def test_markdown_of_a_lone_note_has_no_findings_section_and_no_details() -> None:
    result = dataclasses.replace(
        make_result(dataclasses.replace(NOTE, suggestion=None)),
        skipped=(),
        not_reviewed=(),
        failed=(),
        repairs=Repairs(),
    )
    output = render(result, "markdown")
    assert "### Findings" not in output
    assert "### File-level notes\n\n- **INFO**" in output
    assert "<details>" not in output
    assert "[!WARNING]" not in output
    assert "Anchoring" not in output


def test_markdown_details_name_only_what_was_left_out() -> None:
    result = dataclasses.replace(make_result(SINGLE), not_reviewed=())
    output = render(result, "markdown")
    assert "<summary>2 files skipped</summary>" in output
    assert "**Not reviewed**" not in output


def test_many_files_skipped_for_one_reason_take_one_line() -> None:
    many = tuple(
        SkippedFile(path=f"src/m{number}.py", status="modified", reason="not matched by your include globs")
        for number in range(735)
    )
    result = dataclasses.replace(full_result(), skipped=(*many, SkippedFile("uv.lock", "modified", "lock file")))
    text = render(result, "text")
    assert "  not matched by your include globs: 735 files (src/m0.py, src/m1.py, src/m2.py, and 732 more)" in text
    assert "src/m3.py" not in text
    assert "uv.lock" in text
    markdown = render(result, "markdown")
    assert (
        "- 735 files — not matched by your include globs (`src/m0.py`, `src/m1.py`, `src/m2.py`, and 732 more)"
        in markdown
    )
    assert "src/m3.py" not in markdown
