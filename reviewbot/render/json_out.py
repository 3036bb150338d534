"""JSON for tools: the review (``reviewbot.engine.review/1``) and the dry-run plan (``reviewbot.engine.plan/1``).

The schema names are versioned: a change that renames or removes a key, or changes what a
value means, gets a new number. New keys may appear within a version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reviewbot.engine.price_layers import Quote
from reviewbot.engine.pricing import CostReport
from reviewbot.engine.result import Finding, ReviewResult
from reviewbot.engine.review import Prepared, ReviewOptions
from reviewbot.engine.tokens import ESTIMATED_OUTPUT_TOKENS
from reviewbot.engine.usage import Usage

RESULT_SCHEMA = "reviewbot.review/1"
PLAN_SCHEMA = "reviewbot.plan/1"


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def result_to_dict(result: ReviewResult, cost: CostReport) -> dict[str, Any]:
    """The review as plain JSON-ready data."""
    repairs = result.repairs
    usage = result.usage
    return {
        "schema": RESULT_SCHEMA,
        "model": result.model,
        "findings": [finding_to_dict(finding) for finding in result.findings],
        "not_reviewed": [
            {"path": gap.path, "start_line": gap.start_line, "end_line": gap.end_line, "reason": gap.reason}
            for gap in result.not_reviewed
        ],
        "skipped": [
            {"path": skipped.path, "status": skipped.status, "reason": skipped.reason} for skipped in result.skipped
        ],
        "failed_requests": [{"index": failure.index, "reason": failure.reason} for failure in result.failed],
        "repairs": {
            "moved": repairs.moved,
            "trimmed": repairs.trimmed,
            "to_file_level": repairs.to_file_level,
            "dropped": repairs.dropped,
            "merged": repairs.merged,
            "capped": repairs.capped,
            "below_threshold": repairs.below_threshold,
            "invalid_json": repairs.invalid_json,
            "on_context": repairs.on_context,
        },
        "usage": usage_to_dict(usage),
        "cost": _cost(cost),
        "requests_planned": result.requests_planned,
    }


def usage_to_dict(usage: Usage) -> dict[str, int]:
    """Token counts as JSON (the endpoint's own cost is the cost's, not the usage's)."""
    return {
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cached_tokens": usage.cached_tokens,
        "estimated_requests": usage.estimated_requests,  # token counts the endpoint did not report
    }


def _cost(cost: CostReport) -> dict[str, Any]:
    """``usd`` is the cost or null; ``estimate`` (another provider's price) is never the cost."""
    estimate = cost.estimate
    return {
        "usd": cost.usd,
        "source": cost.source,
        "price_source": cost.price_source_key,
        "price": quote_to_dict(cost.quote) if cost.quote is not None else None,
        "missing": list(cost.missing),
        "estimate": None
        if estimate is None
        else {
            "usd": estimate.usd,
            "source": f"genai-prices:{estimate.model.provider.id}",
            "provider": estimate.model.provider.name,
            "model": estimate.model.id,
        },
        "comparisons": [{"model": comparison.label, "usd": comparison.usd} for comparison in cost.comparisons],
    }


def quote_to_dict(quote: Quote) -> dict[str, Any]:
    """A price as JSON: USD per million tokens by side (null: unknown), where it comes from, and its date."""
    price = quote.price
    return {
        "source": quote.source.key,
        "filled_from": quote.filled_from.key if quote.filled_from is not None else None,
        "model": quote.db.id if quote.db is not None else price.label,
        "input": price.input,
        "cached_input": price.cached_input,
        "output": price.output,
        "date": quote.at.date().isoformat(),
    }


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    """A finding as in the ``findings`` of ``reviewbot.review/1``."""
    return {
        "path": finding.path,
        "line": finding.line,
        "start_line": finding.start_line,
        "side": str(finding.side),
        "severity": str(finding.severity),
        "category": str(finding.category),
        "title": finding.title,
        "body": finding.body,
        "suggestion": finding.suggestion,
        "code": finding.code,
    }


def render_json(result: ReviewResult, cost: CostReport) -> str:
    return dumps(result_to_dict(result, cost))


@dataclass(frozen=True, slots=True)
class PlanCosts:
    """Estimated dollars by model label: per request, and summed over the plan (None if unknown)."""

    requests: tuple[dict[str, float | None], ...]
    total: dict[str, float | None]
    output_tokens: int  # the estimate of one answer's tokens, the same for every request


def estimated_costs(
    options: ReviewOptions, input_tokens: int, output_tokens: int, at: datetime | None = None
) -> dict[str, float | None]:
    """What these tokens would cost on the configured model (as a review is priced) and on the reference models."""
    usage = Usage(input_tokens, output_tokens, requests=1)
    quote = options.prices.quote(options.model, at)
    label = quote.price.label if quote is not None else options.model
    costs: dict[str, float | None] = {label: quote.cost((usage,)) if quote is not None else None}
    costs.update((comparison.label, comparison.usd) for comparison in options.prices.comparisons(usage, at))
    return costs


def plan_costs(prepared: Prepared) -> PlanCosts:
    options = prepared.options
    now = datetime.now(UTC)
    per_request = tuple(
        estimated_costs(options, request.estimated_tokens, ESTIMATED_OUTPUT_TOKENS, now)
        for request in prepared.plan.requests
    )
    total: dict[str, float | None] = {}
    for label in estimated_costs(options, 0, 0, now):
        values = [costs[label] for costs in per_request]
        total[label] = None if None in values else sum(value for value in values if value is not None)
    return PlanCosts(per_request, total, ESTIMATED_OUTPUT_TOKENS)


def plan_to_dict(prepared: Prepared) -> dict[str, Any]:
    """The dry run as plain data, including the exact chat messages each request would send."""
    plan = prepared.plan
    costs = plan_costs(prepared)
    skipped = {skipped.path: skipped.reason for skipped in prepared.skipped}
    return {
        "schema": PLAN_SCHEMA,
        "model": prepared.options.model,
        "files": [
            {
                "path": file.path,
                "old_path": file.old_path,
                "status": str(file.status),
                "skip_reason": skipped.get(file.path),
                "added": file.added,
                "removed": file.removed,
                "hunks": [
                    {
                        "old_start": hunk.old_start,
                        "old_length": hunk.old_length,
                        "new_start": hunk.new_start,
                        "new_length": hunk.new_length,
                    }
                    for hunk in file.hunks
                ],
            }
            for file in prepared.diff.files
        ],
        "requests": [
            {
                "index": request.index,
                "files": list(request.paths),
                "estimated_input_tokens": request.estimated_tokens,
                "estimated_output_tokens": costs.output_tokens,
                "estimated_cost": request_costs,
            }
            for request, request_costs in zip(plan.requests, costs.requests, strict=True)
        ],
        "not_reviewed": [
            {"path": gap.path, "start_line": gap.start_line, "end_line": gap.end_line, "reason": gap.reason}
            for gap in plan.not_reviewed
        ],
        "totals": {
            "requests": len(plan.requests),
            "estimated_input_tokens": plan.estimated_tokens,
            "estimated_output_tokens": costs.output_tokens * len(plan.requests),
            "estimated_cost": costs.total,
            "price": quote_to_dict(quote) if (quote := prepared.options.prices.quote(prepared.options.model)) else None,
        },
        "budget": {
            "context_window": plan.budget.context_window,
            "max_output_tokens": plan.budget.max_output_tokens,
            "per_request": plan.budget.per_request,
        },
        # One list per request, in request order: exactly what the endpoint would receive.
        "messages": [[dict(message) for message in request.messages] for request in plan.requests],
    }


def render_plan_json(prepared: Prepared) -> str:
    return dumps(plan_to_dict(prepared))
