"""What an eval run will send and cost, worked out before anything is sent.

Each case is prepared for each model exactly as ``reviewbot review`` prepares a diff (filters,
plan, prompt), and each planned request is priced as the dry run prices it (its estimated prompt
tokens, and a typical answer). Requests already in the cache cost nothing. Repair rounds and
requests split after a cut answer cannot be known in advance, so the figure is an estimate; the
cap itself is enforced request by request while the run goes (see :mod:`reviewbot.eval.spend`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reviewbot.engine.pricing import format_usd
from reviewbot.engine.prompt import ReviewContext, findings_schema
from reviewbot.engine.review import Prepared, prepare
from reviewbot.errors import ConfigError
from reviewbot.eval.cache import AnswerCache
from reviewbot.eval.cases import Case, CaseSet
from reviewbot.eval.completer import price_needed, request_for
from reviewbot.eval.models import ModelUnderTest
from reviewbot.render.json_out import plan_costs


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """One model's share of a run: every case prepared, and the estimate of what it sends."""

    model: ModelUnderTest
    prepared: tuple[tuple[Case, Prepared], ...]
    requests: int  # planned requests over all cases
    cached: int  # of which the cache already holds the answer
    input_tokens: int  # estimated prompt tokens of the requests still to send
    output_tokens: int  # estimated answer tokens of the requests still to send
    usd: float | None  # estimated cost of the requests still to send; None when a price is unknown

    @property
    def to_send(self) -> int:
        return self.requests - self.cached


@dataclass(frozen=True, slots=True)
class RunPlan:
    cases: int
    labels: int
    models: tuple[ModelPlan, ...]

    @property
    def usd(self) -> float | None:
        """The estimated cost of the whole run; None when any model's is unknown."""
        costs = [model.usd for model in self.models]
        return None if None in costs else sum(cost for cost in costs if cost is not None)


def refuse_over_cap(plan: RunPlan, max_cost: float) -> None:
    """Raise :class:`ConfigError`, before anything is sent, when the run is estimated past
    ``max_cost``, or when a model with requests to send has no known price."""
    for model in plan.models:
        if model.usd is None:
            raise ConfigError(price_needed(model.model))
    estimate = plan.usd or 0.0
    if estimate > max_cost:
        raise ConfigError(
            f"the run is estimated at {format_usd(estimate)}, over --max-cost {format_usd(max_cost)}; nothing was "
            "sent. Raise the cap, or run fewer cases or models"
        )


def plan_run(case_set: CaseSet, models: Sequence[ModelUnderTest], cache: AnswerCache) -> RunPlan:
    return RunPlan(
        cases=len(case_set.cases),
        labels=case_set.labels,
        models=tuple(_plan_model(case_set, model, cache) for model in models),
    )


def _plan_model(case_set: CaseSet, model: ModelUnderTest, cache: AnswerCache) -> ModelPlan:
    options = model.options
    schema = findings_schema(options.include_nits)
    quote = options.prices.quote(model.model)
    label = quote.price.label if quote is not None else model.model
    prepared: list[tuple[Case, Prepared]] = []
    requests = cached = input_tokens = output_tokens = 0
    usd: float | None = 0.0
    for case in case_set.cases:
        # Function context reads the case's head files; a case without them is reviewed with its diff alone.
        heads = case.head_texts() if options.context == "function" else None
        ready = prepare(case.parsed(), options, ReviewContext(title=case.title, description=case.description), heads)
        prepared.append((case, ready))
        costs = plan_costs(ready)
        for request, request_costs in zip(ready.plan.requests, costs.requests, strict=True):
            requests += 1
            if cache.get(request_for(model, list(request.messages), schema)) is not None:
                cached += 1
                continue
            input_tokens += request.estimated_tokens
            output_tokens += costs.output_tokens
            cost = request_costs[label]
            usd = None if usd is None or cost is None else usd + cost
    return ModelPlan(model, tuple(prepared), requests, cached, input_tokens, output_tokens, usd)
