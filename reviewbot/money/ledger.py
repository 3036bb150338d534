"""The cost ledger: one row per model request, and the sums that reports and budgets read.

Each row of ``model_calls`` says who asked (installation, repository, pull request, head, job),
what was sent (model, tokens, of which cached) and what it cost. ``cost_usd`` is, in order of preference:

- the endpoint's own figure (``usage.cost``, as OpenRouter sends it): ``cost_source = 'endpoint'``;
- the tokens × the price that applies when the call is recorded, when every side the tokens
  need is priced: ``'price table'``;
- NULL, ``'unknown'``: the endpoint said nothing and no price is known for a side the tokens
  need, or the endpoint answered without reporting its usage at all.

``price_source`` names the layer the figure came from (:mod:`reviewbot.engine.price_layers`):
``endpoint``, ``settings``, ``reviewbot``, ``genai-prices:<provider>`` or ``unknown``; ``no tokens``
for a failed request; ``price table`` for rows recorded before the layers were told apart.

Unknown is never stored as 0, so every sum here comes with the number of requests it could not
count. A request that failed (``outcome = 'error'``) used no tokens the endpoint reported, and
costs 0.

The queries go through the store's transactions (:meth:`Store.write` / :meth:`Store.read`) and
stay portable between SQLite and PostgreSQL: ``?`` markers, standard SQL, epoch seconds; the
calendar month of a timestamp is worked out here, not by a date function of one database.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, NamedTuple, Protocol

from reviewbot.engine.price_layers import Prices
from reviewbot.engine.result import ModelCall
from reviewbot.store.store import Store

CostSource = Literal["endpoint", "price table", "unknown"]
GroupKey = Literal["repo", "model", "month", "installation", "source"]
GROUP_KEYS: Final[tuple[GroupKey, ...]] = ("repo", "model", "month", "installation", "source")
_COLUMNS: Final[dict[GroupKey, str]] = {
    "repo": "repo",
    "model": "model",
    "month": "month",
    "installation": "installation_id",
    "source": "price_source",
}


class CallOrigin(Protocol):
    """Where a review's calls came from; a store :class:`~reviewbot.store.records.Job` is one."""

    @property
    def id(self) -> int | None: ...
    @property
    def installation_id(self) -> int: ...
    @property
    def repo(self) -> str: ...
    @property
    def pr_number(self) -> int: ...
    @property
    def head_sha(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Origin:
    """A :class:`CallOrigin` without a job row (tests, imports)."""

    installation_id: int
    repo: str
    pr_number: int
    head_sha: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the ledger."""

    job_id: int | None
    installation_id: int
    repo: str
    pr_number: int
    head_sha: str
    request_index: int
    model: str
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: float | None
    cost_source: CostSource
    seconds: float
    outcome: str
    error: str | None
    at: float
    cached_tokens: int = 0
    price_source: str = "unknown"


@dataclass(frozen=True, slots=True)
class Spend:
    """What a set of requests cost, as far as it is known."""

    known_usd: float = 0.0
    known_requests: int = 0
    unknown_requests: int = 0

    @property
    def requests(self) -> int:
        return self.known_requests + self.unknown_requests


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One group of :func:`spend_by`: the group's key values, in the order asked, and its sums."""

    key: tuple[str | int, ...]
    requests: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    spend: Spend
    cached_tokens: int = 0


class CallCost(NamedTuple):
    """What one call cost, and where the figure comes from (see the module's docstring)."""

    usd: float | None
    source: CostSource
    price_source: str


def price_call(call: ModelCall, prices: Prices, *, at: float | None = None) -> CallCost:
    """The cost of one call at the prices of ``at`` (epoch seconds; now if None)."""
    usage = call.usage
    if usage.cost_usd is None and not usage.input_tokens and not usage.output_tokens:
        if call.outcome == "error":
            return CallCost(0.0, "price table", "no tokens")  # failed: nothing billed that was reported
        return CallCost(None, "unknown", "unknown")  # answered, but the endpoint reported no usage: tokens unknown
    when = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    priced = prices.cost(usage, call.model, when)
    if priced.source is None:
        return CallCost(None, "unknown", "unknown")
    return CallCost(priced.usd, "endpoint" if priced.source.layer == "endpoint" else "price table", priced.key)


def record_calls(
    store: Store, job: CallOrigin, calls: Iterable[ModelCall], prices: Prices, *, now: float | None = None
) -> int:
    """Add one ledger row per call, in one transaction; return how many were added."""
    at = time.time() if now is None else now
    rows: list[tuple[Any, ...]] = []
    for call in calls:
        cost, source, price_source = price_call(call, prices, at=at)
        usage = call.usage
        rows.append(
            (
                job.id,
                job.installation_id,
                job.repo,
                job.pr_number,
                job.head_sha,
                call.request_index,
                call.model,
                usage.input_tokens,
                usage.output_tokens,
                usage.reasoning_tokens,
                cost,
                source,
                call.seconds,
                call.outcome,
                call.error,
                at,
                usage.cached_tokens,
                price_source,
            )
        )
    if not rows:
        return 0
    with store.write() as tx:
        for row in rows:
            tx.execute(
                "INSERT INTO model_calls (job_id, installation_id, repo, pr_number, head_sha, request_index, model,"
                " input_tokens, output_tokens, reasoning_tokens, cost_usd, cost_source, seconds, outcome, error, at,"
                " cached_tokens, price_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
    return len(rows)


def entries(store: Store, *, repo: str | None = None, since: float | None = None) -> list[Entry]:
    """Ledger rows, oldest first, optionally of one repository or since a time."""
    where, params = _where(repo=repo, since=since)
    with store.read() as tx:
        rows = tx.all(f"SELECT * FROM model_calls WHERE {where} ORDER BY at, id", params)  # noqa: S608
    return [
        Entry(
            job_id=None if row["job_id"] is None else int(row["job_id"]),
            installation_id=int(row["installation_id"]),
            repo=str(row["repo"]),
            pr_number=int(row["pr_number"]),
            head_sha=str(row["head_sha"]),
            request_index=int(row["request_index"]),
            model=str(row["model"]),
            input_tokens=int(row["input_tokens"]),
            output_tokens=int(row["output_tokens"]),
            reasoning_tokens=int(row["reasoning_tokens"]),
            cost_usd=None if row["cost_usd"] is None else float(row["cost_usd"]),
            cost_source=row["cost_source"],
            seconds=float(row["seconds"]),
            outcome=str(row["outcome"]),
            error=row["error"],
            at=float(row["at"]),
            cached_tokens=int(row["cached_tokens"]),
            price_source=str(row["price_source"]),
        )
        for row in rows
    ]


def _where(
    *,
    since: float | None = None,
    until: float | None = None,
    repo: str | None = None,
    installation_id: int | None = None,
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE condition (and its parameters) for the filters that are set: ``since``
    inclusive, ``until`` exclusive."""
    conditions = {"at >= ?": since, "at < ?": until, "repo = ?": repo, "installation_id = ?": installation_id}
    chosen = {condition: value for condition, value in conditions.items() if value is not None}
    return " AND ".join(["1 = 1", *chosen]), tuple(chosen.values())


def month_start(at: float) -> float:
    """The first second of ``at``'s calendar month, UTC."""
    moment = datetime.fromtimestamp(at, UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp()


def next_month_start(at: float) -> float:
    """The first second of the calendar month after ``at``'s, UTC."""
    moment = datetime.fromtimestamp(at, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def month_label(at: float) -> str:
    """``2024-06``: the calendar month (UTC) of ``at``."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m")


def spend_since(store: Store, since: float, *, installation_id: int | None = None, repo: str | None = None) -> Spend:
    """What requests since ``since`` cost, of one installation and/or one repository."""
    where, params = _where(since=since, installation_id=installation_id, repo=repo)
    with store.read() as tx:
        row = tx.one(
            "SELECT COUNT(*) AS requests, COUNT(cost_usd) AS known, SUM(cost_usd) AS usd"  # noqa: S608
            f" FROM model_calls WHERE {where}",
            params,
        )
    if row is None:
        return Spend()
    known = int(row["known"] or 0)
    return Spend(
        known_usd=float(row["usd"] or 0.0), known_requests=known, unknown_requests=int(row["requests"] or 0) - known
    )


def spend_by(
    store: Store, group_by: Sequence[GroupKey], *, since: float | None = None, until: float | None = None
) -> list[SpendRow]:
    """Requests, tokens and spend grouped by ``group_by`` (e.g. ``("repo", "model")``), in key order.

    ``since`` is inclusive and ``until`` exclusive, both epoch seconds. With no keys, one row
    (when there is anything to count) sums everything.
    """
    if len(set(group_by)) != len(group_by) or any(key not in _COLUMNS for key in group_by):
        raise ValueError(f"group by distinct keys among {', '.join(GROUP_KEYS)}, not {list(group_by)!r}")
    month_params: tuple[Any, ...]
    where, params = _where(since=since, until=until)
    month, month_params = "''", ()
    if "month" in group_by:
        month, month_params = _month_case(store, where, params)
    columns = [_COLUMNS[key] for key in group_by]
    keys = ", ".join(columns)
    # The month is a CASE over the months' first seconds, so no database's date functions are needed.
    sql = (
        f"SELECT {keys + ', ' if keys else ''}COUNT(*) AS requests, SUM(input_tokens) AS input_tokens,"  # noqa: S608
        " SUM(output_tokens) AS output_tokens, SUM(reasoning_tokens) AS reasoning_tokens,"
        " SUM(cached_tokens) AS cached_tokens, COUNT(cost_usd) AS known, SUM(cost_usd) AS usd"
        f" FROM (SELECT {month} AS month, repo, model, installation_id, price_source, input_tokens, output_tokens,"
        f" reasoning_tokens, cached_tokens, cost_usd FROM model_calls WHERE {where}) AS calls"
        + (f" GROUP BY {keys} ORDER BY {keys}" if keys else "")
    )
    with store.read() as tx:
        rows = tx.all(sql, (*month_params, *params))
    result = []
    for row in rows:
        requests = int(row["requests"])
        if requests == 0:
            continue  # no keys and nothing recorded: an aggregate of no rows
        known = int(row["known"] or 0)
        result.append(
            SpendRow(
                key=tuple(row[column] if column != "installation_id" else int(row[column]) for column in columns),
                requests=requests,
                input_tokens=int(row["input_tokens"] or 0),
                output_tokens=int(row["output_tokens"] or 0),
                reasoning_tokens=int(row["reasoning_tokens"] or 0),
                spend=Spend(float(row["usd"] or 0.0), known, requests - known),
                cached_tokens=int(row["cached_tokens"] or 0),
            )
        )
    return result


def _month_case(store: Store, where: str, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """``CASE WHEN at < ? THEN '2024-05' … ELSE '2024-07' END`` over the months the rows span."""
    with store.read() as tx:
        span = tx.one(f"SELECT MIN(at) AS first, MAX(at) AS last FROM model_calls WHERE {where}", params)  # noqa: S608
    if span is None or span["first"] is None:
        return "''", ()
    # Up to now as well: a row recorded between this query and the next still gets its own month.
    start, last = month_start(float(span["first"])), max(float(span["last"]), time.time())
    whens: list[str] = []
    bounds: list[float] = []
    while (following := next_month_start(start)) <= last:
        # The label is made here from a date, never from input, so it is safe inside the SQL.
        whens.append(f"WHEN at < ? THEN '{month_label(start)}'")
        bounds.append(following)
        start = following
    case = f"CASE {' '.join(whens)} ELSE '{month_label(start)}' END" if whens else f"'{month_label(start)}'"
    return case, tuple(bounds)
