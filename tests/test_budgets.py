"""Monthly budgets and the cost ledger, through ReviewService in-process (fake GitHub, fake model).

The harness is test_service's: one job in a real SQLite store, the service run on it, then a
look at what the fake GitHub received and what the ledger holds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fake_github import FakeGitHub
from fake_openai import FakeOpenAI, Reply, TokenUsage
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.repo_config import CONFIG_PATH, parse_repo_config
from reviewbot.engine.result import ModelCall
from reviewbot.engine.usage import Usage
from reviewbot.money import ledger
from reviewbot.money.ledger import Origin
from reviewbot.store.store import Store, open_store
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

# The configured model (qwen3-coder-30b) priced by the operator, so a review's cost can be estimated.
PRICED = {"input_price": 1.0, "output_price": 2.0}
MakeHarness = Callable[..., Harness]


@pytest.fixture
def make_harness(fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[MakeHarness]:
    """``make_harness(**settings)``: the service with these settings on top of the test defaults."""
    stores: list[Store] = []

    def make(**settings: Any) -> Harness:
        configured = make_settings(fake_github, fake_openai).model_copy(update=settings)
        store = open_store(f"sqlite:///{tmp_path}/db{len(stores)}.sqlite")
        stores.append(store)
        return Harness(fake_github, fake_openai, configured, store, make_service(configured, store))

    fake_github.add_pull(REPO, NUMBER, LEEWAY, head_sha=HEAD, base_sha=BASE, title="Add leeway")
    fake_openai.set_default(answer_with(BUG))
    yield make
    for store in stores:
        store.close()


def spend(
    harness: Harness, usd: float | None, *, repo: str = REPO, installation: int = INSTALLATION, at: float | None = None
) -> None:
    """Record one earlier request of ``usd`` (None: unknown) in the harness's ledger."""
    model = "qwen3-coder-30b" if usd is None else "somebody-elses-model"
    call = ModelCall(0, model, Usage(1_000, 100, 0, 1, usd), 1.0, "ok")
    ledger.record_calls(harness.store, Origin(installation, repo, 1, "f" * 40), [call], Prices(), now=at)


def note_of(harness: Harness) -> str:
    review = harness.only_review()
    assert harness.github.comments(REPO, NUMBER) == []
    assert review["commit_id"] == HEAD
    body: str = review["body"]
    assert body.endswith(marker(HEAD))
    return body


# -- over and under a budget ------------------------------------------------------------------------


def test_a_review_over_the_repository_budget_posts_a_note_and_asks_the_model_nothing(make_harness: MakeHarness) -> None:
    harness = make_harness(monthly_budget_per_repo=1.0, **PRICED)
    spend(harness, 0.9995)

    outcome = harness.run()

    assert outcome.state == "done"
    assert "budget" in (outcome.note or "")
    assert harness.model.requests == []
    body = note_of(harness)
    assert f"did not review `{HEAD[:7]}`" in body
    assert "monthly budget of this repository" in body
    assert "$1.00 per calendar month (UTC), set by `REVIEWBOT_MONTHLY_BUDGET_PER_REPO`" in body
    assert "Spent since 1 " in body
    assert ": $0.9995" in body
    assert "This review: about $0.00" in body
    assert "No model was called" in body
    assert "The budget applies to `/review` commands too" in body
    assert "can set a higher `REVIEWBOT_MONTHLY_BUDGET_PER_REPO`" in body
    # The head was not reviewed, so the store does not take it for the last reviewed head.
    assert harness.store.review_for(REPO, NUMBER, HEAD) is None
    assert ledger.entries(harness.store, repo=REPO)[-1].model == "somebody-elses-model"


def test_the_note_is_posted_once_per_head(make_harness: MakeHarness) -> None:
    harness = make_harness(monthly_budget_per_repo=1.0, **PRICED)
    spend(harness, 1.0)

    assert harness.run().state == "done"
    assert harness.run(trigger="pull_request.synchronize").state == "done"

    assert len(harness.github.requests_to("POST", REVIEWS_PATH)) == 1
    assert harness.github.review_count(REPO, NUMBER, HEAD) == 1
    assert harness.model.requests == []
    assert harness.store.last_reviewed_head(REPO, NUMBER) is None


def test_the_installation_budget_counts_every_repository_of_the_installation(make_harness: MakeHarness) -> None:
    harness = make_harness(monthly_budget_per_installation=2.0, monthly_budget_per_repo=50.0, **PRICED)
    spend(harness, 1.5, repo="Codertocat/other-repo")
    spend(harness, 0.5)
    spend(harness, 40.0, repo="someone/else", installation=INSTALLATION + 1)

    harness.run()

    body = note_of(harness)
    assert "monthly budget of this App installation" in body
    assert "`REVIEWBOT_MONTHLY_BUDGET_PER_INSTALLATION`" in body
    assert ": $2.0000" in body
    assert harness.model.requests == []


