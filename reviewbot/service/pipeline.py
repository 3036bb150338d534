"""The one review pipeline: a pull request on GitHub → at most one posted review, or why not.

The worker's review job (:mod:`reviewbot.service.job`) and ``reviewbot review --pr`` both run it,
so both read the repository's config, review incrementally, check budgets and keep the ledger the
same way. The order matters for the guarantees GitHub users see:
1. a review job for a head that moved on is dropped (the newer push has its own job);
2. a review of ours already on the PR for this head (a worker died after posting) ends the run;
3. a stale pending review of ours, which would block posting, is deleted;
4. the rules come from the base branch, so a PR cannot change how it is reviewed;
5. only commits new since the last reviewed head are reviewed, anchored on the PR's diff;
6. before the model is called, the estimated cost is checked against the monthly budgets; over
   one, a note takes the review's place; and a job for a newer head queued meanwhile ends this
   one, whose review could not be posted anyway;
7. every model request made is written to the cost ledger, posted or not, and a part that
   failed is logged with its reason (the review only counts them);
8. the App's job keeps the model's result until the job ends, so a retry after a failed post
   posts it without calling the model again (and the ledger counts the spend once);
9. the head is checked again before posting, and findings already on the PR are left out;
10. a POST that may have landed is checked for before it is retried.

A run for a person (``--pr``) differs where the App's bookkeeping would be wrong for them: the
last reviewed head and the findings already raised are read from their own reviews on the pull
request, never written to the store (which may be the App's); their pending review is theirs to
submit, not ours to delete; a budget stops it without a note; and ``enabled = false`` does not
stop a review someone asked for by hand. The store, when there is one, keeps the budgets and the
ledger for both.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Final, Literal, ParamSpec, TypeVar

import anyio

from reviewbot.engine.context import head_paths
from reviewbot.engine.diff import parse_diff
from reviewbot.engine.fallback import ModelChain
from reviewbot.engine.incremental import restrict_to_changes
from reviewbot.engine.pricing import CostReport, review_cost
from reviewbot.engine.prompt import ReviewContext
from reviewbot.engine.repo_config import CONFIG_PATH, RepoConfig, apply_repo_config, parse_repo_config
from reviewbot.engine.result import ReviewResult
from reviewbot.engine.review import Completer, Prepared, ReviewOptions, execute, prepare
from reviewbot.errors import GitHubRateLimited, GitHubTransient
from reviewbot.github.client import GitHubClient
from reviewbot.github.draft import (
    ReviewContextInfo,
    build_review,
    fingerprint_of_comment,
    fingerprints_of_review,
    head_marker_of,
)
from reviewbot.github.head_files import fetch_head_files
from reviewbot.github.notes import is_failure_note
from reviewbot.github.posting import (
    ReviewRefused,
    landed_after_all,
    our_reviews,
    post_review,
    posted_fingerprints,
    review_for_head,
    review_for_job,
)
from reviewbot.github.pulls import PullRequest
from reviewbot.github.reviews import PostedReview
from reviewbot.money import budgets, ledger
from reviewbot.render.text import plural
from reviewbot.service import metrics
from reviewbot.service.kept import KeptReview, keep, kept_for
from reviewbot.settings import Settings
from reviewbot.store.records import COMMAND_TRIGGER, Job
from reviewbot.store.store import Store

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("reviewbot.pipeline")

ModelFactory = Callable[[Settings], AbstractAsyncContextManager[Completer]]

#: The ledger's and the budgets' installation for reviews run with a personal token (``--pr``).
NO_INSTALLATION: Final = 0


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """Which pull request to review, and on whose behalf."""

    repo: str
    number: int
    installation_id: int = NO_INSTALLATION
    job_id: int | None = None  # the App's queued job
    queued_head: str = ""  # the head the job was queued for; "" for none in particular
    command: bool = False  # a /review command: marked with its job, reviews a reviewed head again
    asked: bool = False  # a person asked (a command, or the CLI): drafts are reviewed too
    full_review: bool = False  # the whole pull request, not only what is new since the last review
    post: bool = True
    dry_run: bool = False  # stop once the plan is made; no model, no post

    @property
    def by_app(self) -> bool:
        """The App's own job, which keeps the store's record of reviewed heads and findings."""
        return self.job_id is not None

    @classmethod
    def of_job(cls, job: Job) -> ReviewRequest:
        command = job.trigger == COMMAND_TRIGGER
        return cls(
            repo=job.repo,
            number=job.pr_number,
            installation_id=job.installation_id,
            job_id=job.id,
            queued_head=job.head_sha,
            command=command,
            asked=command,
            full_review=job.full_review or command,
        )


@dataclass(frozen=True, slots=True)
class Reviewed:
    """How a run ended: ``done`` (posted, or nothing more to do), ``dropped`` (a reason not to
    review), or ``failed`` (every model request failed: nothing worth posting)."""

    state: Literal["done", "dropped", "failed"]
    note: str
    pull: PullRequest | None = None
    config: RepoConfig | None = None
    prepared: Prepared | None = None
    result: ReviewResult | None = None
    review_id: int | None = None  # the head's review, posted by this run or found on the PR
    posted: bool = False  # this run posted review_id
    refused: bool = False  # dropped because GitHub refused the review in every form


@dataclass(frozen=True, slots=True)
class _Start:
    me: str  # the login our reviews appear under
    ours: list[PostedReview]  # our reviews already on the pull request


@dataclass(frozen=True, slots=True)
class _Engine:
    prepared: Prepared | None  # None for a result kept by an earlier attempt
    result: ReviewResult | None  # None for a dry run
    info: ReviewContextInfo
    cost: CostReport | None = None  # None for a dry run


class ReviewPipeline:
    """Runs :class:`ReviewRequest`\\ s through GitHub, the engine, the budgets and the ledger."""

    def __init__(
        self,
        settings: Settings,
        github: GitHubClient,
        store: Store | None,
        *,
        model: ModelFactory | None = None,
    ) -> None:
        self._settings = settings
        self._github = github
        self._store = store
        self._model = model or ModelChain.from_settings

    async def run(self, request: ReviewRequest) -> Reviewed:
        github = self._github
        pr = await github.get_pull(request.repo, request.number)
        start = None
        if request.post:
            started = await self._start(request, pr)
            if isinstance(started, Reviewed):
                return started
            start = started
        head = pr.head_sha
        config = await self._rules(request, pr)
        if isinstance(config, Reviewed):
            return config
        engine = await self._review(request, pr, config, start)
        if isinstance(engine, Reviewed):
            return engine
        prepared, result = engine.prepared, engine.result
        if result is None:
            return Reviewed("done", "dry run", pr, config, prepared)
        if result.all_requests_failed:
            reasons = "; ".join(sorted({failure.reason for failure in result.failed}))
            return Reviewed("failed", f"every model request failed: {reasons}", pr, config, prepared, result)
        if start is None:
            return Reviewed("done", "reviewed; not posted", pr, config, prepared, result)

        current = await github.get_pull(pr.repo, pr.number)
        if current.head_sha != head:
            note = f"head moved on to {current.head_sha[:7]} during the review"
            return Reviewed("dropped", note, pr, config, prepared, result)
        if not request.command and (landed := review_for_head(await our_reviews(github, pr, start.me), head)):
            # Another run for this head (the newer push's own job, or one that took over an
            # expired lease) went alongside this one and posted first.
            note = f"review {landed.id} for {head[:7]} was posted by another job"
            return Reviewed("done", note, pr, config, prepared, result, review_id=landed.id)
        try:
            review_id, comments = await self._post(request, pr, engine, config, start)
        except ReviewRefused as refused:
            return Reviewed("dropped", str(refused), pr, config, prepared, result, refused=True)
        note = f"posted review {review_id} with {plural(comments, 'comment')} for {head[:7]}"
        return Reviewed("done", note, pr, config, prepared, result, review_id=review_id, posted=True)

    async def _rules(self, request: ReviewRequest, pr: PullRequest) -> RepoConfig | Reviewed:
        """Step 4: the repository's config from the base branch, and whether it lets this run review."""
        config = parse_repo_config(
            await self._github.get_file(pr.repo, CONFIG_PATH, pr.base_ref),
            self._settings.allowed_models,
            repo_budget=self._settings.monthly_budget_per_repo,
        )
        # A review someone asked for by hand goes ahead; the App's and the action's do not.
        if not config.enabled and (request.by_app or not request.asked):
            return Reviewed("dropped", f"reviews are turned off in {CONFIG_PATH}", pr, config)
        drafts_wanted = config.review_drafts if config.review_drafts is not None else self._settings.review_drafts
        if pr.draft and not drafts_wanted and not request.asked:
            return Reviewed("dropped", "the pull request is a draft", pr, config)
        return config

    async def _start(self, request: ReviewRequest, pr: PullRequest) -> _Start | Reviewed:
        """Steps 1-3: whether to review at all, and a clear way for it if so."""
        if pr.state != "open":
            return Reviewed("dropped", "the pull request is closed", pr)
        head = pr.head_sha
        store = self._store
        adopted = bool(request.queued_head) and request.queued_head != head and not request.command
        if adopted and store is not None:
            # The job for the newer head reviews it. But deliveries can arrive out of order, and a
            # queued job may have taken the older of two heads: with no newer job, this one
            # reviews the head the pull request has now, or that head would never be reviewed.
            newer = await _in_thread(
                store.newer_job_exists, pr.repo, pr.number, request.queued_head, after_job_id=request.job_id
            )
            if newer:
                note = f"head {request.queued_head[:7]} is stale; a job for {head[:7]} is queued"
                return Reviewed("dropped", note, pr)

        me = await self._github.viewer_login()
        ours = await our_reviews(self._github, pr, me)
        if request.command and request.job_id is not None and (repeat := review_for_job(ours, request.job_id)):
            return Reviewed("done", f"review {repeat.id} for /review job {request.job_id} was already posted", pr)
        # A person's run does not take its own budget note for a review: once the budget allows, it reviews.
        reviews = ours if request.by_app else [review for review in ours if not budgets.is_budget_note(review.body)]
        if not request.command and (landed := review_for_head(reviews, head)) is not None:
            # A note is no review: its commits stay unreviewed.
            if store is not None and request.by_app and not budgets.is_budget_note(landed.body):
                await _in_thread(store.record_review, pr.repo, pr.number, head, landed.id, [])
            return Reviewed("done", f"review {landed.id} for {head[:7]} was already posted", pr, review_id=landed.id)
        pending = [review for review in ours if review.state == "PENDING"]
        if pending and not request.by_app:
            # GitHub allows one pending review per person, and it may hold their own comments.
            return Reviewed("dropped", "you have a pending review on this pull request; submit or discard it first", pr)
        for review in pending:  # ours alone: the App's login posts only what reviewbot writes
            await self._github.delete_pending_review(pr.repo, pr.number, review.id)
        return _Start(me, ours)

    async def _last_reviewed_head(
        self, request: ReviewRequest, pr: PullRequest, ours: list[PostedReview]
    ) -> str | None:
        if self._store is not None and request.by_app:
            return await _in_thread(self._store.last_reviewed_head, pr.repo, pr.number)
        reviewed = [
            review
            for review in ours
            if review.state != "PENDING"
            and not budgets.is_budget_note(review.body)
            and not is_failure_note(review.body)
            and head_marker_of(review.body)
        ]
        return head_marker_of(max(reviewed, key=lambda review: review.id).body) if reviewed else None

    async def _review(
        self, request: ReviewRequest, pr: PullRequest, config: RepoConfig, start: _Start | None
    ) -> _Engine | Reviewed:
        """Steps 5-8: the result kept by an earlier attempt of the job, or the engine's now."""
        # Kept only by the App's jobs that post: nothing else is tried again.
        store, job_id = (self._store, request.job_id) if start is not None else (None, None)
        if store is not None and job_id is not None:
            kept = await _in_thread(kept_for, store, job_id, pr.head_sha)
            if kept is not None:
                log.info("posting the result an earlier attempt kept for %s, without the model", pr.head_sha[:7])
                return _Engine(None, kept.result, kept.info, kept.cost)
        try:
            engine = await self._run_engine(request, pr, config, start)
        except _Superseded:
            note = "a job for a newer head was queued while the diff was fetched; the model was not asked for this one"
            return Reviewed("dropped", note, pr, config)
        except _OverBudget as over:
            if start is None or not request.by_app:  # a person's run: no note on the PR
                return Reviewed("dropped", f"{_over_budget(over.check)}; no model was called", pr, config)
            return await self._post_budget_note(pr, config, over.check, start)
        result, cost = engine.result, engine.cost
        if store is None or job_id is None or result is None or cost is None or result.all_requests_failed:
            return engine  # nothing to keep (a result whose every part failed is asked for again)
        await _in_thread(keep, store, job_id, KeptReview(result, cost, engine.info))
        return engine

    async def _run_engine(
        self, request: ReviewRequest, pr: PullRequest, config: RepoConfig, start: _Start | None
    ) -> _Engine:
        github = self._github
        fetched = await github.get_pull_diff(pr)
        # Parsing and planning a big diff takes a while; the event loop must keep serving webhooks.
        diff = await anyio.to_thread.run_sync(parse_diff, fetched.text)
        incremental_base = None
        if start is not None and not request.full_review:
            last = await self._last_reviewed_head(request, pr, start.ours)
            if last and last != pr.head_sha:
                changes = await github.compare_diff(pr.repo, last, pr.head_sha)
                # None: the old head is gone (a force-push); the whole PR is reviewed again.
                if changes is not None:
                    diff = restrict_to_changes(diff, await anyio.to_thread.run_sync(parse_diff, changes))
                    incremental_base = last
        options = apply_repo_config(ReviewOptions.from_settings(self._settings), config)
        heads = None
        if options.context == "function":
            heads = await fetch_head_files(github, pr.repo, pr.head_sha, head_paths(diff, options.rules))
        context = ReviewContext(title=pr.title, description=pr.body)
        prepared = await _in_thread(prepare, diff, options, context, heads)
        info = ReviewContextInfo(
            head_sha=pr.head_sha,
            incremental_base=incremental_base,
            files_reviewed=len(prepared.reviewable),
            config_problems=config.problems,
            omitted=fetched.omitted,
            job_id=request.job_id if request.command else None,
        )
        if request.dry_run:
            return _Engine(prepared, None, info)
        if self._store is not None:
            budget = await _in_thread(
                budgets.check_budgets,
                self._store,
                budgets.limits(self._settings, config),
                installation_id=request.installation_id,
                repo=pr.repo,
                plan=prepared.plan,
                model=options.model,
                prices=options.prices,
                now=time.time(),
            )
            if budget.exceeded is not None:
                raise _OverBudget(budget)
            if budget.unchecked:
                info = dataclasses.replace(info, notes=(budgets.unchecked_note(budget, self._settings.model),))
        if prepared.plan.requests and await self._superseded(request, pr):
            raise _Superseded
        if prepared.plan.requests:
            async with self._model(self._settings.model_copy(update={"model": options.model})) as client:
                result = await execute(prepared, client)
        else:
            result = await execute(prepared, None)
        if self._store is not None:
            # Recorded whether or not the review gets posted: the money was spent.
            origin = ledger.Origin(request.installation_id, pr.repo, pr.number, pr.head_sha, id=request.job_id)
            await _in_thread(ledger.record_calls, self._store, origin, result.calls, options.prices)
        metrics.observe_model_calls(result.calls, options.prices)
        _log_failed_parts(prepared, result)
        return _Engine(prepared, result, info, review_cost(result, options.prices))

    async def _superseded(self, request: ReviewRequest, pr: PullRequest) -> bool:
        """Whether a job for a newer head was queued since this one started. Its review could not be
        posted (the head is checked again before posting), so the model is not paid for it."""
        if self._store is None or not request.by_app or request.command:
            return False
        return await _in_thread(
            self._store.newer_job_exists, pr.repo, pr.number, pr.head_sha, after_job_id=request.job_id
        )

    async def _post_budget_note(
        self, pr: PullRequest, config: RepoConfig, check: budgets.BudgetCheck, start: _Start
    ) -> Reviewed:
        """Post the over-budget note as the head's one review (no model was called)."""
        status = check.exceeded
        assert status is not None
        body = budgets.over_budget_body(check, status, pr.head_sha, repo_budget=self._settings.monthly_budget_per_repo)
        github = self._github
        try:
            review_id = await github.create_review(pr.repo, pr.number, commit_id=pr.head_sha, body=body, comments=[])
        except (GitHubTransient, GitHubRateLimited):
            # As for a review: the POST may have landed though its answer was lost.
            landed = await landed_after_all(
                github,
                pr,
                me=start.me,
                seen={review.id for review in start.ours},
                keep=lambda review: budgets.is_budget_note(review.body),
            )
            if landed is None:
                raise
            review_id = landed.id
        # Not recorded as a reviewed head: once the budget allows, the next review covers these commits.
        note = f"{_over_budget(check)}; posted note {review_id} instead of a review for {pr.head_sha[:7]}"
        return Reviewed("done", note, pr, config, review_id=review_id, posted=True)

    async def _post(
        self, request: ReviewRequest, pr: PullRequest, engine: _Engine, config: RepoConfig, start: _Start
    ) -> tuple[int, int]:
        """Post the review; its ID and how many inline comments it has."""
        result, cost = engine.result, engine.cost
        assert result is not None
        assert cost is not None
        store = self._store if request.by_app else None
        known = await posted_fingerprints(self._github, pr, start.me, start.ours)
        if store is not None:
            known |= set(await _in_thread(store.known_fingerprints, pr.repo, pr.number))
        draft = build_review(
            result,
            cost,
            engine.info,
            known_fingerprints=known,
            max_comments=config.max_comments or self._settings.max_comments,
        )
        posted = await post_review(self._github, pr, draft, me=start.me, seen=start.ours, job_id=engine.info.job_id)
        if store is not None:
            # Only what GitHub shows: a finding cut from an over-long body must not count as raised.
            shown = fingerprints_of_review(posted.body) | {
                print_ for comment in draft.comments if (print_ := fingerprint_of_comment(comment.body))
            }
            await _in_thread(store.record_review, pr.repo, pr.number, pr.head_sha, posted.review_id, sorted(shown))
        return posted.review_id, len(draft.comments)


