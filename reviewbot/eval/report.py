"""The eval report for people: Markdown that reads the same in a terminal and in a pull request."""

from __future__ import annotations

from dataclasses import dataclass

from reviewbot.engine.pricing import format_usd
from reviewbot.eval.metrics import Comparison, JudgedScore, ModelScore
from reviewbot.eval.models import ModelUnderTest
from reviewbot.eval.plan import RunPlan
from reviewbot.eval.stats import RESAMPLES, SEED, Interval
from reviewbot.render.text import clean, plural


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a report shows: the set, the figures of each model, and the comparisons."""

    set_name: str
    cases: int
    labels: int
    tolerance: int
    scores: tuple[ModelScore, ...]
    comparisons: tuple[Comparison, ...]
    spent_usd: float  # what this run paid; cached answers cost nothing
    judge: ModelUnderTest | None = None  # the run's --judge


def render_markdown(report: Report) -> str:
    lines = [
        f"## reviewbot eval: {_code(report.set_name)}",
        "",
        f"{plural(report.cases, 'case')} with {plural(report.labels, 'labelled bug')}. A finding catches a bug "
        f"when it is on the bug's file within {plural(report.tolerance, 'line')} of it.",
        "",
        "| model | recall (95% CI) | precision ≥ (95% CI) | false alarms / PR | tokens in / out "
        "| $ / review | $ / caught bug | s / review (median, p90) |",
        "|---|---|---|---|---|---|---|---|",
        *(_row(score) for score in report.scores),
    ]
    if report.comparisons:
        lines += ["", f"Against {_code(report.comparisons[0].baseline)}, on the same cases:", ""]
        lines += [f"- {comparison_sentence(comparison)}" for comparison in report.comparisons]
    if report.judge is not None:
        lines += ["", *_judged_table(report.judge, report.scores)]
    lines += ["", *_notes(report)]
    return "\n".join(lines) + "\n"


def _judged_table(judge: ModelUnderTest, scores: tuple[ModelScore, ...]) -> list[str]:
    lines = [
        f"By location and judge {_code(judge.label)}: a finding catches a bug only when it is near it and the judge "
        "says it describes it.",
        "",
        "| model | recall (95% CI) | precision ≥ (95% CI) | findings judged | judge $ |",
        "|---|---|---|---|---|",
    ]
    for score in scores:
        judged = score.judged
        assert judged is not None  # every model of a run with a judge is judged
        recall = _rate(judged.recall, judged.recall_interval, judged.caught, score.labels)
        precision = _rate(judged.precision, judged.precision_interval, judged.hits, score.findings)
        lines.append(
            f"| {_code(score.label)} | {recall} | {precision} | {judged.verdicts} | {format_usd(judged.usd)} |"
        )
    return lines


def _judge_note(judged: list[JudgedScore], label: str) -> str:
    verdicts = sum(score.verdicts for score in judged)
    sent = sum(score.sent_answers for score in judged)
    cached = sum(score.cached_answers for score in judged)
    costs = [score.usd for score in judged]
    cost = format_usd(sum(c for c in costs if c is not None)) if None not in costs else "an unknown amount"
    failed = sum(score.failed for score in judged)
    note = (
        f"The judge {_code(label)} was asked about {plural(verdicts, 'finding')} near a labelled bug "
        f"({sent:,} answers from the endpoint, {cached:,} from the cache); its answers cost {cost}, "
        "apart from the models' costs above."
    )
    if failed:
        note += (
            f" {plural(failed, 'request')} gave no verdict (failed, or an answer without one) and count as “no”; "
            "a rerun asks the failed ones again."
        )
    return note


def render_plan_markdown(plan: RunPlan, set_name: str, judge: ModelUnderTest | None = None) -> str:
    """The dry run: per model, the requests each case plans, and what sending them would cost."""
    lines = [
        f"## reviewbot eval: {_code(set_name)} (dry run: nothing sent)",
        "",
        f"{plural(plan.cases, 'case')} with {plural(plan.labels, 'labelled bug')}.",
        "",
        "| model | requests | in the cache | to send | est. input tokens | est. output tokens | est. cost |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in plan.models:
        cost = format_usd(model.usd) if model.usd is not None else "unknown: add input_price= and output_price="
        lines.append(
            f"| {_code(model.model.label)} | {model.requests:,} | {model.cached:,} | {model.to_send:,} "
            f"| {model.input_tokens:,} | {model.output_tokens:,} | {cost} |"
        )
    total = format_usd(plan.usd) if plan.usd is not None else "unknown (a price is unknown)"
    lines += [
        "",
        f"Estimated cost of the run: {total}. Estimates count each request's prompt and a typical answer; "
        "repair rounds and requests split after a cut answer come on top. `--max-cost` holds whatever they come to.",
    ]
    if judge is not None:
        lines += [
            "",
            f"The judge {_code(judge.label)} is asked about each finding near a labelled bug once the reviews are "
            "in: its requests depend on the findings, so they are not in the estimate; `--max-cost` holds them too.",
        ]
    return "\n".join(lines) + "\n"


def comparison_sentence(comparison: Comparison) -> str:
    """``gpt-4o: recall 44% vs 41% (difference +3 points, 95% CI −3…+9) at 24× the cost.``"""
    if comparison.difference is None or comparison.recall is None or comparison.baseline_recall is None:
        return f"{_code(comparison.label)}: no labelled bug to compare on."
    interval = comparison.interval
    ci = f", 95% CI {_points(interval.low)}…{_points(interval.high)}" if interval is not None else ""
    return (
        f"{_code(comparison.label)}: recall {_percent(comparison.recall)} vs {_percent(comparison.baseline_recall)} "
        f"(difference {_points(comparison.difference)} points{ci}) {_cost_words(comparison.cost_ratio)}."
    )


def _row(score: ModelScore) -> str:
    recall = _rate(score.recall, score.recall_interval, score.caught, score.labels)
    precision = _rate(score.precision, score.precision_interval, score.hits, score.findings)
    alarms = f"{score.false_alarms_per_case:.1f}" if score.false_alarms_per_case is not None else "—"
    tokens = f"{score.usage.input_tokens:,} / {score.usage.output_tokens:,}"
    cells = [
        _code(score.label),
        recall,
        precision,
        alarms,
        tokens,
        format_usd(score.usd_per_review),
        format_usd(score.usd_per_caught) if score.caught else "—",
        _seconds(score),
    ]
    return "| " + " | ".join(cells) + " |"


def _seconds(score: ModelScore) -> str:
    if score.seconds_median is None:
        return "—"
    if score.seconds_p90 is None:  # one review: no spread to show
        return f"{score.seconds_median:.1f}"
    return f"{score.seconds_median:.1f}, {score.seconds_p90:.1f}"


def _rate(rate: float | None, interval: Interval | None, part: int, whole: int) -> str:
    if rate is None or interval is None:
        return f"— (0 of {whole})"
    return f"**{_percent(rate)}** ({_percent(interval.low, suffix=False)}–{_percent(interval.high)}), {part} of {whole}"


def _notes(report: Report) -> list[str]:
    sent = sum(score.sent_answers for score in report.scores)
    cached = sum(score.cached_answers for score in report.scores)
    spent = format_usd(report.spent_usd)
    notes = [f"Answers: {sent:,} from the endpoints, {cached:,} from the cache; this run spent {spent}."]
    judged = [score.judged for score in report.scores if score.judged is not None]
    if report.judge is not None:
        notes.append(_judge_note(judged, report.judge.label))
    for score in report.scores:
        if score.usd is None:
            notes.append(
                f"The cost of {_code(score.label)} is unknown: its price is not in the table; add input_price= and "
                "output_price= to its --model."
            )
        if score.without_heads:
            shown = ", ".join(_code(case_id) for case_id in score.without_heads[:5])
            more = " …" if len(score.without_heads) > 5 else ""
            notes.append(
                f"{_code(score.label)}: {len(score.without_heads)} of {plural(len(score.cases), 'case')} carry no head "
                f"files ({shown}{more}), so function context could not be added: they were reviewed with the diff "
                "alone, as with context=diff."
            )
        failed = [case.run.case.id for case in score.cases if case.failed_requests]
        if failed:
            shown = ", ".join(_code(case_id) for case_id in failed[:5]) + (" …" if len(failed) > 5 else "")
            notes.append(
                f"{plural(score.failed_requests, 'request')} of {_code(score.label)} failed after retries "
                f"({shown}): their bugs count as missed; a rerun asks only those again."
            )
    notes += [
        "",
        "Precision is a lower bound: a finding on lines nobody labelled may be right too. Intervals: Wilson score "
        f"for recall and precision; for differences, a paired bootstrap over cases ({RESAMPLES:,} resamples, "
        f"seed {SEED}). Costs are Σ tokens × price, or the endpoint's own figures.",
    ]
    return notes


def _cost_words(ratio: float | None) -> str:
    if ratio is None:
        return "at a cost that cannot be compared (a price is unknown, or the first model cost nothing)"
    if abs(ratio - 1) < 0.005:
        return "at the same cost"
    if ratio < 1:
        return f"at {ratio * 100:.0f}% of the cost" if ratio >= 0.01 else f"at {ratio * 100:.2f}% of the cost"
    return f"at {ratio:.1f}× the cost"


def _percent(value: float, *, suffix: bool = True) -> str:
    return f"{value * 100:.0f}%" if suffix else f"{value * 100:.0f}"


def _points(value: float) -> str:
    points = round(value * 100)
    return f"{points:+d}".replace("-", "−") if points else "0"


def _code(text: str) -> str:
    quoted = clean(text).replace("`", "'")
    return f"`{quoted}`"
