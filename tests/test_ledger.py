"""The cost ledger: what is recorded per model request, how its cost is decided, and the sums."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from reviewbot.engine.price_layers import Prices
from reviewbot.engine.price_table import Entry, Price, PriceTable
from reviewbot.engine.result import ModelCall
from reviewbot.engine.usage import Usage
from reviewbot.money import ledger
from reviewbot.money.costs import parse_group_by, parse_since
from reviewbot.money.ledger import Origin, Spend
from reviewbot.store.store import Store, open_store
from stored import record_delivery

PRICES = Prices().with_overrides({"cheap-coder": (0.5, 2.0)})
APP = Origin(installation_id=1, repo="octo/app", pr_number=7, head_sha="a" * 40, id=11)
API = Origin(installation_id=1, repo="octo/api", pr_number=3, head_sha="b" * 40, id=12)
WEB = Origin(installation_id=2, repo="acme/web", pr_number=1, head_sha="c" * 40)
JUNE = datetime(2024, 6, 15, 12, tzinfo=UTC).timestamp()
JULY = datetime(2024, 7, 2, tzinfo=UTC).timestamp()


def at(year: int, month: int, day: int = 1) -> float:
    return datetime(year, month, day, tzinfo=UTC).timestamp()


def call(
    model: str = "cheap-coder",
    input_tokens: int = 1_000,
    output_tokens: int = 100,
    *,
    cost: float | None = None,
    outcome: str = "ok",
    index: int = 0,
    reasoning: int = 0,
    cached: int = 0,
) -> ModelCall:
    usage = Usage(input_tokens, output_tokens, reasoning, 1 if outcome != "error" else 0, cost, cached)
    return ModelCall(index, model, usage, 1.5, outcome, "boom" if outcome == "error" else None)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """An empty store on SQLite, then on PostgreSQL: the ledger's SQL must work on both."""
    opened = open_store(database_url)
    yield opened
    opened.close()


# -- where a cost comes from --------------------------------------------------------------------


def test_the_endpoint_cost_wins_over_the_price_table() -> None:
    assert ledger.price_call(call(cost=0.0042), PRICES) == (0.0042, "endpoint", "endpoint")
    # …even for a model the table knows nothing about.
    assert ledger.price_call(call("mystery-model", cost=0.01), PRICES) == (0.01, "endpoint", "endpoint")


def test_without_an_endpoint_cost_the_tokens_are_priced_by_the_layer_that_knows() -> None:
    cost, source, price_source = ledger.price_call(call(input_tokens=2_000, output_tokens=500), PRICES)
    assert (source, price_source) == ("price table", "settings")
    assert cost == pytest.approx((2_000 * 0.5 + 500 * 2.0) / 1_000_000)
    assert ledger.price_call(call("gpt-4o"), PRICES)[1:] == ("price table", "reviewbot")
    at_openrouter = Prices("https://openrouter.ai/api/v1")
    assert ledger.price_call(call("qwen/qwen3-coder-30b-a3b-instruct"), at_openrouter)[1:] == (
        "price table",
        "genai-prices:openrouter",
    )


def test_a_call_is_priced_at_the_price_of_the_day_it_is_recorded() -> None:
    # OpenAI cut o3's price on 10 June 2025.
    prices = Prices("https://api.openai.com/v1")
    before = ledger.price_call(call("o3"), prices, at=at(2025, 6, 1)).usd
    after = ledger.price_call(call("o3"), prices, at=at(2025, 6, 20)).usd
    assert before is not None
    assert after is not None
    assert before > after


@pytest.mark.parametrize(
    ("model", "input_tokens", "output_tokens"),
    [
        ("qwen3-coder-30b", 1_000, 100),  # the shipped table has only its output price
        ("mystery-model", 1_000, 100),  # not in the table at all
    ],
)
def test_a_price_the_table_lacks_makes_the_cost_unknown(model: str, input_tokens: int, output_tokens: int) -> None:
    assert ledger.price_call(call(model, input_tokens, output_tokens), PRICES) == (None, "unknown", "unknown")


def test_a_missing_side_that_the_tokens_do_not_need_does_not_matter() -> None:
    table = PriceTable({"half-priced": Entry(Price("Half", input=None, output=1.0))})
    assert ledger.price_call(call("half-priced", 0, 1_000), Prices(table=table)) == (0.001, "price table", "reviewbot")


def test_an_answer_without_usage_has_an_unknown_cost_not_zero() -> None:
    assert ledger.price_call(call(input_tokens=0, output_tokens=0), PRICES) == (None, "unknown", "unknown")


def test_a_failed_request_used_no_reported_tokens_and_costs_nothing() -> None:
    assert ledger.price_call(call("mystery-model", 0, 0, outcome="error"), PRICES) == (0.0, "price table", "no tokens")


# -- recording ------------------------------------------------------------------------------------


