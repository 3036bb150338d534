"""The eval report for tools: JSON, schema ``reviewbot.eval.report/1``.

New keys may appear within a version; a key renamed or removed, or a value whose meaning
changes, gets a new number. Rates are fractions (0.41, not 41); an interval is ``[low, high]``;
null means "not defined here" (no label to catch, no finding, an unknown price)::

    {
      "schema": "reviewbot.eval.report/1",
      "set": "reviewbot:starter",
      "cases": 60, "labels": 75,
      "tolerance": 3,                       # lines between a finding and a label that still catch it
      "intervals": {"level": 0.95, "rate": "wilson", "difference": "paired-bootstrap",
                    "resamples": 2000, "seed": 1},
      "spent_usd": 0.0123,                  # what this run paid; cached answers cost nothing
      "judge": {"label": "gpt-4o", "model": "gpt-4o", "base_url": "https://…/v1"},   # null without --judge
      "models": [
        {
          "label": "qwen3-coder-30b", "model": "qwen3-coder-30b", "base_url": "https://…/v1",
          "labels": 75, "caught": 31, "recall": 0.413, "recall_ci": [0.31, 0.53],
          "findings": 140, "hits": 33, "precision": 0.236, "precision_ci": [0.17, 0.31],
          "false_alarms": 107, "false_alarms_per_case": 1.78,
          "usage": {"requests": 64, "input_tokens": 812345, "output_tokens": 45210, "reasoning_tokens": 0,
                    "cached_tokens": 0, "estimated_requests": 0},
          "cost_usd": 0.13, "usd_per_review": 0.0021, "usd_per_caught": 0.0041,
          "answers": {"sent": 0, "cached": 64}, "failed_requests": 0,
          "seconds_per_review": {"median": 3.2, "p90": 7.9},
          "context": "diff",                # REVIEWBOT_CONTEXT of this row (see --variant)
          "cases_without_head_files": [],   # with "function": cases reviewed with the diff alone
          "judged": {                       # null without --judge: by location and judge
            "caught": 24, "recall": 0.32, "recall_ci": [0.22, 0.43],
            "hits": 25, "precision": 0.179, "precision_ci": [0.12, 0.25],
            "verdicts": 40, "failed": 0,    # findings near a label the judge was asked about; of which no verdict
            "usage": {…}, "cost_usd": 0.011, "answers": {"sent": 40, "cached": 0}   # the judge's, apart
          },
          "cases": [
            {
              "id": "flask-2e8fe7b2f2b5-1",
              "labels": [{"path": "…", "side": "RIGHT", "start_line": 120, "end_line": 120,
                          "kind": "inverted-condition", "description": "…", "caught": true,
                          "judged_caught": true}],             # judged_* only with --judge
              "findings": [{"path": "…", "line": 120, "start_line": null, "side": "RIGHT",
                            "severity": "high", "category": "bug", "title": "…", "body": "…",
                            "suggestion": null, "code": "…", "hit": true,
                            "judged_hit": true}],   # as in reviewbot.review/1
              "usage": {…}, "cost_usd": 0.002, "seconds": 2.9, "failed_requests": 0
            }
          ]
        }
      ],
      "comparisons": [                      # each model after the first, against the first
        {"model": "gpt-4o", "baseline": "qwen3-coder-30b", "recall": 0.44, "baseline_recall": 0.41,
         "difference": 0.03, "difference_ci": [-0.03, 0.09], "cost_ratio": 24.1}
      ]
    }
"""

from __future__ import annotations

from typing import Any

from reviewbot.eval.cases import label_to_dict
from reviewbot.eval.metrics import CaseScore, Comparison, JudgedScore, ModelScore
from reviewbot.eval.models import ModelUnderTest
from reviewbot.eval.plan import RunPlan
from reviewbot.eval.report import Report
from reviewbot.eval.stats import RESAMPLES, SEED, Interval
from reviewbot.render.json_out import finding_to_dict, usage_to_dict

REPORT_SCHEMA = "reviewbot.eval.report/1"
PLAN_SCHEMA = "reviewbot.eval.plan/1"


