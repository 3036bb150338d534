"""Reviews and inline comments on a pull request: our records of them, and the JSON GitHub sends and takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reviewbot.engine.diff import Side
from reviewbot.github.draft import ReviewComment

if TYPE_CHECKING:
    from githubkit_schemas.v2026_03_10.types import (
        PullRequestReviewCommentTypeForResponse,
        PullRequestReviewTypeForResponse,
        ReposOwnerRepoPullsPullNumberReviewsPostBodyPropCommentsItemsType,
    )


@dataclass(frozen=True, slots=True)
class PostedReview:
    """A review already on a pull request. ``commit_id`` is the head it was made on."""

    id: int
    user_login: str
    state: str  # "COMMENTED", "APPROVED", "CHANGES_REQUESTED", "DISMISSED" or "PENDING"
    commit_id: str | None
    body: str


@dataclass(frozen=True, slots=True)
class PostedComment:
    """An inline review comment already on a pull request; ``line`` is None once outdated."""

    id: int
    user_login: str
    path: str
    line: int | None
    side: Side
    body: str
    commit_id: str


# -- JSON → our records -----------------------------------------------------------------------


def posted_review(item: PullRequestReviewTypeForResponse) -> PostedReview:
    user = item.get("user")
    return PostedReview(
        id=item["id"],
        user_login=user["login"] if user else "",
        state=item["state"],
        commit_id=item.get("commit_id"),
        body=item.get("body") or "",
    )


def posted_comment(item: PullRequestReviewCommentTypeForResponse) -> PostedComment:
    user = item.get("user")
    return PostedComment(
        id=item["id"],
        user_login=user["login"] if user else "",
        path=item["path"],
        line=item.get("line"),
        side=Side(item.get("side") or "RIGHT"),
        body=item["body"],
        commit_id=item["commit_id"],
    )


def comment_json(comment: ReviewComment) -> ReposOwnerRepoPullsPullNumberReviewsPostBodyPropCommentsItemsType:
    item: ReposOwnerRepoPullsPullNumberReviewsPostBodyPropCommentsItemsType = {
        "path": comment.path,
        "body": comment.body,
        "line": comment.line,
        "side": str(comment.side),
    }
    if comment.start_line is not None and comment.start_line != comment.line:
        item["start_line"] = comment.start_line
        item["start_side"] = str(comment.start_side or comment.side)
    return item