def test_each_call_becomes_one_row_with_where_it_came_from(store: Store) -> None:
    calls = [
        call(input_tokens=1_200, output_tokens=80, reasoning=30, index=0),
        call(cost=0.003, index=1, outcome="invalid_json"),
        call(input_tokens=0, output_tokens=0, outcome="error", index=2),
    ]

    assert ledger.record_calls(store, APP, calls, PRICES, now=JUNE) == 3

    rows = ledger.entries(store)
    assert [(r.request_index, r.outcome, r.cost_source, r.price_source) for r in rows] == [
        (0, "ok", "price table", "settings"),
        (1, "invalid_json", "endpoint", "endpoint"),
        (2, "error", "price table", "no tokens"),
    ]
    first = rows[0]
    assert (first.job_id, first.installation_id, first.repo, first.pr_number, first.head_sha) == (
        11,
        1,
        "octo/app",
        7,
        "a" * 40,
    )
    assert (first.model, first.input_tokens, first.output_tokens, first.reasoning_tokens) == (
        "cheap-coder",
        1_200,
        80,
        30,
    )
    assert first.cost_usd == pytest.approx((1_200 * 0.5 + 80 * 2.0) / 1_000_000)
    assert (first.seconds, first.at) == (1.5, JUNE)
    assert rows[2].error == "boom"
    assert rows[2].cost_usd == 0.0


def test_an_unknown_cost_is_stored_as_null_not_zero(store: Store) -> None:
    ledger.record_calls(store, WEB, [call("qwen3-coder-30b"), call("qwen3-coder-30b", 0, 0)], PRICES, now=JUNE)

    with store.read() as tx:
        stored = [(row["cost_usd"], row["cost_source"]) for row in tx.all("SELECT * FROM model_calls ORDER BY id")]
    assert stored == [(None, "unknown"), (None, "unknown")]
    assert ledger.spend_since(store, 0) == Spend(known_usd=0.0, known_requests=0, unknown_requests=2)


def test_cached_tokens_are_recorded_and_summed(store: Store) -> None:
    ledger.record_calls(store, APP, [call(cached=600), call(cached=400, index=1)], PRICES, now=JUNE)

    assert [row.cached_tokens for row in ledger.entries(store)] == [600, 400]
    (row,) = ledger.spend_by(store, ("repo",))
    assert (row.input_tokens, row.cached_tokens) == (2_000, 1_000)


def test_spend_groups_by_where_each_price_came_from(store: Store) -> None:
    calls = [call(cost=0.01), call(index=1), call("gpt-4o", index=2), call("mystery-model", index=3)]
    ledger.record_calls(store, APP, calls, PRICES, now=JUNE)

    rows = ledger.spend_by(store, ("source",))
    assert [(row.key, row.requests, row.spend.unknown_requests) for row in rows] == [
        (("endpoint",), 1, 0),
        (("reviewbot",), 1, 0),
        (("settings",), 1, 0),
        (("unknown",), 1, 1),
    ]


def test_rows_recorded_before_sources_were_kept_name_the_price_table(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reviewbot.store import store as store_module

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)  # a database of the release before
    old = open_store(database_url)
    with old.write() as tx:
        tx.execute(
            "INSERT INTO model_calls (job_id, installation_id, repo, pr_number, head_sha, request_index, model,"
            " input_tokens, output_tokens, reasoning_tokens, cost_usd, cost_source, seconds, outcome, error, at)"
            " VALUES (NULL, 1, 'octo/app', 7, ?, 0, 'gpt-4o', 1000, 100, 0, 0.0035, 'price table', 1.0, 'ok', NULL, ?)",
            ("a" * 40, JUNE),
        )
    old.close()
    monkeypatch.undo()

    upgraded = open_store(database_url)
    try:
        assert upgraded.migrated_from == 2
        (row,) = ledger.entries(upgraded)
        assert (row.cost_usd, row.cost_source, row.price_source, row.cached_tokens) == (
            0.0035,
            "price table",
            "price table",
            0,
        )
    finally:
        upgraded.close()


def test_recording_no_calls_writes_nothing(store: Store) -> None:
    assert ledger.record_calls(store, APP, [], PRICES) == 0
    assert ledger.entries(store) == []


def test_a_job_row_is_an_origin(store: Store) -> None:
    from reviewbot.store.records import JobRequest

    request = JobRequest(
        installation_id=5, repo="o/r", pr_number=9, head_sha="d" * 40, base_sha="e" * 40, full_review=True, trigger="t"
    )
    record_delivery(store, "delivery-1", "pull_request", "opened", 5, "o/r", job=request)
    job = store.claim_job("w", 60)
    assert job is not None

    ledger.record_calls(store, job, [call()], PRICES)

    (row,) = ledger.entries(store)
    assert (row.job_id, row.installation_id, row.repo, row.pr_number, row.head_sha) == (job.id, 5, "o/r", 9, "d" * 40)


# -- sums -------------------------------------------------------------------------------------------


