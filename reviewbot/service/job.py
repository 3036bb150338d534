"""The worker's review job: one queued job through the review pipeline, as the App's installation.

:mod:`reviewbot.service.pipeline` does the review; this module opens the installation's GitHub
client, and turns the pipeline's ending into the worker's: done, dropped, or a transient failure
to retry later (rate limits, 5xx, timeouts, every model request failing).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from reviewbot.errors import GitHubRateLimited, GitHubTransient, ModelError
from reviewbot.github.client import GitHubClient
from reviewbot.service.pipeline import ModelFactory, ReviewPipeline, ReviewRequest
from reviewbot.service.worker import JobOutcome, TransientJobError
from reviewbot.settings import Settings
from reviewbot.store.records import Job
from reviewbot.store.store import Store

GitHubFactory = Callable[[int], AbstractAsyncContextManager[GitHubClient]]


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
        async with self._github(job.installation_id) as github:
            pipeline = ReviewPipeline(self._settings, github, self._store, model=self._model)
            try:
                reviewed = await pipeline.run(ReviewRequest.of_job(job))
            except GitHubRateLimited as exc:
                raise TransientJobError(str(exc), retry_after=exc.retry_after) from exc
            except (GitHubTransient, ModelError) as exc:
                raise TransientJobError(str(exc)) from exc
        if reviewed.state == "failed":
            raise TransientJobError(reviewed.note)
        if reviewed.state == "dropped":
            return JobOutcome.dropped(reviewed.note)
        return JobOutcome.done(reviewed.note)
