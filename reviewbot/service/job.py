"""One review job, start to finish: the GitHub App's counterpart of ``reviewbot review``.

The order matters for the guarantees GitHub users see:
1. a review job for a head that moved on is dropped (the newer push has its own job);
2. a review of ours already on the PR for this head (a worker died after posting) ends the job;
3. a stale pending review of ours, which would block posting, is deleted;
4. the rules come from the base branch, so a PR cannot change how it is reviewed;
5. only commits new since the last reviewed head are reviewed, anchored on the PR's diff;
6. the head is checked again before posting, and findings already on the PR are left out;
7. a POST that may have landed is checked for before it is retried.

Before the model is called, the review's estimated cost is checked against the monthly budgets
(:mod:`reviewbot.money.budgets`); over one, a note takes the review's place. Every model request made
is written to the cost ledger (:mod:`reviewbot.money.ledger`), posted or not.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import anyio

from reviewbot.engine.diff import parse_diff
from reviewbot.engine.incremental import restrict_to_changes
from reviewbot.engine.llm import ModelClient
from reviewbot.engine.pricing import cost_report
from reviewbot.engine.prompt import ReviewContext
from reviewbot.engine.repo_config import CONFIG_PATH, RepoConfig, apply_repo_config, parse_repo_config
from reviewbot.engine.result import ReviewResult
from reviewbot.engine.review import ReviewOptions, execute, prepare
from reviewbot.errors import GitHubRateLimited, GitHubTransient, ModelError
from reviewbot.github.client import GitHubClient
from reviewbot.github.draft import (
    ReviewContextInfo,
    ReviewDraft,
    build_review,
    fingerprints_in,
)
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
from reviewbot.service.worker import JobOutcome, TransientJobError
from reviewbot.settings import Settings
from reviewbot.store.records import Job
from reviewbot.store.store import Store

log = logging.getLogger("reviewbot.service")
P = ParamSpec("P")
T = TypeVar("T")

GitHubFactory = Callable[[int], AbstractAsyncContextManager[GitHubClient]]
ModelFactory = Callable[[Settings], AbstractAsyncContextManager[ModelClient]]


@dataclass(frozen=True, slots=True)
class _Start:
    me: str  # the login our reviews appear under
    ours: list[PostedReview]  # our reviews already on the pull request


@dataclass(frozen=True, slots=True)
class _Posted:
    review_id: int
    draft: ReviewDraft
    body: str  # as posted: the draft's body, or the fallback that carries the comments too


class ReviewService:
    """Turns a review job into exactly one posted review (or a reason not to post one)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        github: GitHubFactory | None = None,
        model: ModelFactory | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._github = github or (lambda installation: GitHubClient.for_installation(settings, installation))
        self._model = model or ModelClient.from_settings

    async def handle(self, job: Job) -> JobOutcome:
        async with self._github(job.installation_id) as github:
            try:
                return await self._review(github, job)
            except GitHubRateLimited as exc:
                raise TransientJobError(str(exc), retry_after=exc.retry_after) from exc
            except (GitHubTransient, ModelError) as exc:
                raise TransientJobError(str(exc)) from exc

    async def _review(self, github: GitHubClient, job: Job) -> JobOutcome:
        pr = await github.get_pull(job.repo, job.pr_number)
        start = await self._start(github, job, pr)
        if isinstance(start, JobOutcome):
            return start
        command, head, me, ours = job.trigger == "command", pr.head_sha, start.me, start.ours

        config = parse_repo_config(
            await github.get_file(pr.repo, CONFIG_PATH, pr.base_ref),
            self._settings.allowed_models,
            repo_budget=self._settings.monthly_budget_per_repo,
        )
        if not config.enabled:
            return JobOutcome.dropped(f"reviews are turned off in {CONFIG_PATH}")
        drafts_wanted = config.review_drafts if config.review_drafts is not None else self._settings.review_drafts
        if pr.draft and not drafts_wanted and not command:
            return JobOutcome.dropped("the pull request is a draft")

        try:
            result, info, options = await self._run_engine(github, job, pr, config)
        except _OverBudget as over:
            return await self._post_budget_note(github, pr, over.check, me, {review.id for review in ours})
        if result.all_requests_failed:
            reasons = "; ".join(sorted({failure.reason for failure in result.failed}))
            raise TransientJobError(f"every model request failed: {reasons}")

        current = await github.get_pull(pr.repo, pr.number)
        if current.head_sha != head:
            return JobOutcome.dropped(f"head moved on to {current.head_sha[:7]} during the review")
        if not command and (landed := review_for_head(await our_reviews(github, pr, me), head)) is not None:
            # Another job for this head (the newer push's own, or one that took over an expired
            # lease) ran alongside this one and posted first.
            return JobOutcome.done(f"review {landed.id} for {head[:7]} was posted by another job")
        try:
            posted = await self._post(github, pr, result, info, config, ours, me, options)
        except ReviewRefused as refused:
            return JobOutcome.dropped(str(refused))
        # Only what GitHub shows: a finding cut from an over-long body must not count as raised.
        shown = fingerprints_in([posted.body, *(comment.body for comment in posted.draft.comments)])
        await _in_thread(self._store.record_review, pr.repo, pr.number, head, posted.review_id, sorted(shown))
        return JobOutcome.done(
            f"posted review {posted.review_id} with {plural(len(posted.draft.comments), 'comment')} for {head[:7]}"
        )

    async def _start(self, github: GitHubClient, job: Job, pr: PullRequest) -> _Start | JobOutcome:
        """Steps 1-3: whether this job should review at all, and a clear way for it if so."""
        if pr.state != "open":
            return JobOutcome.dropped("the pull request is closed")
        command = job.trigger == "command"
        head = pr.head_sha
        adopted = bool(job.head_sha) and job.head_sha != head and not command
        if adopted:
            # The job for the newer head reviews it. But deliveries can arrive out of order, and a
            # queued job may have taken the older of two heads: with no newer job, this one
            # reviews the head the pull request has now, or that head would never be reviewed.
            newer = await _in_thread(
                self._store.newer_job_exists, pr.repo, pr.number, job.head_sha, after_job_id=job.id
            )
            if newer:
                return JobOutcome.dropped(f"head {job.head_sha[:7]} is stale; a job for {head[:7]} is queued")

        me = await github.viewer_login()
        ours = await our_reviews(github, pr, me)
        if command and (repeat := review_for_job(ours, job.id)) is not None:
            return JobOutcome.done(f"review {repeat.id} for /review job {job.id} was already posted")
        if not command and (landed := review_for_head(ours, head)) is not None:
            if not budgets.is_budget_note(landed.body):  # a note is no review: its commits stay unreviewed
                await _in_thread(self._store.record_review, pr.repo, pr.number, head, landed.id, [])
            return JobOutcome.done(f"review {landed.id} for {head[:7]} was already posted")
        for pending in (review for review in ours if review.state == "PENDING"):
            await github.delete_pending_review(pr.repo, pr.number, pending.id)
        return _Start(me, ours)

    async def _run_engine(
        self, github: GitHubClient, job: Job, pr: PullRequest, config: RepoConfig
    ) -> tuple[ReviewResult, ReviewContextInfo, ReviewOptions]:
        fetched = await github.get_pull_diff(pr)
        # Parsing and planning a big diff takes a while; the event loop must keep serving webhooks.
        diff = await anyio.to_thread.run_sync(parse_diff, fetched.text)
        incremental_base = None
        if not job.full_review and job.trigger != "command":
            last = await _in_thread(self._store.last_reviewed_head, pr.repo, pr.number)
            if last and last != pr.head_sha:
                changes = await github.compare_diff(pr.repo, last, pr.head_sha)
                # None: the old head is gone (a force-push); the whole PR is reviewed again.
                if changes is not None:
                    diff = restrict_to_changes(diff, await anyio.to_thread.run_sync(parse_diff, changes))
                    incremental_base = last
        options = apply_repo_config(ReviewOptions.from_settings(self._settings), config)
        prepared = await _in_thread(prepare, diff, options, ReviewContext(title=pr.title, description=pr.body))
        budget = await _in_thread(
            budgets.check_budgets,
            self._store,
            budgets.limits(self._settings, config),
            installation_id=job.installation_id,
            repo=pr.repo,
            plan=prepared.plan,
            model=options.model,
            prices=options.prices,
            now=time.time(),
        )
        if budget.exceeded is not None:
            raise _OverBudget(budget)
        model_settings = self._settings.model_copy(update={"model": options.model})
        if prepared.plan.requests:
            async with self._model(model_settings) as client:
                result = await execute(prepared, client)
        else:
            result = await execute(prepared, None)
        # Recorded whether or not the review gets posted: the money was spent.
        origin = dataclasses.replace(job, head_sha=pr.head_sha)
        await _in_thread(ledger.record_calls, self._store, origin, result.calls, options.prices)
        metrics.observe_model_calls(result.calls, options.prices)
        info = ReviewContextInfo(
            head_sha=pr.head_sha,
            incremental_base=incremental_base,
            files_reviewed=len(prepared.reviewable),
            config_problems=config.problems,
            omitted=fetched.omitted,
            notes=(budgets.unchecked_note(budget, self._settings.model),) if budget.unchecked else (),
            job_id=job.id if job.trigger == "command" else None,
        )
        return result, info, options

    async def _post_budget_note(
        self, github: GitHubClient, pr: PullRequest, check: budgets.BudgetCheck, me: str, known_ids: set[int]
    ) -> JobOutcome:
        """Post the over-budget note as the head's one review (no model was called)."""
        status = check.exceeded
        assert status is not None
        body = budgets.over_budget_body(check, status, pr.head_sha, repo_budget=self._settings.monthly_budget_per_repo)
        try:
            review_id = await github.create_review(pr.repo, pr.number, commit_id=pr.head_sha, body=body, comments=[])
        except (GitHubTransient, GitHubRateLimited):
            # As for a review: the POST may have landed though its answer was lost.
            landed = await landed_after_all(
                github, pr, me=me, seen=known_ids, keep=lambda review: budgets.is_budget_note(review.body)
            )
            if landed is None:
                raise
            review_id = landed.id
        # Not recorded as a reviewed head: once the budget allows, the next review covers these commits.
        return JobOutcome.done(
            f"over the {status.limit.scope} budget ({status.limit.setting}); posted note {review_id}"
            f" instead of a review for {pr.head_sha[:7]}"
        )

    async def _post(
        self,
        github: GitHubClient,
        pr: PullRequest,
        result: ReviewResult,
        info: ReviewContextInfo,
        config: RepoConfig,
        ours: list[PostedReview],
        me: str,
        options: ReviewOptions,
    ) -> _Posted:
        known = set(await _in_thread(self._store.known_fingerprints, pr.repo, pr.number))
        known |= await posted_fingerprints(github, pr, me, ours)
        draft = build_review(
            result,
            cost_report(result.usage, result.model, options.prices),
            info,
            known_fingerprints=known,
            max_comments=config.max_comments or self._settings.max_comments,
        )
        posted = await post_review(github, pr, draft, me=me, seen=ours, job_id=info.job_id)
        return _Posted(posted.review_id, draft, posted.body)


class _OverBudget(Exception):
    """The review would pass a monthly budget: post a note instead (raised before the model is called)."""

    def __init__(self, check: budgets.BudgetCheck) -> None:
        super().__init__("over the monthly budget")
        self.check = check


async def _in_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a store call off the event loop: SQLite blocks."""
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))
