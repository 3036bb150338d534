"""Monthly spending budgets: may this review call the model, and what to say when it may not.

The operator sets a budget per App installation and per repository (USD per calendar month,
UTC: ``REVIEWBOT_MONTHLY_BUDGET_PER_INSTALLATION``, ``REVIEWBOT_MONTHLY_BUDGET_PER_REPO``); a
repository may lower its own with ``monthly_budget`` in ``.github/reviewbot.toml``.

Before the model is called, the review's cost is estimated from its plan: each request's
estimated prompt tokens and ``ESTIMATED_OUTPUT_TOKENS``, priced as the review will be (the
operator's prices, reviewbot's table or the price database; see
:mod:`reviewbot.engine.price_layers`).
If the month's spend (from the ledger) plus the estimate would pass a budget, the model is not
called and a short note is posted instead, with the head marker so the same head does not get
it twice. A ``/review`` command gets the same note: a budget is not bypassed by asking again.

When the model's price is unknown, so is the estimate: the review then goes ahead (unless the
month's spend alone has already reached a budget) and says the budget could not be checked.
Requests whose cost is unknown are not counted in the spend; the note says how many there were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from reviewbot.engine.plan import Plan
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.pricing import format_usd
from reviewbot.engine.repo_config import CONFIG_PATH, RepoConfig
from reviewbot.github.draft import HEAD_MARKER, trailer_of
from reviewbot.money.ledger import Spend, month_start, next_month_start, spend_since
from reviewbot.render.markdown import code_span
from reviewbot.render.text import plural
from reviewbot.settings import Settings
from reviewbot.store.store import Store

INSTALLATION_SETTING = "REVIEWBOT_MONTHLY_BUDGET_PER_INSTALLATION"
REPO_SETTING = "REVIEWBOT_MONTHLY_BUDGET_PER_REPO"
REPO_CONFIG_SETTING = f"`monthly_budget` in {CONFIG_PATH}"
# Marks the note, so the head it was posted for is not taken for a reviewed one.
NOTE_MARKER = "<!-- reviewbot:budget -->"


@dataclass(frozen=True, slots=True)
class Limit:
    """One budget that applies to a review: whose, how much, and who set it."""

    scope: Literal["installation", "repository"]
    usd: float
    setting: str  # the variable or file that set it, as a person would look for it


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    limit: Limit
    spent: Spend  # this calendar month, before this review


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """The budgets a review falls under, the month's spend against each, and the review's estimate."""

    model: str
    requests: int
    estimate: float | None  # None: the model's price is unknown
    statuses: tuple[BudgetStatus, ...]
    since: float  # the first second of the month, UTC
    missing_prices: tuple[str, ...] = ()  # "input", "output": what the estimate lacked

    @property
    def exceeded(self) -> BudgetStatus | None:
        """The first budget this review would pass; with no estimate, one already used up."""
        for status in self.statuses:
            spent = status.spent.known_usd
            if spent >= status.limit.usd or (self.estimate is not None and spent + self.estimate > status.limit.usd):
                return status
        return None

    @property
    def unchecked(self) -> bool:
        """Budgets apply but could not be checked, for want of a price."""
        return bool(self.statuses) and self.estimate is None and self.exceeded is None


def limits(settings: Settings, config: RepoConfig) -> tuple[Limit, ...]:
    """The budgets that apply; the repository's own ``monthly_budget`` was already checked to be lower."""
    found: list[Limit] = []
    if settings.monthly_budget_per_installation is not None:
        found.append(Limit("installation", settings.monthly_budget_per_installation, INSTALLATION_SETTING))
    if config.monthly_budget is not None:
        found.append(Limit("repository", config.monthly_budget, REPO_CONFIG_SETTING))
    elif settings.monthly_budget_per_repo is not None:
        found.append(Limit("repository", settings.monthly_budget_per_repo, REPO_SETTING))
    return tuple(found)


def estimate_cost(
    plan: Plan, model: str, prices: Prices, *, at: datetime | None = None
) -> tuple[float | None, tuple[str, ...]]:
    """The planned requests' estimated cost, or None and the price sides that are unknown."""
    quote = prices.quote(model, at)
    if quote is None:
        return None, ("input", "output")
    missing = quote.price.missing(1, 1)  # every request has input and output tokens
    if missing:
        return None, missing
    costs = [quote.request_cost(request.estimated_tokens) for request in plan.requests]
    return sum(usd for usd in costs if usd is not None), ()  # both sides are known: none is None


