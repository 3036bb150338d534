"""`reviewbot costs`, run in-process over a SQLite store filled through the ledger."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reviewbot.cli import main
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.result import ModelCall
from reviewbot.engine.usage import Usage
from reviewbot.money import ledger
from reviewbot.money.ledger import Origin
from reviewbot.store.store import open_store
from stored import install

JUNE = datetime(2024, 6, 10, tzinfo=UTC).timestamp()
JULY = datetime(2024, 7, 10, tzinfo=UTC).timestamp()
APP = Origin(4242, "octo-org/app", 7, "a" * 40, 1)
API = Origin(4242, "octo-org/api", 3, "b" * 40, 2)
WEB = Origin(99, "acme/web", 1, "c" * 40, 3)
# GPT-4o is $2.50 / $10 per million tokens, Claude 3.5 Sonnet $3 / $15.
GPT_4O = (2.50, 10.00)
SONNET = (3.00, 15.00)


def priced(model: str, input_tokens: int, output_tokens: int, cost: float | None = None) -> ModelCall:
    return ModelCall(0, model, Usage(input_tokens, output_tokens, 0, 1, cost), 1.0, "ok")


def reference(price: tuple[float, float], input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


@pytest.fixture(autouse=True)
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> str:
    """A ledger with known figures (SQLite, then PostgreSQL); settings from this test alone."""
    for name in list(os.environ):
        if name.startswith(("REVIEWBOT_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REVIEWBOT_DATABASE_URL", database_url)
    store = open_store(database_url)
    try:
        install(store, 4242, "octo-org")
        prices = Prices()
        # deepseek-v4-flash is $0.18 / $0.25: 10,000 + 1,000 tokens cost $0.00205.
        ledger.record_calls(store, APP, [priced("deepseek-v4-flash", 10_000, 1_000)], prices, now=JUNE)
        ledger.record_calls(store, APP, [priced("deepseek-v4-flash", 10_000, 1_000, cost=0.003)], prices, now=JULY)
        ledger.record_calls(store, API, [priced("deepseek-v4-flash", 20_000, 2_000, cost=0.005)], prices, now=JULY)
        # qwen3-coder-30b has no input price in the table: unknown, not $0.
        ledger.record_calls(
            store,
            WEB,
            [priced("qwen3-coder-30b", 30_000, 3_000), priced("qwen3-coder-30b", 5_000, 500, cost=0.001)],
            prices,
            now=JULY,
        )
    finally:
        store.close()
    return database_url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["costs", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- JSON -----------------------------------------------------------------------------------------


def test_json_by_repository_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--format", "json")

    assert code == 0
    report = json.loads(out)
    assert report["since"] is None
    assert report["group_by"] == ["repo"]
    assert [row["repo"] for row in report["rows"]] == ["acme/web", "octo-org/api", "octo-org/app"]
    app = report["rows"][2]
    assert {key: app[key] for key in ("requests", "input_tokens", "output_tokens", "reasoning_tokens")} == {
        "requests": 2,
        "input_tokens": 20_000,
        "output_tokens": 2_000,
        "reasoning_tokens": 0,
    }
    assert app["cost_usd"] == pytest.approx(0.00205 + 0.003)
    assert app["unknown_cost_requests"] == 0
    gpt, sonnet = app["comparisons"]
    assert (gpt["model"], gpt["label"]) == ("gpt-4o", "GPT-4o")
    assert gpt["cost_usd"] == pytest.approx(reference(GPT_4O, 20_000, 2_000))
    assert gpt["saving_usd"] == pytest.approx(reference(GPT_4O, 20_000, 2_000) - 0.00505)
    assert sonnet["label"] == "Claude 3.5 Sonnet"
    assert sonnet["saving_usd"] == pytest.approx(reference(SONNET, 20_000, 2_000) - 0.00505)
    assert report["total"]["requests"] == 5
    assert "repo" not in report["total"]


def test_json_never_shows_an_unknown_cost_as_zero(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--format", "json", "--by", "repo")

    web = json.loads(out)["rows"][0]
    assert web["repo"] == "acme/web"
    assert web["cost_usd"] == pytest.approx(0.001)  # the known part only
    assert web["unknown_cost_requests"] == 1
    assert [c["saving_usd"] for c in web["comparisons"]] == [None, None]
    assert [c["cost_usd"] for c in web["comparisons"]] == [
        pytest.approx(reference(GPT_4O, 35_000, 3_500)),
        pytest.approx(reference(SONNET, 35_000, 3_500)),
    ]
    total = json.loads(out)["total"]
    assert total["unknown_cost_requests"] == 1
    assert total["comparisons"][0]["saving_usd"] is None


def test_json_by_installation_names_the_account(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "-f", "json", "--by", "installation")

    rows = json.loads(out)["rows"]
    assert [(r["installation_id"], r["account"], r["requests"]) for r in rows] == [(99, None, 2), (4242, "octo-org", 3)]


def test_json_groups_by_where_each_price_came_from(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "-f", "json", "--by", "source")

    rows = json.loads(out)["rows"]
    assert [(r["source"], r["requests"], r["unknown_cost_requests"]) for r in rows] == [
        ("endpoint", 3, 0),
        ("reviewbot", 1, 0),  # deepseek-v4-flash from reviewbot's table
        ("unknown", 1, 1),  # qwen3-coder-30b: no input price
    ]


def test_json_counts_cached_tokens(capsys: pytest.CaptureFixture[str], database: str) -> None:
    store = open_store(database)
    try:
        cached = ModelCall(0, "gpt-4o", Usage(8_000, 100, 0, 1, None, cached_tokens=6_000), 1.0, "ok")
        ledger.record_calls(store, WEB, [cached], Prices(), now=JULY)
    finally:
        store.close()
    _, out, _ = run(capsys, "-f", "json", "--by", "repo")

    assert [row["cached_tokens"] for row in json.loads(out)["rows"]] == [6_000, 0, 0]


def test_the_comparison_names_the_reference_models_the_operator_chose(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEWBOT_COMPARE_WITH", "claude-sonnet-4")
    _, out, _ = run(capsys, "-f", "csv", "--by", "repo")

    header = out.splitlines()[0]
    assert header.endswith("cost_usd,unknown_cost_requests,claude_sonnet_4_usd,claude_sonnet_4_saving_usd")
    app = list(csv.DictReader(io.StringIO(out)))[2]
    quote = Prices(compare_with=("claude-sonnet-4",)).references()[0][1]
    expected = quote.cost([Usage(10_000, 1_000, requests=1)] * 2)
    assert float(app["claude_sonnet_4_usd"]) == pytest.approx(expected)


# -- CSV ------------------------------------------------------------------------------------------


def test_csv_has_a_header_and_one_line_per_group(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--by", "model,month", "--format", "csv")

    assert code == 0
    lines = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == (
        "model,month,requests,input_tokens,output_tokens,reasoning_tokens,cached_tokens,cost_usd,unknown_cost_requests,"
        "gpt_4o_usd,gpt_4o_saving_usd,claude_3_5_sonnet_usd,claude_3_5_sonnet_saving_usd"
    )
    assert [(line["model"], line["month"], line["requests"]) for line in lines] == [
        ("deepseek-v4-flash", "2024-06", "1"),
        ("deepseek-v4-flash", "2024-07", "2"),
        ("qwen3-coder-30b", "2024-07", "2"),
    ]
    assert float(lines[0]["cost_usd"]) == pytest.approx(0.00205)
    assert float(lines[1]["gpt_4o_usd"]) == pytest.approx(reference(GPT_4O, 30_000, 3_000))
    qwen = lines[2]
    assert (qwen["cost_usd"], qwen["unknown_cost_requests"], qwen["gpt_4o_saving_usd"]) == ("0.001", "1", "")


# -- table ----------------------------------------------------------------------------------------


def test_the_table_is_aligned_and_says_how_many_costs_are_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)

    assert code == 0
    lines = out.splitlines()
    header, rule, *rows = lines[: lines.index("")]
    assert header.split()[:2] == ["repository", "requests"]
    assert set(rule) <= {"-", " "}
    # Every column ends where the header's does: numbers are right-aligned under it.
    ends = [i + 1 for i, char in enumerate(rule) if char == "-" and (i + 1 == len(rule) or rule[i + 1] == " ")]
    for row in rows:
        if set(row) <= {"-", " "}:
            continue
        for end in ends[1:]:
            assert row[end - 1] != " ", (row, end)
    web = next(row for row in rows if row.startswith("acme/web"))
    assert "$0.001000 + 1 unknown" in web
    assert "unknown" in web.split("+ 1 unknown", 1)[1]  # no saving is claimed for it
    app = next(row for row in rows if row.startswith("octo-org/app"))
    assert "20,000" in app
    assert "$0.005050" in app
    assert any(row.startswith("total") and "+ 1 unknown" in row for row in rows)
    assert "1 request had an unknown cost" in out
    assert "REVIEWBOT_PRICES" in out


def test_since_keeps_only_later_requests(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--since", "2024-07-01", "--by", "repo", "-f", "json")

    report = json.loads(out)
    assert report["since"] == "2024-07-01T00:00:00Z"
    app = next(row for row in report["rows"] if row["repo"] == "octo-org/app")
    assert (app["requests"], app["cost_usd"]) == (1, 0.003)


def test_nothing_recorded_since_is_said_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--since", "2099-01-01")

    assert code == 0
    assert out == ""
    assert "no model requests recorded since 2099-01-01" in err


def test_an_unknown_grouping_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["costs", "--by", "repo,colour"])

    assert exited.value.code == 2
    assert "'colour' is not one of repo, model, month, installation" in capsys.readouterr().err


def test_an_unsupported_database_url_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEWBOT_DATABASE_URL", "mysql://nowhere")

    code, _, err = run(capsys)

    assert code == 2
    assert "REVIEWBOT_DATABASE_URL" in err