def test_under_budget_the_review_runs_normally_and_lands_in_the_ledger(make_harness: MakeHarness) -> None:
    harness = make_harness(monthly_budget_per_repo=1.0, monthly_budget_per_installation=5.0, **PRICED)
    spend(harness, 0.5)
    spend(harness, 10.0, at=time.time() - 40 * 86_400)  # last month's spend does not count

    assert harness.run().state == "done"

    assert harness.model.requests
    assert harness.placed() == [(TIMED, 155, None)]
    body = harness.only_review()["body"]
    assert "could not be checked" not in body
    recorded = [entry for entry in ledger.entries(harness.store, repo=REPO) if entry.model == "qwen3-coder-30b"]
    assert len(recorded) == len(harness.model.requests)
    assert all(entry.cost_source == "price table" and entry.cost_usd for entry in recorded)


def test_a_review_command_over_budget_gets_the_same_note(make_harness: MakeHarness) -> None:
    harness = make_harness(monthly_budget_per_repo=1.0, **PRICED)
    spend(harness, 1.0)
    assert harness.run().state == "done"  # the push's note

    outcome = harness.run(head_sha="", trigger="command", full_review=False)

    assert outcome.state == "done"
    assert harness.model.requests == []
    notes = harness.submitted()
    assert len(notes) == 2  # a command is answered, not ignored
    assert "The budget applies to `/review` commands too" in notes[-1]["body"]
    assert notes[-1]["body"].endswith(marker(HEAD))


def test_after_a_note_the_next_review_covers_the_commits_it_skipped(make_harness: MakeHarness) -> None:
    harness = make_harness(monthly_budget_per_repo=1.0, **PRICED)
    assert harness.run().state == "done"  # reviewed; HEAD is the last reviewed head
    harness.github.add_pull(REPO, NUMBER, LEEWAY, head_sha=NEW_HEAD, base_sha=BASE)
    spend(harness, 1.0)
    assert harness.run(head_sha=NEW_HEAD, full_review=False).state == "done"  # a note for NEW_HEAD

    assert harness.store.last_reviewed_head(REPO, NUMBER) == HEAD


# -- the repository's own monthly_budget -------------------------------------------------------------


def test_a_repository_may_lower_its_budget(make_harness: MakeHarness) -> None:
    harness = make_harness(monthly_budget_per_repo=10.0, **PRICED)
    harness.github.set_file(REPO, "main", CONFIG_PATH, "monthly_budget = 0.5\n")
    spend(harness, 0.5)

    harness.run()

    body = note_of(harness)
    assert harness.model.requests == []
    assert f"`monthly_budget` in {CONFIG_PATH}" in body
    assert "$0.50 per calendar month" in body
    assert f"change or remove `monthly_budget` in `{CONFIG_PATH}`" in body
    assert "up to the operator's $10.00 per repository" in body


def test_a_repository_cannot_raise_its_budget(make_harness: MakeHarness) -> None:
    harness = make_harness(monthly_budget_per_repo=1.0, **PRICED)
    harness.github.set_file(REPO, "main", CONFIG_PATH, "monthly_budget = 100\n")
    spend(harness, 0.25)

    assert harness.run().state == "done"

    body = harness.only_review()["body"]
    assert "**Configuration:**" in body
    assert "monthly_budget $100.00 is above the operator's budget of $1.00 per repository" in body
    assert harness.model.requests  # under the operator's $1.00: reviewed


def test_a_refused_raise_leaves_the_operator_budget_in_force(make_harness: MakeHarness) -> None:
    harness = make_harness(monthly_budget_per_repo=1.0, **PRICED)
    harness.github.set_file(REPO, "main", CONFIG_PATH, "monthly_budget = 100\n")
    spend(harness, 1.0)

    harness.run()

    assert "`REVIEWBOT_MONTHLY_BUDGET_PER_REPO`" in note_of(harness)
    assert harness.model.requests == []


def test_a_repository_budget_without_an_operator_budget_applies() -> None:
    assert parse_repo_config(b"monthly_budget = 3\n", []).monthly_budget == 3.0
    assert parse_repo_config(b"monthly_budget = 3\n", [], repo_budget=3.0).problems == ()


@pytest.mark.parametrize("value", ["0", "-1", '"ten"', "true"])
def test_a_monthly_budget_that_is_not_a_positive_amount_is_a_problem(value: str) -> None:
    config = parse_repo_config(f"monthly_budget = {value}\n".encode(), [], repo_budget=5.0)

    assert config.monthly_budget is None
    (problem,) = config.problems
    assert "monthly_budget must be a positive amount of USD" in problem


# -- an unknown price -----------------------------------------------------------------------------------


def test_with_an_unknown_price_the_review_runs_and_says_the_budget_was_not_checked(make_harness: MakeHarness) -> None:
    # The model endpoint is on loopback: a local server, which publishes no price.
    harness = make_harness(monthly_budget_per_repo=1.0)
    spend(harness, 0.9)

    assert harness.run().state == "done"

    assert harness.model.requests
    body = harness.only_review()["body"]
    assert "> [!NOTE]" in body
    assert "could not be checked: the input and output price of qwen3-coder-30b is unknown" in body
    assert "`REVIEWBOT_INPUT_PRICE` and `REVIEWBOT_OUTPUT_PRICE`" in body


