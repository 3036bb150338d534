"""The worker's review job: one queued job through the review pipeline, as the App's installation.

:mod:`reviewbot.service.pipeline` does the review; this module opens the installation's GitHub
client, and turns the pipeline's ending into the worker's: done, dropped (also when the pull
request is gone: GitHub answers 404), a transient failure to retry later (rate limits, 5xx,
timeouts, every model request failing, a post GitHub did not take), or a failure no retry can
change (a configuration error, a review GitHub refuses in every form). When the worker gives a
job up, :meth:`ReviewService.give_up` posts one note on the pull request saying so, and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager

import anyio

from reviewbot.errors import (
    ConfigError,
    GitHubAuthError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubTransient,
    ModelError,
    ReviewbotError,
)
from reviewbot.github.client import GitHubClient
from reviewbot.github.posting import ReviewRefused, post_failure_note
from reviewbot.service.pipeline import ModelFactory, ReviewPipeline, ReviewRequest
from reviewbot.service.worker import JobAbandoned, JobOutcome, PermanentJobError, TransientJobError
from reviewbot.settings import Settings
from reviewbot.store.records import Job
from reviewbot.store.store import Store

GitHubFactory = Callable[[int], AbstractAsyncContextManager[GitHubClient]]

log = logging.getLogger("reviewbot.job")


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
        self._model = model

    async def handle(self, job: Job) -> JobOutcome:
        try:
            async with self._github(job.installation_id) as github:
                pipeline = ReviewPipeline(self._settings, github, self._store, model=self._model)
                reviewed = await pipeline.run(ReviewRequest.of_job(job))
        except GitHubRateLimited as exc:
            raise TransientJobError(str(exc), retry_after=exc.retry_after) from exc
        except (GitHubTransient, ModelError) as exc:
            raise TransientJobError(str(exc)) from exc
        except GitHubNotFound as exc:
            # The pull request, its repository or the installation is gone (or hidden from the
            # App): no retry brings it back.
            outcome = JobOutcome.dropped(f"gone: {exc}")
        except ConfigError as exc:
            raise PermanentJobError(str(exc)) from exc
        else:
            if reviewed.state == "failed":
                raise TransientJobError(reviewed.note) from ModelError(reviewed.note)
            if reviewed.refused:
                raise PermanentJobError(reviewed.note) from ReviewRefused(reviewed.note)
            outcome = JobOutcome(reviewed.state, reviewed.note)
        # The job ended: a result it kept for a retry is of no more use.
        await anyio.to_thread.run_sync(self._store.forget_result, job.id)
        return outcome

    async def give_up(self, job: Job, error: BaseException) -> None:
        """The worker gave ``job`` up after ``error``: post one note on the pull request that its
        review could not be done, and why (once per head; none when GitHub refuses our credentials)."""
        await anyio.to_thread.run_sync(self._store.forget_result, job.id)
        reason = _reason(error)
        if reason is None:
            return
        try:
            async with self._github(job.installation_id) as github:
                pr = await github.get_pull(job.repo, job.pr_number)
                if pr.state != "open":
                    return
                if job.head_sha and job.head_sha != pr.head_sha:
                    newer = await anyio.to_thread.run_sync(
                        lambda: self._store.newer_job_exists(pr.repo, pr.number, job.head_sha, after_job_id=job.id)
                    )
                    if newer:
                        return  # the newer head has a job of its own
                note = await post_failure_note(github, pr, me=await github.viewer_login(), reason=reason)
        except ReviewbotError as exc:
            log.warning("job %s: the note that the review could not be done was not posted: %s", job.id, exc)
            return
        if note is not None:
            log.info("job %s: posted note %s that the review of %s could not be done", job.id, note, pr.head_sha[:7])


def _reason(error: BaseException) -> str | None:
    """What the note tells the people on the pull request went wrong: a few words, never an
    endpoint or an error message (those are in the service log). None: no note can be posted."""
    causes = list(_chain(error))
    if any(isinstance(cause, ConfigError | GitHubAuthError) for cause in causes):
        return None  # GitHub refuses our credentials or their permissions: the note would be refused too
    if any(isinstance(cause, ReviewRefused) for cause in causes):
        return "GitHub refused the review, even as a plain list of its findings"
    if any(isinstance(cause, ModelError) for cause in causes):
        return "the model gave no usable answer, on every attempt"
    if any(isinstance(cause, GitHubTransient | GitHubRateLimited) for cause in causes):
        return "GitHub kept failing or rate-limiting the requests it needs"
    if any(isinstance(cause, JobAbandoned) for cause in causes):
        return "the review stopped its worker on every attempt (a pull request too large for it, perhaps)"
    return "reviewbot met an error of its own"


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and all(cause is not earlier for earlier in seen):
        yield cause
        seen.append(cause)
        cause = cause.__cause__
