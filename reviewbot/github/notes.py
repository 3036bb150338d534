"""The note posted on a pull request when its review could not be done, in place of nothing.

Pure: no I/O. The note is a review of ours like any other, so it carries the head marker
(:data:`~reviewbot.github.draft.HEAD_MARKER`) that tells which head it was posted for, and a
marker of its own that tells it apart from a review: a head with only a note still gets its
review from the next job for it, and that job's failure does not post a second note.
"""

from __future__ import annotations

from collections.abc import Iterable

from reviewbot.github.draft import HEAD_MARKER, head_marker_of, trailer_of
from reviewbot.github.reviews import PostedReview
from reviewbot.render.markdown import code_span

FAILED_MARKER = "<!-- reviewbot:failed -->"


def failure_note(head_sha: str, reason: str) -> str:
    """The note's body. ``reason`` is for the people on the pull request: what failed, in a few
    words, never an endpoint or an error message (those go to the service log)."""
    return (
        f"**reviewbot**: the review of {code_span(head_sha[:7])} could not be done: {reason}. "
        f"Comment `/review` to try again.\n\n{FAILED_MARKER}\n{HEAD_MARKER.format(sha=head_sha)}"
    )


def is_failure_note(body: str | None) -> bool:
    """Whether a review of ours is the note that its head could not be reviewed."""
    return FAILED_MARKER in trailer_of(body or "")


def failure_note_for(reviews: Iterable[PostedReview], head_sha: str) -> PostedReview | None:
    """Our note for ``head_sha``, if one was posted."""
    return next((r for r in reviews if is_failure_note(r.body) and head_marker_of(r.body) == head_sha), None)
