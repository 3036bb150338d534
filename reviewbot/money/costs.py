"""``reviewbot costs``: what reviews cost, from the ledger, next to what the same tokens would cost elsewhere.

    reviewbot costs                          # by repository, everything recorded
    reviewbot costs --by model,month --since 2024-06-01
    reviewbot costs --by installation --since 30d --format csv

Rows are grouped by any of ``repo``, ``model``, ``month`` (calendar month, UTC),
``installation`` and ``source`` (where each cost's price came from: ``endpoint``, ``settings``,
``reviewbot``, ``genai-prices:<provider>``…), in that order of the keys given, sorted by them.
The cost of a group is the sum of its known costs; requests whose cost is unknown (no
``usage.cost`` from the endpoint and no price known) are counted apart and never shown as $0.
The comparison prices the same tokens on the reference models (the seed's GPT-4o and Claude 3.5
Sonnet, or ``REVIEWBOT_COMPARE_WITH``'s at today's prices), a group's requests as if each were
its average; the saving is that minus the cost, given only when every request of the group has
a known cost.

``--format json`` prints one object::

    {
      "since": "2024-06-01T00:00:00Z",        # null without --since
      "group_by": ["repo"],
      "rows": [
        {
          "repo": "octo-org/app",               # one member per key grouped by; "month" is "2024-06",
                                                # "installation" gives "installation_id" and "account",
                                                # "source" the price's layer ("genai-prices:openrouter")
          "requests": 12,
          "input_tokens": 48213,
          "output_tokens": 3904,
          "reasoning_tokens": 0,
          "cached_tokens": 0,                   # input tokens served from the provider's prompt cache
          "cost_usd": 0.0123,                   # sum of the known costs; null if no cost is known
          "unknown_cost_requests": 0,           # requests whose cost is unknown, not in cost_usd
          "comparisons": [
            {"model": "gpt-4o", "label": "GPT-4o", "cost_usd": 0.1596, "saving_usd": 0.1473},
            {"model": "claude-3-5-sonnet", "label": "Claude 3.5 Sonnet", "cost_usd": 0.2032, "saving_usd": 0.1909}
          ]                                     # saving_usd is null while unknown_cost_requests > 0
        }
      ],
      "total": {...}                            # a row without keys, over every row
    }

``--format csv`` has a header row and one line per group (no total): the keys, ``requests``,
``input_tokens``, ``output_tokens``, ``reasoning_tokens``, ``cached_tokens``, ``cost_usd``,
``unknown_cost_requests``, then ``<model>_usd`` and ``<model>_saving_usd`` per reference model
(``gpt_4o_usd`` …); a null is an empty cell.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reviewbot.engine.price_layers import Prices
from reviewbot.engine.pricing import format_usd
from reviewbot.engine.review import ReviewOptions
from reviewbot.engine.usage import Usage
from reviewbot.errors import InputError
from reviewbot.money import ledger
from reviewbot.money.ledger import GROUP_KEYS, GroupKey, Spend, SpendRow
from reviewbot.render.text import plural
from reviewbot.settings import load_settings
from reviewbot.store.store import Store, open_store

FORMATS = ("table", "json", "csv")
_DAYS = re.compile(r"(\d{1,5})d")
_HEADERS = {
    "repo": "repository",
    "model": "model",
    "month": "month",
    "installation": "installation",
    "source": "price source",
}


@dataclass(frozen=True, slots=True)
class Comparison:
    model: str
    label: str
    usd: float | None
    saving: float | None


@dataclass(frozen=True, slots=True)
class ReportRow:
    """A group of the report: its key values by name, its sums, and the reference comparisons."""

    keys: dict[str, str | int | None]
    requests: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    spend: Spend
    comparisons: tuple[Comparison, ...]
    cached_tokens: int = 0

    @property
    def cost_usd(self) -> float | None:
        """The sum of the known costs; None when no request's cost is known."""
        return self.spend.known_usd if self.spend.known_requests else None


@dataclass(frozen=True, slots=True)
class Report:
    group_by: tuple[GroupKey, ...]
    since: float | None
    rows: tuple[ReportRow, ...]
    total: ReportRow


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``reviewbot costs`` on the command line's subcommands."""
    costs = commands.add_parser(
        "costs",
        help="report what reviews cost, from the ledger in REVIEWBOT_DATABASE_URL",
        description="What the App's reviews cost, grouped, next to what the same tokens would cost on the "
        "reference models (GPT-4o and Claude 3.5 Sonnet unless REVIEWBOT_COMPARE_WITH names others). "
        "Costs nobody knows are counted apart, never shown as $0.",
    )
    costs.add_argument(
        "--by",
        type=parse_group_by,
        default=("repo",),
        metavar="KEYS",
        help=f"group by one or more of {', '.join(GROUP_KEYS)}, comma-separated (default: repo)",
    )
    costs.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="only requests since YYYY-MM-DD (UTC) or the last N days (30d)",
    )
    costs.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default: table)")


