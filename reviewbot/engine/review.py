"""The one place that knows the order of the steps: filter, plan, ask, read, anchor, finish.

Everything here but :func:`execute` is pure. :func:`execute` talks to the model only through
the small :class:`Completer` protocol, so tests and benchmarks can hand it any endpoint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reviewbot.engine.anchor import FileIndex, anchor_findings, build_indexes, finalize
from reviewbot.engine.context import context_lines, extend_files
from reviewbot.engine.diff import Diff, DiffFile
from reviewbot.engine.filters import FilterRules, select_files
from reviewbot.engine.findings import CandidateFinding, ParsedReply, parse_reply
from reviewbot.engine.plan import Budget, Cap, Plan, PlannedRequest, PromptOptions, make_plan, split_request
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.pricing import format_usd
from reviewbot.engine.prompt import REPAIR_INSTRUCTION, ReviewContext, findings_schema
from reviewbot.engine.result import (
    FailedRequest,
    Finding,
    ModelCall,
    NotReviewed,
    Repairs,
    ReviewResult,
    SkippedFile,
)
from reviewbot.engine.usage import Usage
from reviewbot.errors import ConfigError, ContextLengthError, ModelAuthError, ModelError
from reviewbot.settings import Settings
from reviewbot.severity import Severity


class Reply(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def finish_reason(self) -> str | None: ...
    @property
    def model(self) -> str: ...  # the model that answered ("" when the client does not say)


class Completer(Protocol):
    """Anything that answers chat messages: the real model client, or a stand-in."""

    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str = ...
    ) -> Reply: ...


@dataclass(frozen=True, slots=True)
class ReviewOptions:
    """Everything that shapes a review, gathered from settings and command-line options."""

    model: str
    context_window: int
    max_output_tokens: int
    rules: FilterRules
    prices: Prices
    min_severity: Severity = Severity.LOW
    max_findings: int = 30
    include_nits: bool = False
    extra_instructions: str = ""
    max_cost: float | None = None
    max_input_tokens: int | None = None
    context: str = "diff"  # "function": hunks widened to their enclosing block when the head files are given
    context_max_tokens: int = 1_000

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewOptions:
        return cls(
            model=settings.model,
            context_window=settings.context_window,
            max_output_tokens=settings.max_output_tokens,
            rules=FilterRules(
                include=tuple(settings.include),
                exclude=tuple(settings.exclude),
                max_file_lines=settings.max_file_lines,
            ),
            prices=Prices.from_settings(settings),
            min_severity=settings.min_severity,
            max_findings=settings.max_findings,
            include_nits=settings.include_nits,
            extra_instructions=settings.extra_instructions,
            max_cost=settings.max_cost,
            max_input_tokens=settings.max_input_tokens,
            context=settings.context,
            context_max_tokens=settings.context_max_tokens,
        )

    def budget(self) -> Budget:
        caps: list[Cap] = []
        if self.max_input_tokens is not None:
            caps.append(
                Cap(
                    self.max_input_tokens,
                    float,
                    f"the cap of {self.max_input_tokens:,} prompt tokens (REVIEWBOT_MAX_INPUT_TOKENS)",
                )
            )
        if self.max_cost is not None:
            caps.append(self._cost_cap(self.max_cost))
        return Budget(self.context_window, self.max_output_tokens, tuple(caps))

    def _cost_cap(self, max_cost: float) -> Cap:
        # The same price the review will be charged at (settings, table or database), as of now.
        quote = self.prices.quote(self.model)
        if quote is None or quote.price.input is None or quote.price.output is None:
            raise ConfigError(
                f"REVIEWBOT_MAX_COST needs the input and output prices of {self.model}; "
                "set REVIEWBOT_INPUT_PRICE and REVIEWBOT_OUTPUT_PRICE (USD per million tokens)"
            )

        def request_cost(tokens: int) -> float:
            usd = quote.request_cost(tokens)
            assert usd is not None  # both sides are known
            return usd

        return Cap(max_cost, request_cost, f"the cost cap of {format_usd(max_cost)} (REVIEWBOT_MAX_COST)")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A review ready to send: what will be reviewed, what will not, and the requests."""

    diff: Diff
    reviewable: tuple[DiffFile, ...]
    skipped: tuple[SkippedFile, ...]
    plan: Plan
    options: ReviewOptions
    # With function context: files whose head text was not given or did not match the diff,
    # reviewed with the diff alone.
    without_context: tuple[str, ...] = ()


