"""Run the review engine on every case for every model, as ``reviewbot review`` would review it.

Models run side by side and the cases of a model all at once: each model's client bounds its
requests in flight (``REVIEWBOT_CONCURRENCY``, or ``concurrency=`` in its spec) and retries
429, 5xx and timeouts itself (``max_retries``). A request that still fails leaves its lines
unreviewed, as in a review; it is not cached, so the next run asks it again. A refused key
stops the run. With a judge, each review's findings that sit near a label go to the judge
as soon as the review is done, under the same cache and cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reviewbot.engine.result import ReviewResult
from reviewbot.engine.review import Prepared, execute, gather_or_cancel
from reviewbot.eval.cache import AnswerCache
from reviewbot.eval.cases import Case
from reviewbot.eval.completer import CachingCompleter, CallRecord, Endpoint
from reviewbot.eval.judge import Judge, Judged
from reviewbot.eval.matching import DEFAULT_TOLERANCE
from reviewbot.eval.models import ModelUnderTest
from reviewbot.eval.plan import ModelPlan, RunPlan
from reviewbot.eval.spend import CostGuard

# (model label, cases done, cases in all), after each case.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class CaseRun:
    """One model's review of one case, and the answers it took."""

    case: Case
    result: ReviewResult
    calls: tuple[CallRecord, ...]
    judged: Judged | None = None  # the judge's verdicts, in a run with --judge


@dataclass(frozen=True, slots=True)
class ModelRun:
    model: ModelUnderTest
    cases: tuple[CaseRun, ...]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    models: tuple[ModelRun, ...]
    spent_usd: float  # what this run paid for the answers it did not find in the cache


async def run_plan(
    plan: RunPlan,
    cache: AnswerCache,
    *,
    max_cost: float | None = None,
    progress: Progress | None = None,
    judge: ModelUnderTest | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> RunOutcome:
    """Review every prepared case with its model, and have ``judge`` (if any) judge the findings
    within ``tolerance`` lines of a label; raise CostCapReached past ``max_cost``."""
    guard = CostGuard(max_cost)
    judging = Judge(judge, cache, guard, tolerance) if judge is not None else None
    try:
        runs = await gather_or_cancel(
            [_run_model(model_plan, cache, guard, progress, judging) for model_plan in plan.models]
        )
    finally:
        if judging is not None:
            await judging.aclose()
    return RunOutcome(tuple(runs), guard.spent)


async def _run_model(
    plan: ModelPlan, cache: AnswerCache, guard: CostGuard, progress: Progress | None, judge: Judge | None
) -> ModelRun:
    endpoint = Endpoint(plan.model)
    total = len(plan.prepared)
    done = 0

    async def one(case: Case, prepared: Prepared) -> CaseRun:
        nonlocal done
        completer = CachingCompleter(endpoint, cache, guard)
        result = await execute(prepared, completer if prepared.plan.requests else None)
        judged = await judge.judge(case, result.findings) if judge is not None else None
        done += 1
        if progress is not None:
            progress(plan.model.label, done, total)
        return CaseRun(case, result, tuple(completer.calls), judged)

    try:
        cases = await gather_or_cancel([one(case, prepared) for case, prepared in plan.prepared])
    finally:
        await endpoint.aclose()
    return ModelRun(plan.model, tuple(cases))