def parse_group_by(value: str) -> tuple[GroupKey, ...]:
    keys: list[GroupKey] = []
    for part in (piece.strip().lower() for piece in value.split(",")):
        if not part:
            continue
        match = next((key for key in GROUP_KEYS if key == part), None)
        if match is None:
            raise argparse.ArgumentTypeError(f"{part!r} is not one of {', '.join(GROUP_KEYS)}")
        if match not in keys:
            keys.append(match)
    if not keys:
        raise argparse.ArgumentTypeError(f"name at least one of {', '.join(GROUP_KEYS)}")
    return tuple(keys)


def parse_since(value: str, *, now: float | None = None) -> float:
    """``2024-06-01`` (midnight UTC) or ``30d`` (30 days before now) → epoch seconds."""
    text = value.strip().lower()
    if days := _DAYS.fullmatch(text):
        return (time.time() if now is None else now) - int(days.group(1)) * 86_400
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither a date (YYYY-MM-DD) nor a number of days (30d)"
        ) from None
    return day.timestamp()


def run(args: argparse.Namespace) -> int:
    """``reviewbot costs``: print the report; 0 even when nothing was recorded."""
    settings = load_settings()
    prices = ReviewOptions.from_settings(settings).prices
    store = open_store(settings.database_url)
    try:
        report = build_report(store, args.by, since=args.since, prices=prices)
    finally:
        store.close()
    if not report.rows:
        since = f" since {_date(args.since)}" if args.since is not None else ""
        print(f"reviewbot: no model requests recorded{since} (REVIEWBOT_DATABASE_URL)", file=sys.stderr)
    sys.stdout.write(render(report, args.format))
    return 0


def build_report(store: Store, group_by: Sequence[GroupKey], *, since: float | None, prices: Prices) -> Report:
    group_by = tuple(group_by)
    if not group_by:
        raise InputError(f"group by at least one of {', '.join(GROUP_KEYS)}")
    rows = ledger.spend_by(store, group_by, since=since)
    accounts: dict[int, str | None] = {}
    if "installation" in group_by:
        for installation_id in {int(row.key[group_by.index("installation")]) for row in rows}:
            found = store.installation(installation_id)
            accounts[installation_id] = found.account if found is not None else None
    report_rows = tuple(_row(dict(_keys(group_by, row, accounts)), row, prices) for row in rows)
    total = SpendRow(
        key=(),
        requests=sum(row.requests for row in rows),
        input_tokens=sum(row.input_tokens for row in rows),
        output_tokens=sum(row.output_tokens for row in rows),
        reasoning_tokens=sum(row.reasoning_tokens for row in rows),
        cached_tokens=sum(row.cached_tokens for row in rows),
        spend=Spend(
            known_usd=sum(row.spend.known_usd for row in rows),
            known_requests=sum(row.spend.known_requests for row in rows),
            unknown_requests=sum(row.spend.unknown_requests for row in rows),
        ),
    )
    return Report(group_by, since, report_rows, _row({}, total, prices))


def _keys(
    group_by: Sequence[GroupKey], row: SpendRow, accounts: dict[int, str | None]
) -> list[tuple[str, str | int | None]]:
    pairs: list[tuple[str, str | int | None]] = []
    for key, value in zip(group_by, row.key, strict=True):
        if key == "installation":
            pairs += [("installation_id", int(value)), ("account", accounts.get(int(value)))]
        else:
            pairs.append((key, str(value)))
    return pairs


def _row(keys: dict[str, str | int | None], row: SpendRow, prices: Prices) -> ReportRow:
    comparisons = []
    complete = row.spend.unknown_requests == 0
    for model, label, usd in _compare(row, prices):
        saving = usd - row.spend.known_usd if usd is not None and complete else None
        comparisons.append(Comparison(model, label, usd, saving))
    return ReportRow(
        keys=keys,
        requests=row.requests,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        reasoning_tokens=row.reasoning_tokens,
        spend=row.spend,
        comparisons=tuple(comparisons),
        cached_tokens=row.cached_tokens,
    )