def prepare(
    diff: Diff,
    options: ReviewOptions,
    context: ReviewContext | None = None,
    heads: Mapping[str, str] | None = None,
) -> Prepared:
    """Filter and plan: everything up to the first model call, with no I/O.

    ``heads`` maps paths to their text in the head revision; with ``options.context`` set to
    ``function`` each hunk of those files is widened to its enclosing function or class.
    """
    reviewable, skipped = select_files(diff, options.rules)
    without: tuple[str, ...] = ()
    widened = False
    if options.context == "function" and heads is not None:
        widened_files, without = extend_files(reviewable, heads, options.context_max_tokens)
        reviewable = list(widened_files)
        widened = any(context_lines(file) for file in reviewable)
    prompt_options = PromptOptions(
        context=context or ReviewContext(),
        include_nits=options.include_nits,
        extra_instructions=options.extra_instructions,
        function_context=widened,
    )
    plan = make_plan(reviewable, options.budget(), prompt_options)
    return Prepared(diff, tuple(reviewable), tuple(skipped), plan, options, without)


ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class _Outcome:
    candidates: tuple[CandidateFinding, ...]
    usage: Usage
    repairs: Repairs
    failure: str | None
    calls: tuple[ModelCall, ...]
    # Why the request's lines were not all reviewed though its findings count: the answer was cut.
    cut: str | None = None
    # The endpoint refused the request as too long for the model: a smaller one may pass.
    too_long: bool = False


@dataclass(frozen=True, slots=True)
class _Asked:
    """A planned request, or a part of one split off after a cut answer, and how it went."""

    request: PlannedRequest
    outcome: _Outcome


async def execute(
    prepared: Prepared, client: Completer | None, on_progress: ProgressCallback | None = None
) -> ReviewResult:
    """Send the planned requests (the client bounds concurrency) and assemble the review.

    A request that fails after the client's retries is reported and its lines listed as not
    reviewed; the rest of the review still comes out. A refused API key stops everything.
    ``client`` may be None when the plan has no requests (everything was skipped).
    """
    if client is None and prepared.plan.requests:
        raise ValueError("execute() needs a model client when the plan has requests")
    options = prepared.options
    schema = findings_schema(options.include_nits)
    total = len(prepared.plan.requests)
    done = 0

    room = _CapRoom.of(prepared.plan)

    async def one(request: PlannedRequest) -> list[_Asked]:
        nonlocal done
        assert client is not None
        asked = await _ask_splitting(client, request, schema, prepared, room, split_too_long=True)
        done += 1
        if on_progress is not None:
            on_progress(done, total)
        return asked

    asked = [item for items in await gather_or_cancel([one(r) for r in prepared.plan.requests]) for item in items]

    indexes = build_indexes(prepared.reviewable)
    candidates: list[Finding] = []
    usage = Usage()
    repairs = Repairs()
    failed: list[FailedRequest] = []
    not_reviewed = list(prepared.plan.not_reviewed)
    calls: list[ModelCall] = []
    for item in asked:
        request, outcome = item.request, item.outcome
        calls.extend(outcome.calls)
        usage += outcome.usage
        repairs += outcome.repairs
        if outcome.failure is not None:
            failed.append(FailedRequest(request.index, outcome.failure))
            not_reviewed.extend(_request_lines(request, f"the model request failed: {outcome.failure}"))
            continue
        if outcome.cut is not None:
            not_reviewed.extend(_request_lines(request, outcome.cut))
        anchored, anchor_repairs = anchor_findings(outcome.candidates, _request_indexes(request, indexes))
        candidates.extend(anchored)
        repairs += anchor_repairs
    findings, final_repairs = finalize(
        candidates,
        min_severity=options.min_severity,
        max_findings=options.max_findings,
        include_nits=options.include_nits,
        file_order=[file.path for file in prepared.diff.files],
    )
    return ReviewResult(
        findings=tuple(findings),
        skipped=prepared.skipped,
        not_reviewed=tuple(not_reviewed),
        repairs=repairs + final_repairs,
        usage=usage,
        model=options.model,
        requests_planned=total,
        failed=tuple(failed),
        calls=tuple(calls),
    )


@dataclass(slots=True)
class _CapRoom:
    """How much of each of the plan's caps (REVIEWBOT_MAX_COST, REVIEWBOT_MAX_INPUT_TOKENS) the
    requests sent so far are estimated to take: asking again in halves must stay under them too."""

    caps: tuple[Cap, ...]
    used: list[float]

    @classmethod
    def of(cls, plan: Plan) -> _CapRoom:
        caps = plan.budget.caps
        return cls(caps, [sum(cap.measure(request.estimated_tokens) for request in plan.requests) for cap in caps])

    def take(self, requests: Sequence[PlannedRequest]) -> Cap | None:
        """Count ``requests`` against the caps; or, counting nothing, the cap they would pass."""
        costs = [sum(cap.measure(request.estimated_tokens) for request in requests) for cap in self.caps]
        for cap, used, cost in zip(self.caps, self.used, costs, strict=True):
            if used + cost > cap.limit:
                return cap
        self.used = [used + cost for used, cost in zip(self.used, costs, strict=True)]
        return None


