"""A review job's engine result, kept in the store between the job's attempts.

When posting fails after the model answered (a 403, a lost answer, a rate limit), the job is tried
again; the retry posts what was kept instead of asking the model again, so the model is paid once
and the ledger, written when the model answered, counts it once. The store keeps it per job and
head commit (:mod:`reviewbot.store.results`), in the database every replica shares, so a retry
taken by another process finds it too; a retry that finds a newer head reviews that head afresh.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from pydantic import TypeAdapter, ValidationError

from reviewbot.engine.pricing import CostReport
from reviewbot.engine.result import ReviewResult
from reviewbot.github.draft import ReviewContextInfo
from reviewbot.store.store import Store

log = logging.getLogger("reviewbot.kept")


@dataclass(frozen=True, slots=True)
class KeptReview:
    """What a review needs to be posted without the model: findings, usage, cost, and the facts its body reports."""

    result: ReviewResult
    cost: CostReport
    info: ReviewContextInfo


_CODEC: Final = TypeAdapter(KeptReview)


def keep(store: Store, job_id: int, kept: KeptReview) -> None:
    store.keep_result(job_id, kept.info.head_sha, _CODEC.dump_json(kept).decode())


def kept_for(store: Store, job_id: int, head_sha: str) -> KeptReview | None:
    """What the job kept for ``head_sha``; None if nothing, or nothing this release can read."""
    text = store.kept_result(job_id, head_sha)
    if text is None:
        return None
    try:
        return _CODEC.validate_json(text)
    except ValidationError:
        # Kept by another release whose result looked different: review again rather than fail.
        log.warning("job %s: the result kept for %s cannot be read; reviewing again", job_id, head_sha[:7])
        return None