def check_budgets(
    store: Store,
    applying: tuple[Limit, ...],
    *,
    installation_id: int,
    repo: str,
    plan: Plan,
    model: str,
    prices: Prices,
    now: float,
) -> BudgetCheck:
    """Read the month's spend for each budget (blocking: run it in a thread) and estimate the review."""
    since = month_start(now)
    estimate, missing = estimate_cost(plan, model, prices, at=datetime.fromtimestamp(now, UTC))
    statuses: list[BudgetStatus] = []
    if plan.requests:  # a review that asks the model nothing costs nothing
        for limit in applying:
            if limit.scope == "installation":
                spent = spend_since(store, since, installation_id=installation_id)
            else:
                spent = spend_since(store, since, repo=repo)
            statuses.append(BudgetStatus(limit, spent))
    return BudgetCheck(model, len(plan.requests), estimate, tuple(statuses), since, missing)


def over_budget_body(check: BudgetCheck, status: BudgetStatus, head_sha: str, *, repo_budget: float | None) -> str:
    """The note posted instead of a review; it carries the head marker like a review does."""
    limit = status.limit
    whose = "this repository" if limit.scope == "repository" else "this App installation"
    month = datetime.fromtimestamp(check.since, UTC)
    resumes = datetime.fromtimestamp(next_month_start(check.since), UTC)
    spent = _precise(status.spent.known_usd)
    if status.spent.unknown_requests:
        spent += f" (plus {plural(status.spent.unknown_requests, 'request')} of unknown cost, not counted)"
    estimate = f"about {_precise(check.estimate)}" if check.estimate is not None else "unknown (the price is not known)"
    lines = [
        f"**reviewbot** did not review {code_span(head_sha[:7])}: the review would pass the monthly budget of {whose}.",
        "",
        f"- Budget: {_money(limit.usd)} per calendar month (UTC), set by {_setting(limit.setting)}",
        f"- Spent since {_day(month)}: {spent}",
        f"- This review: {estimate} for {plural(check.requests, 'request')} to {check.model}",
        "",
        "No model was called. The budget applies to `/review` commands too. "
        f"{_how_to_raise(limit, repo_budget)}, then comment `/review` to have this head reviewed; "
        f"otherwise reviews resume on {_day(resumes)} (UTC).",
    ]
    return "\n".join(lines) + f"\n\n{NOTE_MARKER}\n{HEAD_MARKER.format(sha=head_sha)}"


def is_budget_note(body: str | None) -> bool:
    """Whether a review of ours is the over-budget note rather than a review (by the markers it ends with)."""
    return NOTE_MARKER in trailer_of(body)


def unchecked_note(check: BudgetCheck, configured_model: str) -> str:
    """What the review body says when a budget applies but the price to check it is unknown."""
    sides = " and ".join(check.missing_prices)
    how = "set its price with `REVIEWBOT_PRICES`"
    if check.model == configured_model:
        variables = " and ".join(f"`REVIEWBOT_{side.upper()}_PRICE`" for side in check.missing_prices)
        how = f"set {variables} (USD per million tokens) or `REVIEWBOT_PRICES`"
    names = ", ".join(sorted({_setting(status.limit.setting) for status in check.statuses}))
    return (
        f"The monthly budget ({names}) could not be checked: the {sides} price of {check.model} is unknown, "
        f"so this review's cost could not be estimated. The operator can {how} to enforce it."
    )


def _how_to_raise(limit: Limit, repo_budget: float | None) -> str:
    if limit.setting == REPO_CONFIG_SETTING:
        ceiling = f" (up to the operator's {_money(repo_budget)} per repository)" if repo_budget is not None else ""
        return f"To raise it, change or remove `monthly_budget` in {code_span(CONFIG_PATH)} on the base branch{ceiling}"
    return f"To raise it, the operator of reviewbot can set a higher {_setting(limit.setting)}"


def _money(usd: float) -> str:
    """A budget as people write it: $0.50, not $0.5000 (but $0.005 stays exact)."""
    return f"${usd:,.2f}" if round(usd, 2) == usd else format_usd(usd)


def _precise(usd: float) -> str:
    """Spend next to a budget: $4.9981, never rounded up to a $5.00 that looks like the budget itself."""
    return f"${usd:,.4f}" if usd >= 0.01 else format_usd(usd)


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def _setting(setting: str) -> str:
    return setting if "`" in setting else code_span(setting)