def plan_to_dict(plan: RunPlan, set_name: str, judge: ModelUnderTest | None = None) -> dict[str, Any]:
    """The dry run as plain data: ``{"schema", "set", "cases", "labels", "estimated_cost_usd", "judge" (as in the
    report; its requests are not in the estimate), "models": [{"label",
    "model", "base_url", "requests", "cached", "to_send", "estimated_input_tokens", "estimated_output_tokens",
    "estimated_cost_usd"}]}``; a cost is null when a price is unknown."""
    return {
        "schema": PLAN_SCHEMA,
        "set": set_name,
        "cases": plan.cases,
        "labels": plan.labels,
        "estimated_cost_usd": plan.usd,
        "judge": _judge(judge),
        "models": [
            {
                "label": model.model.label,
                "model": model.model.model,
                "base_url": model.model.settings.base_url,
                "requests": model.requests,
                "cached": model.cached,
                "to_send": model.to_send,
                "estimated_input_tokens": model.input_tokens,
                "estimated_output_tokens": model.output_tokens,
                "estimated_cost_usd": model.usd,
            }
            for model in plan.models
        ],
    }


def report_to_dict(report: Report) -> dict[str, Any]:
    """The report as plain data."""
    return {
        "schema": REPORT_SCHEMA,
        "set": report.set_name,
        "cases": report.cases,
        "labels": report.labels,
        "tolerance": report.tolerance,
        "intervals": {
            "level": 0.95,
            "rate": "wilson",
            "difference": "paired-bootstrap",
            "resamples": RESAMPLES,
            "seed": SEED,
        },
        "spent_usd": report.spent_usd,
        "judge": _judge(report.judge),
        "models": [_model(score) for score in report.scores],
        "comparisons": [_comparison(comparison) for comparison in report.comparisons],
    }


def _model(score: ModelScore) -> dict[str, Any]:
    return {
        "label": score.label,
        "model": score.model,
        "base_url": score.base_url,
        "labels": score.labels,
        "caught": score.caught,
        "recall": score.recall,
        "recall_ci": _interval(score.recall_interval),
        "findings": score.findings,
        "hits": score.hits,
        "precision": score.precision,
        "precision_ci": _interval(score.precision_interval),
        "false_alarms": score.false_alarms,
        "false_alarms_per_case": score.false_alarms_per_case,
        "usage": usage_to_dict(score.usage),
        "cost_usd": score.usd,
        "usd_per_review": score.usd_per_review,
        "usd_per_caught": score.usd_per_caught,
        "answers": {"sent": score.sent_answers, "cached": score.cached_answers},
        "failed_requests": score.failed_requests,
        "seconds_per_review": {"median": score.seconds_median, "p90": score.seconds_p90},
        "context": score.context,
        "cases_without_head_files": list(score.without_heads),
        "judged": _judged(score.judged) if score.judged is not None else None,
        "cases": [_case(case) for case in score.cases],
    }


def _judge(judge: ModelUnderTest | None) -> dict[str, str] | None:
    if judge is None:
        return None
    return {"label": judge.label, "model": judge.model, "base_url": judge.settings.base_url}


def _judged(judged: JudgedScore) -> dict[str, Any]:
    return {
        "caught": judged.caught,
        "recall": judged.recall,
        "recall_ci": _interval(judged.recall_interval),
        "hits": judged.hits,
        "precision": judged.precision,
        "precision_ci": _interval(judged.precision_interval),
        "verdicts": judged.verdicts,
        "failed": judged.failed,
        "usage": usage_to_dict(judged.usage),
        "cost_usd": judged.usd,
        "answers": {"sent": judged.sent_answers, "cached": judged.cached_answers},
    }


def _case(score: CaseScore) -> dict[str, Any]:
    case = score.run.case
    judged = score.judged
    labels = [
        {**label_to_dict(label), "caught": caught}
        for label, caught in zip(case.labels, score.match.caught, strict=True)
    ]
    findings = [
        {**finding_to_dict(finding), "hit": hit}
        for finding, hit in zip(score.run.result.findings, score.match.hits, strict=True)
    ]
    if judged is not None:
        for label, caught in zip(labels, judged.caught, strict=True):
            label["judged_caught"] = caught
        for finding, hit in zip(findings, judged.hits, strict=True):
            finding["judged_hit"] = hit
    return {
        "id": case.id,
        "labels": labels,
        "findings": findings,
        "usage": usage_to_dict(score.run.result.usage),
        "cost_usd": score.usd,
        "seconds": score.seconds,
        "failed_requests": score.failed_requests,
    }


def _comparison(comparison: Comparison) -> dict[str, Any]:
    return {
        "model": comparison.label,
        "baseline": comparison.baseline,
        "recall": comparison.recall,
        "baseline_recall": comparison.baseline_recall,
        "difference": comparison.difference,
        "difference_ci": _interval(comparison.interval),
        "cost_ratio": comparison.cost_ratio,
    }


def _interval(interval: Interval | None) -> list[float] | None:
    return [interval.low, interval.high] if interval is not None else None
