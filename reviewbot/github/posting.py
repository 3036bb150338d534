"""Posting one review to GitHub, for the App's worker and for ``reviewbot review --pr --post``.

Every anchor was checked before this point, so GitHub should accept the review. If it still
refuses it (422), the findings must not be lost: they go into the body, which GitHub cannot
refuse for its anchors; and if GitHub refuses that too, a plain list of the findings is posted.
A POST whose answer was lost may have landed, so the pull request is read before the error is
passed on for a retry. When a review cannot be done at all, a short note says so, once per head.
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
from reviewbot.github.notes import failure_note, failure_note_for, is_failure_note
from reviewbot.github.pulls import PullRequest
from reviewbot.github.reviews import PostedReview
from reviewbot.render.model_text import close_fence, inert_comments

log = logging.getLogger("reviewbot.posting")

_CUT_DETAILS = "\n\n… (cut to fit GitHub's limit)\n\n</details>"


class ReviewRefused(ReviewbotError):
    """GitHub refused the review in every form: inline, with its comments in the body, and as a plain list."""


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
    """A submitted review of ours made for ``head`` (a note that it could not be done is none)."""
    return next(
        (r for r in reviews if r.state != "PENDING" and head_marker_of(r.body) == head and not is_failure_note(r.body)),
        None,
    )


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
        return await _post_in_body(github, pr, draft)
    except (GitHubTransient, GitHubRateLimited):
        landed = await landed_after_all(github, pr, me=me, seen={review.id for review in seen}, job_id=job_id)
        if landed is None:
            raise
        review_id = landed.id
    return Posted(review_id, draft.body)


async def _post_in_body(github: GitHubClient, pr: PullRequest, draft: ReviewDraft) -> Posted:
    """After a 422: the review with its comments in the body; refused too, its findings as a plain list."""
    body = inline_into_body(draft)
    try:
        review_id = await github.create_review(pr.repo, pr.number, commit_id=pr.head_sha, body=body, comments=[])
    except GitHubUnprocessable as again:
        log.error("GitHub refused that too for %s#%s (%s); posting a plain list", pr.repo, pr.number, again)
    else:
        return Posted(review_id, body)
    body = draft.plain_body
    try:
        review_id = await github.create_review(pr.repo, pr.number, commit_id=pr.head_sha, body=body, comments=[])
    except GitHubUnprocessable as refused:
        # Trying again would meet the same refusal.
        raise ReviewRefused(f"GitHub refused the review three times: {refused}") from refused
    return Posted(review_id, body)


async def post_failure_note(github: GitHubClient, pr: PullRequest, *, me: str, reason: str) -> int | None:
    """Post the note that the review of ``pr``'s head could not be done, and why; its ID, or None
    when the head already has a review or a note of ours."""
    ours = await our_reviews(github, pr, me)
    if review_for_head(ours, pr.head_sha) is not None or failure_note_for(ours, pr.head_sha) is not None:
        return None
    body = failure_note(pr.head_sha, reason)
    return await github.create_review(pr.repo, pr.number, commit_id=pr.head_sha, body=body, comments=[])


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