def _compare(row: SpendRow, prices: Prices) -> list[tuple[str, str, float | None]]:
    """The group's tokens on each reference model (name, label, USD), priced as ``requests`` average
    requests and what is left over: a price tiered by prompt size applies to one request, never to
    the group's sum; a flat price gives the exact figure."""
    count = max(row.requests, 1)
    tokens = (row.input_tokens, row.output_tokens, row.cached_tokens)
    average = Usage(tokens[0] // count, tokens[1] // count, requests=1, cached_tokens=tokens[2] // count)
    rest = Usage(tokens[0] % count, tokens[1] % count, requests=1, cached_tokens=tokens[2] % count)
    result = []
    for each, left in zip(prices.comparisons(average), prices.comparisons(rest), strict=True):
        usd = each.usd * count + left.usd if each.usd is not None and left.usd is not None else None
        result.append((each.model, each.label, usd))
    return result


# -- output ---------------------------------------------------------------------------------


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    return render_table(report)


def render_json(report: Report) -> str:
    document = {
        "since": _iso(report.since) if report.since is not None else None,
        "group_by": list(report.group_by),
        "rows": [_json_row(row) for row in report.rows],
        "total": _json_row(report.total),
    }
    return json.dumps(document, indent=2) + "\n"


def _json_row(row: ReportRow) -> dict[str, Any]:
    return {
        **row.keys,
        "requests": row.requests,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cached_tokens": row.cached_tokens,
        "cost_usd": _round(row.cost_usd),
        "unknown_cost_requests": row.spend.unknown_requests,
        "comparisons": [
            {"model": c.model, "label": c.label, "cost_usd": _round(c.usd), "saving_usd": _round(c.saving)}
            for c in row.comparisons
        ],
    }


def render_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    key_columns = _key_columns(report.group_by)
    references = [re.sub(r"\W+", "_", c.model).strip("_") for c in report.total.comparisons]
    writer.writerow(
        [
            *key_columns,
            "requests",
            "input_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cached_tokens",
            "cost_usd",
            "unknown_cost_requests",
            *(column for name in references for column in (f"{name}_usd", f"{name}_saving_usd")),
        ]
    )
    for row in report.rows:
        writer.writerow(
            [
                *(_cell(row.keys[column]) for column in key_columns),
                row.requests,
                row.input_tokens,
                row.output_tokens,
                row.reasoning_tokens,
                row.cached_tokens,
                _cell(_round(row.cost_usd)),
                row.spend.unknown_requests,
                *(cell for c in row.comparisons for cell in (_cell(_round(c.usd)), _cell(_round(c.saving)))),
            ]
        )
    return buffer.getvalue()


def _key_columns(group_by: Sequence[GroupKey]) -> list[str]:
    columns: list[str] = []
    for key in group_by:
        columns += ["installation_id", "account"] if key == "installation" else [key]
    return columns


def _cell(value: object) -> object:
    return "" if value is None else value


def _round(usd: float | None) -> float | None:
    """Dollars to a billionth of a cent: enough for any price, without float noise (0.061395000000000005)."""
    return None if usd is None else round(usd, 11)


def render_table(report: Report) -> str:
    if not report.rows:
        return ""  # the command says on stderr that nothing was recorded
    labels = [c.label for c in report.total.comparisons]
    header = [
        *(_HEADERS[key] for key in report.group_by),
        "requests",
        "input tokens",
        "output tokens",
        "cost",
        *(part for label in labels for part in (label, "saving")),
    ]
    body = [_table_cells(report.group_by, row) for row in report.rows]
    total = _table_cells(report.group_by, report.total, label="total")
    widths = [max(len(line[i]) for line in (header, *body, total)) for i in range(len(header))]
    keys = len(report.group_by)

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if i < keys else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [line(header), "  ".join("-" * width for width in widths)]
    out += [line(cells) for cells in body]
    if len(body) != 1:
        out += ["  ".join("-" * width for width in widths), line(total)]
    out += _footnotes(report)
    return "\n".join(out) + "\n"


def _table_cells(group_by: Sequence[GroupKey], row: ReportRow, *, label: str | None = None) -> list[str]:
    keys = [_key_text(key, row) for key in group_by] if label is None else [label, *([""] * (len(group_by) - 1))]
    cells = [
        *keys,
        f"{row.requests:,}",
        f"{row.input_tokens:,}",
        f"{row.output_tokens:,}",
        _cost_text(row),
    ]
    for comparison in row.comparisons:
        cells += [format_usd(comparison.usd), _saving_text(comparison)]
    return cells


def _key_text(key: GroupKey, row: ReportRow) -> str:
    if key == "installation":
        account = row.keys.get("account")
        installation = row.keys["installation_id"]
        return f"{account} ({installation})" if account else str(installation)
    return str(row.keys[key])


def _cost_text(row: ReportRow) -> str:
    unknown = row.spend.unknown_requests
    if not unknown:
        return format_usd(row.spend.known_usd)
    if not row.spend.known_requests:
        return f"unknown ({unknown:,} req.)"
    return f"{format_usd(row.spend.known_usd)} + {unknown:,} unknown"


def _saving_text(comparison: Comparison) -> str:
    if comparison.saving is None:
        return "unknown"
    if comparison.usd:
        return f"{format_usd(comparison.saving)} ({comparison.saving / comparison.usd:.0%})"
    return format_usd(comparison.saving)


def _footnotes(report: Report) -> list[str]:
    since = f"Since {_date(report.since)} (UTC)." if report.since is not None else "Everything recorded."
    notes = [
        "",
        f"{since} The comparison prices the same tokens at the reference models' prices; the saving is that minus "
        "the cost. `reviewbot costs --by source` shows where each cost's price came from.",
    ]
    unknown = report.total.spend.unknown_requests
    if unknown:
        notes.append(
            f"{plural(unknown, 'request')} had an unknown cost (the endpoint sent none and "
            "no price of the model was known): the cost shown is the known part, and no saving is given "
            "for those groups. Set REVIEWBOT_PRICES (or REVIEWBOT_INPUT_PRICE and REVIEWBOT_OUTPUT_PRICE) to price "
            "future reviews; `reviewbot prices MODEL` shows which price applies."
        )
    return notes


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")