@pytest.fixture
def filled(store: Store) -> Store:
    """Four requests in June and three in July 2024, over three repositories and two models."""
    ledger.record_calls(store, APP, [call(cost=0.01), call(cost=0.02, index=1)], PRICES, now=JUNE)
    ledger.record_calls(store, API, [call(input_tokens=2_000, output_tokens=200)], PRICES, now=JUNE)
    ledger.record_calls(store, WEB, [call("qwen3-coder-30b", 3_000, 300)], PRICES, now=JUNE)
    ledger.record_calls(store, APP, [call(cost=0.04)], PRICES, now=JULY)
    ledger.record_calls(
        store, WEB, [call("qwen3-coder-30b", 500, 50), call("deepseek-v4-flash", cost=0.5)], PRICES, now=JULY
    )
    return store


def test_sums_by_repository(filled: Store) -> None:
    rows = {row.key: row for row in ledger.spend_by(filled, ["repo"])}

    assert list(rows) == [("acme/web",), ("octo/api",), ("octo/app",)]
    app = rows[("octo/app",)]
    assert (app.requests, app.input_tokens, app.output_tokens) == (3, 3_000, 300)
    assert app.spend.known_usd == pytest.approx(0.07)
    assert (app.spend.known_requests, app.spend.unknown_requests) == (3, 0)
    web = rows[("acme/web",)]
    assert (web.requests, web.input_tokens, web.output_tokens) == (3, 4_500, 450)
    assert web.spend == Spend(known_usd=0.5, known_requests=1, unknown_requests=2)
    api = rows[("octo/api",)]
    assert api.spend.known_usd == pytest.approx((2_000 * 0.5 + 200 * 2.0) / 1_000_000)


def test_sums_by_model(filled: Store) -> None:
    rows = {row.key: (row.requests, row.spend.unknown_requests) for row in ledger.spend_by(filled, ["model"])}

    assert rows == {("cheap-coder",): (4, 0), ("deepseek-v4-flash",): (1, 0), ("qwen3-coder-30b",): (2, 2)}


def test_sums_by_month_in_utc(filled: Store) -> None:
    # A request at 23:30 UTC on 30 June is June's, whatever the local time zone says.
    ledger.record_calls(filled, API, [call(cost=1.0)], PRICES, now=at(2024, 7, 1) - 1_800)

    rows = {row.key: (row.requests, round(row.spend.known_usd, 9)) for row in ledger.spend_by(filled, ["month"])}

    june_priced = (2_000 * 0.5 + 200 * 2.0) / 1_000_000
    assert rows == {("2024-06",): (5, round(1.03 + june_priced, 9)), ("2024-07",): (3, 0.54)}


def test_sums_by_several_keys_in_the_order_given(filled: Store) -> None:
    rows = [(row.key, row.requests) for row in ledger.spend_by(filled, ["month", "installation"])]

    assert rows == [(("2024-06", 1), 3), (("2024-06", 2), 1), (("2024-07", 1), 1), (("2024-07", 2), 2)]


def test_since_leaves_out_older_requests(filled: Store) -> None:
    rows = {row.key: row.requests for row in ledger.spend_by(filled, ["repo"], since=at(2024, 7, 1))}

    assert rows == {("acme/web",): 2, ("octo/app",): 1}
    assert ledger.spend_by(filled, ["repo"], since=at(2025, 1, 1)) == []


def test_months_are_grouped_over_a_year_boundary(store: Store) -> None:
    for moment in (at(2023, 12, 31), at(2024, 1, 1), at(2024, 2, 29)):
        ledger.record_calls(store, APP, [call(cost=0.1)], PRICES, now=moment)

    months = [row.key for row in ledger.spend_by(store, ["month"], since=at(2023, 12, 1))]

    assert months == [("2023-12",), ("2024-01",), ("2024-02",)]


def test_spend_since_is_of_one_installation_or_one_repository(filled: Store) -> None:
    july = ledger.month_start(JULY)

    assert ledger.spend_since(filled, july, installation_id=1) == Spend(0.04, 1, 0)
    assert ledger.spend_since(filled, july, repo="acme/web") == Spend(0.5, 1, 1)
    assert ledger.spend_since(filled, july, repo="nobody/here") == Spend()


def test_grouping_by_an_unknown_key_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="distinct keys"):
        ledger.spend_by(store, ["repo", "repo"])
    with pytest.raises(ValueError, match="distinct keys"):
        ledger.spend_by(store, ["colour"])  # type: ignore[list-item]


def test_month_boundaries_are_utc() -> None:
    assert ledger.month_start(JUNE) == at(2024, 6, 1)
    assert ledger.next_month_start(at(2024, 12, 31)) == at(2025, 1, 1)
    assert ledger.month_label(at(2024, 12, 31)) == "2024-12"


# -- the command line's parsing of --since and --by ------------------------------------------------


def test_since_takes_a_date_or_a_number_of_days() -> None:
    assert parse_since("2024-06-01") == at(2024, 6, 1)
    assert parse_since("30d", now=JULY) == JULY - 30 * 86_400
    with pytest.raises(argparse.ArgumentTypeError, match="YYYY-MM-DD"):
        parse_since("last week")


def test_by_takes_several_keys() -> None:
    assert parse_group_by("repo, model,repo") == ("repo", "model")
    with pytest.raises(argparse.ArgumentTypeError, match="not one of"):
        parse_group_by("repo,colour")