async def _ask_splitting(
    client: Completer,
    request: PlannedRequest,
    schema: dict[str, Any],
    prepared: Prepared,
    room: _CapRoom,
    *,
    split_too_long: bool,
) -> list[_Asked]:
    """Ask, and when the answer was cut at the token limit, ask again in two halves (down to one
    hunk); when the endpoint found the request too long for the model, split it once. The cut
    answer's complete findings are kept either way. No split passes the plan's caps."""
    options = prepared.options
    outcome = await _ask(client, request, schema, options)
    if not (outcome.cut or (outcome.too_long and split_too_long)):
        return [_Asked(request, outcome)]
    prompt = prepared.plan.prompt
    halves = split_request(request, prompt) if prompt is not None else None
    if halves is None:
        return [_Asked(request, outcome)]
    if (cap := room.take(halves)) is not None:
        said = f"; not asked again in halves: {cap.reason} would be passed"
        return [
            _Asked(
                request,
                dataclasses.replace(
                    outcome,
                    cut=f"{outcome.cut}{said}" if outcome.cut else None,
                    failure=f"{outcome.failure}{said}" if outcome.failure else None,
                ),
            )
        ]
    first = dataclasses.replace(outcome, cut=None, failure=None, too_long=False)
    # A request too long once is split once: its halves' own refusals are failures that say why.
    again = split_too_long and not outcome.too_long
    parts = await gather_or_cancel(
        [_ask_splitting(client, half, schema, prepared, room, split_too_long=again) for half in halves]
    )
    asked = [item for part in parts for item in part]
    # The halves reviewed the cut answer's lines again: a finding they made on a line it already
    # had is the same finding in other words, and theirs (complete) is kept.
    again_at = {(c.path, c.line, c.side) for item in asked for c in item.outcome.candidates}
    kept = tuple(c for c in first.candidates if (c.path, c.line, c.side) not in again_at)
    return [_Asked(request, dataclasses.replace(first, candidates=kept)), *asked]


async def gather_or_cancel(jobs: Sequence[Any]) -> list[Any]:
    """Run all jobs; if one raises (a refused key), cancel the others and re-raise."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _ask(client: Completer, request: PlannedRequest, schema: dict[str, Any], options: ReviewOptions) -> _Outcome:
    calls: list[ModelCall] = []
    model = options.model

    async def call(messages: list[dict[str, str]]) -> tuple[Reply, ParsedReply]:
        started = time.monotonic()
        try:
            reply = await client.complete(messages, schema)
        except ModelError as exc:
            seconds = time.monotonic() - started
            calls.append(ModelCall(request.index, model, Usage(), seconds, "error", str(exc), exc.status))
            raise
        parsed = parse_reply(reply.text)
        outcome = "ok" if parsed.problem is None else "invalid_json"
        # A fallback may have answered: the call is its, and is priced by its price.
        answered_by = reply.model or model
        calls.append(ModelCall(request.index, answered_by, reply.usage, time.monotonic() - started, outcome))
        return reply, parsed

    messages = list(request.messages)
    try:
        reply, parsed = await call(messages)
        usage = reply.usage
        if reply.finish_reason == "length":
            # Asking again for the same answer would be cut again; what was complete is kept.
            limit = f"the answer was cut at the {options.max_output_tokens:,}-token limit (REVIEWBOT_MAX_OUTPUT_TOKENS)"
            if parsed.problem is not None:
                # Nothing complete came back: a reasoning model may have spent the limit thinking.
                failure = (
                    f"{limit} before it held a complete finding; raise the limit, or set "
                    "REVIEWBOT_DISABLE_THINKING=true for a reasoning model"
                )
                return _Outcome((), usage, Repairs(), failure, tuple(calls), cut=failure)
            cut = f"{limit}; findings after the cut are missing"
            return _Outcome(parsed.findings, usage, Repairs(dropped=parsed.dropped), None, tuple(calls), cut=cut)
        if parsed.problem is None:
            return _Outcome(parsed.findings, usage, Repairs(dropped=parsed.dropped), None, tuple(calls))
        # One repair round: show the model its answer and what was wrong with it.
        retry = [
            *messages,
            {"role": "assistant", "content": reply.text},
            {"role": "user", "content": REPAIR_INSTRUCTION.format(problem=parsed.problem)},
        ]
        second, reparsed = await call(retry)
        usage += second.usage
        if reparsed.problem is None:
            repairs = Repairs(dropped=reparsed.dropped, invalid_json=1)
            return _Outcome(reparsed.findings, usage, repairs, None, tuple(calls))
        failure = f"the answer was not valid JSON twice ({reparsed.problem})"
        return _Outcome((), usage, Repairs(invalid_json=2), failure, tuple(calls))
    except ModelAuthError:
        raise
    except ModelError as exc:
        usage = sum((c.usage for c in calls), Usage())
        too_long = isinstance(exc, ContextLengthError)
        return _Outcome((), usage, Repairs(), str(exc), tuple(calls), too_long=too_long)


def _request_indexes(request: PlannedRequest, indexes: dict[str, FileIndex]) -> dict[str, FileIndex]:
    """Only the files a request showed: a finding on a file the model never saw is not trusted."""
    paths = {chunk.file.path for chunk in request.chunks} | {
        chunk.file.old_path for chunk in request.chunks if chunk.file.old_path
    }
    return {name: index for name, index in indexes.items() if name in paths}


def _request_lines(request: PlannedRequest, reason: str) -> list[NotReviewed]:
    return [NotReviewed(chunk.file.path, chunk.first_line, chunk.last_line, reason) for chunk in request.chunks]
