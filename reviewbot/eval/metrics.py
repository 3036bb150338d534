"""The figures of an eval: for each model how many labelled bugs it caught and at what cost, and
each model against the first. Pure functions over the runner's results."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from reviewbot.engine.price_layers import Prices
from reviewbot.engine.pricing import cost_report
from reviewbot.engine.usage import Usage
from reviewbot.eval.matching import DEFAULT_TOLERANCE, CaseMatch, match_case
from reviewbot.eval.models import ModelUnderTest
from reviewbot.eval.runner import CaseRun, ModelRun
from reviewbot.eval.stats import Interval, PairedCase, paired_bootstrap, recall_difference, wilson


@dataclass(frozen=True, slots=True)
class CaseScore:
    """One model on one case."""

    run: CaseRun
    match: CaseMatch
    usd: float | None
    seconds: float  # the model's time for this review: its answers' times added up
    judged: CaseMatch | None = None  # by location and the judge, in a run with --judge

    @property
    def failed_requests(self) -> int:
        return len(self.run.result.failed)


@dataclass(frozen=True, slots=True)
class JudgedScore:
    """A model's figures counting only the findings the judge said describe the labelled bug,
    and what the judge took to say so (its own cost, apart from the model's)."""

    judge: str
    caught: int
    recall: float | None
    recall_interval: Interval | None
    hits: int
    precision: float | None
    precision_interval: Interval | None
    verdicts: int  # (finding, label) pairs the judge was asked about
    failed: int  # of which it gave no verdict (counted as "no")
    usage: Usage
    usd: float | None
    sent_answers: int
    cached_answers: int


@dataclass(frozen=True, slots=True)
class ModelScore:
    label: str
    model: str
    base_url: str
    cases: tuple[CaseScore, ...]
    labels: int
    caught: int
    recall: float | None
    recall_interval: Interval | None
    findings: int
    hits: int
    precision: float | None  # a lower bound: a finding nobody labelled may be right too
    precision_interval: Interval | None
    false_alarms: int
    usage: Usage
    usd: float | None  # Σ usage × price (or the endpoint's own figures); None when a price is unknown
    cached_answers: int
    sent_answers: int
    failed_requests: int
    seconds_median: float | None
    seconds_p90: float | None
    judged: JudgedScore | None = None
    context: str = "diff"  # REVIEWBOT_CONTEXT of this row
    # With function context: the cases that carry no head files, reviewed with their diff alone.
    without_heads: tuple[str, ...] = ()

    @property
    def false_alarms_per_case(self) -> float | None:
        return self.false_alarms / len(self.cases) if self.cases else None

    @property
    def usd_per_review(self) -> float | None:
        return self.usd / len(self.cases) if self.usd is not None and self.cases else None

    @property
    def usd_per_caught(self) -> float | None:
        return self.usd / self.caught if self.usd is not None and self.caught else None


@dataclass(frozen=True, slots=True)
class Comparison:
    """A model against the first model of the run, on the same cases."""

    label: str
    baseline: str
    recall: float | None
    baseline_recall: float | None
    difference: float | None  # recall minus the baseline's
    interval: Interval | None  # paired bootstrap over cases
    cost_ratio: float | None  # the model's cost ÷ the baseline's


def score_model(run: ModelRun, tolerance: int = DEFAULT_TOLERANCE, judge: ModelUnderTest | None = None) -> ModelScore:
    """A model's figures; with ``judge`` (the run's --judge), its figures by location and judge too."""
    model = run.model
    cases = tuple(_score_case(case_run, model.model, model.options.prices, tolerance) for case_run in run.cases)
    usage = sum((case.run.result.usage for case in cases), Usage())
    labels = sum(len(case.match.caught) for case in cases)
    caught = sum(case.match.labels_caught for case in cases)
    findings = sum(len(case.match.hits) for case in cases)
    hits = sum(sum(case.match.hits) for case in cases)
    calls = [call for case in cases for call in case.run.calls]
    seconds = sorted(case.seconds for case in cases if case.run.calls)
    return ModelScore(
        label=model.label,
        model=model.model,
        base_url=model.settings.base_url,
        cases=cases,
        labels=labels,
        caught=caught,
        recall=caught / labels if labels else None,
        recall_interval=wilson(caught, labels),
        findings=findings,
        hits=hits,
        precision=hits / findings if findings else None,
        precision_interval=wilson(hits, findings),
        false_alarms=findings - hits,
        usage=usage,
        usd=cost_report(usage, model.model, model.options.prices).usd,
        cached_answers=sum(1 for call in calls if call.cached),
        sent_answers=sum(1 for call in calls if not call.cached),
        failed_requests=sum(case.failed_requests for case in cases),
        seconds_median=statistics.median(seconds) if seconds else None,
        seconds_p90=statistics.quantiles(seconds, n=10, method="inclusive")[-1] if len(seconds) > 1 else None,
        context=model.options.context,
        without_heads=tuple(case.run.case.id for case in cases if not case.run.case.heads)
        if model.options.context == "function"
        else (),
        judged=_judged(cases, judge, labels, findings) if judge is not None else None,
    )


def _judged(cases: Sequence[CaseScore], judge: ModelUnderTest, labels: int, findings: int) -> JudgedScore:
    matches = [case.judged for case in cases if case.judged is not None]
    caught = sum(match.labels_caught for match in matches)
    hits = sum(sum(match.hits) for match in matches)
    judgements = [case.run.judged for case in cases if case.run.judged is not None]
    calls = [call for judged in judgements for call in judged.calls]
    usage = sum((call.usage for call in calls), Usage())
    return JudgedScore(
        judge=judge.label,
        caught=caught,
        recall=caught / labels if labels else None,
        recall_interval=wilson(caught, labels),
        hits=hits,
        precision=hits / findings if findings else None,
        precision_interval=wilson(hits, findings),
        verdicts=sum(len(judged.verdicts) for judged in judgements),
        failed=sum(judged.failed for judged in judgements),
        usage=usage,
        usd=cost_report(usage, judge.model, judge.options.prices).usd,
        sent_answers=sum(1 for call in calls if not call.cached),
        cached_answers=sum(1 for call in calls if call.cached),
    )


def compare(first: ModelScore, other: ModelScore) -> Comparison:
    """``other`` against ``first`` on the cases both reviewed (all of them, in one run)."""
    pairs = [
        PairedCase(len(mine.match.caught), mine.match.labels_caught, theirs.match.labels_caught)
        for mine, theirs in zip(first.cases, other.cases, strict=True)
    ]
    ratio = other.usd / first.usd if other.usd is not None and first.usd else None
    return Comparison(
        label=other.label,
        baseline=first.label,
        recall=other.recall,
        baseline_recall=first.recall,
        difference=recall_difference(pairs),
        interval=paired_bootstrap(pairs),
        cost_ratio=ratio,
    )


def score_run(
    runs: Sequence[ModelRun], tolerance: int = DEFAULT_TOLERANCE, judge: ModelUnderTest | None = None
) -> tuple[ModelScore, ...]:
    return tuple(score_model(run, tolerance, judge) for run in runs)


def comparisons(scores: Sequence[ModelScore]) -> tuple[Comparison, ...]:
    """Each model after the first against the first."""
    return tuple(compare(scores[0], score) for score in scores[1:])


def _score_case(case_run: CaseRun, model: str, prices: Prices, tolerance: int) -> CaseScore:
    result = case_run.result
    diff, labels = case_run.case.parsed(), case_run.case.labels
    match = match_case(diff, labels, result.findings, tolerance)
    judged = (
        match_case(diff, labels, result.findings, tolerance, case_run.judged.agreed)
        if case_run.judged is not None
        else None
    )
    usd = cost_report(result.usage, model, prices).usd
    return CaseScore(case_run, match, usd, sum(call.seconds for call in case_run.calls), judged)
