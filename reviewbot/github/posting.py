"""Posting one review to GitHub, for the App's worker and for ``reviewbot review --pr --post``.

Every anchor was checked before this point, so GitHub should accept the review. If it still
refuses a comment (422), the findings must not be lost: they go into the body, which GitHub
cannot refuse for its anchors. And a POST whose answer was lost may have landed, so the pull
request is read before the error is passed on for a retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reviewbot.errors import GitHubRateLimited, GitHubTransient, GitHubUnprocessable, ReviewbotError
from reviewbot.github.client import GitHubClient
from reviewbot.github.draft import (
    MAX_BODY,
    ReviewDraft,
    fingerprint_of_comment,
    fingerprints_of_review,
    head_marker_of,
    job_marker_of,
    split_trailer,
)
from reviewbot.github.pulls import PullRequest
from reviewbot.github.reviews import PostedReview
from reviewbot.render.model_text import close_fence, inert_comments

log = logging.getLogger("reviewbot.posting")

_CUT_DETAILS = "\n\n… (cut to fit GitHub's limit)\n\n</details>"


class ReviewRefused(ReviewbotError):
    """GitHub refused the review even with every comment moved into its body."""


@dataclass(frozen=True, slots=True)
class Posted:
    review_id: int
    body: str  # as posted: the draft's body, or the fallback that carries the comments too


async def our_reviews(github: GitHubClient, pr: PullRequest, me: str) -> list[PostedReview]:
    """The reviews on the pull request that we posted."""
    return [review for review in await github.list_reviews(pr.repo, pr.number) if review.user_login == me]


async def posted_fingerprints(github: GitHubClient, pr: PullRequest, me: str, ours: Iterable[PostedReview]) -> set[str]:
    """Fingerprints of findings we already raised on the pull request, in comments or review bodies.

    Only from what we posted (``me``, and ``ours`` are our reviews), and only where we put them."""
    comments = await github.list_review_comments(pr.repo, pr.number)
    in_comments = {fingerprint_of_comment(comment.body) for comment in comments if comment.user_login == me}
    in_bodies = {print_ for review in ours for print_ in fingerprints_of_review(review.body)}
    return {print_ for print_ in in_comments if print_ is not None} | in_bodies


def review_for_head(reviews: Iterable[PostedReview], head: str) -> PostedReview | None:
    """A submitted review of ours made for ``head``."""
    return next((r for r in reviews if r.state != "PENDING" and head_marker_of(r.body) == head), None)


def review_for_job(reviews: Iterable[PostedReview], job_id: int) -> PostedReview | None:
    """The review a /review command's job posted."""
    return next((review for review in reviews if job_marker_of(review.body) == job_id), None)


async def post_review(
    github: GitHubClient,
    pr: PullRequest,
    draft: ReviewDraft,
    *,
    me: str,
    seen: Iterable[PostedReview],
    job_id: int | None = None,
) -> Posted:
    """Post ``draft`` as one review of ``pr``'s head. ``seen`` are our reviews read before."""
    try:
        review_id = await github.create_review(
            pr.repo, pr.number, commit_id=pr.head_sha, body=draft.body, comments=draft.comments
        )
    except GitHubUnprocessable as exc:
        log.error("GitHub refused the review of %s#%s (%s); posting findings in the body", pr.repo, pr.number, exc)
        body = inline_into_body(draft)
        try:
            review_id = await github.create_review(pr.repo, pr.number, commit_id=pr.head_sha, body=body, comments=[])
        except GitHubUnprocessable as again:
            # Trying again would meet the same refusal (and, in the worker, pay for the model again).
            raise ReviewRefused(f"GitHub refused the review twice: {again}") from again
        return Posted(review_id, body)
    except (GitHubTransient, GitHubRateLimited):
        landed = await landed_after_all(github, pr, me=me, seen={review.id for review in seen}, job_id=job_id)
        if landed is None:
            raise
        review_id = landed.id
    return Posted(review_id, draft.body)


async def landed_after_all(
    github: GitHubClient,
    pr: PullRequest,
    *,
    me: str,
    seen: set[int],
    job_id: int | None = None,
    keep: Callable[[PostedReview], bool] = lambda review: True,
) -> PostedReview | None:
    """After a POST whose answer was lost: our review of the head (or of the /review job) that
    was not among ``seen`` before it, and passes ``keep``; None if the POST did not land."""
    fresh = [review for review in await our_reviews(github, pr, me) if review.id not in seen and keep(review)]
    return review_for_job(fresh, job_id) if job_id is not None else review_for_head(fresh, pr.head_sha)


def inline_into_body(draft: ReviewDraft) -> str:
    """The draft's body with its inline comments added, within GitHub's size limit.

    The markers stay at the end of the body. Each comment keeps its fingerprint as its last
    line; above it, the suggestion the model wrote is made inert, since in a body it is no
    longer the last line of a comment and a marker line in it could pass for ours.
    """
    text, markers = split_trailer(draft.body)
    listed = "\n\n".join(f"`{c.path}:{c.line}`\n\n{_inert_above_marker(c.body)}" for c in draft.comments)
    full = f"\n\n<details><summary>Inline comments</summary>\n\n{listed}\n\n</details>"
    room = MAX_BODY - len(text) - len(markers) - 2
    details, keep = full, len(full)
    while len(details) > room:
        # Closing a code block the cut leaves open adds a line; cut more until that fits too.
        keep -= len(details) - room
        details = close_fence(full[:keep]) + _CUT_DETAILS if keep > 0 else ""
    return f"{text}{details}\n\n{markers}"


def _inert_above_marker(body: str) -> str:
    above, _, marker = body.rpartition("\n")
    return f"{inert_comments(above)}\n{marker}"