def test_a_budget_is_checked_at_the_price_the_review_will_be_charged(make_harness: MakeHarness) -> None:
    # The loopback endpoint publishes no price; the operator names the provider it forwards to.
    model = "qwen/qwen3-coder-30b-a3b-instruct"
    harness = make_harness(monthly_budget_per_repo=1.0, price_provider="openrouter", model=model)
    spend(harness, 0.99999)

    harness.run()

    body = note_of(harness)
    assert harness.model.requests == []
    assert re.search(rf"This review: about \$0\.000[1-9]\d* for 1 request to {re.escape(model)}", body)


def test_with_an_unknown_price_a_budget_already_spent_still_stops_the_review(make_harness: MakeHarness) -> None:
    harness = make_harness(monthly_budget_per_repo=1.0)
    spend(harness, 1.0)
    spend(harness, None)  # unknown cost: not counted, but said

    harness.run()

    body = note_of(harness)
    assert harness.model.requests == []
    assert "plus 1 request of unknown cost, not counted" in body
    assert "This review: unknown (the price is not known)" in body


# -- the ledger against what the endpoint reported ----------------------------------------------------


def test_ledger_figures_match_the_usage_the_endpoint_returned_to_the_token_and_cent(
    make_harness: MakeHarness,
) -> None:
    harness = make_harness(**PRICED)
    usage = TokenUsage(prompt_tokens=1_234, completion_tokens=567, reasoning_tokens=89, cost=0.0123)
    findings = answer_with(BUG)
    harness.model.set_default(lambda body: replace(findings(body), usage=usage))

    assert harness.run().state == "done"

    rows = ledger.entries(harness.store)
    assert len(rows) == len(harness.model.requests) > 0
    for row in rows:
        assert (row.input_tokens, row.output_tokens, row.reasoning_tokens) == (1_234, 567, 89)
        assert (row.cost_usd, row.cost_source) == (0.0123, "endpoint")
        assert (row.installation_id, row.repo, row.pr_number, row.head_sha) == (INSTALLATION, REPO, NUMBER, HEAD)
        assert row.outcome == "ok"
    assert round(sum(row.cost_usd or 0 for row in rows), 2) == round(0.0123 * len(rows), 2)
    month = ledger.spend_by(harness.store, ["repo"])
    assert [(r.key, r.requests, r.input_tokens, r.output_tokens) for r in month] == [
        ((REPO,), len(rows), 1_234 * len(rows), 567 * len(rows))
    ]
    assert f"cost ${0.0123 * len(rows):.4f} as reported by the endpoint" in harness.only_review()["body"]


def test_without_an_endpoint_cost_the_ledger_prices_the_reported_tokens(make_harness: MakeHarness) -> None:
    harness = make_harness(**PRICED)
    findings = answer_with(BUG)
    usage = TokenUsage(prompt_tokens=2_000, completion_tokens=300)
    harness.model.set_default(lambda body: replace(findings(body), usage=usage))

    harness.run()

    for row in ledger.entries(harness.store):
        assert (row.input_tokens, row.output_tokens, row.cost_source) == (2_000, 300, "price table")
        assert row.cost_usd == pytest.approx((2_000 * 1.0 + 300 * 2.0) / 1_000_000, abs=1e-12)


def test_the_ledger_and_the_note_name_the_price_database_and_count_cached_tokens(make_harness: MakeHarness) -> None:
    # The loopback endpoint stands in for a gateway to OpenRouter, which the operator names.
    model = "qwen/qwen3-coder-30b-a3b-instruct"
    harness = make_harness(price_provider="openrouter", model=model)
    findings = answer_with(BUG)
    usage = TokenUsage(prompt_tokens=2_000, completion_tokens=300, cached_tokens=1_500)
    harness.model.set_default(lambda body: replace(findings(body), usage=usage))

    harness.run()

    rows = ledger.entries(harness.store)
    assert rows
    expected = Prices(provider_id="openrouter").cost(Usage(2_000, 300, requests=1, cached_tokens=1_500), model).usd
    assert expected is not None
    for row in rows:
        assert (row.cached_tokens, row.cost_source, row.price_source) == (
            1_500,
            "price table",
            "genai-prices:openrouter",
        )
        assert row.cost_usd == pytest.approx(expected)
    body = harness.only_review()["body"]
    assert f"{2_000 * len(rows):,} input ({1_500 * len(rows):,} cached)" in body
    assert "at OpenRouter's prices (genai-prices)" in body


def test_requests_of_a_review_that_is_not_posted_are_still_in_the_ledger(make_harness: MakeHarness) -> None:
    harness = make_harness(**PRICED)
    harness.model.set_default(lambda body: Reply.status(500))

    harness.fails()

    rows = ledger.entries(harness.store)
    assert rows
    assert {(row.outcome, row.cost_usd) for row in rows} == {("error", 0.0)}
    assert harness.github.reviews(REPO, NUMBER) == []