def _log_failed_parts(prepared: Prepared, result: ReviewResult) -> None:
    """One line per part the model failed: the review says only how many, the reasons are the operator's."""
    requests = prepared.plan.requests
    for failed in result.failed:
        calls = [call for call in result.calls if call.request_index == failed.index]
        last = calls[-1] if calls else None
        if last is not None and last.outcome == "invalid_json":
            status = "2xx, but not the JSON asked for"
        else:
            status = str(last.status) if last is not None and last.status is not None else "none (no answer)"
        log.warning(
            "part %d of %d (%s) not reviewed: model %s, status %s, error: %s",
            *(failed.index + 1, len(requests), ", ".join(requests[failed.index].paths)),
            *(result.model, status, failed.reason),
        )


def _over_budget(check: budgets.BudgetCheck) -> str:
    status = check.exceeded
    assert status is not None
    return f"over the {status.limit.scope} budget ({status.limit.setting})"


class _Superseded(Exception):
    """A push came in after the job started: its own job reviews the newer head (raised before the model is called)."""


class _OverBudget(Exception):
    """The review would pass a monthly budget: post a note instead (raised before the model is called)."""

    def __init__(self, check: budgets.BudgetCheck) -> None:
        super().__init__("over the monthly budget")
        self.check = check


async def _in_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a store call off the event loop: SQLite blocks."""
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))
